//! Secrets and environment for the sidecars this process starts, without writing the environment
//! while tests run.
//!
//! Tests run in parallel threads, and writing the environment while another thread reads it is a
//! data race (`setenv` may move the array a concurrent C `getenv` walks; `set_var` is `unsafe` in
//! edition 2024). So account keys and client tokens are files in one directory for the whole
//! process ([`secret_file`]), and the few settings that only exist as `*_env` (the admin token,
//! the webhook URL, and `SSL_CERT_FILE` for the trusted test CA) are set by [`init`], once, under
//! names that each belong to one test.
//!
//! Why [`init`] is race-free: it runs exactly once (a `OnceLock`: a second caller waits until the
//! first has finished), and every way into the harness that leads to the environment being read
//! calls it first (starting a sidecar or a fake, building a client, writing a secret, loading a
//! config, taking a webhook listener). Nothing in this process writes the environment after it.
//! What another test thread can do before its own first harness call is the test framework's and
//! Tokio's set-up and `std` calls such as `tempfile::tempdir()`, which read the environment
//! through `std::env` and its lock, ordered with `set_var`; the C readers (the resolver, SQLite)
//! only run in or against a sidecar or fake, so after `init`. Child processes get their variables
//! through `Command::env`, which touches only the child's copy.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

/// `admin.token_env` variables, each named by one test, and their tokens.
const ADMIN_TOKENS: &[(&str, &str)] = &[
    // operations::the_admin_api_shows_pools_and_sessions_and_resets_accounts_behind_its_token
    ("LLMS_ADMIN_TOKEN_1", "adm-secret"),
    // checks::a_non_loopback_admin_listener_needs_a_token
    ("LLMS_OPS_ADMIN", "t"),
    // reload::an_invalid_file_is_refused_and_the_running_config_stays
    ("LLMS_RELOAD_ADMIN", "adm"),
];

/// `notifications.webhook.url_env` variables, each named by one test, and the path of their URL.
/// The URL's port is a listener bound here, served by the test's [`super::Fake::webhook`].
const WEBHOOKS: &[(&str, &str)] = &[
    // allocation::a_session_whose_account_fails_continues_elsewhere_and_the_move_is_heard
    ("LLMS_HOOK_REBOUND", "/hooks/llm"),
    // notifications::the_webhook_hears_each_event_once
    ("LLMS_HOOK_EVENTS", ""),
    // notifications::a_slow_webhook_never_delays_requests_and_its_failures_are_counted
    ("LLMS_HOOK_SLOW", ""),
    // notifications::budgets_stop_new_sessions_at_the_threshold_and_all_traffic_at_the_limit
    ("LLMS_HOOK_BUDGET", ""),
    // shared::a_weekly_budget_reached_through_several_sidecars_stops_all_and_notifies_once
    ("LLMS_HOOK_SHARED", ""),
];

struct Env {
    /// Key and token files, and the trusted CA.
    dir: tempfile::TempDir,
    /// Secret files written so far, by name, with their value.
    secrets: Mutex<HashMap<String, String>>,
    /// Webhook listeners not yet taken by their test.
    webhooks: Mutex<HashMap<&'static str, TcpListener>>,
    /// The CA every sidecar of this process trusts (through `SSL_CERT_FILE`).
    ca: (rcgen::Certificate, rcgen::KeyPair),
}

static ENV: OnceLock<Env> = OnceLock::new();

/// Set the process's environment for the tests, once (see the module's documentation).
pub fn init() {
    env();
}

fn env() -> &'static Env {
    ENV.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("llm-sidecar-suite-")
            .tempdir()
            .expect("secrets dir");
        // A static is never dropped: remove the directory when the test process exits.
        // SAFETY: `atexit` only stores the pointer to a function that cannot unwind.
        unsafe { libc::atexit(remove_dir) };
        for (var, token) in ADMIN_TOKENS {
            std::env::set_var(var, token);
        }
        let mut webhooks = HashMap::new();
        for (var, path) in WEBHOOKS {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind webhook listener");
            let addr = listener.local_addr().expect("webhook addr");
            std::env::set_var(var, format!("http://{addr}{path}"));
            webhooks.insert(*var, listener);
        }
        let key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).expect("CA certificate");
        let ca_file = dir.path().join("trusted-ca.pem");
        std::fs::write(&ca_file, ca.pem()).expect("write CA");
        // Read by Pingora (rustls-native-certs) when a sidecar builds its upstream connector.
        std::env::set_var("SSL_CERT_FILE", &ca_file);
        Env {
            dir,
            secrets: Mutex::default(),
            webhooks: Mutex::new(webhooks),
            ca: (ca, key),
        }
    })
}

extern "C" fn remove_dir() {
    if let Some(env) = ENV.get() {
        let _ = std::fs::remove_dir_all(env.dir.path());
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding the lock left the map consistent: go on.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The path of a file named `name` holding `value`, for `key_file:` and `token_file:`. Written
/// once and never changed (a sidecar reading it never sees it half-written, and its reload
/// watcher never sees it touched); tests that share a name share the file, so a name must always
/// hold the same value.
pub fn secret_file(name: &str, value: &str) -> String {
    let env = env();
    let path = env.dir.path().join(name);
    let mut written = lock(&env.secrets);
    match written.get(name) {
        Some(held) => assert_eq!(held, value, "secret file {name} already holds another value"),
        None => {
            std::fs::write(&path, value).expect("write secret file");
            written.insert(name.to_string(), value.to_string());
        }
    }
    path.display().to_string()
}

/// The listener behind the webhook URL in `var` (one of [`WEBHOOKS`]); each can be taken once.
pub fn webhook_listener(var: &str) -> TcpListener {
    lock(&env().webhooks)
        .remove(var)
        .unwrap_or_else(|| panic!("{var} is not a harness webhook variable, or its listener was taken already"))
}

/// The CA that every sidecar of this process trusts, and its key (to sign upstream certificates).
pub fn trusted_ca() -> (&'static rcgen::Certificate, &'static rcgen::KeyPair) {
    let (cert, key) = &env().ca;
    (cert, key)
}

/// `llm_sidecar::config::load_str`, after [`init`] (the config may name `*_env` variables).
pub fn load_config(yaml: &str) -> Result<llm_sidecar::config::Snapshot, Vec<llm_sidecar::config::Problem>> {
    init();
    llm_sidecar::config::load_str(yaml, &Default::default())
}

/// The problems `check` would list for `yaml`, as text (none when it loads).
pub fn config_problems(yaml: &str) -> Vec<String> {
    match load_config(yaml) {
        Ok(_) => Vec::new(),
        Err(problems) => problems.iter().map(ToString::to_string).collect(),
    }
}
