//! `llm-sidecar chat` through the real sidecar: a streaming REPL that keeps the conversation, shows
//! the raw JSON, reports stream errors, and cancels a reply on Ctrl-C without leaving.

use std::time::Duration;

use crate::harness::*;

fn chat_sse(words: &[&str]) -> Vec<(Duration, String)> {
    let mut ev = vec![(
        Duration::ZERO,
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3}}}\n\n"
            .to_string(),
    )];
    for w in words {
        ev.push((Duration::from_millis(30), format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{w}\"}}}}\n\n")));
    }
    ev.push((
        Duration::ZERO,
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".into(),
    ));
    ev
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_repl_streams_keeps_the_conversation_and_shows_the_raw_json() {
    let up = Fake::start(|seen, n| {
        if n == 2 {
            return Reply::Sse(vec![(Duration::ZERO, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n".into())]);
        }
        let turns = seen.json()["messages"].as_array().map_or(0, Vec::len);
        Reply::Sse(chat_sse(&["Hello", " there", &format!(" ({turns} turns)")]))
    })
    .await;
    let proxy = Proxy::start(
        &claude_pools(&[("anthropic", vec![up.url()])]).replace("retry: { backoff: 1ms }", "retry: { attempts: 1 }"),
    );
    let base = proxy.url("/anthropic");
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = std::process::Command::new(BIN)
            .args([
                "chat",
                "--provider",
                "anthropic",
                "--base",
                &base,
                "--model",
                "claude-test",
            ])
            .env("HOME", std::env::temp_dir())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("chat");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(b"hi\nand again\n/see-json\nthis one fails\n/session\n/model other-model\n/new\n/bogus\n/quit\n")
            .expect("write");
        drop(stdin);
        child.wait_with_output().expect("output")
    })
    .await
    .expect("join");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the REPL ends with /quit, exit 0: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("assistant> Hello there (1 turns)"),
        "streamed reply: {text}"
    );
    assert!(
        text.contains("assistant> Hello there (3 turns)"),
        "the conversation is kept: {text}"
    );
    assert!(
        text.contains("event: content_block_delta") && text.contains("\"text\":\" there\""),
        "/see-json shows the raw response: {text}"
    );
    assert!(
        text.contains("error: the stream reported an error: Overloaded"),
        "stream errors are shown: {text}"
    );
    assert!(text.contains("session chat-"), "/session: {text}");
    assert!(
        text.contains("model other-model") && text.contains("new conversation, session chat-"),
        "/model and /new are confirmed: {text}"
    );
    assert!(
        text.contains("unknown command /bogus"),
        "an unknown command is named: {text}"
    );
    let seen = up.seen();
    let sessions: std::collections::HashSet<&str> = seen.iter().filter_map(|s| s.header("x-session-id")).collect();
    assert_eq!(sessions.len(), 1, "one session id for the conversation");
    assert_eq!(seen[0].json()["model"], "claude-test", "the --model given is sent");
    assert_eq!(
        seen[0].header("x-api-key"),
        Some("REAL-KEY-anthropic-0"),
        "through the sidecar, which injected the key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_cancels_a_reply_not_the_repl() {
    let up = Fake::always(Reply::Delay(
        Duration::from_secs(10),
        Box::new(Reply::Sse(chat_sse(&["late"]))),
    ))
    .await;
    let proxy = Proxy::start(&claude_pools(&[("anthropic", vec![up.url()])]));
    let base = proxy.url("/anthropic");
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = std::process::Command::new(BIN)
            .args(["chat", "--base", &base])
            .env("HOME", std::env::temp_dir())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("chat");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"a slow question\n/session\n/quit\n").expect("write");
        drop(stdin);
        std::thread::sleep(Duration::from_millis(700));
        let _ = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        child.wait_with_output().expect("output")
    })
    .await
    .expect("join");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the REPL went on and ended with /quit: {text}");
    assert!(
        text.contains("(cancelled)") && text.contains("session chat-"),
        "the reply is cancelled and the next command still runs: {text}"
    );
}
