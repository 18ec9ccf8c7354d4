//! Tests of the CLI session table.

use super::*;

const HOUR: i64 = 3_600_000;

fn key(account: &str) -> SessionKey<'_> {
    SessionKey {
        pool: "cli",
        account,
        client: "conv-1",
    }
}

fn table() -> Arc<CliSessions> {
    CliSessions::new(100, Duration::from_secs(24 * 3600))
}

fn cwd() -> PathBuf {
    PathBuf::from("/srv/work")
}

fn new_id(lease: &Lease) -> String {
    match lease.state() {
        SessionState::New { id } => id.clone(),
        other => panic!("expected a new session, got {other:?}"),
    }
}

#[test]
fn uuids_are_random_version_4() {
    let a = new_uuid();
    let parts: Vec<&str> = a.split('-').collect();
    let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
    assert_eq!(lens, [8, 4, 4, 4, 12], "8-4-4-4-12: {a}");
    assert!(a.chars().all(|c| c == '-' || c.is_ascii_hexdigit()), "hex: {a}");
    assert!(parts[2].starts_with('4'), "version 4: {a}");
    assert!(parts[3].starts_with(['8', '9', 'a', 'b']), "RFC 4122 variant: {a}");
    assert_ne!(a, new_uuid(), "random");
}

#[test]
fn a_conversation_resumes_its_session_on_the_same_account_only() {
    let t = table();
    let first = t.begin(key("a"), &cwd(), 1, 0);
    let id = new_id(&first);
    first.succeeded();
    let second = t.begin(key("a"), &cwd(), 3, HOUR);
    assert_eq!(
        second.state(),
        &SessionState::Resume { id: id.clone() },
        "history + reply + query: resume"
    );
    second.succeeded();
    let other = t.begin(key("b"), &cwd(), 5, HOUR);
    assert!(
        matches!(other.state(), SessionState::New { id: o } if *o != id),
        "another account: a new session"
    );
    let third = t.begin(key("a"), &cwd(), 5, 2 * HOUR);
    assert_eq!(
        third.state(),
        &SessionState::Resume { id: id.clone() },
        "still resumable on account a"
    );
    third.succeeded();
    let only_query = t.begin(key("a"), &cwd(), 1, 3 * HOUR);
    assert_eq!(
        only_query.state(),
        &SessionState::Resume { id },
        "a client sending only the query resumes"
    );
}

#[test]
fn a_different_history_or_cwd_starts_over() {
    let t = table();
    let first = t.begin(key("a"), &cwd(), 3, 0);
    let id = new_id(&first);
    first.succeeded();
    let regenerated = t.begin(key("a"), &cwd(), 3, 1);
    assert!(
        matches!(regenerated.state(), SessionState::New { id: n } if *n != id),
        "same count again: regenerate"
    );
    regenerated.succeeded();
    let moved = t.begin(key("a"), Path::new("/srv/other"), 5, 2);
    assert!(
        matches!(moved.state(), SessionState::New { .. }),
        "another cwd cannot resume"
    );
}

#[test]
fn a_session_in_use_is_not_shared_and_failures_release_it() {
    let t = table();
    let first = t.begin(key("a"), &cwd(), 1, 0);
    let id = new_id(&first);
    let concurrent = t.begin(key("a"), &cwd(), 1, 1);
    assert_eq!(concurrent.state(), &SessionState::None, "busy: run without a session");
    drop(concurrent);
    first.failed(false);
    let retry = t.begin(key("a"), &cwd(), 1, 2);
    assert!(
        matches!(retry.state(), SessionState::New { id: n } if *n != id),
        "a failed new session is not resumed"
    );
    retry.succeeded();
    let resumed = t.begin(key("a"), &cwd(), 3, 3);
    assert!(
        matches!(resumed.state(), SessionState::Resume { .. }),
        "ready after success"
    );
    drop(resumed);
    let again = t.begin(key("a"), &cwd(), 3, 4);
    assert!(
        matches!(again.state(), SessionState::Resume { .. }),
        "a dropped resume keeps the session"
    );
    again.failed(true);
    let after_missing = t.begin(key("a"), &cwd(), 3, 5);
    assert!(
        matches!(after_missing.state(), SessionState::New { .. }),
        "the CLI lost it: start over"
    );
}

#[test]
fn capacity_and_expiry_bound_the_table() {
    let t = CliSessions::new(2, Duration::from_secs(3600));
    for (i, client) in ["c1", "c2", "c3"].iter().enumerate() {
        let k = SessionKey {
            pool: "p",
            account: "a",
            client,
        };
        t.begin(k, &cwd(), 1, i64::try_from(i).unwrap_or(0)).succeeded();
    }
    assert_eq!(t.len(), 2, "least recently used evicted at the cap");
    assert_eq!(
        t.expire(1 + HOUR),
        1,
        "c2 expires; c1 (older still) was already evicted"
    );
    assert_eq!(t.len(), 1, "c3 left");
    let stale = t.begin(
        SessionKey {
            pool: "p",
            account: "a",
            client: "c3",
        },
        &cwd(),
        3,
        2 + HOUR,
    );
    assert!(
        matches!(stale.state(), SessionState::New { .. }),
        "an expired entry does not resume"
    );
    drop(stale);
    assert!(t.is_empty(), "the failed new session left nothing");
}
