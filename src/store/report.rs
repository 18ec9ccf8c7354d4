//! `llm-sidecar usage`: requests, tokens, cost, errors and p50/p95 duration per group, read from
//! the request log (as a table or JSON).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags};
use serde::Serialize;

use crate::clock::now_ms;

/// What rows are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum By {
    /// `pool/account`.
    Account,
    /// The model the response named.
    Model,
    /// The session id.
    Session,
    /// The route's name.
    Route,
    /// The client token's name.
    Client,
}

impl By {
    fn column(self) -> &'static str {
        match self {
            By::Account => "COALESCE(pool, '-') || '/' || COALESCE(account, '-')",
            By::Model => "COALESCE(model, '-')",
            By::Session => "COALESCE(session, '-')",
            By::Route => "COALESCE(route, '-')",
            By::Client => "COALESCE(client, '-')",
        }
    }
}

/// The totals of one group of request-log rows.
#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct Group {
    /// The group's value (`-` for rows without one).
    pub key: String,
    /// Rows in the group.
    pub requests: u64,
    /// Rows with a status of 400 or more, or an error kind.
    pub errors: u64,
    /// Input tokens, as the providers reported them.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens read from a prompt cache.
    pub cache_read_tokens: u64,
    /// Input tokens written to a prompt cache.
    pub cache_write_tokens: u64,
    /// Sum over priced requests.
    pub cost_usd: f64,
    /// Requests with tokens but no price for their model.
    pub unpriced: u64,
    /// Median duration, in milliseconds.
    pub p50_ms: f64,
    /// 95th-percentile duration, in milliseconds.
    pub p95_ms: f64,
    #[serde(skip)]
    durations: Vec<f64>,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Groups of the rows from the last `since`, largest cost first.
pub fn query(db: &Path, since: Duration, by: By) -> Result<Vec<Group>, String> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("cannot open {}: {e}", db.display()))?;
    let sql = format!(
        "SELECT {}, status, error_kind, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, \
         total_tokens, cost_usd, duration_ms FROM requests WHERE ts >= ?1",
        by.column()
    );
    let cutoff = now_ms() - i64::try_from(since.as_millis()).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare(&sql).map_err(|e| e.to_string())?;
    let mut rows = stmt.query(params![cutoff]).map_err(|e| e.to_string())?;
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    let n = |v: Option<i64>| u64::try_from(v.unwrap_or(0)).unwrap_or(0);
    while let Some(r) = rows.next().map_err(|e| e.to_string())? {
        let key: String = r.get(0).map_err(|e| e.to_string())?;
        let g = groups.entry(key.clone()).or_insert_with(|| Group {
            key,
            ..Group::default()
        });
        let status: i64 = r.get(1).unwrap_or(0);
        let error: Option<String> = r.get(2).unwrap_or(None);
        g.requests += 1;
        g.errors += u64::from(status >= 400 || error.is_some());
        g.input_tokens += n(r.get(3).unwrap_or(None));
        g.output_tokens += n(r.get(4).unwrap_or(None));
        g.cache_read_tokens += n(r.get(5).unwrap_or(None));
        g.cache_write_tokens += n(r.get(6).unwrap_or(None));
        let tokens = n(r.get(7).unwrap_or(None));
        match r.get::<_, Option<f64>>(8).unwrap_or(None) {
            Some(c) => g.cost_usd += c,
            None if tokens > 0 => g.unpriced += 1,
            None => {}
        }
        g.durations.push(r.get(9).unwrap_or(0.0));
    }
    let mut out: Vec<Group> = groups.into_values().collect();
    for g in &mut out {
        g.durations.sort_by(f64::total_cmp);
        g.p50_ms = percentile(&g.durations, 0.50);
        g.p95_ms = percentile(&g.durations, 0.95);
        g.durations = Vec::new();
    }
    out.sort_by(|a, b| b.cost_usd.total_cmp(&a.cost_usd).then(b.requests.cmp(&a.requests)));
    Ok(out)
}

/// A plain-text table with a total line.
pub fn table(groups: &[Group], by: By) -> String {
    let header = [
        format!("{by:?}").to_lowercase(),
        "requests".into(),
        "errors".into(),
        "input".into(),
        "output".into(),
        "cache_read".into(),
        "cache_write".into(),
        "cost_usd".into(),
        "unpriced".into(),
        "p50_ms".into(),
        "p95_ms".into(),
    ];
    let line = |g: &Group| {
        [
            g.key.clone(),
            g.requests.to_string(),
            g.errors.to_string(),
            g.input_tokens.to_string(),
            g.output_tokens.to_string(),
            g.cache_read_tokens.to_string(),
            g.cache_write_tokens.to_string(),
            format!("{:.6}", g.cost_usd),
            g.unpriced.to_string(),
            format!("{:.1}", g.p50_ms),
            format!("{:.1}", g.p95_ms),
        ]
    };
    let mut lines = vec![header];
    lines.extend(groups.iter().map(line));
    let total = groups.iter().fold(
        Group {
            key: "TOTAL".into(),
            ..Group::default()
        },
        |mut t, g| {
            t.requests += g.requests;
            t.errors += g.errors;
            t.input_tokens += g.input_tokens;
            t.output_tokens += g.output_tokens;
            t.cache_read_tokens += g.cache_read_tokens;
            t.cache_write_tokens += g.cache_write_tokens;
            t.cost_usd += g.cost_usd;
            t.unpriced += g.unpriced;
            t
        },
    );
    let mut total = line(&total);
    total[9] = "-".into();
    total[10] = "-".into();
    lines.push(total);
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|c| lines.iter().map(|l| l[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for l in &lines {
        for (c, cell) in l.iter().enumerate() {
            if c == 0 {
                out.push_str(&format!("{cell:<w$}", w = widths[c]));
            } else {
                out.push_str(&format!("  {cell:>w$}", w = widths[c]));
            }
        }
        out.push('\n');
    }
    out
}
