//! claude-cli pools: the fake `claude` run per request (argv, a clean environment, stdin), its
//! stream-json translated to Anthropic JSON and SSE and, through the OpenAI door, to chat
//! completions; sessions that resume on the account holding them; processes in the admin API and
//! the metrics.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::cli::{ask, CliRig};
use crate::harness::{admin_pools, client, metric, read_clean, Proxy};

fn session_of(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("x-session-id")
        .and_then(|v| v.to_str().ok())
        .expect("the answer carries x-session-id")
        .to_string()
}

#[tokio::test]
async fn a_cli_pool_answers_json_from_a_child_with_a_clean_environment() {
    let rig = CliRig::new();
    let proxy = Proxy::start(&rig.yaml("", &rig.api_key("api-1", "")));
    let resp = client()
        .post(proxy.url("/code/v1/messages"))
        .header("x-api-key", "client-placeholder-key")
        .header("authorization", "Bearer client-token-123")
        .json(&ask("say hi [[reply:hi there]]", false))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200, "the CLI's answer is a success");
    let session = session_of(&resp);
    let body: Value = resp.json().await.expect("JSON body");
    assert_eq!(body["type"], "message", "an Anthropic message: {body}");
    assert_eq!(body["content"][0]["text"], "hi there", "the CLI's text: {body}");
    assert_eq!(body["usage"]["input_tokens"], 11, "usage from the result event: {body}");
    assert_eq!(body["usage"]["output_tokens"], 5, "usage from the result event: {body}");

    let runs = rig.wait_runs(1).await;
    assert_eq!(runs.len(), 1, "one process per request");
    let run = &runs[0];
    assert_eq!(
        run.argv.first().map(String::as_str),
        Some("-p"),
        "argv starts with -p (no shell): {:?}",
        run.argv
    );
    assert_eq!(
        run.flag("--output-format"),
        Some("stream-json"),
        "stream-json output: {:?}",
        run.argv
    );
    assert!(
        run.has("--verbose"),
        "--verbose, which stream-json requires: {:?}",
        run.argv
    );
    assert_eq!(
        run.flag("--model"),
        Some("sonnet"),
        "the request's model: {:?}",
        run.argv
    );
    assert!(run.stdin.contains("say hi"), "the prompt goes on stdin: {}", run.stdin);
    assert_eq!(
        run.cwd,
        rig.work.display().to_string(),
        "cli.cwd is the working directory"
    );
    let names: BTreeSet<&str> = run.env.keys().map(String::as_str).collect();
    let allowed: BTreeSet<&str> = [
        "PATH",
        "HOME",
        "ANTHROPIC_API_KEY",
        "FAKE_CLAUDE_RECORD",
        "DISABLE_TELEMETRY",
    ]
    .into();
    assert!(
        names.is_subset(&allowed),
        "only the allowed variables reach the child: {names:?}"
    );
    assert_eq!(
        run.var("ANTHROPIC_API_KEY"),
        Some("REAL-CLI-KEY-api-1"),
        "the account's key"
    );
    assert_eq!(run.var("DISABLE_TELEMETRY"), Some("1"), "cli.env reaches the child");
    for v in run.env.values().filter_map(Value::as_str) {
        assert!(
            !v.contains("client-placeholder") && !v.contains("client-token"),
            "no client credential reaches the child: {v}"
        );
    }
    assert!(
        !run.stdin.contains(&session),
        "the session key is not part of the prompt"
    );
}

#[tokio::test]
async fn a_streamed_answer_is_anthropic_sse_as_the_cli_writes_it() {
    let rig = CliRig::new();
    let proxy = Proxy::start(&rig.yaml("", &rig.api_key("api-1", "")));
    let resp = client()
        .post(proxy.url("/code/v1/messages"))
        .json(&ask("[[mode:tool]] run the tool", true))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200, "streamed success");
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(ctype.starts_with("text/event-stream"), "an event stream: {ctype}");
    let text = read_clean(resp).await;
    let events: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(
        kinds.first(),
        Some(&"message_start"),
        "starts with message_start: {kinds:?}"
    );
    assert_eq!(kinds.last(), Some(&"message_stop"), "ends with message_stop: {kinds:?}");
    assert!(
        text.contains("sidecar-tool-ok"),
        "the answer after the tool ran: {text}"
    );
    let delta = events
        .iter()
        .rfind(|e| e["type"] == "message_delta")
        .expect("a message_delta");
    assert_eq!(
        delta["usage"]["output_tokens"], 10,
        "final usage from the result event: {delta}"
    );
    let runs = rig.wait_runs(1).await;
    assert_eq!(runs.len(), 1, "one process for a two-turn tool run");
}

#[tokio::test]
async fn a_session_resumes_on_the_account_whose_config_dir_holds_it() {
    let rig = CliRig::new();
    let accounts = format!("{}{}", rig.subscription("max-1", ""), rig.subscription("max-2", ""));
    let proxy = Proxy::start(&rig.yaml("", &accounts));
    let first = json!({
        "model": "sonnet", "max_tokens": 50,
        "system": "You are terse.",
        "messages": [
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": "second question"},
        ],
    });
    let resp = client()
        .post(proxy.url("/code/v1/messages"))
        .json(&first)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200, "first turn served");
    let session = session_of(&resp);
    let runs = rig.wait_runs(1).await;
    let started = &runs[0];
    let cli_id = started
        .flag("--session-id")
        .expect("a new session gets --session-id")
        .to_string();
    assert!(
        started.stdin.contains("User: first question")
            && started.stdin.contains("Assistant: first answer")
            && started.stdin.contains("Current query: second question"),
        "the history folded into one prompt: {}",
        started.stdin
    );
    assert!(
        !started.stdin.contains("You are terse"),
        "system text is not folded in: {}",
        started.stdin
    );
    assert_eq!(
        started.flag("--system-prompt"),
        Some("You are terse."),
        "system goes to --system-prompt"
    );

    // The client sends the whole conversation (it extends what the session holds by one answer
    // and one question), or only its latest turn.
    let mut history = first["messages"].as_array().cloned().unwrap_or_default();
    for (i, how) in ["header", "body"].iter().enumerate() {
        history.push(json!({"role": "assistant", "content": format!("answer {i}")}));
        history.push(json!({"role": "user", "content": format!("turn {i}")}));
        let messages = if *how == "header" {
            history.clone()
        } else {
            vec![history[history.len() - 1].clone()]
        };
        let mut next = json!({"model": "sonnet", "max_tokens": 50, "messages": messages});
        let mut req = client().post(proxy.url("/code/v1/messages"));
        if *how == "header" {
            req = req.header("x-session-id", &session);
        } else {
            next["session_id"] = json!(session);
        }
        let resp = req.json(&next).send().await.expect("send");
        assert_eq!(resp.status(), 200, "turn by {how} served");
        assert_eq!(session_of(&resp), session, "the same session key comes back ({how})");
        let runs = rig.wait_runs(2 + i).await;
        let resumed = &runs[1 + i];
        assert_eq!(
            resumed.flag("--resume"),
            Some(cli_id.as_str()),
            "the CLI session resumes ({how}): {:?}",
            resumed.argv
        );
        assert!(
            resumed.stdin.contains(&format!("turn {i}")) && !resumed.stdin.contains("second question"),
            "only the latest user turn is sent ({how}): {}",
            resumed.stdin
        );
        assert_eq!(
            resumed.var("CLAUDE_CONFIG_DIR"),
            started.var("CLAUDE_CONFIG_DIR"),
            "the account holding the session serves it ({how})"
        );
        assert_eq!(
            resumed.var("ANTHROPIC_API_KEY"),
            None,
            "a subscription account has no key in its env"
        );
    }

    let resp = client()
        .post(proxy.url("/code/v1/messages"))
        .header("x-session-id", &session)
        .json(&json!({"model": "sonnet", "max_tokens": 5, "messages": [{"role": "assistant", "content": "x"}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400, "resuming without a user turn is refused");
    let body: Value = resp.json().await.expect("JSON error");
    assert_eq!(
        body["error"]["message"], "Cannot resume session: no user messages found in conversation",
        "the original gateway's message: {body}"
    );
}

#[tokio::test]
async fn the_openai_door_serves_a_cli_model_with_its_session() {
    let rig = CliRig::new();
    let proxy = Proxy::start(&rig.yaml("", &rig.api_key("api-1", "")));
    let ask_chat = |stream: bool| {
        json!({
            "model": "claude-code",
            "stream": stream,
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello [[reply:bonjour]]"}],
        })
    };
    let resp = client()
        .post(proxy.url("/v1/chat/completions"))
        .json(&ask_chat(false))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200, "the door serves the CLI model");
    let session = session_of(&resp);
    let body: Value = resp.json().await.expect("JSON");
    assert_eq!(body["object"], "chat.completion", "an OpenAI chat completion: {body}");
    assert_eq!(
        body["choices"][0]["message"]["content"], "bonjour",
        "the CLI's text: {body}"
    );
    assert_eq!(body["model"], "claude-code", "the client's model name: {body}");
    assert_eq!(
        body["session_id"],
        session.as_str(),
        "session_id in the body matches x-session-id: {body}"
    );
    assert_eq!(body["usage"]["prompt_tokens"], 14, "input plus cache read: {body}");
    let run = &rig.wait_runs(1).await[0];
    assert_eq!(
        run.flag("--model"),
        Some("sonnet"),
        "the target's model: {:?}",
        run.argv
    );
    assert_eq!(
        run.flag("--system-prompt"),
        Some("Be brief."),
        "the system message: {:?}",
        run.argv
    );

    let resp = client()
        .post(proxy.url("/v1/chat/completions"))
        .json(&ask_chat(true))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200, "streamed through the door");
    let text = read_clean(resp).await;
    assert!(text.contains("\"chat.completion.chunk\""), "OpenAI chunks: {text}");
    assert!(text.contains("bonjour"), "the text arrives in chunks: {text}");
    assert!(text.trim_end().ends_with("data: [DONE]"), "ends with [DONE]: {text}");
}

#[tokio::test]
async fn running_processes_show_in_the_admin_api_and_the_metrics() {
    let rig = CliRig::new();
    let proxy = Proxy::start(&rig.yaml("", &rig.api_key("api-1", "")));
    let url = proxy.url("/code/v1/messages");
    let slow = tokio::spawn(async move {
        client()
            .post(url)
            .json(&ask("[[hold]] wait", false))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    rig.wait_runs(1).await;
    let pools = admin_pools(&proxy).await;
    let account = &pools["pools"][0]["accounts"][0];
    assert_eq!(account["processes"]["running"], 1, "one CLI process running: {account}");
    assert_eq!(account["processes"]["queued"], 0, "none queued: {account}");
    let running = metric(
        &proxy,
        "llm_sidecar_cli_processes{account=\"api-1\",pool=\"code\",state=\"running\"}",
    )
    .await;
    assert_eq!(running, 1.0, "the gauge counts the running process");
    rig.release();
    assert_eq!(
        slow.await.expect("join").expect("answer"),
        200,
        "the slow request is served"
    );
    let ok = metric(&proxy, "llm_sidecar_cli_exits_total{pool=\"code\",reason=\"ok\"}").await;
    assert_eq!(ok, 1.0, "the exit is counted by reason");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let running = metric(
        &proxy,
        "llm_sidecar_cli_processes{account=\"api-1\",pool=\"code\",state=\"running\"}",
    )
    .await;
    assert_eq!(running, 0.0, "none running after the answer");
}
