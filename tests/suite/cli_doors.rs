//! Routing by need through the OpenAI door: requests with CLI-only fields go to claude-cli targets;
//! when those are full, an API target serves them without the fields only where the model allows
//! degrading, and the answer and the log row say so.

use serde_json::{json, Value};

use crate::harness::cli::{ask, CliRig};
use crate::harness::{anthropic_reply, client, pool_yaml, Fake, Logged, Reply};

fn yaml(rig: &CliRig, api: &str) -> String {
    let target = "{ pool: code, model: sonnet }";
    let api_target = "{ pool: api, model: claude-sonnet-5 }";
    format!(
        "routes:\n  - {{ name: code, match: {{ path_prefix: /code }}, strip_prefix: true, pool: code }}\n  \
         - {{ name: unified, match: {{ path_prefix: /v1 }}, api: openai }}\n\
         models:\n  - {{ name: mixed, degrade: true, targets: [ {target}, {api_target} ] }}\n  \
         - {{ name: strict, targets: [ {target}, {api_target} ] }}\n  \
         - {{ name: api-only, targets: [ {api_target} ] }}\n\
         pools:\n{}{}",
        rig.pool("", &rig.api_key("api-1", ", max_concurrent: 1, max_queue: 0")),
        pool_yaml("api", "anthropic", &[api.to_string()], "")
    )
}

fn chat(model: &str, tools: bool) -> Value {
    let mut body = json!({"model": model, "messages": [{"role": "user", "content": "list the files"}]});
    if tools {
        body["allowed_tools"] = json!(["Bash", "Read"]);
    }
    body
}

async fn door(logged: &Logged, body: &Value) -> (u16, Option<String>, Value) {
    let resp = client()
        .post(logged.proxy.url("/v1/chat/completions"))
        .json(body)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    let degraded = resp
        .headers()
        .get("x-llm-sidecar-degraded")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    (status, degraded, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn cli_fields_go_to_cli_targets_and_degrade_only_where_allowed() {
    let rig = CliRig::new();
    let api = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let logged = Logged::start(&yaml(&rig, &api.url()), "");

    let (status, _, body) = door(&logged, &chat("api-only", true)).await;
    assert_eq!(status, 400, "no claude-cli target for CLI fields: {body}");
    let text = body["error"]["message"].as_str().unwrap_or_default();
    assert!(text.contains("allowed_tools"), "the message names the fields: {text}");
    assert_eq!(api.count(), 0, "the API target never saw it");

    let (status, degraded, body) = door(&logged, &chat("mixed", true)).await;
    assert_eq!(status, 200, "a free CLI account serves CLI fields: {body}");
    assert_eq!(degraded, None, "nothing dropped");
    let runs = rig.wait_runs(1).await;
    assert_eq!(
        runs[0].flag("--allowedTools"),
        Some("Bash,Read"),
        "the tools reach the CLI: {:?}",
        runs[0].argv
    );
    assert_eq!(api.count(), 0, "the API target was not needed");

    // The CLI account's one slot is taken and it queues nothing.
    let url = logged.proxy.url("/code/v1/messages");
    let holder = tokio::spawn(async move { client().post(url).json(&ask("[[hold]] hold", false)).send().await });
    rig.wait_runs(2).await;

    let (status, _, body) = door(&logged, &chat("strict", true)).await;
    assert!(
        status >= 500,
        "without degrade the full CLI pool is the answer ({status}): {body}"
    );
    assert_eq!(api.count(), 0, "strict: the API target never gets CLI fields");

    let (status, degraded, body) = door(&logged, &chat("mixed", true)).await;
    assert_eq!(status, 200, "degrade: the API target serves: {body}");
    assert_eq!(degraded.as_deref(), Some("cli-fields-dropped"), "the answer says so");
    assert_eq!(
        body["choices"][0]["message"]["content"], "Hello!",
        "the API target's answer: {body}"
    );
    let seen = api.seen();
    assert_eq!(seen.len(), 1, "one request upstream");
    let sent = seen[0].json();
    assert!(sent.get("allowed_tools").is_none(), "the fields were dropped: {sent}");

    let (status, degraded, _) = door(&logged, &chat("mixed", false)).await;
    assert_eq!(
        (status, degraded),
        (200, None),
        "without CLI fields nothing is degraded"
    );

    rig.release();
    let held = holder.await.expect("join").expect("held request");
    assert_eq!(held.status(), 200, "the holding request finished");
    let rows = logged.wait_rows(6).await;
    let notes: Vec<&Value> = rows.iter().map(|r| &r["note"]).collect();
    assert_eq!(
        notes
            .iter()
            .filter(|n| n.as_str() == Some("cli-fields-dropped"))
            .count(),
        1,
        "exactly the degraded request's row says so: {notes:?}"
    );
}
