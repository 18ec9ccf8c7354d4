//! Anthropic Messages API: `x-api-key`, `{"type":"error","error":{...}}` errors.

use super::{AuthStyle, Dialect, Provider, ProviderKind};

pub struct Anthropic;

impl Provider for Anthropic {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Anthropic
    }

    fn dialect(&self) -> Dialect {
        Dialect::Anthropic
    }

    fn default_auth(&self) -> AuthStyle {
        AuthStyle::XApiKey
    }

    fn error_body(&self, status: u16, message: &str) -> Vec<u8> {
        let kind = match status {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            529 | 503 => "overloaded_error",
            400..=499 => "invalid_request_error",
            _ => "api_error",
        };
        let body = serde_json::json!({
            "type": "error",
            "error": { "type": kind, "message": message },
        });
        body.to_string().into_bytes()
    }
}
