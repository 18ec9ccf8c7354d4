//! Google Gemini API: `x-goog-api-key`, `{"error":{"code":..,"status":..}}` errors.

use super::{AuthStyle, Dialect, Provider, ProviderKind};

pub struct Gemini;

impl Provider for Gemini {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Gemini
    }

    fn dialect(&self) -> Dialect {
        Dialect::Gemini
    }

    fn default_auth(&self) -> AuthStyle {
        AuthStyle::XGoogApiKey
    }

    fn error_body(&self, status: u16, message: &str) -> Vec<u8> {
        let grpc = match status {
            401 => "UNAUTHENTICATED",
            403 => "PERMISSION_DENIED",
            404 => "NOT_FOUND",
            429 => "RESOURCE_EXHAUSTED",
            400..=499 => "INVALID_ARGUMENT",
            501 => "UNIMPLEMENTED",
            503 | 502 => "UNAVAILABLE",
            504 => "DEADLINE_EXCEEDED",
            _ => "INTERNAL",
        };
        let body = serde_json::json!({
            "error": { "code": status, "message": message, "status": grpc },
        });
        body.to_string().into_bytes()
    }
}
