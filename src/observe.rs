//! Observability: the tracing subscriber (Pingora's `log` output included), the one access-log
//! line per request, and sanitising upstream text before it is logged.

use pingora::proxy::Session;

use crate::proxy::Ctx;

/// Install the global subscriber: `LOG_FORMAT=json` for JSON lines, `RUST_LOG` to filter
/// (default `info`). Pingora logs through the `log` crate; it is bridged here, and held at `info`
/// unless `RUST_LOG` names a pingora crate: its debug output prints request and body bytes.
pub fn init() {
    use tracing_subscriber::{fmt, EnvFilter};
    let spec = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let mut filter = EnvFilter::try_new(&spec).unwrap_or_else(|_| EnvFilter::new("info"));
    if !spec.contains("pingora") {
        for cap in ["pingora_core=info", "pingora_proxy=info", "pingora=info"] {
            if let Ok(d) = cap.parse() {
                filter = filter.add_directive(d);
            }
        }
    }
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let result = if json {
        fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(false)
            .try_init()
    } else {
        fmt().with_env_filter(filter).try_init()
    };
    // `try_init` also installs the `log` bridge for Pingora's records.
    if let Err(e) = result {
        eprintln!("logging already initialised: {e}");
    }
}

/// At most this many bytes of upstream-provided text reach a log line.
const MAX_LOGGED: usize = 500;

/// Upstream text made safe to log: control characters removed, cut to 500 bytes.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_LOGGED));
    for c in text.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > MAX_LOGGED {
            break;
        }
        out.push(c);
    }
    out
}

/// The status the client saw: what was written, or 499 when the client left before any answer.
pub fn status(session: &Session, ctx: &Ctx) -> u16 {
    match session.response_written() {
        Some(r) => r.status.as_u16(),
        None => ctx.error.map_or(499, |k| k.status()),
    }
}

/// One structured line per request, with fixed fields. Never a key, token or body.
pub fn access(session: &Session, ctx: &Ctx) {
    let req = session.req_header();
    let snap = ctx.snap.as_deref();
    let route = snap.zip(ctx.route).map_or("-", |(s, i)| &*s.routes[i].name);
    let pool = ctx.pool().map_or("-", |p| &*p.name);
    let account = ctx.account().map_or("-", |a| &*a.name);
    tracing::info!(
        target: "llm_sidecar::access",
        request_id = ctx.request_id.to_str().unwrap_or("-"),
        route,
        pool,
        account,
        client = ctx.client.as_deref().unwrap_or("-"),
        method = req.method.as_str(),
        path = req.uri.path(),
        status = status(session, ctx),
        duration_ms = ctx.start.elapsed().as_secs_f64() * 1000.0,
        ttfb_ms = ctx.ttfb.map(|d| d.as_secs_f64() * 1000.0),
        attempts = ctx.attempts,
        error_kind = ctx.error.map(|k| k.as_str()),
        "request"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_strips_controls_and_truncates_on_char_boundaries() {
        assert_eq!(
            sanitize("a\r\nb\u{1b}[31mc\0"),
            "ab[31mc",
            "control characters removed"
        );
        let long = "é".repeat(400); // 800 bytes
        let out = sanitize(&long);
        assert!(
            out.len() <= 500 && out.len() >= 498,
            "cut near 500 bytes: {}",
            out.len()
        );
        assert!(out.chars().all(|c| c == 'é'), "no broken characters");
    }
}
