//! What `check` (and every load or reload) refuses before anything runs: a route shadowed by an
//! earlier one, fallback pools that do not exist or speak another API, an admin listener open
//! beyond loopback without a token.

use crate::harness::*;

#[test]
fn check_refuses_a_route_shadowed_by_an_earlier_one() {
    let pools = format!(
        "pools:\n  p: {{ provider: anthropic, accounts: [{{ name: a, base_url: \"https://x\", key_file: \"{}\" }}] }}\n",
        secret_file("checks-shadow.key", "k")
    );
    let shadowed = format!(
        "routes:\n  - {{ name: all, match: {{ path_prefix: /a }}, pool: p }}\n  - {{ name: later, match: {{ path_prefix: /a, header: {{ name: x-r, value: b }} }}, pool: p }}\n  - {{ name: deeper, match: {{ path_prefix: /a/v1 }}, pool: p }}\n{pools}"
    );
    let problems = config_problems(&shadowed);
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("routes[1]: route \"later\" is never reached")),
        "the header route after its catch-all is reported: {problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("routes[2]: route \"deeper\" is never reached")),
        "the deeper prefix after its catch-all is reported: {problems:?}"
    );
    let fine = format!(
        "routes:\n  - {{ name: later, match: {{ path_prefix: /a, header: {{ name: x-r, value: b }} }}, pool: p }}\n  - {{ name: deeper, match: {{ path_prefix: /a/v1 }}, pool: p }}\n  - {{ name: all, match: {{ path_prefix: /a }}, pool: p }}\n{pools}"
    );
    assert!(load_config(&fine).is_ok(), "header and deeper routes first: fine");
}

#[test]
fn fallback_pools_must_exist_and_speak_the_same_api() {
    let key = secret_file("checks-fallback.key", "k");
    let yaml = format!("routes: [{{name: r, pool: a}}]\npools:\n  a:\n    provider: anthropic\n    fallback: [b, nope, a]\n    accounts: [{{name: x, base_url: 'https://x', key_file: \"{key}\"}}]\n  b:\n    provider: openai\n    accounts: [{{name: x, base_url: 'https://x', key_file: \"{key}\"}}]\n");
    let problems = config_problems(&yaml);
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("pools.a.fallback[0]: \"b\" speaks the openai API")),
        "a fallback of another API is refused: {problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("pools.a.fallback[1]: no pool named \"nope\"")),
        "an unknown fallback is refused: {problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("pools.a.fallback[2]: a pool cannot fall back to itself")),
        "falling back to itself is refused: {problems:#?}"
    );
}

#[test]
fn a_non_loopback_admin_listener_needs_a_token() {
    let base = format!(
        "routes: [{{name: r, pool: p}}]\npools:\n  p:\n    provider: openai\n    accounts: [{{name: a, base_url: 'https://x', key_file: \"{}\"}}]\n",
        secret_file("checks-admin.key", "k")
    );
    let open = format!("admin: {{ listen: \"0.0.0.0:9901\" }}\n{base}");
    let problems = config_problems(&open);
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("admin.listen: 0.0.0.0:9901 is not a loopback address")),
        "an open admin listener without a token is refused: {problems:?}"
    );
    // LLMS_OPS_ADMIN is set once by the harness (the admin token has no `token_file`).
    let guarded = format!("admin: {{ listen: \"0.0.0.0:9901\", token_env: LLMS_OPS_ADMIN }}\n{base}");
    assert!(
        load_config(&guarded).is_ok(),
        "with a token the open admin listener is fine: {:?}",
        config_problems(&guarded)
    );
}
