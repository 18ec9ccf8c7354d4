//! Recognising a subscription usage limit or rate limit in what the CLI says, and the reset time
//! it states. Formats seen from Claude Code (its messages carry a time in the CLI's own zone):
//! - `You've hit your session limit · resets 10:30pm (Europe/Berlin)` (2.1.x; also `your limit`,
//!   `your weekly limit`, `your Opus limit`; more than a day ahead: `resets Apr 23 at 4pm (UTC)`
//!   or, with older ICU, `resets Sep 27, 3am (UTC)`; another year: `resets Jan 2, 2027, 3am`)
//! - `Claude usage limit reached. Your limit will reset at 9am (America/Chicago).`
//! - `5-hour limit reached ∙ resets 3pm`
//! - `Claude AI usage limit reached|1762952400` (Unix seconds after the bar; 1.0.x)
//!
//! A stated clock time converts only when its zone is UTC (or GMT): this crate carries no time
//! zone database, and the CLI names its zone by IANA id. In stream-json mode the CLI also emits a
//! `rate_limit_event` whose `resetsAt` is Unix seconds; that one is exact and preferred.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Whether `text` (a result, an error message, stderr) reports a usage limit or a rate limit.
pub fn is_limit_text(text: &str) -> bool {
    let t = normalize(text);
    (t.contains("you've hit your") && t.contains("limit"))
        || (t.contains("you've reached your") && t.contains("limit"))
        || t.contains("usage limit reached")
        || t.contains("out of extra usage")
        || (t.contains("limit reached") && t.contains("resets"))
        || t.contains("rate_limit_error")
}

/// Whether a whole short reply is nothing but a limit notice (some versions end such a run with
/// a successful result whose text is the notice).
pub fn is_limit_notice(text: &str) -> bool {
    let t = normalize(text.trim());
    t.len() <= 300
        && (t.starts_with("you've hit your")
            || t.starts_with("claude ai usage limit reached")
            || t.starts_with("claude usage limit reached")
            || (t.contains("limit reached") && t.contains("resets") && !t.contains('\n')))
}

/// The reset time a limit message states, if it can be placed in time (see the module notes).
pub fn reset_from_text(text: &str, now: SystemTime) -> Option<SystemTime> {
    let t = normalize(text);
    if let Some(at) = epoch_after_bar(&t) {
        return Some(at);
    }
    let rest = ["resets at ", "reset at ", "resets "]
        .iter()
        .find_map(|k| t.find(k).and_then(|i| t.get(i + k.len()..)))?;
    let when = parse_when(rest)?;
    when.resolve(now)
}

fn normalize(text: &str) -> String {
    text.replace(['\u{2019}', '\u{2018}'], "'").to_ascii_lowercase()
}

/// `...limit reached|1762952400`: Unix seconds (or milliseconds) after a bar.
fn epoch_after_bar(t: &str) -> Option<SystemTime> {
    let i = t.find("limit reached|")?;
    let after = t.get(i + "limit reached|".len()..)?;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    let n: u64 = digits.parse().ok()?;
    let secs = if n > 100_000_000_000 { n / 1000 } else { n };
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// A stated reset: an optional date, a clock time, a zone offset when known.
#[derive(Debug, PartialEq)]
struct When {
    date: Option<(Option<i64>, u32, u32)>,
    minutes: u32,
    offset_minutes: Option<i64>,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

fn parse_when(s: &str) -> Option<When> {
    let mut p = Cursor(s.trim_start());
    p.eat("at ");
    let date = parse_date(&mut p);
    if date.is_some() {
        let _ = p.eat(",") || p.eat(" at");
        p.skip_spaces();
    }
    let minutes = parse_clock(&mut p)?;
    p.skip_spaces();
    let offset_minutes = if p.eat("(") {
        let zone: String = p.0.chars().take_while(|c| *c != ')').collect();
        utc_zone(zone.trim())
    } else {
        None
    };
    Some(When {
        date,
        minutes,
        offset_minutes,
    })
}

fn parse_date(p: &mut Cursor) -> Option<(Option<i64>, u32, u32)> {
    let month = MONTHS.iter().position(|m| p.0.starts_with(m))?;
    let save = p.0;
    p.0 =
        p.0.trim_start_matches(|c: char| c.is_ascii_alphabetic())
            .trim_start_matches('.');
    p.skip_spaces();
    let Some(day) = p.number().filter(|d| (1..=31).contains(d)) else {
        p.0 = save;
        return None;
    };
    let mut year = None;
    let before_year = p.0;
    if p.eat(",") {
        p.skip_spaces();
        match p.number() {
            Some(y) if y >= 1970 => year = Some(i64::from(y)),
            _ => p.0 = before_year,
        }
    }
    Some((year, u32::try_from(month).ok()? + 1, day))
}

/// `3pm`, `3:30pm`, `3 pm`, `15:00`: minutes after midnight.
fn parse_clock(p: &mut Cursor) -> Option<u32> {
    let hour = p.number()?;
    let minute = if p.eat(":") { p.number().filter(|m| *m < 60)? } else { 0 };
    p.skip_spaces();
    let hour = if p.eat("am") || p.eat("a.m.") {
        (1..=12).contains(&hour).then_some(hour % 12)?
    } else if p.eat("pm") || p.eat("p.m.") {
        (1..=12).contains(&hour).then_some(hour % 12 + 12)?
    } else if minute > 0 || p.0.is_empty() || p.0.starts_with('(') {
        (hour < 24).then_some(hour)?
    } else {
        return None;
    };
    Some(hour * 60 + minute)
}

fn utc_zone(zone: &str) -> Option<i64> {
    matches!(
        zone,
        "utc" | "gmt" | "z" | "zulu" | "universal" | "etc/utc" | "etc/gmt" | "etc/universal" | "etc/zulu"
    )
    .then_some(0)
}

impl When {
    fn resolve(&self, now: SystemTime) -> Option<SystemTime> {
        let offset = self.offset_minutes? * 60;
        let now_s = i64::try_from(now.duration_since(UNIX_EPOCH).ok()?.as_secs()).ok()?;
        let local_now = now_s + offset;
        let (year_now, month_now, day_now) = civil_from_days(local_now.div_euclid(86_400));
        let clock = i64::from(self.minutes) * 60;
        let at = match self.date {
            Some((year, month, day)) => {
                let at = |y: i64| days_from_civil(y, month, day) * 86_400 + clock - offset;
                match year {
                    Some(y) => at(y),
                    // No year: this year's date, or next year's once this year's is well past.
                    None if at(year_now) < now_s - 86_400 => at(year_now + 1),
                    None => at(year_now),
                }
            }
            None => {
                let today = days_from_civil(year_now, month_now, day_now) * 86_400 + clock - offset;
                if today <= now_s {
                    today + 86_400
                } else {
                    today
                }
            }
        };
        UNIX_EPOCH.checked_add(Duration::from_secs(u64::try_from(at).ok()?))
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, u32::try_from(m).unwrap_or(1), u32::try_from(d).unwrap_or(1))
}

struct Cursor<'a>(&'a str);

impl Cursor<'_> {
    fn eat(&mut self, s: &str) -> bool {
        match self.0.strip_prefix(s) {
            Some(rest) => {
                self.0 = rest;
                true
            }
            None => false,
        }
    }

    fn skip_spaces(&mut self) {
        self.0 = self.0.trim_start_matches([' ', '\u{a0}', '\u{202f}']);
    }

    fn number(&mut self) -> Option<u32> {
        let end = self.0.find(|c: char| !c.is_ascii_digit()).unwrap_or(self.0.len());
        let n = self
            .0
            .get(..end)
            .filter(|d| !d.is_empty() && d.len() <= 4)?
            .parse()
            .ok()?;
        self.0 = self.0.get(end..)?;
        Some(n)
    }
}

#[cfg(test)]
#[path = "limit_tests.rs"]
mod tests;
