//! The request-log schema, created and migrated on start (`PRAGMA user_version`).

use std::path::Path;

use rusqlite::Connection;

/// Each entry takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE requests (
        id INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        request_id TEXT NOT NULL,
        route TEXT,
        pool TEXT,
        account TEXT,
        provider TEXT,
        model TEXT,
        session TEXT,
        client TEXT,
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        status INTEGER NOT NULL,
        stream INTEGER NOT NULL,
        duration_ms REAL NOT NULL,
        ttfb_ms REAL,
        input_tokens INTEGER,
        output_tokens INTEGER,
        cache_read_tokens INTEGER,
        cache_write_tokens INTEGER,
        total_tokens INTEGER,
        cost_usd REAL,
        usage_source TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        error_kind TEXT
    );
    CREATE INDEX requests_ts ON requests (ts);
    CREATE INDEX requests_account_ts ON requests (pool, account, ts);
    CREATE INDEX requests_session_ts ON requests (session, ts);
",
    "
    -- Cheaper inserts: most requests have no session, so leave them out of its index; queries
    -- by account use the time index (every query names a time range) and filter.
    DROP INDEX requests_account_ts;
    DROP INDEX requests_session_ts;
    CREATE INDEX requests_session_ts ON requests (session, ts) WHERE session IS NOT NULL;
",
    "
    -- What else the request's answer was: `cli-fields-dropped` when a front door served a
    -- request with CLI-only fields on an API target (`degrade: true`).
    ALTER TABLE requests ADD COLUMN note TEXT;
",
];

pub const INSERT: &str = "INSERT INTO requests (ts, request_id, route, pool, account, provider, model, session, \
    client, method, path, status, stream, duration_ms, ttfb_ms, input_tokens, output_tokens, cache_read_tokens, \
    cache_write_tokens, total_tokens, cost_usd, usage_source, attempts, error_kind, note) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)";

/// Open for writing: WAL, relaxed fsync (a crash loses at most the last batch), migrated.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let mut conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    migrate(&mut conn)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_version_database_is_migrated_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log.db");
        {
            let c = Connection::open(&path).expect("open");
            c.execute_batch(MIGRATIONS[0]).expect("v1 schema");
            c.pragma_update(None, "user_version", 1).expect("version");
            c.execute(
                "INSERT INTO requests (ts, request_id, method, path, status, stream, duration_ms, usage_source, attempts) \
                 VALUES (1, 'r1', 'POST', '/v1/messages', 200, 0, 1.0, 'none', 1)",
                [],
            )
            .expect("v1 row");
        }
        for _ in 0..2 {
            let c = open(&path).expect("migrate (and then open an up-to-date file)");
            let version: i64 = c
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .expect("version");
            assert_eq!(version, MIGRATIONS.len() as i64, "at the latest version");
            let sql: String = c
                .query_row(
                    "SELECT sql FROM sqlite_master WHERE name = 'requests_session_ts'",
                    [],
                    |r| r.get(0),
                )
                .expect("index");
            assert!(
                sql.contains("WHERE session IS NOT NULL"),
                "partial session index: {sql}"
            );
            let indexes: Vec<String> = c
                .prepare("SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name")
                .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
                .expect("indexes");
            assert_eq!(
                indexes,
                ["requests_session_ts", "requests_ts"],
                "the account index is gone"
            );
            let rows: i64 = c
                .query_row("SELECT COUNT(*) FROM requests", [], |r| r.get(0))
                .expect("count");
            assert_eq!(rows, 1, "rows survive the migration");
        }
    }
}
