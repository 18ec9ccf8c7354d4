//! How the proxy names the claude-cli account an attempt is for when it calls the in-process CLI
//! service: a header carrying a secret drawn once per process with the pool and account names.
//! The proxy sets it where it would put an API key (so a client's value never survives); the
//! service accepts only values with this process's secret.

use std::sync::OnceLock;

use http::header::{HeaderName, HeaderValue};

use crate::secret::Secret;

/// The header the proxy sets on requests to the CLI service.
pub const HEADER: HeaderName = HeaderName::from_static("x-llm-sidecar-cli-account");

fn secret() -> &'static Secret {
    static SECRET: OnceLock<Secret> = OnceLock::new();
    SECRET.get_or_init(|| Secret::new(format!("{:032x}", rand::random::<u128>())))
}

/// The credential header of `pool`/`account` (names are `A-Z a-z 0-9 - _ .`), marked sensitive.
pub fn credential(pool: &str, account: &str) -> Option<(HeaderName, HeaderValue)> {
    let mut value = HeaderValue::from_str(&format!("{}/{pool}/{account}", secret().expose())).ok()?;
    value.set_sensitive(true);
    Some((HEADER, value))
}

/// The (pool, account) a credential names, when it carries this process's secret.
pub fn verify(value: &[u8]) -> Option<(&str, &str)> {
    let text = std::str::from_utf8(value).ok()?;
    let (given, rest) = text.split_once('/')?;
    if !secret().matches(given.as_bytes()) {
        return None;
    }
    rest.split_once('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_process_credentials_are_accepted() {
        let (name, value) = credential("code", "max-1").expect("valid names");
        assert_eq!(name, HEADER, "the header");
        assert!(value.is_sensitive(), "never printed by Debug");
        assert_eq!(verify(value.as_bytes()), Some(("code", "max-1")), "round trip");
        assert_eq!(verify(b"0000/code/max-1"), None, "a forged secret is refused");
        assert_eq!(verify(b"code/max-1"), None, "no secret: refused");
    }
}
