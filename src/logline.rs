//! The access line's fast formatter: writes the per-request `llm_sidecar::access` event as the
//! exact text or JSON line `tracing-subscriber` would, without its per-field `Debug` and styling
//! machinery (a tenth of the instructions); every other event goes to the stock formatter.

use std::fmt::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The target of the one line written per request.
pub const ACCESS: &str = "llm_sidecar::access";

/// Formats access events itself and hands every other event to `inner`.
pub struct FastAccess<F> {
    inner: F,
    json: bool,
}

impl<F> FastAccess<F> {
    /// `json` must say whether `inner` writes JSON lines, so both kinds of line look alike.
    pub fn new(inner: F, json: bool) -> Self {
        FastAccess { inner, json }
    }
}

impl<S, N, F> FormatEvent<S, N> for FastAccess<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        // Colours (a person at a terminal) and span context are the stock formatter's job.
        if meta.target() != ACCESS || w.has_ansi_escapes() || ctx.event_scope().is_some() {
            return self.inner.format_event(ctx, w, event);
        }
        let level = meta.level().as_str();
        if self.json {
            w.write_str("{\"timestamp\":\"")?;
            timestamp(&mut w, SystemTime::now())?;
            w.write_str("\",\"level\":\"")?;
            w.write_str(level)?;
            w.write_str("\",\"fields\":{")?;
        } else {
            timestamp(&mut w, SystemTime::now())?;
            w.write_str(&"     "[level.len().min(5)..])?;
            w.write_char(' ')?;
            w.write_str(level)?;
            w.write_char(' ')?;
            w.write_str(ACCESS)?;
            w.write_str(": ")?;
        }
        let mut fields = Fields {
            w: &mut w,
            json: self.json,
            first: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        if self.json {
            w.write_str("},\"target\":\"")?;
            w.write_str(ACCESS)?;
            w.write_str("\"}")?;
        }
        w.write_char('\n')
    }
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

/// Writes fields as the stock formatters do: text `name="value"` separated by spaces with the
/// message bare; JSON `"name":value` separated by commas.
struct Fields<'a, 'w> {
    w: &'a mut Writer<'w>,
    json: bool,
    first: bool,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    /// The separator and the field's name; false for the text format's bare message.
    fn name(&mut self, field: &Field) -> Result<bool, fmt::Error> {
        let sep = if self.first {
            ""
        } else if self.json {
            ","
        } else {
            " "
        };
        self.first = false;
        self.w.write_str(sep)?;
        if self.json {
            self.w.write_char('"')?;
            self.w.write_str(field.name())?;
            self.w.write_str("\":")?;
        } else if field.name() != "message" {
            self.w.write_str(field.name())?;
            self.w.write_char('=')?;
        } else {
            return Ok(false);
        }
        Ok(true)
    }

    fn put(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>, bool) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = self.name(field).and_then(|named| value(self.w, named));
        }
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let json = self.json;
        self.put(field, |w, named| {
            if !named {
                w.write_str(value)
            } else if value
                .bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
            {
                // The common case: nothing to escape, in either format.
                w.write_char('"')?;
                w.write_str(value)?;
                w.write_char('"')
            } else if json {
                match serde_json::to_string(value) {
                    Ok(s) => w.write_str(&s),
                    Err(_) => Err(fmt::Error),
                }
            } else {
                write!(w, "{value:?}")
            }
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, |w, _| uint(w, value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, |w, _| {
            if value < 0 {
                w.write_char('-')?;
            }
            uint(w, value.unsigned_abs())
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, |w, _| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        let json = self.json;
        self.put(field, |w, _| {
            if json && !value.is_finite() {
                w.write_str("null")
            } else {
                write!(w, "{value:?}")
            }
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let json = self.json;
        self.put(field, |w, _| {
            if json {
                match serde_json::to_string(&format!("{value:?}")) {
                    Ok(s) => w.write_str(&s),
                    Err(_) => Err(fmt::Error),
                }
            } else {
                write!(w, "{value:?}")
            }
        });
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

    fn emit() {
        let (route, cost, model): (&str, Option<f64>, Option<&str>) = ("anthropic", Some(0.0123), None);
        tracing::info!(
            target: "llm_sidecar::access",
            request_id = "req-1",
            route,
            path = "/v1/\"odd\\path\"",
            client = "tab\there\u{1b}[31m",
            status = 200u16,
            duration_ms = 1.25,
            ttfb_ms = 3.0f64,
            attempts = 1u32,
            model,
            cost_usd = cost,
            stream = false,
            delta = -4i64,
            kind = ?Some("x"),
            "request"
        );
    }

    /// The lines written for one access event by the stock formatter and by ours.
    fn both(json: bool) -> (String, String) {
        let stock = Sink::default();
        let fast = Sink::default();
        let (s, f) = (stock.clone(), fast.clone());
        if json {
            let a = tracing_subscriber::fmt().json().with_writer(move || s.clone()).finish();
            tracing::subscriber::with_default(a, emit);
            let b = tracing_subscriber::fmt()
                .json()
                .event_format(FastAccess::new(tracing_subscriber::fmt::format().json(), true))
                .with_writer(move || f.clone())
                .finish();
            tracing::subscriber::with_default(b, emit);
        } else {
            let a = tracing_subscriber::fmt()
                .with_ansi(false)
                .with_writer(move || s.clone())
                .finish();
            tracing::subscriber::with_default(a, emit);
            let b = tracing_subscriber::fmt()
                .with_ansi(false)
                .event_format(FastAccess::new(tracing_subscriber::fmt::format(), false))
                .with_writer(move || f.clone())
                .finish();
            tracing::subscriber::with_default(b, emit);
        }
        let text = |s: Sink| String::from_utf8(s.0.lock().expect("sink").clone()).expect("utf8");
        (text(stock), text(fast))
    }

    #[test]
    fn the_text_line_is_the_stock_line() {
        let (stock, fast) = both(false);
        // Timestamps differ by the microseconds between the two events: compare after them.
        let tail = |s: &str| s.split_once('Z').map(|(_, t)| t.to_string()).unwrap_or_default();
        assert!(fast.contains("\\u{1b}"), "control characters are escaped: {fast}");
        assert_eq!(tail(&fast), tail(&stock), "same text line as tracing's own");
        assert_eq!(fast.len(), stock.len(), "same timestamp width: {fast} / {stock}");
    }

    #[test]
    fn the_json_line_is_the_stock_line() {
        let (stock, fast) = both(true);
        let parse = |s: &str| {
            let mut v: serde_json::Value = serde_json::from_str(s.trim_end()).expect("one JSON line");
            let ts = v["timestamp"].take();
            (v, ts)
        };
        let ((a, ta), (b, tb)) = (parse(&stock), parse(&fast));
        assert_eq!(b, a, "same JSON object as tracing's own");
        assert_eq!(
            tb.as_str().map(str::len),
            ta.as_str().map(str::len),
            "same timestamp form"
        );
        let strip = |s: &str| {
            s.split_once("\",\"level")
                .map(|(_, t)| t.to_string())
                .unwrap_or_default()
        };
        assert_eq!(strip(&fast), strip(&stock), "same key order and number forms");
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
