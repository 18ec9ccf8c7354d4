//! The request log in SQLite: one row per request, written by a background thread that batches
//! inserts in transactions (WAL) from a bounded queue. Proxy threads only `try_send`; a full
//! queue drops the row, counts it and says so (at most once every 10 s). Shutdown flushes.

pub mod report;
mod schema;

use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};

use crate::clock::now_ms;
use crate::state::States;
use crate::usage::Usage;

/// One request, as logged.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// When the request finished, unix milliseconds.
    pub ts: i64,
    /// `x-request-id`, the client's or generated.
    pub request_id: String,
    /// The route's name (`None`: no route matched).
    pub route: Option<Arc<str>>,
    /// The pool that served, or would have (`None`: none).
    pub pool: Option<Arc<str>>,
    /// The account of the last attempt (`None`: none was picked).
    pub account: Option<Arc<str>>,
    /// The pool's provider (`anthropic`, `openai`, `gemini`, `openrouter`; `None`: no pool).
    pub provider: Option<&'static str>,
    /// The model the response names, else the request body's (`None`: neither said).
    pub model: Option<String>,
    /// The request's session id (`None`: it had none).
    pub session: Option<String>,
    /// The client token's name (`None`: no tokens configured).
    pub client: Option<Arc<str>>,
    /// The HTTP method.
    pub method: String,
    /// The path as the client sent it, without the query.
    pub path: String,
    /// The status of the response sent; when none was, the failure's status, else 499.
    pub status: u16,
    /// The client asked for a stream, or the answer was one.
    pub stream: bool,
    /// From the request's arrival to the end of its answer, in milliseconds.
    pub duration_ms: f64,
    /// From the request's arrival to the upstream's response head, in milliseconds (`None`: no head
    /// came).
    pub ttfb_ms: Option<f64>,
    /// Tokens as the provider reported them.
    pub usage: Usage,
    /// The request's cost in USD (`None`: no price matched, or nothing reported).
    pub cost_usd: Option<f64>,
    /// How the usage is known: `reported`, `partial` or `none`.
    pub usage_source: &'static str,
    /// Upstream attempts made.
    pub attempts: u32,
    /// What the request failed with (`None`: it did not), as `x-llm-sidecar-error` names it.
    pub error_kind: Option<&'static str>,
    /// What else the answer was: `cli-fields-dropped` (a front door served CLI-only fields on
    /// an API target, `degrade: true`); `None`: nothing.
    pub note: Option<&'static str>,
}

enum Msg {
    Row(Box<Row>),
    Flush(mpsc::Sender<()>),
}

/// The proxy side of the request log.
pub struct RequestLog {
    tx: SyncSender<Msg>,
    dropped: AtomicU64,
    last_warn_ms: AtomicI64,
}

/// Rows per transaction at most.
const BATCH: usize = 2048;
/// How long rows gather before a write.
const GATHER: Duration = Duration::from_millis(50);
const RETENTION_EVERY: Duration = Duration::from_secs(600);

impl RequestLog {
    /// Open (creating and migrating) the database and start the writer thread.
    pub fn open(path: &Path, retention: Duration, queue: usize) -> Result<Arc<Self>, String> {
        let conn = schema::open(path).map_err(|e| format!("request log {}: {e}", path.display()))?;
        let (tx, rx) = mpsc::sync_channel(queue);
        std::thread::Builder::new()
            .name("request-log".into())
            .spawn(move || writer(conn, rx, retention))
            .map_err(|e| format!("cannot start the request-log writer: {e}"))?;
        Ok(Arc::new(RequestLog {
            tx,
            dropped: AtomicU64::new(0),
            last_warn_ms: AtomicI64::new(0),
        }))
    }

    /// Queue a row without ever blocking.
    pub fn record(&self, row: Row) {
        match self.tx.try_send(Msg::Row(Box::new(row))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                let total = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                let now = now_ms();
                let last = self.last_warn_ms.load(Ordering::Relaxed);
                if now - last >= 10_000
                    && self
                        .last_warn_ms
                        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    tracing::warn!(dropped_total = total, "request log queue full: rows dropped");
                }
            }
        }
    }

    /// Rows dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Wait until every row queued so far is written (or `timeout` passes).
    pub fn flush(&self, timeout: Duration) -> bool {
        let (ack_tx, ack_rx) = mpsc::channel();
        let deadline = Instant::now() + timeout;
        let mut msg = Msg::Flush(ack_tx);
        loop {
            match self.tx.try_send(msg) {
                Ok(()) => break,
                Err(TrySendError::Full(m)) if Instant::now() < deadline => {
                    msg = m;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return false,
            }
        }
        ack_rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    }
}

fn writer(mut conn: Connection, rx: Receiver<Msg>, retention: Duration) {
    crate::linebuf::set_nice(crate::linebuf::WRITER_NICE);
    // A full batch means rows arrive faster than this thread, at its low priority, writes them:
    // it then runs at normal priority until it has caught up, rather than drop rows.
    let mut boosted = false;
    let mut last_cleanup: Option<Instant> = None;
    let mut batch: Vec<Row> = Vec::with_capacity(BATCH);
    let mut acks = Vec::new();
    while let Ok(first) = rx.recv() {
        // Let rows gather: one transaction then holds many, and while this thread sleeps the
        // proxy threads' sends wake nobody (only the first row after a quiet spell does).
        if matches!(first, Msg::Row(_)) {
            std::thread::sleep(GATHER);
        }
        let mut next = Some(first);
        let mut full = false;
        while let Some(msg) = next {
            match msg {
                Msg::Row(r) => batch.push(*r),
                Msg::Flush(ack) => acks.push(ack),
            }
            if batch.len() == BATCH {
                full = true;
                commit(&mut conn, &mut batch, &mut acks);
            }
            next = rx.try_recv().ok();
        }
        commit(&mut conn, &mut batch, &mut acks);
        if full != boosted {
            boosted = full;
            crate::linebuf::set_nice(if full { 0 } else { crate::linebuf::WRITER_NICE });
        }
        if last_cleanup.is_none_or(|t| t.elapsed() >= RETENTION_EVERY) {
            last_cleanup = Some(Instant::now());
            let cutoff = now_ms() - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
            match conn.execute("DELETE FROM requests WHERE ts < ?1", params![cutoff]) {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "request log retention"),
                Err(e) => tracing::warn!(error = %e, "request log retention failed"),
            }
        }
    }
}

/// Write `batch` in one transaction, then answer the flushes that waited for it.
fn commit(conn: &mut Connection, batch: &mut Vec<Row>, acks: &mut Vec<mpsc::Sender<()>>) {
    if let Err(e) = insert(conn, batch) {
        tracing::error!(error = %e, rows = batch.len(), "request log write failed; rows lost");
    }
    batch.clear();
    for ack in acks.drain(..) {
        let _ = ack.send(());
    }
}

fn insert(conn: &mut Connection, rows: &[Row]) -> rusqlite::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(schema::INSERT)?;
        for r in rows {
            let u = &r.usage;
            stmt.execute(params![
                r.ts,
                r.request_id,
                r.route.as_deref(),
                r.pool.as_deref(),
                r.account.as_deref(),
                r.provider,
                r.model,
                r.session,
                r.client.as_deref(),
                r.method,
                r.path,
                r.status,
                r.stream,
                r.duration_ms,
                r.ttfb_ms,
                u.input.map(|v| v as i64),
                u.output.map(|v| v as i64),
                u.cache_read.map(|v| v as i64),
                u.cache_write.map(|v| v as i64),
                (!u.is_empty()).then(|| u.total_tokens() as i64),
                r.cost_usd,
                r.usage_source,
                r.attempts,
                r.error_kind,
                r.note,
            ])?;
        }
    }
    tx.commit()
}

/// Refill every account's ledger from the last 7 days of the log, so a restart does not forget
/// the week's spend. Returns the number of requests replayed.
pub fn rebuild_ledgers(path: &Path, states: &States) -> Result<u64, String> {
    let conn = Connection::open(path).map_err(|e| e.to_string())?;
    let since = now_ms() - 7 * 24 * 3_600_000;
    let mut stmt = conn
        .prepare(
            "SELECT pool, account, ts / 60000, SUM(COALESCE(cost_usd, 0)), SUM(COALESCE(total_tokens, 0)), COUNT(*) \
             FROM requests WHERE ts >= ?1 AND pool IS NOT NULL AND account IS NOT NULL \
             GROUP BY pool, account, ts / 60000",
        )
        .map_err(|e| e.to_string())?;
    let rows = stmt
        .query_map(params![since], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, f64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })
        .map_err(|e| e.to_string())?;
    let mut replayed = 0;
    for row in rows {
        let (pool, account, minute, cost, tokens, count) = row.map_err(|e| e.to_string())?;
        let count = u64::try_from(count).unwrap_or(0);
        states
            .account(&pool, &account)
            .ledger
            .record(minute * 60_000, cost, u64::try_from(tokens).unwrap_or(0), count);
        replayed += count;
    }
    Ok(replayed)
}
