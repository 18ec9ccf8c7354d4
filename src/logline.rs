//! The access line, one per request: a typed record written straight into the log buffer in
//! exactly the text or JSON form `tracing-subscriber` would give it, without the per-field
//! dispatch, `Debug` and styling machinery (a tenth of the instructions). Where that writer is
//! not installed (colours at a terminal, or an embedding program's own subscriber) the same
//! record goes out as a `tracing` event.

use std::cell::RefCell;
use std::fmt::{self, Write};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::linebuf::LineBuffer;

/// The target of the one line written per request.
pub const ACCESS: &str = "llm_sidecar::access";

/// What the access line says about one request.
pub struct Access<'a> {
    /// `x-request-id`, the client's or generated.
    pub request_id: &'a str,
    /// The route's name (`-`: no route matched).
    pub route: &'a str,
    /// The pool that served, or would have (`-`: none).
    pub pool: &'a str,
    /// The account of the last attempt (`-`: none was picked).
    pub account: &'a str,
    /// The client token's name (`-`: no tokens configured).
    pub client: &'a str,
    /// The HTTP method.
    pub method: &'a str,
    /// The path as the client sent it, without the query.
    pub path: &'a str,
    /// The status of the response sent; when none was, the failure's status, else 499.
    pub status: u16,
    /// From the request's arrival to the end of its answer, in milliseconds.
    pub duration_ms: f64,
    /// From the request's arrival to the upstream's response head, in milliseconds (`None`: no head
    /// came).
    pub ttfb_ms: Option<f64>,
    /// Upstream attempts made.
    pub attempts: u32,
    /// The model the response names, else the request body's (`None`: neither said).
    pub model: Option<&'a str>,
    /// Input tokens as the provider reported them (`None`: not reported).
    pub input_tokens: Option<u64>,
    /// Output tokens as reported (`None`: not reported).
    pub output_tokens: Option<u64>,
    /// Input tokens read from a prompt cache (`None`: not reported).
    pub cache_read_tokens: Option<u64>,
    /// Input tokens written to a prompt cache (`None`: not reported).
    pub cache_write_tokens: Option<u64>,
    /// The request's cost in USD (`None`: no price matched, or nothing reported).
    pub cost_usd: Option<f64>,
    /// How the usage is known: `reported`, `partial` or `none`.
    pub usage_source: &'a str,
    /// What the request failed with (`None`: it did not), as
    /// [`crate::proxy::respond::ErrorKind::as_str`] names it.
    pub error_kind: Option<&'a str>,
}

/// The log buffer access lines go straight into, and their form.
struct Direct {
    out: LineBuffer,
    json: bool,
}

static DIRECT: OnceLock<Direct> = OnceLock::new();

/// Write access lines straight into `out` from now on (`json` as the subscriber writes).
/// Only for a subscriber without colours that writes into that same buffer.
pub fn install(out: LineBuffer, json: bool) {
    let _ = DIRECT.set(Direct { out, json });
}

/// Log one request's access line, if `RUST_LOG` lets `llm_sidecar::access` through.
pub fn log(a: &Access<'_>) {
    if !tracing::enabled!(target: ACCESS, tracing::Level::INFO) {
        return;
    }
    let Some(direct) = DIRECT.get() else {
        return event(a);
    };
    thread_local! {
        static LINE: RefCell<String> = RefCell::new(String::with_capacity(512));
    }
    LINE.with(|line| {
        let Ok(mut line) = line.try_borrow_mut() else { return };
        line.clear();
        if format(&mut *line, a, SystemTime::now(), direct.json).is_ok() {
            direct.out.push(line.as_bytes());
        }
    });
}

/// The same record as a `tracing` event, for subscribers of other people's making.
fn event(a: &Access<'_>) {
    tracing::info!(
        target: ACCESS,
        request_id = a.request_id,
        route = a.route,
        pool = a.pool,
        account = a.account,
        client = a.client,
        method = a.method,
        path = a.path,
        status = a.status,
        duration_ms = a.duration_ms,
        ttfb_ms = a.ttfb_ms,
        attempts = a.attempts,
        model = a.model,
        input_tokens = a.input_tokens,
        output_tokens = a.output_tokens,
        cache_read_tokens = a.cache_read_tokens,
        cache_write_tokens = a.cache_write_tokens,
        cost_usd = a.cost_usd,
        usage_source = a.usage_source,
        error_kind = a.error_kind,
        "request"
    );
}

/// The line `tracing-subscriber`'s default (text) or JSON formatter writes for [`event`], with
/// `now` as its timestamp; absent values are left out, as `tracing` leaves out `None`.
fn format(w: &mut impl Write, a: &Access<'_>, now: SystemTime, json: bool) -> fmt::Result {
    if json {
        w.write_str("{\"timestamp\":\"")?;
        timestamp(w, now)?;
        w.write_str("\",\"level\":\"INFO\",\"fields\":{\"message\":\"request\"")?;
    } else {
        timestamp(w, now)?;
        w.write_str("  INFO llm_sidecar::access: request")?;
    }
    let mut f = Fields { w, json };
    f.str("request_id", a.request_id)?;
    f.str("route", a.route)?;
    f.str("pool", a.pool)?;
    f.str("account", a.account)?;
    f.str("client", a.client)?;
    f.str("method", a.method)?;
    f.str("path", a.path)?;
    f.uint("status", u64::from(a.status))?;
    f.float("duration_ms", a.duration_ms)?;
    if let Some(v) = a.ttfb_ms {
        f.float("ttfb_ms", v)?;
    }
    f.uint("attempts", u64::from(a.attempts))?;
    if let Some(v) = a.model {
        f.str("model", v)?;
    }
    for (name, v) in [
        ("input_tokens", a.input_tokens),
        ("output_tokens", a.output_tokens),
        ("cache_read_tokens", a.cache_read_tokens),
        ("cache_write_tokens", a.cache_write_tokens),
    ] {
        if let Some(v) = v {
            f.uint(name, v)?;
        }
    }
    if let Some(v) = a.cost_usd {
        f.float("cost_usd", v)?;
    }
    f.str("usage_source", a.usage_source)?;
    if let Some(v) = a.error_kind {
        f.str("error_kind", v)?;
    }
    if json {
        w.write_str("},\"target\":\"llm_sidecar::access\"}")?;
    }
    w.write_char('\n')
}

/// `2026-11-25T10:00:00.123456Z`, as `tracing-subscriber` writes time (years 0 to 9999).
fn timestamp(w: &mut impl Write, now: SystemTime) -> fmt::Result {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    let mut out = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |at: usize, width: usize, mut n: u64| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, y.clamp(0, 9999) as u64);
    put(5, 2, u64::from(m));
    put(8, 2, u64::from(d));
    put(11, 2, s / 3600);
    put(14, 2, s / 60 % 60);
    put(17, 2, s % 60);
    put(20, 6, u64::from(since.subsec_micros()));
    w.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
}

/// An integer in decimal, without `core::fmt`'s machinery.
fn uint(w: &mut impl Write, mut n: u64) -> fmt::Result {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    w.write_str(std::str::from_utf8(&buf[at..]).map_err(|_| fmt::Error)?)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Fields after the message: text `name="value"` after a space, JSON `,"name":value`.
struct Fields<'w, W> {
    w: &'w mut W,
    json: bool,
}

impl<W: Write> Fields<'_, W> {
    fn name(&mut self, name: &str) -> fmt::Result {
        if self.json {
            self.w.write_str(",\"")?;
            self.w.write_str(name)?;
            self.w.write_str("\":")
        } else {
            self.w.write_char(' ')?;
            self.w.write_str(name)?;
            self.w.write_char('=')
        }
    }

    fn str(&mut self, name: &str, v: &str) -> fmt::Result {
        self.name(name)?;
        if v.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\') {
            // The common case: nothing to escape, in either form.
            self.w.write_char('"')?;
            self.w.write_str(v)?;
            self.w.write_char('"')
        } else if self.json {
            match serde_json::to_string(v) {
                Ok(s) => self.w.write_str(&s),
                Err(_) => Err(fmt::Error),
            }
        } else {
            write!(self.w, "{v:?}")
        }
    }

    fn uint(&mut self, name: &str, v: u64) -> fmt::Result {
        self.name(name)?;
        uint(self.w, v)
    }

    fn float(&mut self, name: &str, v: f64) -> fmt::Result {
        self.name(name)?;
        if self.json && !v.is_finite() {
            self.w.write_str("null")
        } else {
            write!(self.w, "{v:?}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("sink").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn full() -> Access<'static> {
        Access {
            request_id: "req-1",
            route: "anthropic",
            pool: "claude",
            account: "team-a",
            client: "tab\there\u{1b}[31m",
            method: "POST",
            path: "/v1/\"odd\\path\"",
            status: 200,
            duration_ms: 1.25,
            ttfb_ms: Some(3.0),
            attempts: 2,
            model: Some("claude-sonnet-4-5 ünïcode"),
            input_tokens: Some(212),
            output_tokens: Some(48),
            cache_read_tokens: Some(0),
            cache_write_tokens: Some(u64::MAX),
            cost_usd: Some(0.001356),
            usage_source: "response",
            error_kind: Some("idle_timeout"),
        }
    }

    fn sparse() -> Access<'static> {
        Access {
            ttfb_ms: None,
            model: None,
            input_tokens: None,
            output_tokens: None,
            cache_read_tokens: None,
            cache_write_tokens: None,
            cost_usd: None,
            error_kind: None,
            status: 499,
            duration_ms: 1e-7,
            ..full()
        }
    }

    /// The line tracing's own formatter writes for the record, and ours (with its timestamp).
    fn both(a: &Access<'_>, json: bool) -> (String, String) {
        let sink = Sink::default();
        let s = sink.clone();
        if json {
            let sub = tracing_subscriber::fmt().json().with_writer(move || s.clone()).finish();
            tracing::subscriber::with_default(sub, || event(a));
        } else {
            let sub = tracing_subscriber::fmt()
                .with_ansi(false)
                .with_writer(move || s.clone())
                .finish();
            tracing::subscriber::with_default(sub, || event(a));
        }
        let stock = String::from_utf8(sink.0.lock().expect("sink").clone()).expect("utf8");
        let mut ours = String::new();
        format(&mut ours, a, SystemTime::now(), json).expect("format");
        (stock, ours)
    }

    #[test]
    fn the_text_line_is_the_stock_line() {
        for a in [full(), sparse()] {
            let (stock, ours) = both(&a, false);
            // Timestamps differ by the microseconds between the two: compare after them.
            let tail = |s: &str| s.split_once('Z').map(|(_, t)| t.to_string()).unwrap_or_default();
            assert!(
                stock.contains("llm_sidecar::access"),
                "the stock line was written: {stock}"
            );
            assert_eq!(tail(&ours), tail(&stock), "same text line as tracing's own");
            assert_eq!(ours.len(), stock.len(), "same timestamp width: {ours} / {stock}");
        }
        assert!(
            both(&full(), false).1.contains("\\u{1b}"),
            "control characters are escaped"
        );
    }

    #[test]
    fn the_json_line_is_the_stock_line() {
        for a in [full(), sparse()] {
            let (stock, ours) = both(&a, true);
            let strip = |s: &str| {
                s.split_once("\",\"level")
                    .map(|(_, t)| t.to_string())
                    .unwrap_or_default()
            };
            assert!(!strip(&stock).is_empty(), "the stock line was written: {stock}");
            assert_eq!(
                strip(&ours),
                strip(&stock),
                "same keys, order, escapes and number forms"
            );
            let v: serde_json::Value = serde_json::from_str(ours.trim_end()).expect("one JSON line");
            let ts = v["timestamp"].as_str().unwrap_or_default();
            assert_eq!(ts.len(), "2026-11-25T12:30:45.123456Z".len(), "timestamp form: {ts}");
        }
    }

    #[test]
    fn dates_are_right_across_leap_years_and_centuries() {
        for (days, want) in [
            (0, (1970, 1, 1)),
            (11_016, (2000, 2, 29)),
            (11_017, (2000, 3, 1)),
            (20_782, (2026, 11, 25)),
            (2_932_896, (9999, 12, 31)),
            (47_541, (2100, 3, 1)),
            (-1, (1969, 12, 31)),
        ] {
            assert_eq!(civil_from_days(days), want, "day {days}");
        }
        let mut s = String::new();
        timestamp(
            &mut s,
            UNIX_EPOCH + std::time::Duration::from_micros(1_795_609_845_123_456),
        )
        .expect("fmt");
        assert_eq!(s, "2026-11-25T12:30:45.123456Z", "whole timestamp");
        for n in [0, 7, 10, 99, 1234567890, u64::MAX] {
            let mut s = String::new();
            uint(&mut s, n).expect("fmt");
            assert_eq!(s, n.to_string(), "integer {n}");
        }
    }
}
