//! Configuration: parse the YAML file (unknown keys rejected), validate it with a path for every
//! problem, and build the immutable [`Snapshot`] the proxy reads.

mod build;
mod check;
mod cli;
mod models;
mod pools;
pub mod raw;
mod raw_cli;
mod raw_pool;
mod raw_server;
mod raw_shared;
mod routes;
mod shared;
mod snapshot;
mod units;

use std::path::Path;

pub use check::{parse_base_url, Problem};
pub use snapshot::{
    Account, AccountLimits, ClientToken, HealthCheckConf, Limits, LogConf, Model, Pool, RetryConf, Route, RouteTarget,
    ServerLimits, SharedConf, Snapshot, Target, Timeouts, Upstream, Webhook,
};

use crate::state::States;

/// The file used when neither `--config` nor `LLM_SIDECAR_CONFIG` names one.
pub const DEFAULT_PATH: &str = "conf/sidecar.yaml";

/// Parse YAML text into the raw config. Syntax and type errors come back with their path.
pub fn parse(text: &str) -> Result<raw::RawConfig, Vec<Problem>> {
    let de = yaml_serde::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let message = e.into_inner().to_string();
        let message = strip_parser_path(&message, &path).to_string();
        vec![Problem { path, message }]
    })
}

/// The YAML parser prefixes its own, coarser path (`pools.c.timeouts: ...`); ours is exact.
fn strip_parser_path<'a>(message: &'a str, path: &str) -> &'a str {
    match message.split_once(": ") {
        Some((prefix, rest)) if !prefix.contains(' ') && path.starts_with(prefix) => rest,
        _ => message,
    }
}

/// Read, parse, validate and build. Blocking (file and env reads): call off the request path.
/// Accounts get their state from `states`, so a reload keeps it.
pub fn load(path: &Path, states: &States) -> Result<Snapshot, Vec<Problem>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Problem {
            path: String::new(),
            message: format!("cannot read {}: {e}", path.display()),
        }]
    })?;
    load_str(&text, states)
}

/// Parse, validate and build from text.
pub fn load_str(text: &str, states: &States) -> Result<Snapshot, Vec<Problem>> {
    let mut snap = build::build(parse(text)?, states)?;
    snap.fingerprint = fingerprint(text, &snap);
    Ok(snap)
}

/// Equal for the same text and the same secrets (kept in memory only, never printed).
fn fingerprint(text: &str, snap: &Snapshot) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    for a in snap.pools.iter().flat_map(|p| &p.accounts) {
        a.credential.1.as_bytes().hash(&mut h);
    }
    for t in &snap.client_tokens {
        t.token.expose().hash(&mut h);
    }
    if let Some(t) = &snap.admin_token {
        t.expose().hash(&mut h);
    }
    if let Some(w) = &snap.webhook {
        w.path.hash(&mut h);
        w.target.host_header.as_bytes().hash(&mut h);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(yaml: &str) -> Vec<String> {
        match load_str(yaml, &States::default()) {
            Ok(_) => Vec::new(),
            Err(p) => p.iter().map(ToString::to_string).collect(),
        }
    }

    const GOOD: &str = r#"
routes:
  - name: anthropic
    match: { path_prefix: /anthropic/ }
    pool: claude
pools:
  claude:
    provider: anthropic
    timeouts: { connect: 250ms, first_byte: 2s, idle: 1s, total: 10m }
    accounts:
      - { name: team-a, base_url: "https://api.anthropic.com", key_env: LLMS_TEST_KEY_SET }
      - { name: team-b, base_url: "http://127.0.0.1:9999/base/", key_env: LLMS_TEST_KEY_SET, auth: bearer }
"#;

    #[test]
    fn builds_a_good_file_with_defaults() {
        std::env::set_var("LLMS_TEST_KEY_SET", "  sk-test  \n");
        let s = load_str(GOOD, &States::default()).expect("valid config");
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080", "default listen");
        assert_eq!(s.limits.max_body_bytes, 32 * 1024 * 1024, "default body limit");
        assert_eq!(&*s.routes[0].path_prefix, "/anthropic", "trailing slash trimmed");
        assert!(s.routes[0].strip_prefix, "strip_prefix defaults to true");
        let pool = &s.pools[0];
        assert_eq!(pool.timeouts.connect.as_millis(), 250, "durations parse");
        let a = &pool.accounts[0];
        assert_eq!(a.credential.0.as_str(), "x-api-key", "anthropic default auth");
        assert_eq!(a.credential.1.to_str().ok(), Some("sk-test"), "key trimmed");
        assert!(a.upstream.tls && a.upstream.port == 443, "https default port");
        let b = &pool.accounts[1];
        assert_eq!(b.credential.1.to_str().ok(), Some("Bearer sk-test"), "auth override");
        assert_eq!(&*b.upstream.base_path, "/base", "base path kept, slash trimmed");
        assert_eq!(
            b.upstream.host_header.to_str().ok(),
            Some("127.0.0.1:9999"),
            "port in host"
        );
        assert!(b.upstream.ip.is_some(), "ip literal needs no DNS");
    }

    #[test]
    fn reports_every_problem_with_its_path() {
        let yaml = r#"
listen: "0.0.0.0:8080"
routes:
  - { name: a, match: { path_prefix: nope }, pool: missing }
pools:
  claude:
    provider: anthropic
    timeouts: { connect: 0s }
    accounts:
      - { name: team-a, base_url: "ftp://x", key_env: LLMS_TEST_KEY_UNSET_1 }
      - { name: "bad name", base_url: "https://x", key_env: A, key_file: /b }
"#;
        let p = problems(yaml);
        let expect = [
            "listen: 0.0.0.0:8080 is not a loopback address",
            "routes[0].match.path_prefix: must be a path starting with /",
            "routes[0].pool: no pool named \"missing\"",
            "pools.claude.timeouts.connect: must be greater than 0",
            "pools.claude.accounts[0].base_url: \"ftp://x\" must start with https:// or http://",
            "pools.claude.accounts[0].key_env: LLMS_TEST_KEY_UNSET_1 is not set",
            "pools.claude.accounts[1].name: use 1-64 characters",
            "pools.claude.accounts[1]: set exactly one of key_env and key_file",
        ];
        for e in expect {
            assert!(p.iter().any(|l| l.starts_with(e)), "missing {e:?} in {p:#?}");
        }
    }

    #[test]
    fn the_admin_listener_cannot_share_the_apps_port() {
        std::env::set_var("LLMS_TEST_KEY_SET", "k");
        for (listen, admin) in [("127.0.0.1:7000", "127.0.0.1:7000"), ("0.0.0.0:7000", "127.0.0.1:7000")] {
            let yaml = format!("listen: \"{listen}\"\nadmin: {{ listen: \"{admin}\" }}\n{GOOD}");
            let p = problems(&yaml);
            assert!(
                p.iter()
                    .any(|l| l.starts_with("admin.listen: ") && l.contains("overlaps listen")),
                "{listen} and {admin} refused: {p:?}"
            );
        }
        let apart = format!("admin: {{ listen: \"127.0.0.2:8080\" }}\n{GOOD}");
        assert_eq!(
            problems(&apart),
            Vec::<String>::new(),
            "another address, the same port: fine"
        );
    }

    #[test]
    fn unknown_keys_are_errors_with_a_path() {
        let yaml = "pools:\n  claude:\n    provider: anthropic\n    acounts: []\n";
        let p = problems(yaml);
        assert_eq!(p.len(), 1, "one parse error: {p:?}");
        assert!(
            p[0].contains("pools.claude") && p[0].contains("unknown field `acounts`"),
            "{p:?}"
        );
    }

    #[test]
    fn bad_durations_and_providers_are_explained() {
        let p = problems("pools:\n  c:\n    provider: anthropic\n    timeouts: { idle: 5 parsecs }\n");
        assert!(p[0].starts_with("pools.c.timeouts.idle: invalid duration"), "{p:?}");
        let p = problems("pools:\n  c:\n    provider: cohere\n");
        assert!(p[0].starts_with("pools.c.provider: unknown variant `cohere`"), "{p:?}");
    }

    #[test]
    fn key_files_are_read_and_trimmed() {
        let dir = std::env::temp_dir().join(format!("llms-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("key");
        std::fs::write(&file, "\n  file-key \n").expect("write key");
        let empty = dir.join("empty");
        std::fs::write(&empty, " \n").expect("write empty");
        let yaml = format!(
            "routes: [{{name: r, pool: p}}]\npools:\n  p:\n    provider: gemini\n    accounts:\n      - {{name: a, base_url: 'https://g', key_file: {}}}\n      - {{name: b, base_url: 'https://g', key_file: {}}}\n",
            file.display(),
            empty.display()
        );
        let p = problems(&yaml);
        assert_eq!(p.len(), 1, "only the empty file is a problem: {p:?}");
        assert!(
            p[0].starts_with("pools.p.accounts[1].key_file:") && p[0].ends_with("is empty"),
            "{p:?}"
        );
        std::fs::remove_file(&empty).expect("rm");
        let yaml = yaml.replace(
            &format!(", key_file: {}}}", empty.display()),
            &format!(", key_file: {}}}", file.display()),
        );
        let s = load_str(&yaml, &States::default()).expect("valid");
        let cred = &s.pools[0].accounts[0].credential;
        assert_eq!(
            (cred.0.as_str(), cred.1.to_str().ok()),
            ("x-goog-api-key", Some("file-key"))
        );
    }
}
