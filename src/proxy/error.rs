//! [`ErrorKind`]: the one enum of what a request can fail with, with its name (the
//! `x-llm-sidecar-error` header, the log's `error_kind`, a metric label), the status the sidecar
//! answers with, and the plain words the client is told. Every mapping is exhaustive.

/// Why the sidecar answered or failed a request itself. The string form is the
/// `x-llm-sidecar-error` header value, the log's `error_kind` and a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NoRoute,
    /// A front-door request the door cannot accept (with the field's path).
    InvalidRequest,
    /// A front door was asked for a model no models entry, pool or `POOL/MODEL` names.
    ModelNotFound,
    /// A front door answer that could not be translated for the client.
    TranslationFailed,
    MethodNotAllowed,
    InvalidPath,
    BadRequest,
    Overloaded,
    FirstTokenTimeout,
    Unauthorized,
    BodyTooLarge,
    InvalidJson,
    JsonTooDeep,
    InvalidBody,
    InvalidHeader,
    DnsError,
    ConnectRefused,
    ConnectTimeout,
    TlsError,
    FirstByteTimeout,
    IdleTimeout,
    TotalTimeout,
    UpstreamError,
    NoAccount,
    RateLimited,
    QueueFull,
    QueueTimeout,
    ClientRateLimited,
    RetryBudgetExhausted,
    InBandError,
    ClientClosed,
    ClientTimeout,
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NoRoute => "no_route",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::ModelNotFound => "model_not_found",
            ErrorKind::TranslationFailed => "translation_failed",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
            ErrorKind::InvalidPath => "invalid_path",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::FirstTokenTimeout => "first_token_timeout",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::BodyTooLarge => "body_too_large",
            ErrorKind::InvalidJson => "invalid_json",
            ErrorKind::JsonTooDeep => "json_too_deep",
            ErrorKind::InvalidBody => "invalid_body",
            ErrorKind::InvalidHeader => "invalid_header",
            ErrorKind::DnsError => "dns_error",
            ErrorKind::ConnectRefused => "connect_refused",
            ErrorKind::ConnectTimeout => "connect_timeout",
            ErrorKind::TlsError => "tls_error",
            ErrorKind::FirstByteTimeout => "first_byte_timeout",
            ErrorKind::IdleTimeout => "idle_timeout",
            ErrorKind::TotalTimeout => "total_timeout",
            ErrorKind::UpstreamError => "upstream_error",
            ErrorKind::NoAccount => "no_account",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::QueueFull => "queue_full",
            ErrorKind::QueueTimeout => "queue_timeout",
            ErrorKind::ClientRateLimited => "client_rate_limited",
            ErrorKind::RetryBudgetExhausted => "retry_budget_exhausted",
            ErrorKind::InBandError => "in_band_error",
            ErrorKind::ClientClosed => "client_closed",
            ErrorKind::ClientTimeout => "client_timeout",
            ErrorKind::Internal => "internal",
        }
    }

    /// What the client is told, in plain words.
    pub fn describe(self) -> &'static str {
        match self {
            ErrorKind::DnsError => "the upstream host name could not be resolved",
            ErrorKind::ConnectRefused => "the upstream refused the connection",
            ErrorKind::ConnectTimeout => "connecting to the upstream timed out",
            ErrorKind::TlsError => "the TLS handshake with the upstream failed",
            ErrorKind::FirstByteTimeout => "the upstream sent no response within the first_byte timeout",
            ErrorKind::FirstTokenTimeout => "the upstream stream sent no content within the first_token timeout",
            ErrorKind::Overloaded => "the sidecar holds too many request bodies in memory; retry shortly",
            ErrorKind::IdleTimeout => "the upstream stream was idle for longer than the idle timeout",
            ErrorKind::TotalTimeout => "the request exceeded the total timeout",
            ErrorKind::UpstreamError => "the upstream connection failed",
            ErrorKind::NoAccount => "no account of this pool (or its fallbacks) can serve the request now",
            ErrorKind::RateLimited => "every account of this pool is rate limited",
            ErrorKind::QueueFull => "every account is at its concurrency limit and its queue is full",
            ErrorKind::QueueTimeout => "no account slot became free within the queue timeout",
            ErrorKind::ClientRateLimited => "this client is over its request rate",
            ErrorKind::InBandError => "the upstream stream reported an error",
            ErrorKind::Internal => "internal error in the sidecar",
            ErrorKind::NoRoute => "no route matches this path",
            ErrorKind::InvalidRequest => "the request is not valid for this API",
            ErrorKind::ModelNotFound => "no such model",
            ErrorKind::TranslationFailed => "the upstream's answer could not be translated",
            ErrorKind::MethodNotAllowed => "this method is not forwarded",
            ErrorKind::InvalidPath => "the path is not allowed",
            ErrorKind::BadRequest => "the request is malformed",
            ErrorKind::Unauthorized => "missing or unknown sidecar token",
            ErrorKind::BodyTooLarge => "the request body is too large",
            ErrorKind::InvalidJson => "the request body is not valid JSON",
            ErrorKind::JsonTooDeep => "the request body nests too deeply",
            ErrorKind::InvalidBody => "the request body is not acceptable",
            ErrorKind::InvalidHeader => "a request header is not acceptable",
            ErrorKind::RetryBudgetExhausted => "the pool's retry budget is spent",
            ErrorKind::ClientClosed => "the client closed the connection",
            ErrorKind::ClientTimeout => "the client was too slow",
        }
    }

    /// The status the sidecar answers with for this kind.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::NoRoute | ErrorKind::ModelNotFound => 404,
            ErrorKind::InvalidRequest => 400,
            ErrorKind::TranslationFailed => 502,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::InvalidPath | ErrorKind::BadRequest => 400,
            ErrorKind::Unauthorized => 401,
            ErrorKind::BodyTooLarge => 413,
            ErrorKind::InvalidJson | ErrorKind::JsonTooDeep | ErrorKind::InvalidBody | ErrorKind::InvalidHeader => 400,
            ErrorKind::DnsError | ErrorKind::ConnectRefused | ErrorKind::TlsError | ErrorKind::UpstreamError => 502,
            ErrorKind::ConnectTimeout
            | ErrorKind::FirstByteTimeout
            | ErrorKind::FirstTokenTimeout
            | ErrorKind::IdleTimeout
            | ErrorKind::TotalTimeout => 504,
            ErrorKind::NoAccount
            | ErrorKind::QueueFull
            | ErrorKind::QueueTimeout
            | ErrorKind::RetryBudgetExhausted
            | ErrorKind::Overloaded
            | ErrorKind::InBandError => 503,
            ErrorKind::RateLimited | ErrorKind::ClientRateLimited => 429,
            ErrorKind::ClientClosed => 499,
            ErrorKind::ClientTimeout => 408,
            ErrorKind::Internal => 500,
        }
    }
}
