//! Observability: the tracing subscriber (Pingora's `log` output included), the end of every
//! request (usage, cost, ledger, one access-log line, one request-log row), and sanitising
//! upstream text before it is logged.

use std::sync::{Arc, OnceLock};

use dashmap::DashMap;
use pingora::proxy::Session;

use crate::clock::now_ms;
use crate::proxy::Ctx;
use crate::sidecar::Sidecar;
use crate::store::Row;
use crate::text::sanitize;
use crate::usage::{price, Meter};

/// Keeps the log writer's thread alive; dropping it flushes what is buffered.
static LOG_WRITER: std::sync::Mutex<Option<crate::linebuf::Flusher>> = std::sync::Mutex::new(None);

/// Log lines waiting to be written at most; past it new ones are dropped (and the loss said).
const LOG_BUFFER: usize = 8 << 20;
/// How long lines gather before a write to stdout.
const LOG_GATHER: std::time::Duration = std::time::Duration::from_millis(50);

/// Install the global subscriber: `LOG_FORMAT=json` for JSON lines, `RUST_LOG` to filter
/// (default `info`). Lines are written by a background thread in batches, so a slow stdout never
/// blocks a proxy thread (past 8 MiB waiting, new lines are dropped rather than wait). Pingora logs
/// through the `log` crate; it is bridged here, and held at `info` unless `RUST_LOG` names a
/// pingora crate: its debug output prints request and body bytes.
pub fn init() {
    use tracing_subscriber::{fmt, EnvFilter};
    let spec = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let mut filter = EnvFilter::try_new(&spec).unwrap_or_else(|_| EnvFilter::new("info"));
    // Cap Pingora at info only where the spec would let its debug through (adding the cap to
    // a quieter spec would raise Pingora to info).
    let verbose = filter
        .max_level_hint()
        .is_none_or(|l| l > tracing_subscriber::filter::LevelFilter::INFO);
    if !spec.contains("pingora") {
        // Pingora's own line for a connection that failed before any hook ran duplicates the
        // gate's `request refused before routing` line (and every later error is an access line).
        if let Ok(d) = "pingora_proxy=off".parse() {
            filter = filter.add_directive(d);
        }
    }
    if verbose && !spec.contains("pingora") {
        for cap in ["pingora_core=info", "pingora=info"] {
            if let Ok(d) = cap.parse() {
                filter = filter.add_directive(d);
            }
        }
    }
    let (writer, flusher) = match crate::linebuf::LineBuffer::start(std::io::stdout(), LOG_BUFFER, LOG_GATHER) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("cannot start the log writer: {e}");
            return;
        }
    };
    if let Ok(mut slot) = LOG_WRITER.lock() {
        *slot = Some(flusher);
    }
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    // Colours only for a person at a terminal, never into a file or a log pipeline.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let direct = writer.clone();
    let result = if json {
        fmt()
            .json()
            .with_writer(writer)
            .with_env_filter(filter)
            .with_current_span(false)
            .try_init()
    } else {
        fmt()
            .with_writer(writer)
            .with_ansi(ansi)
            .with_env_filter(filter)
            .try_init()
    };
    if result.is_ok() && !ansi {
        // Access lines skip the subscriber's formatting and go straight into the same buffer.
        crate::logline::install(direct, json);
    }
    // `try_init` also installs the `log` bridge for Pingora's records.
    if let Err(e) = result {
        eprintln!("logging already initialised: {e}");
    }
}

/// Write out buffered log lines (before the process exits).
pub fn flush_logs() {
    if let Ok(mut slot) = LOG_WRITER.lock() {
        drop(slot.take());
    }
}

/// The status the client saw: what was written, or 499 when the client left before any answer.
pub fn status(session: &Session, ctx: &Ctx) -> u16 {
    match session.response_written() {
        Some(r) => r.status.as_u16(),
        None => ctx.error.map_or(499, |k| k.status()),
    }
}

/// The end of a request: read its usage, price it, add it to the account's ledger, write the
/// access line and queue the request-log row. Runs exactly once per request, in `logging`.
pub fn finish(core: &Sidecar, session: &Session, ctx: &mut Ctx) {
    if let Some(m) = ctx.meter.as_ref() {
        let oversized = m.oversized();
        if oversized > 0 {
            core.metrics.oversized_events.inc_by(oversized);
            tracing::info!(target: "llm_sidecar::decision", request_id = ctx.request_id().to_str().unwrap_or("-"), oversized, "SSE events over limits.max_sse_event_bytes passed through unmetered");
        }
        if m.too_large() {
            core.metrics.unmetered.with_label_values(&["too_large"]).inc();
        }
    }
    let (reading, source) = ctx.meter.as_mut().map(Meter::finish).unwrap_or_default();
    let usage = reading.usage;
    // Client- or upstream-supplied: cut to 500 bytes, control characters removed.
    let model = reading.model.or_else(|| ctx.req_model.take()).map(|m| sanitize(&m));
    let snap = ctx.snap.clone();
    let cost = snap
        .as_deref()
        .and_then(|s| price::cost(&s.prices, model.as_deref(), &usage));
    if cost.is_none() && !usage.is_empty() {
        warn_unpriced(model.as_deref());
    }
    let now = now_ms();
    if let (Some(pool), Some(account)) = (ctx.pool(), ctx.account()) {
        account
            .state
            .ledger
            .record(now, cost.unwrap_or(0.0), usage.total_tokens(), 1);
        if let (Some(budget), Some(snap)) = (account.budget.as_ref(), snap.as_deref()) {
            if cost.is_some_and(|c| c > 0.0) && budget.weekly_usd > 0.0 {
                let used = account.state.ledger.view(now).week_cost / budget.weekly_usd;
                core.notifier.budget(
                    snap.webhook.is_some(),
                    &pool.name,
                    &account.name,
                    used,
                    &snap.thresholds,
                );
            }
        }
    }
    let status = status(session, ctx);
    // The cause, else the note that a retry was refused for lack of budget.
    let error_kind = ctx.error.or(ctx
        .budget_exhausted
        .then_some(crate::respond::ErrorKind::RetryBudgetExhausted));
    let elapsed = ctx.started().elapsed();
    let upstream = ctx
        .link
        .as_ref()
        .map_or(std::time::Duration::ZERO, |l| l.upstream_time());
    let route_metrics = snap
        .as_deref()
        .zip(ctx.route)
        .and_then(|(s, i)| s.routes[i].metrics.get());
    if let Some(m) = route_metrics.or_else(|| core.metrics.unrouted.get()) {
        m.by_class[crate::metrics::class_index(status)].inc();
        m.duration.observe(elapsed.as_secs_f64());
        if let Some(t) = ctx.ttfb {
            m.ttfb.observe(t.as_secs_f64());
        }
        m.overhead.observe(elapsed.saturating_sub(upstream).as_secs_f64());
    }
    if let Some(m) = ctx.account().and_then(|a| a.metrics.get()) {
        for (counter, n) in m
            .tokens
            .iter()
            .zip([usage.input, usage.output, usage.cache_read, usage.cache_write])
        {
            counter.inc_by(n.unwrap_or(0));
        }
        if let Some(c) = cost {
            m.cost.inc_by(c);
        }
    }
    let req = session.req_header();
    let route = snap
        .as_deref()
        .zip(ctx.route)
        .map(|(s, i)| Arc::clone(&s.routes[i].name));
    let pool = ctx.pool().map(|p| Arc::clone(&p.name));
    let account = ctx.account().map(|a| Arc::clone(&a.name));
    let duration_ms = elapsed.as_secs_f64() * 1000.0;
    let ttfb_ms = ctx.ttfb.map(|d| d.as_secs_f64() * 1000.0);
    let request_id = ctx.request_id().to_str().unwrap_or("-");
    crate::logline::log(&crate::logline::Access {
        request_id,
        route: route.as_deref().unwrap_or("-"),
        pool: pool.as_deref().unwrap_or("-"),
        account: account.as_deref().unwrap_or("-"),
        client: ctx.client.as_deref().unwrap_or("-"),
        method: req.method.as_str(),
        path: req.uri.path(),
        status,
        duration_ms,
        ttfb_ms,
        attempts: ctx.attempts,
        model: model.as_deref(),
        input_tokens: usage.input,
        output_tokens: usage.output,
        cache_read_tokens: usage.cache_read,
        cache_write_tokens: usage.cache_write,
        cost_usd: cost,
        usage_source: source.as_str(),
        error_kind: error_kind.map(|k| k.as_str()),
    });
    if let Some(log) = &core.log {
        log.record(Row {
            ts: now,
            request_id: request_id.to_string(),
            route,
            pool,
            account,
            provider: ctx.pool().map(|p| p.provider.kind().name()),
            model,
            session: ctx.session.take(),
            client: ctx.client.clone(),
            method: req.method.as_str().to_string(),
            path: req.uri.path().to_string(),
            status,
            stream: ctx.stream || ctx.sse,
            duration_ms,
            ttfb_ms,
            usage,
            cost_usd: cost,
            usage_source: source.as_str(),
            attempts: ctx.attempts,
            error_kind: error_kind.map(|k| k.as_str()),
        });
    }
}

/// Say once per model and process that a model has no price (its cost is logged as null).
fn warn_unpriced(model: Option<&str>) {
    static SEEN: OnceLock<DashMap<String, ()>> = OnceLock::new();
    let seen = SEEN.get_or_init(DashMap::new);
    let name = sanitize(model.unwrap_or("(unknown)"));
    if seen.len() < 1024 && seen.insert(name.clone(), ()).is_none() {
        tracing::warn!(model = %name, "no price for this model: its cost is logged as null");
    }
}
