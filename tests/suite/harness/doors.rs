//! Front-door set-ups: the two doors beside pools, and upstream answers of each dialect.

use serde_json::{json, Value};

use super::pool_yaml;

/// Doors at `/v1` (OpenAI) and `/any` (Anthropic) and the pools `(name, provider, upstream)`;
/// `models` is the `models:` list (YAML lines).
pub fn doors(pools: &[(&str, &str, String)], models: &str) -> String {
    let mut out = String::from(
        "routes:\n  - { name: unified, match: { path_prefix: /v1 }, api: openai }\n  \
         - { name: any, match: { path_prefix: /any }, api: anthropic }\n",
    );
    out.push_str(models);
    out.push_str("pools:\n");
    for (name, provider, url) in pools {
        out.push_str(&pool_yaml(
            name,
            provider,
            std::slice::from_ref(url),
            "    retry: { backoff: 1ms }\n",
        ));
    }
    out
}

pub fn gemini_reply() -> Value {
    json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Bonjour"}]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 3, "totalTokenCount": 12},
        "modelVersion": "gemini-2.5-pro"
    })
}

pub fn openai_reply() -> Value {
    json!({
        "id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": "gpt-4.1",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hallo"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 4, "total_tokens": 24, "prompt_tokens_details": {"cached_tokens": 8}}
    })
}
