//! The model list a front door answers on `GET /v1/models`, in the client's dialect.

use serde_json::{json, Value};

use crate::provider::Dialect;

/// The models `names`, created at `created` (unix seconds), as `dialect`'s model list:
/// OpenAI `{"object":"list","data":[...]}`, Anthropic `{"data":[...],"has_more":false,...}`,
/// Gemini `{"models":[...]}`.
pub fn model_list(dialect: Dialect, names: &[&str], created: u64) -> Vec<u8> {
    let body = match dialect {
        Dialect::OpenAi => {
            let data: Vec<Value> = names
                .iter()
                .map(|id| json!({"id": id, "object": "model", "created": created, "owned_by": "llm-sidecar"}))
                .collect();
            json!({"object": "list", "data": data})
        }
        Dialect::Anthropic => {
            let at = rfc3339(created);
            let data: Vec<Value> = names
                .iter()
                .map(|id| json!({"type": "model", "id": id, "display_name": id, "created_at": at}))
                .collect();
            json!({"data": data, "has_more": false, "first_id": names.first(), "last_id": names.last()})
        }
        Dialect::Gemini => {
            let models: Vec<Value> = names
                .iter()
                .map(|id| {
                    json!({
                        "name": format!("models/{id}"),
                        "displayName": id,
                        "supportedGenerationMethods": ["generateContent", "streamGenerateContent"],
                    })
                })
                .collect();
            json!({ "models": models })
        }
    };
    body.to_string().into_bytes()
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (the civil-from-days algorithm of H. Hinnant).
fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z", "the epoch");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z", "a leap day");
        assert_eq!(rfc3339(1_739_923_200 + 3_661), "2025-02-19T01:01:01Z", "time of day");
    }

    #[test]
    fn lists() {
        let openai: Value = serde_json::from_slice(&model_list(Dialect::OpenAi, &["a", "b"], 7)).expect("JSON");
        assert_eq!(
            openai,
            json!({"object": "list", "data": [
                {"id": "a", "object": "model", "created": 7, "owned_by": "llm-sidecar"},
                {"id": "b", "object": "model", "created": 7, "owned_by": "llm-sidecar"},
            ]}),
            "OpenAI shape"
        );
        let anthropic: Value = serde_json::from_slice(&model_list(Dialect::Anthropic, &["a", "b"], 0)).expect("JSON");
        assert_eq!(
            anthropic,
            json!({"data": [
                {"type": "model", "id": "a", "display_name": "a", "created_at": "1970-01-01T00:00:00Z"},
                {"type": "model", "id": "b", "display_name": "b", "created_at": "1970-01-01T00:00:00Z"},
            ], "has_more": false, "first_id": "a", "last_id": "b"}),
            "Anthropic shape"
        );
        let gemini: Value = serde_json::from_slice(&model_list(Dialect::Gemini, &["g"], 0)).expect("JSON");
        assert_eq!(gemini["models"][0]["name"], json!("models/g"), "Gemini shape");
        let empty: Value = serde_json::from_slice(&model_list(Dialect::Anthropic, &[], 0)).expect("JSON");
        assert_eq!(empty["first_id"], Value::Null, "no first id in an empty list");
    }
}
