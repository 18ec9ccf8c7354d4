//! OpenAI-shaped APIs (OpenAI and OpenRouter): bearer keys, `{"error":{...}}` errors.

use super::{AuthStyle, Dialect, Provider, ProviderKind};

pub struct OpenAiCompat {
    kind: ProviderKind,
}

pub static OPENAI: OpenAiCompat = OpenAiCompat {
    kind: ProviderKind::Openai,
};
pub static OPENROUTER: OpenAiCompat = OpenAiCompat {
    kind: ProviderKind::Openrouter,
};

impl Provider for OpenAiCompat {
    fn kind(&self) -> ProviderKind {
        self.kind
    }

    fn dialect(&self) -> Dialect {
        Dialect::OpenAi
    }

    fn default_auth(&self) -> AuthStyle {
        AuthStyle::Bearer
    }

    fn error_body(&self, status: u16, message: &str) -> Vec<u8> {
        let (kind, code) = match status {
            401 => ("invalid_request_error", "invalid_api_key"),
            403 => ("invalid_request_error", "permission_denied"),
            404 => ("invalid_request_error", "not_found"),
            413 => ("invalid_request_error", "request_too_large"),
            429 => ("rate_limit_exceeded", "rate_limit_exceeded"),
            400..=499 => ("invalid_request_error", "invalid_request"),
            504 => ("server_error", "timeout"),
            _ => ("server_error", "upstream_unavailable"),
        };
        let body = serde_json::json!({
            "error": { "message": message, "type": kind, "param": null, "code": code },
        });
        body.to_string().into_bytes()
    }
}
