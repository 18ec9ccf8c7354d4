//! Pass-through and key injection for each provider, as the upstream and the client see it.

use crate::harness::*;
use serde_json::json;

fn routes(name: &str, prefix: &str, pool: &str) -> String {
    format!("  - {{ name: {name}, match: {{ path_prefix: {prefix} }}, pool: {pool} }}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_json_reaches_upstream_with_the_real_key_only() {
    let up = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let yaml = format!(
        "routes:\n{}pools:\n{}",
        routes("anthropic", "/anthropic", "claude"),
        pool_yaml("claude", "anthropic", &[up.url()], "")
    );
    let proxy = Proxy::start(&yaml);
    let body = json!({"model": "claude-sonnet-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    let resp = client()
        .post(proxy.url("/anthropic/v1/messages?beta=true"))
        .header("x-api-key", "placeholder-from-sdk")
        .header("authorization", "Bearer also-placeholder")
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "prompt-caching-2024-07-31")
        .header("x-session-id", "s-1")
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200, "client gets the upstream's status");
    let rid = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let got: serde_json::Value = resp.json().await.expect("json body");
    assert_eq!(got, anthropic_reply(), "client gets the upstream body unchanged");

    let seen = up.seen();
    assert_eq!(seen.len(), 1, "exactly one upstream request");
    let s = &seen[0];
    assert_eq!(s.path, "/v1/messages?beta=true", "prefix stripped, query kept");
    assert_eq!(s.header("x-api-key"), Some("REAL-KEY-claude-0"), "real key injected");
    assert_eq!(s.header("authorization"), None, "client bearer removed");
    assert_eq!(s.header("anthropic-version"), Some("2023-06-01"), "version passes");
    assert_eq!(
        s.header("anthropic-beta"),
        Some("prompt-caching-2024-07-31"),
        "beta passes"
    );
    assert_eq!(
        s.header("host"),
        Some(up.addr.to_string().as_str()),
        "host rewritten to upstream"
    );
    assert_eq!(s.json(), body, "body arrives intact");
    assert_eq!(
        s.header("x-request-id"),
        rid.as_deref(),
        "same request id upstream and back"
    );
    let rid = rid.expect("request id returned");
    assert!(
        rid.len() == 32 && rid.bytes().all(|b| b.is_ascii_hexdigit()),
        "generated id: {rid}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_openrouter_and_gemini_get_their_own_credentials() {
    let openai = Fake::always(Reply::Json(200, json!({"id": "chatcmpl-1", "choices": []}))).await;
    let router = Fake::always(Reply::Json(200, json!({"id": "gen-1", "choices": []}))).await;
    let gemini = Fake::always(Reply::Json(200, json!({"candidates": []}))).await;
    let yaml = format!(
        "routes:\n{}{}{}pools:\n{}{}{}",
        routes("openai", "/openai", "gpt"),
        routes("openrouter", "/openrouter", "router"),
        routes("gemini", "/gemini", "gem"),
        pool_yaml("gpt", "openai", &[openai.url()], ""),
        pool_yaml("router", "openrouter", &[format!("{}/api", router.url())], ""),
        pool_yaml("gem", "gemini", &[gemini.url()], ""),
    );
    let proxy = Proxy::start(&yaml);
    let c = client();
    let body = json!({"model": "gpt-4.1", "messages": []});
    for (path, key_header) in [
        ("/openai/v1/chat/completions", "authorization"),
        ("/openrouter/v1/chat/completions", "authorization"),
        (
            "/gemini/v1beta/models/gemini-2.5-flash:generateContent?key=client-key&alt=json",
            "x-goog-api-key",
        ),
    ] {
        let resp = c
            .post(proxy.url(path))
            .header(key_header, "placeholder")
            .header("openai-organization", "org-9")
            .json(&body)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 200, "{path}: served");
    }
    let o = &openai.seen()[0];
    assert_eq!(
        o.header("authorization"),
        Some("Bearer REAL-KEY-gpt-0"),
        "openai bearer"
    );
    assert_eq!(
        o.header("openai-organization"),
        Some("org-9"),
        "openai-organization passes"
    );
    assert_eq!(o.path, "/v1/chat/completions", "openai: prefix stripped");
    let r = &router.seen()[0];
    assert_eq!(r.path, "/api/v1/chat/completions", "base_url path prefixed");
    assert_eq!(
        r.header("authorization"),
        Some("Bearer REAL-KEY-router-0"),
        "openrouter bearer"
    );
    let g = &gemini.seen()[0];
    assert_eq!(
        g.header("x-goog-api-key"),
        Some("REAL-KEY-gem-0"),
        "gemini key as header"
    );
    assert_eq!(
        g.path, "/v1beta/models/gemini-2.5-flash:generateContent?alt=json",
        "?key= removed"
    );
    assert_eq!(g.header("authorization"), None, "no stray bearer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_requests_and_any_path_under_a_route_pass() {
    let up = Fake::always(Reply::Json(200, json!({"data": [{"id": "claude-x"}]}))).await;
    let yaml = format!(
        "routes:\n{}pools:\n{}",
        routes("a", "/anthropic", "c"),
        pool_yaml("c", "anthropic", &[up.url()], "")
    );
    let proxy = Proxy::start(&yaml);
    let c = client();
    for path in ["/v1/models", "/v1/messages/count_tokens", "/v1/messages/batches/abc"] {
        let resp = c
            .get(proxy.url(&format!("/anthropic{path}")))
            .send()
            .await
            .expect("get");
        assert_eq!(resp.status(), 200, "GET {path}: served");
    }
    let paths: Vec<String> = up.seen().iter().map(|s| s.path.clone()).collect();
    assert_eq!(
        paths,
        ["/v1/models", "/v1/messages/count_tokens", "/v1/messages/batches/abc"],
        "every path under the route reached the upstream, prefix stripped"
    );
    assert!(
        up.seen().iter().all(|s| s.body.is_empty() && s.method == "GET"),
        "GETs stay bodiless"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unrouted_paths_get_a_json_404_with_a_request_id() {
    let up = Fake::always(Reply::Json(200, json!({}))).await;
    let yaml = format!(
        "routes:\n{}pools:\n{}",
        routes("a", "/anthropic", "c"),
        pool_yaml("c", "anthropic", &[up.url()], "")
    );
    let proxy = Proxy::start(&yaml);
    let resp = client()
        .post(proxy.url("/nowhere/v1/messages"))
        .header("x-request-id", "my-id-1")
        .body("{}")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 404, "no route: not found");
    assert_eq!(resp.headers()["x-llm-sidecar-error"], "no_route", "error kind no_route");
    assert_eq!(
        resp.headers()["x-request-id"],
        "my-id-1",
        "well-formed id honoured on our errors"
    );
    let v: serde_json::Value = resp.json().await.expect("json");
    assert!(
        v["error"]["message"].as_str().is_some_and(|m| m.contains("/nowhere")),
        "the JSON error names the path: {v}"
    );
    assert_eq!(up.count(), 0, "nothing reached an upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tokens_are_required_and_replaced() {
    let up = Fake::always(Reply::Json(200, json!({"candidates": []}))).await;
    let yaml = format!(
        "clients:\n  tokens:\n    - {{ name: checkout-svc, token_file: \"{}\" }}\nroutes:\n{}pools:\n{}",
        secret_file("passthrough-checkout.token", "tok-checkout"),
        routes("g", "/gemini", "gem"),
        pool_yaml("gem", "gemini", &[up.url()], "")
    );
    let proxy = Proxy::start(&yaml);
    let c = client();
    let url = proxy.url("/gemini/v1beta/models/m:generateContent");
    let missing = c.post(&url).body("{}").send().await.expect("request");
    assert_eq!(missing.status(), 401, "no token");
    assert_eq!(
        missing.headers()["x-llm-sidecar-error"],
        "unauthorized",
        "error kind unauthorized"
    );
    let v: serde_json::Value = missing.json().await.expect("json");
    assert_eq!(v["error"]["status"], "UNAUTHENTICATED", "gemini error shape: {v}");
    let wrong = c
        .post(&url)
        .header("x-goog-api-key", "tok-checkouT")
        .body("{}")
        .send()
        .await
        .expect("request");
    assert_eq!(wrong.status(), 401, "wrong token");
    for (h, v) in [
        ("x-goog-api-key", "tok-checkout"),
        ("authorization", "Bearer tok-checkout"),
        ("x-api-key", "tok-checkout"),
    ] {
        let ok = c.post(&url).header(h, v).body("{}").send().await.expect("request");
        assert_eq!(ok.status(), 200, "token in {h}");
    }
    let ok = c
        .post(format!("{url}?key=tok-checkout"))
        .body("{}")
        .send()
        .await
        .expect("request");
    assert_eq!(ok.status(), 200, "token in ?key=");
    assert_eq!(up.count(), 4, "only authorised requests reached the upstream");
    for s in up.seen() {
        assert_eq!(
            s.header("x-goog-api-key"),
            Some("REAL-KEY-gem-0"),
            "token replaced by the real key"
        );
        assert!(
            !s.path.contains("tok-checkout") && s.header("authorization").is_none(),
            "token never forwarded"
        );
    }
    assert!(logs().contains("checkout-svc"), "the client is named in the access log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_honoured_when_well_formed_and_replaced_otherwise() {
    let up = Fake::always(Reply::Json(200, json!({}))).await;
    let yaml = format!(
        "routes:\n{}pools:\n{}",
        routes("a", "/a", "c"),
        pool_yaml("c", "openai", &[up.url()], "")
    );
    let proxy = Proxy::start(&yaml);
    let c = client();
    let kept = c
        .post(proxy.url("/a/v1/x"))
        .header("x-request-id", "trace:abc-1.2_3")
        .body("{}")
        .send()
        .await
        .expect("req");
    assert_eq!(kept.headers()["x-request-id"], "trace:abc-1.2_3", "well-formed id kept");
    let replaced = c
        .post(proxy.url("/a/v1/x"))
        .header("x-request-id", "bad id with spaces")
        .body("{}")
        .send()
        .await
        .expect("req");
    let new_id = replaced.headers()["x-request-id"].to_str().expect("ascii").to_string();
    assert_ne!(new_id, "bad id with spaces", "malformed id replaced");
    assert_eq!(new_id.len(), 32, "generated id");
    let seen = up.seen();
    assert_eq!(seen[0].header("x-request-id"), Some("trace:abc-1.2_3"), "sent upstream");
    assert_eq!(
        seen[1].header("x-request-id"),
        Some(new_id.as_str()),
        "the replacement is sent upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_answers_healthz_and_readyz() {
    let up = Fake::always(Reply::Json(200, json!({}))).await;
    let yaml = format!(
        "routes:\n{}pools:\n{}",
        routes("a", "/a", "c"),
        pool_yaml("c", "openai", &[up.url()], "")
    );
    let proxy = Proxy::start(&yaml);
    let c = client();
    let health = c
        .get(format!("http://{}/healthz", proxy.admin))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200, "healthz: alive");
    let ready = c
        .get(format!("http://{}/readyz", proxy.admin))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200, "readyz: ready");
    let v: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(v["status"], "ready", "readyz says ready: {v}");
    let missing = c.get(format!("http://{}/nope", proxy.admin)).send().await.expect("404");
    assert_eq!(missing.status(), 404, "an unknown admin path: not found");
    let proxied = c
        .get(proxy.url("/healthz"))
        .send()
        .await
        .expect("healthz on the proxy port");
    assert_eq!(
        proxied.status(),
        404,
        "admin endpoints are not served to apps on the proxy port"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_or_token_appears_in_any_log_line() {
    let up = Fake::always(Reply::Json(500, json!({"error": {"message": "boom\r\n\u{1b}[31m"}}))).await;
    let yaml = format!(
        "routes:\n{}pools:\n{}",
        routes("a", "/a", "c"),
        pool_yaml("c", "anthropic", &[up.url()], "")
    );
    let proxy = Proxy::start(&yaml);
    let c = client();
    for _ in 0..3 {
        let _ = c
            .post(proxy.url("/a/v1/messages"))
            .header("x-api-key", "client-placeholder-key")
            .body("{}")
            .send()
            .await;
    }
    let _ = c.post(proxy.url("/a/v1/messages")).body("{bad").send().await;
    let logs = logs();
    assert!(logs.contains("llm_sidecar::access"), "access lines were captured");
    assert!(!logs.contains("REAL-KEY-"), "no account key in logs");
    assert!(!logs.contains("client-placeholder-key"), "no client credential in logs");
}
