//! Tests of the validation rules: each refusal names its field.

use serde_json::{json, Value};

use super::{fields, refusal, run, with};

/// `field` set to `value` on a simple request is refused with a message starting with `want`.
fn check(field: &str, value: Value, want: &str) {
    let got = refusal(&with(field, value));
    assert!(got.starts_with(want), "{field}: want {want:?}, got {got:?}");
}

#[test]
fn path_rules_name_their_field() {
    check(
        "working_directory",
        json!("../etc"),
        "working_directory: path traversal",
    );
    check(
        "working_directory",
        json!("/srv/work/a/../../etc"),
        "working_directory: path traversal",
    );
    check(
        "working_directory",
        json!("/srv/wo\0rk"),
        "working_directory: must not contain NUL",
    );
    check(
        "working_directory",
        json!("/etc"),
        "working_directory: outside the allowed directories",
    );
    check(
        "working_directory",
        json!("/srv/workshop"),
        "working_directory: outside the allowed",
    );
    check(
        "add_dirs",
        json!(["/srv/work/a", "/tmp"]),
        "add_dirs[1]: outside the allowed directories",
    );
    check("add_dirs", json!(["a/../../b"]), "add_dirs[0]: path traversal");
    check("add_dirs", json!(vec!["/srv/work"; 21]), "add_dirs: at most 20 entries");
    check(
        "context_files",
        json!(["/root/.ssh/id_rsa"]),
        "context_files[0]: outside the allowed",
    );
    check(
        "context_files",
        json!(["x\"y"]),
        "context_files[0]: must not contain a double quote",
    );
    check(
        "context_files",
        json!(vec!["/srv/work/f"; 101]),
        "context_files: at most 100 entries",
    );
    assert!(
        run(&with("add_dirs", json!(vec!["/srv/work"; 20]))).is_ok(),
        "20 add_dirs are allowed"
    );
}

#[test]
fn list_and_mode_rules_name_their_field() {
    check(
        "allowed_tools",
        json!(vec!["Read"; 51]),
        "allowed_tools: at most 50 entries",
    );
    check(
        "disallowed_tools",
        json!(vec!["Read"; 51]),
        "disallowed_tools: at most 50 entries",
    );
    check(
        "allowed_tools",
        json!(["--dangerously-skip-permissions"]),
        "allowed_tools[0]: must not start with '-'",
    );
    check(
        "allowed_tools",
        json!(["Re\nad"]),
        "allowed_tools[0]: must not contain NUL or control",
    );
    check(
        "mcp_config",
        json!(vec![json!({}); 21]),
        "mcp_config: at most 20 entries",
    );
    check(
        "mcp_config",
        json!(["/etc/mcp.json"]),
        "mcp_config[0]: must be a JSON object",
    );
    check("betas", json!(vec!["b"; 11]), "betas: at most 10 entries");
    check(
        "permission_mode",
        json!("yolo"),
        "permission_mode: must be one of default, plan, acceptEdits",
    );
    check("max_turns", json!(0), "max_turns: must be a positive integer");
    check(
        "max_budget_usd",
        json!(-1),
        "max_budget_usd: must be a number greater than 0",
    );
    check(
        "fallback_model",
        json!("claude-sonnet-4-6"),
        "fallback_model: must differ from model",
    );
    check("model", json!("-x"), "model: must not start with '-'");
    check("stream", json!("yes"), "stream: must be a boolean");
    check("system", json!([{ "type": "image" }]), "system[0]: only text blocks");
    check(
        "system",
        json!("s".repeat(fields::MAX_ARG + 1)),
        "system: exceeds maximum size",
    );
    check("session_id", json!(""), "session_id: must be 1 to 256 bytes");
    assert!(
        run(&with("permission_mode", json!("dontAsk"))).is_ok(),
        "dontAsk is a mode"
    );
    assert!(
        run(&with("allowed_tools", json!(vec!["Read"; 50]))).is_ok(),
        "50 tools are allowed"
    );
}

#[test]
fn json_rules_name_their_field() {
    check("json_schema", nested(11), "json_schema: exceeds maximum depth of 10");
    check("agents", nested(11), "agents: exceeds maximum depth of 10");
    check(
        "json_schema",
        json!({ "d": "x".repeat(10_240) }),
        "json_schema: exceeds maximum size of 10240",
    );
    check(
        "agents",
        json!({ "a": { "prompt": "bell\u{7}" } }),
        "agents: contains a NUL or control character",
    );
    check(
        "json_schema",
        json!({ "k\u{0}": 1 }),
        "json_schema: contains a NUL or control character",
    );
    check(
        "json_schema",
        json!("not an object"),
        "json_schema: must be a JSON object",
    );
    check(
        "mcp_config",
        json!({ "a": nested(10) }),
        "mcp_config: exceeds maximum depth of 10",
    );
    assert!(run(&with("json_schema", nested(10))).is_ok(), "depth 10 is allowed");
    assert!(
        run(&with("json_schema", json!({ "d": "x".repeat(10_000) }))).is_ok(),
        "10,010 bytes are allowed"
    );
}

fn nested(depth: usize) -> Value {
    (0..depth).fold(json!(1), |inner, _| json!({ "a": inner }))
}
