//! What every part of config validation shares: the problem list with paths, the rule for names,
//! reading a secret from the environment or a file, and parsing a base URL.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use http::header::HeaderValue;

use super::snapshot::Upstream;
use crate::secret::Secret;

/// One thing wrong with a config file, located by its path (`pools.claude.accounts[0].key_env`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where in the file, as a dotted path with indices; empty for a problem with the whole file.
    pub path: String,
    /// What is wrong, in words a person can act on.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

#[derive(Default)]
pub(super) struct Problems(pub(super) Vec<Problem>);

impl Problems {
    pub(super) fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }
}

/// Names used as metric labels and in URLs: short and plain.
pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Accounts tried per request are tracked in a `u64` bit set.
pub(super) const MAX_ACCOUNTS: usize = 64;

pub(super) const NAME_RULE: &str = "use 1-64 characters from A-Z a-z 0-9 - _ .";

/// Read a credential from exactly one of `{what}_env` / `{what}_file`.
pub(super) fn read_secret(
    path: &str,
    what: &str,
    env: Option<&str>,
    file: Option<&str>,
    p: &mut Problems,
) -> Option<Secret> {
    let value = match (env, file) {
        (Some(_), Some(_)) | (None, None) => {
            p.add(path, format!("set exactly one of {what}_env and {what}_file"));
            return None;
        }
        (Some(var), None) => match std::env::var(var) {
            Ok(v) => (v, format!("{path}.{what}_env"), var.to_string()),
            Err(std::env::VarError::NotPresent) => {
                p.add(format!("{path}.{what}_env"), format!("{var} is not set"));
                return None;
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                p.add(format!("{path}.{what}_env"), format!("{var} is not valid UTF-8"));
                return None;
            }
        },
        (None, Some(f)) => match std::fs::read_to_string(Path::new(f)) {
            Ok(v) => (v, format!("{path}.{what}_file"), f.to_string()),
            Err(e) => {
                p.add(format!("{path}.{what}_file"), format!("cannot read {f}: {e}"));
                return None;
            }
        },
    };
    let (text, key_path, source) = value;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        p.add(key_path, format!("{source} is empty"));
        return None;
    }
    Some(Secret::new(trimmed))
}

/// `https://host[:port][/path]` into an [`Upstream`].
pub fn parse_base_url(text: &str) -> Result<Upstream, String> {
    let uri: http::Uri = text.parse().map_err(|_| format!("{text:?} is not a URL"))?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(format!("{text:?} must start with https:// or http://")),
    };
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("{text:?} has no host"))?;
    if uri.query().is_some() {
        return Err(format!("{text:?} must not carry a query"));
    }
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let ip = bare.parse::<IpAddr>().ok();
    let host_header = match uri.port_u16() {
        Some(p) if p != if tls { 443 } else { 80 } => format!("{host}:{p}"),
        _ => host.to_string(),
    };
    Ok(Upstream {
        tls,
        host: bare.into(),
        port,
        ip,
        dns: crate::dns::DnsCache::new(bare, port),
        base_path: uri.path().trim_end_matches('/').into(),
        host_header: HeaderValue::from_str(&host_header).map_err(|_| format!("{text:?} has an invalid host"))?,
    })
}
