//! Tests of limit-message recognition and reset-time parsing, on the formats Claude Code prints.

use super::*;

/// 2026-11-29T10:39:00Z
const NOW: u64 = 1_795_948_740;

fn at(secs: u64) -> Option<SystemTime> {
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

fn reset(text: &str) -> Option<SystemTime> {
    reset_from_text(text, at(NOW).unwrap_or(UNIX_EPOCH))
}

#[test]
fn limit_messages_of_every_known_version_are_recognised() {
    for text in [
        "You've hit your session limit · resets 10:30pm (Europe/Berlin)",
        "You\u{2019}ve hit your weekly limit · resets Oct 12, 4am",
        "You've hit your limit · resets Apr 23 at 4pm (America/Recife)",
        "Claude usage limit reached. Your limit will reset at 9am (America/Chicago).",
        "Claude AI usage limit reached|1762952400",
        "5-hour limit reached ∙ resets 3pm",
        "API Error: 429 {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow down\"}}",
    ] {
        assert!(is_limit_text(text), "recognised: {text}");
    }
    for text in [
        "Hello from the fake provider.",
        "API Error: 529 overloaded",
        "the limit of a function",
    ] {
        assert!(!is_limit_text(text), "not a limit: {text}");
    }
}

#[test]
fn a_notice_must_be_the_whole_short_reply() {
    assert!(is_limit_notice("You've hit your limit · resets 11pm"), "bare notice");
    assert!(
        is_limit_notice("  Claude AI usage limit reached|1762952400\n"),
        "legacy notice"
    );
    let prose = format!(
        "The log said: You've hit your session limit. {}",
        "More text. ".repeat(40)
    );
    assert!(!is_limit_notice(&prose), "prose that quotes a notice is a reply");
    assert!(
        !is_limit_notice("Sure: the usage limit reached its peak."),
        "ordinary reply"
    );
}

#[test]
fn epoch_seconds_after_the_bar() {
    assert_eq!(
        reset("Claude AI usage limit reached|1766502000"),
        at(1_766_502_000),
        "seconds"
    );
    assert_eq!(
        reset("Claude AI usage limit reached|1766502000000"),
        at(1_766_502_000),
        "milliseconds"
    );
}

#[test]
fn a_clock_time_in_utc_is_the_next_such_time() {
    assert_eq!(
        reset("You've hit your session limit · resets 2pm (UTC)"),
        at(1_795_960_800),
        "later today"
    );
    assert_eq!(
        reset("You've hit your limit · resets 12:50am (UTC)"),
        at(1_795_999_800),
        "past midnight: tomorrow"
    );
    assert_eq!(
        reset("You've hit your limit · resets 10:30pm (Etc/UTC)"),
        at(1_795_991_400),
        "Etc/UTC"
    );
    assert_eq!(
        reset("You've hit your limit · resets 10:30\u{202f}PM (GMT)"),
        at(1_795_991_400),
        "ICU narrow space"
    );
    assert_eq!(
        reset("Your limit will reset at 10:30pm (UTC)."),
        at(1_795_991_400),
        "1.0.x wording"
    );
    assert_eq!(
        reset("resets 10:39am (UTC)"),
        at(NOW + 86_400),
        "a time equal to now means tomorrow"
    );
}

#[test]
fn a_date_and_time_in_utc() {
    assert_eq!(
        reset("You've hit your limit · resets Dec 3, 5:30pm (UTC)"),
        at(1_796_319_000),
        "older ICU comma"
    );
    assert_eq!(
        reset("You've hit your weekly limit · resets Dec 3 at 5:30pm (UTC)"),
        at(1_796_319_000),
        "ICU 72 'at'"
    );
    assert_eq!(
        reset("resets Apr 23 at 4pm (UTC)"),
        at(1_808_496_000),
        "a month already past is next year"
    );
    assert_eq!(
        reset("resets Jan 2, 2027, 3am (UTC)"),
        at(1_798_858_800),
        "explicit year"
    );
    assert_eq!(
        reset("resets Jan 2, 2027 at 3am (UTC)"),
        at(1_798_858_800),
        "explicit year with 'at'"
    );
}

#[test]
fn other_zones_and_odd_text_give_no_time() {
    assert_eq!(
        reset("You've hit your session limit · resets 10:30pm (Europe/Berlin)"),
        None,
        "no tz database"
    );
    assert_eq!(reset("5-hour limit reached ∙ resets 3pm"), None, "no zone stated");
    assert_eq!(reset("You've hit your limit"), None, "no time stated");
    assert_eq!(reset("resets 13pm (UTC)"), None, "no such hour");
    assert_eq!(reset("resets soon (UTC)"), None, "no clock");
}

#[test]
fn civil_conversions_round_trip() {
    for days in [-1_000_000_i64, -1, 0, 59, 10_956, 20_786, 2_000_000] {
        let (y, m, d) = civil_from_days(days);
        assert_eq!(days_from_civil(y, m, d), days, "day {days} -> {y}-{m}-{d}");
    }
    assert_eq!(days_from_civil(2026, 11, 29), 20_786, "2026-11-29");
}
