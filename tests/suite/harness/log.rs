//! A sidecar with its request log (SQLite) in a temporary directory, and the log's rows as JSON.

use std::time::Duration;

use serde_json::Value;

use super::{pool_yaml, Proxy};

/// Prices for the Claude Sonnet and GPT-4.1 models the fakes answer with (USD per million tokens).
pub const PRICES: &str = "prices:\n  - { model: \"claude-sonnet-*\", input: 3.0, output: 15.0, cache_read: 0.30, cache_write: 3.75 }\n  - { model: \"gpt-4.1*\", input: 2.0, output: 8.0, cache_read: 0.5 }\n";

/// A sidecar whose request log (SQLite) sits in a temporary directory.
pub struct Logged {
    pub proxy: Proxy,
    pub db: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Logged {
    /// Start with `yaml` (without `log:`; `log_extra` is added inside it, e.g. `, queue: 2`).
    pub fn start(yaml: &str, log_extra: &str) -> Logged {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("requests.db");
        let proxy = Proxy::start(&format!("log: {{ sqlite: \"{}\"{log_extra} }}\n{yaml}", db.display()));
        Logged { proxy, db, _dir: dir }
    }

    /// Start with [`PRICES`] and, for each `(name, provider, url)`, a pool `name` of one account
    /// at `url` behind the route `/name` (first byte within 3 s, idle at most 2 s).
    pub fn priced(pools: &[(&str, &str, String)], log_extra: &str) -> Logged {
        let mut routes = String::from("routes:\n");
        let mut pool_text = String::from("pools:\n");
        for (name, provider, url) in pools {
            routes.push_str(&format!(
                "  - {{ name: {name}, match: {{ path_prefix: /{name} }}, pool: {name} }}\n"
            ));
            pool_text.push_str(&pool_yaml(
                name,
                provider,
                std::slice::from_ref(url),
                "    timeouts: { first_byte: 3s, idle: 2s }\n",
            ));
        }
        Self::start(&format!("{PRICES}{routes}{pool_text}"), log_extra)
    }

    /// All rows, oldest first, after the writer caught up.
    pub fn rows(&self) -> Vec<Value> {
        let log = self.proxy.core.log.as_ref().expect("request log on");
        assert!(log.flush(Duration::from_secs(5)), "request log flushed within 5 s");
        let conn = rusqlite::Connection::open(&self.db).expect("open db");
        let mut stmt = conn.prepare("SELECT * FROM requests ORDER BY id").expect("query");
        let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
        let rows = stmt
            .query_map([], |r| {
                let mut m = serde_json::Map::new();
                for (i, n) in names.iter().enumerate() {
                    let v = match r.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => Value::Null,
                        rusqlite::types::ValueRef::Integer(x) => serde_json::json!(x),
                        rusqlite::types::ValueRef::Real(x) => serde_json::json!(x),
                        rusqlite::types::ValueRef::Text(t) => serde_json::json!(String::from_utf8_lossy(t)),
                        rusqlite::types::ValueRef::Blob(_) => Value::Null,
                    };
                    m.insert(n.clone(), v);
                }
                Ok(Value::Object(m))
            })
            .expect("rows");
        rows.map(|r| r.expect("row")).collect()
    }

    /// Wait (up to 5 s, else fail) until there are `n` rows (a disconnect is logged when Pingora
    /// notices it).
    pub async fn wait_rows(&self, n: usize) -> Vec<Value> {
        for _ in 0..100 {
            let rows = self.rows();
            if rows.len() >= n {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let rows = self.rows();
        assert!(rows.len() >= n, "{n} log rows within 5 s, got {}: {rows:?}", rows.len());
        rows
    }
}
