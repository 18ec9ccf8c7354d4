//! Resilience: what an upstream outcome means for the account and the request, account health
//! ([`health`]), the retry budget ([`budget`]), limits ([`limits`]) and active checks ([`check`]).

pub mod budget;
pub mod check;
pub mod health;
pub mod limits;

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use rand::Rng;

/// What a response status says about the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The account answered properly (2xx, or a 4xx that is the request's own fault).
    Fine,
    /// 500, 502, 503, 504: count a failure, retry elsewhere.
    Failure,
    /// 429, 529: cool down, retry elsewhere.
    RateLimited,
    /// 401, 403: the key does not work; out of rotation, retry elsewhere.
    KeyBroken,
}

/// What `status` from an upstream says about the account that answered it.
pub fn verdict(status: u16) -> Verdict {
    match status {
        401 | 403 => Verdict::KeyBroken,
        429 | 529 => Verdict::RateLimited,
        500 | 502 | 503 | 504 => Verdict::Failure,
        _ => Verdict::Fine,
    }
}

/// Cooldown when a rate-limited answer says nothing about when to come back.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(5);

/// `retry-after`: delay-seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let v = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    httpdate::parse_http_date(v).ok()?.duration_since(now).ok()
}

/// When the exhausted limit resets. `limits` pairs each limit's `remaining` header with its
/// `reset` header; a reset is an RFC 3339 time (Anthropic) or a Go-style duration such as
/// `6m0s`, `1.5s`, `20ms` (OpenAI). The limits at 0 decide (the latest of them); when none says
/// 0, the soonest reset.
pub fn reset_headers(headers: &HeaderMap, limits: &[(&str, &str)], now: SystemTime) -> Option<Duration> {
    let reset = |name: &str| {
        let v = headers.get(name)?.to_str().ok()?.trim();
        match humantime::parse_rfc3339_weak(v) {
            Ok(at) => Some(at.duration_since(now).unwrap_or(Duration::ZERO)),
            Err(_) => go_duration(v),
        }
    };
    let exhausted = |remaining: &str| {
        headers
            .get(remaining)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() == "0")
    };
    let at_zero = limits
        .iter()
        .filter(|(rem, _)| exhausted(rem))
        .filter_map(|(_, r)| reset(r))
        .max();
    at_zero.or_else(|| limits.iter().filter_map(|(_, r)| reset(r)).min())
}

/// `1h2m3.5s`, `20ms`, `6m0s`.
fn go_duration(text: &str) -> Option<Duration> {
    let mut total = 0.0f64;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let value: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(total).ok()
}

/// Exponential backoff with jitter before retry number `retry` (1 for the first retry).
pub fn backoff(base: Duration, max: Duration, retry: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << retry.saturating_sub(1).min(20)).min(max);
    exp.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.insert(*n, HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    #[test]
    fn statuses() {
        assert_eq!(verdict(200), Verdict::Fine);
        for s in [400, 404, 413, 422] {
            assert_eq!(verdict(s), Verdict::Fine, "{s} is the request's fault");
        }
        assert_eq!((verdict(401), verdict(403)), (Verdict::KeyBroken, Verdict::KeyBroken));
        assert_eq!(
            (verdict(429), verdict(529)),
            (Verdict::RateLimited, Verdict::RateLimited)
        );
        for s in [500, 502, 503, 504] {
            assert_eq!(verdict(s), Verdict::Failure, "{s}");
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_564_800);
        assert_eq!(
            retry_after(&headers(&[("retry-after", "2")]), now),
            Some(Duration::from_secs(2))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            retry_after(&headers(&[("retry-after", &date)]), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn provider_reset_headers() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_564_800);
        let a = [
            (
                "anthropic-ratelimit-requests-remaining",
                "anthropic-ratelimit-requests-reset",
            ),
            (
                "anthropic-ratelimit-tokens-remaining",
                "anthropic-ratelimit-tokens-reset",
            ),
        ];
        let mut h = headers(&[
            ("anthropic-ratelimit-requests-reset", "2026-11-25T00:00:07Z"),
            ("anthropic-ratelimit-tokens-reset", "2026-11-25T00:00:03Z"),
            ("anthropic-ratelimit-requests-remaining", "0"),
            ("anthropic-ratelimit-tokens-remaining", "500"),
        ]);
        assert_eq!(
            reset_headers(&h, &a, now),
            Some(Duration::from_secs(7)),
            "the exhausted limit decides"
        );
        h.remove("anthropic-ratelimit-requests-remaining");
        assert_eq!(
            reset_headers(&h, &a, now),
            Some(Duration::from_secs(3)),
            "none at 0: the soonest"
        );
        let o = [
            ("x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"),
            ("x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"),
        ];
        let h = headers(&[
            ("x-ratelimit-reset-requests", "1m30.5s"),
            ("x-ratelimit-reset-tokens", "20ms"),
            ("x-ratelimit-remaining-requests", "0"),
        ]);
        assert_eq!(
            reset_headers(&h, &o, now),
            Some(Duration::from_secs_f64(90.5)),
            "requests exhausted"
        );
        assert_eq!(go_duration("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(go_duration("abc"), None);
        assert_eq!(
            go_duration("9999999999999999999999h"),
            None,
            "absurd values do not panic"
        );
        let huge = headers(&[("retry-after", "1e300")]);
        assert_eq!(retry_after(&huge, now), None, "absurd values do not panic");
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let (base, max) = (Duration::from_millis(50), Duration::from_secs(2));
        for retry in 1..10 {
            let exp = (base * (1 << (retry - 1))).min(max);
            let d = backoff(base, max, retry);
            assert!(
                d >= exp / 2 && d <= exp,
                "retry {retry}: {d:?} within [{:?}, {exp:?}]",
                exp / 2
            );
        }
    }
}
