#![no_main]
//! config: parsing and building a config file never panics, whatever the text: `config::parse`
//! gives a raw config or at least one problem, and `config::load_str` (parse, validate, build the
//! snapshot) gives a snapshot or at least one problem, each with a message.
//!
//! Input: the YAML text (not UTF-8: skipped, as the file reader refuses it).
//!
//! Building reads the environment variables and the secret files the config names. A secret file
//! that is not a plain file of sane size (`/dev/zero`, a FIFO, `/proc/...`) would hang or exhaust
//! the fuzzer rather than find a bug, so such inputs are built only as far as `parse`.

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use llm_sidecar::config::{self, raw::RawConfig};
use llm_sidecar::state::States;

/// The `*_file` secrets the build reads (src/config/check.rs `read_secret`).
fn secret_files(raw: &RawConfig) -> Vec<&str> {
    let mut files = Vec::new();
    for pool in raw.pools.values() {
        files.extend(pool.accounts.iter().filter_map(|a| a.key_file.as_deref()));
    }
    if let Some(tokens) = &raw.clients.tokens {
        files.extend(tokens.iter().filter_map(|t| t.token_file.as_deref()));
    }
    if let Some(redis) = &raw.shared.redis {
        files.extend(redis.password_file.as_deref());
    }
    files
}

/// Reading `path` ends quickly: it does not exist, or is a plain file of at most 1 MiB outside
/// the kernel's pseudo file systems.
fn quick_to_read(path: &str) -> bool {
    let Ok(real) = std::fs::canonicalize(Path::new(path)) else {
        return true; // the read fails at once
    };
    if ["/proc", "/sys", "/dev"].iter().any(|p| real.starts_with(p)) {
        return false;
    }
    std::fs::metadata(&real).is_ok_and(|m| m.is_file() && m.len() <= 1 << 20)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let raw = match config::parse(text) {
        Ok(raw) => raw,
        Err(problems) => {
            assert!(!problems.is_empty(), "refused without a problem");
            return;
        }
    };
    if !secret_files(&raw).into_iter().all(quick_to_read) {
        return;
    }
    drop(raw);
    match config::load_str(text, &States::default()) {
        Ok(snapshot) => {
            let _ = snapshot.summary();
        }
        Err(problems) => {
            assert!(!problems.is_empty(), "refused without a problem");
            for p in &problems {
                assert!(!p.message.is_empty(), "a problem without a message at {:?}", p.path);
                let _ = p.to_string();
            }
        }
    }
});
