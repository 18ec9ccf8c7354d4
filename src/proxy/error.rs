//! [`ErrorKind`]: the one enum of what a request can fail with, with its name (the
//! `x-llm-sidecar-error` header, the log's `error_kind`, a metric label), the status the sidecar
//! answers with, and the plain words the client is told. Every mapping is exhaustive.

/// Why the sidecar answered or failed a request itself. The string form is the
/// `x-llm-sidecar-error` header value, the log's `error_kind` and a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `no_route` (404): no route matches the path.
    NoRoute,
    /// A front-door request the door cannot accept (with the field's path).
    InvalidRequest,
    /// A front door was asked for a model no models entry, pool or `POOL/MODEL` names.
    ModelNotFound,
    /// A front door answer that could not be translated for the client.
    TranslationFailed,
    /// claude-cli: the CLI cannot be run (binary missing or not executable).
    CliUnavailable,
    /// claude-cli: the CLI did not answer in time.
    CliTimeout,
    /// claude-cli: the CLI failed (a non-zero exit, an error result).
    CliError,
    /// claude-cli: the account hit its subscription's usage limit or a rate limit.
    CliRateLimited,
    /// `method_not_allowed` (405): a method other than GET, POST and DELETE (HEAD and OPTIONS are
    /// answered by the sidecar).
    MethodNotAllowed,
    /// `invalid_path` (400): the normalised path climbs out of its route, or carries an encoded
    /// `/`, `\` or NUL.
    InvalidPath,
    /// `bad_request` (400): a malformed request, such as a broken chunked body.
    BadRequest,
    /// `overloaded` (503): all requests together hold `limits.max_buffered_bytes` of bodies.
    Overloaded,
    /// `first_token_timeout` (504): a stream sent its head but no content within
    /// `timeouts.first_token`.
    FirstTokenTimeout,
    /// `unauthorized` (401): no client token, or an unknown one, when `clients.tokens` is set.
    Unauthorized,
    /// `body_too_large` (413): the body is longer than `limits.max_body_bytes`.
    BodyTooLarge,
    /// `invalid_json` (400): the body does not parse as JSON.
    InvalidJson,
    /// `json_too_deep` (400): the body nests deeper than `limits.max_json_depth`.
    JsonTooDeep,
    /// `invalid_body` (400): the body is not a JSON object, or contains NUL.
    InvalidBody,
    /// `invalid_header` (400): the pool's session header does not match `^[A-Za-z0-9._:-]{1,128}$`.
    InvalidHeader,
    /// `dns_error` (502): the upstream's host name did not resolve.
    DnsError,
    /// `connect_refused` (502): the upstream refused the connection.
    ConnectRefused,
    /// `connect_timeout` (504): connecting to the upstream took longer than `timeouts.connect`.
    ConnectTimeout,
    /// `tls_error` (502): the TLS handshake with the upstream failed.
    TlsError,
    /// `first_byte_timeout` (504): no response head within `timeouts.first_byte`.
    FirstByteTimeout,
    /// `idle_timeout` (504): a stream was silent for longer than `timeouts.idle`.
    IdleTimeout,
    /// `total_timeout` (504): the request took longer than `timeouts.total`.
    TotalTimeout,
    /// `upstream_error` (502): the upstream connection failed some other way.
    UpstreamError,
    /// `no_account` (503): no account of the pool or its fallbacks can serve now.
    NoAccount,
    /// `rate_limited` (429): every account is cooling down for rate limits.
    RateLimited,
    /// `queue_full` (503): every account is at `max_concurrent` with a full queue.
    QueueFull,
    /// `queue_timeout` (503): no slot came free within `queue_timeout`.
    QueueTimeout,
    /// `client_rate_limited` (429): the client is over `clients.limit.rpm`.
    ClientRateLimited,
    /// `retry_budget_exhausted`: a retry was refused because the pool's retry budget is spent; the
    /// upstream's answer went back as is, so this names the cause in the log only.
    RetryBudgetExhausted,
    /// `in_band_error` (503): the upstream's stream reported an error after a 200.
    InBandError,
    /// `client_closed` (499, logged, never sent): the client hung up.
    ClientClosed,
    /// `client_timeout` (408): the request body did not arrive within `server.body_timeout`, or
    /// went quiet for longer than the pool's `timeouts.idle`.
    ClientTimeout,
    /// `internal` (500): a bug in the sidecar.
    Internal,
}

impl ErrorKind {
    /// The name: the `x-llm-sidecar-error` header value, the log's `error_kind` and a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NoRoute => "no_route",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::ModelNotFound => "model_not_found",
            ErrorKind::TranslationFailed => "translation_failed",
            ErrorKind::CliUnavailable => "cli_unavailable",
            ErrorKind::CliTimeout => "cli_timeout",
            ErrorKind::CliError => "cli_error",
            ErrorKind::CliRateLimited => "cli_rate_limited",
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
            ErrorKind::CliUnavailable => "the claude CLI cannot be run",
            ErrorKind::CliTimeout => "the claude CLI did not answer in time",
            ErrorKind::CliError => "the claude CLI failed",
            ErrorKind::CliRateLimited => "every claude-cli account is at its usage limit",
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
            ErrorKind::TranslationFailed | ErrorKind::CliError => 502,
            ErrorKind::CliUnavailable => 503,
            ErrorKind::CliTimeout => 504,
            ErrorKind::CliRateLimited => 429,
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

impl ErrorKind {
    /// The kind named by `name` (as the claude-cli service reports it), if it is one.
    pub fn named(name: &[u8]) -> Option<ErrorKind> {
        match name {
            b"cli_unavailable" => Some(ErrorKind::CliUnavailable),
            b"cli_timeout" => Some(ErrorKind::CliTimeout),
            b"cli_error" => Some(ErrorKind::CliError),
            b"cli_rate_limited" => Some(ErrorKind::CliRateLimited),
            _ => None,
        }
    }
}
