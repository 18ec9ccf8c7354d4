//! Validation of `shared.redis`: one URL source, an optional password, a plain key prefix and a
//! bounded timeout; the result is [`SharedConf`].

use std::time::Duration;

use super::check::{read_secret, Problems};
use super::raw_shared::RawShared;
use super::snapshot::SharedConf;
use crate::secret::Secret;

const PATH: &str = "shared.redis";

/// Validate `shared` (`None`: not configured).
pub(super) fn build(raw: &RawShared, p: &mut Problems) -> Option<SharedConf> {
    let r = raw.redis.as_ref()?;
    let url = match (&r.url_env, &r.url) {
        (Some(_), Some(_)) | (None, None) => {
            p.add(PATH, "set exactly one of url_env and url");
            None
        }
        (Some(var), None) => match std::env::var(var) {
            Ok(v) => Some((v, format!("{PATH}.url_env"))),
            Err(_) => {
                p.add(format!("{PATH}.url_env"), format!("{var} is not set"));
                None
            }
        },
        (None, Some(u)) => Some((u.clone(), format!("{PATH}.url"))),
    };
    let url = url.and_then(|(u, path)| match check_url(&u) {
        Ok(()) => Some(Secret::new(u)),
        Err(m) => {
            p.add(path, m);
            None
        }
    });
    let password = match (&r.password_env, &r.password_file) {
        (None, None) => None,
        (env, file) => read_secret(PATH, "password", env.as_deref(), file.as_deref(), p),
    };
    let prefix_ok = !r.prefix.is_empty()
        && r.prefix.len() <= 64
        && r.prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if !prefix_ok {
        p.add(format!("{PATH}.prefix"), "must be 1-64 of A-Z a-z 0-9 - _ . :");
    }
    let timeout = r.timeout.0;
    if timeout < Duration::from_millis(1) || timeout > Duration::from_secs(10) {
        p.add(format!("{PATH}.timeout"), "must be between 1ms and 10s");
    }
    Some(SharedConf {
        url: url?,
        password,
        prefix: r.prefix.as_str().into(),
        timeout,
    })
}

/// A `redis://` or `rediss://` URL the client accepts (the message never repeats the URL: it
/// may hold a password).
fn check_url(url: &str) -> Result<(), String> {
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        return Err("must be a redis:// or rediss:// URL".into());
    }
    redis::Client::open(url)
        .map(drop)
        .map_err(|e| format!("is not a valid Redis URL ({:?})", e.kind()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw_shared::RawRedis;
    use crate::config::units::Dur;

    fn raw(url: Option<&str>, prefix: &str, timeout_ms: u64) -> RawShared {
        RawShared {
            redis: Some(RawRedis {
                url_env: None,
                url: url.map(Into::into),
                password_env: None,
                password_file: None,
                prefix: prefix.into(),
                timeout: Dur(Duration::from_millis(timeout_ms)),
            }),
        }
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let mut p = Problems::default();
        assert!(
            build(&raw(Some("http://x"), "a b", 0), &mut p).is_none(),
            "invalid config builds nothing"
        );
        let paths: Vec<&str> = p.0.iter().map(|x| x.path.as_str()).collect();
        assert_eq!(
            paths,
            ["shared.redis.url", "shared.redis.prefix", "shared.redis.timeout"],
            "one problem per field: {:?}",
            p.0
        );
        let mut p = Problems::default();
        assert!(build(&raw(None, "x", 50), &mut p).is_none(), "no URL builds nothing");
        assert_eq!(p.0.len(), 1, "one problem: {:?}", p.0);
    }

    #[test]
    fn a_valid_url_builds_and_never_prints() {
        let mut p = Problems::default();
        let c = build(
            &raw(Some("redis://:hunter2@127.0.0.1:6379/0"), "llm-sidecar", 50),
            &mut p,
        );
        assert!(p.0.is_empty(), "no problems: {:?}", p.0);
        let c = c.expect("built");
        assert_eq!(&*c.prefix, "llm-sidecar", "prefix kept");
        assert!(!format!("{c:?}").contains("hunter2"), "the URL's password never prints");
    }
}
