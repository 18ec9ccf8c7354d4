//! One pool `p` of Anthropic accounts behind the route `/a`, priced, for the allocation and
//! notification tests, and the account that served a request.

use serde_json::json;

use super::{secret_file, Fake, Reply};

/// `n` equal accounts answering with `input_tokens` of usage (worth $3 per million).
pub async fn accounts(n: usize, input_tokens: u64) -> Vec<Fake> {
    let mut out = Vec::new();
    for _ in 0..n {
        let reply = json!({"model": "claude-sonnet-5", "content": [], "usage": {"input_tokens": input_tokens, "output_tokens": 0}});
        out.push(Fake::always(Reply::Json(200, reply)).await);
    }
    out
}

/// `top` (e.g. `notifications:`), Claude prices, and pool `p` (`pool_extra` in its mapping) with
/// one account `acct-i` per URL (`account_extra` inside each account's mapping).
pub fn config(urls: &[String], pool_extra: &str, account_extra: &str, top: &str) -> String {
    let mut accounts = String::new();
    for (i, u) in urls.iter().enumerate() {
        let key = secret_file(&format!("alloc-{i}.key"), &format!("KEY-{i}"));
        accounts.push_str(&format!(
            "      - {{ name: acct-{i}, base_url: \"{u}\", key_file: \"{key}\"{account_extra} }}\n"
        ));
    }
    format!(
        "{top}prices:\n  - {{ model: \"claude-*\", input: 3.0, output: 15.0 }}\nroutes:\n  - {{ name: r, match: {{ path_prefix: /a }}, pool: p }}\npools:\n  p:\n    provider: anthropic\n    retry: {{ backoff: 1ms }}\n{pool_extra}    accounts:\n{accounts}"
    )
}

/// The account that served `resp` (the sidecar's `x-llm-sidecar-account` header).
pub fn account_of(resp: &reqwest::Response) -> String {
    resp.headers()["x-llm-sidecar-account"]
        .to_str()
        .expect("ascii")
        .to_string()
}
