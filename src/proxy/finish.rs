//! The end of every request (`logging`, exactly once): its usage read and priced, the account's
//! ledger and budget notifications, the metrics, one access-log line and one request-log row.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use dashmap::DashMap;
use pingora::proxy::Session;

use super::respond::{ErrorKind, RespondCtx};
use crate::clock::now_ms;
use crate::shared::record::Write;
use crate::sidecar::Sidecar;
use crate::store::Row;
use crate::text::sanitize;
use crate::usage::{price, Meter, Reading, Source, Usage};

/// What the end of the request needs beyond what answering needs.
pub trait FinishCtx: RespondCtx {
    /// Upstream attempts made.
    fn attempts(&self) -> u32;
    /// A retry was refused for lack of budget.
    fn budget_exhausted(&self) -> bool;
    /// Give back the account's slot and any breaker probe without an outcome.
    fn release_attempt(&mut self);
    /// The response's meter.
    fn meter_mut(&mut self) -> Option<&mut Meter>;
    /// The answer was an event stream.
    fn sse(&self) -> bool;
    /// Time to the upstream's response head.
    fn ttfb(&self) -> Option<Duration>;
    /// The `model` the request body named.
    fn take_model(&mut self) -> Option<String>;
    /// The request's session.
    fn take_session(&mut self) -> Option<String>;
    /// The client named by its token.
    fn client(&self) -> Option<&Arc<str>>;
    /// The client asked for a stream.
    fn streamed(&self) -> bool;
    /// The log row's note (`cli-fields-dropped`), if any.
    fn note(&self) -> Option<&'static str>;
}

/// The status the client saw: what was written, or the failure's (499 when the client left
/// before any answer).
pub fn status(session: &Session, ctx: &impl FinishCtx) -> u16 {
    match session.response_written() {
        Some(r) => r.status.as_u16(),
        None => ctx.failure().map_or(499, ErrorKind::status),
    }
}

/// What was read from the response, priced.
struct Metered {
    usage: Usage,
    source: Source,
    model: Option<String>,
    cost: Option<f64>,
}

/// `logging`: put the real session back, give back the account's slot and any probe, settle
/// the outcome, then finish the request; the connection then waits for the next one.
pub fn logging(core: &Sidecar, session: &mut Session, e: Option<&pingora::Error>, ctx: &mut impl FinishCtx) {
    ctx.restore_session(&mut session.downstream_session);
    // A probe that ended without an outcome (the client left first) lets another probe.
    ctx.release_attempt();
    if let (Some(e), None) = (e, ctx.failure()) {
        let outcome = super::respond::outcome(e, ctx);
        ctx.record_failure(outcome);
    }
    request(core, session, ctx);
    crate::gate::request_done(session);
}

/// Finish the request: ledger, metrics, access line, log row.
pub fn request(core: &Sidecar, session: &Session, ctx: &mut impl FinishCtx) {
    let metered = meter(core, ctx);
    let now = now_ms();
    ledger(core, ctx, &metered, now);
    let status = status(session, ctx);
    // The cause, else the note that a retry was refused for lack of budget.
    let error_kind = ctx
        .failure()
        .or(ctx.budget_exhausted().then_some(ErrorKind::RetryBudgetExhausted));
    let elapsed = ctx.started().elapsed();
    metrics(core, ctx, &metered, status, elapsed);
    logs(core, session, ctx, metered, status, error_kind, elapsed, now);
}

/// Usage and model from the meter (the body's model when the response names none), priced.
fn meter(core: &Sidecar, ctx: &mut impl FinishCtx) -> Metered {
    let request_id = ctx.request_id().clone();
    if let Some(m) = ctx.meter_mut() {
        let oversized = m.oversized();
        if oversized > 0 {
            core.metrics.oversized_events.inc_by(oversized);
            tracing::info!(target: "llm_sidecar::decision", request_id = request_id.to_str().unwrap_or("-"), oversized, "SSE events over limits.max_sse_event_bytes passed through unmetered");
        }
        if m.too_large() {
            core.metrics.unmetered.with_label_values(&["too_large"]).inc();
        }
    }
    let (reading, source): (Reading, Source) = ctx.meter_mut().map(Meter::finish).unwrap_or_default();
    // Client- or upstream-supplied: cut to 500 bytes, control characters removed.
    let model = reading.model.or_else(|| ctx.take_model()).map(|m| sanitize(&m));
    let cost = ctx
        .snapshot()
        .and_then(|s| price::cost(&s.prices, model.as_deref(), &reading.usage));
    if cost.is_none() && !reading.usage.is_empty() {
        warn_unpriced(model.as_deref());
    }
    Metered {
        usage: reading.usage,
        source,
        model,
        cost,
    }
}

/// The account's ledger, and a budget threshold notification when one is crossed.
fn ledger(core: &Sidecar, ctx: &impl FinishCtx, m: &Metered, now: i64) {
    let (Some(snap), Some(pool), Some(account)) = (ctx.snapshot(), ctx.pool(), ctx.account()) else {
        return;
    };
    let (cost, tokens) = (m.cost.unwrap_or(0.0), m.usage.total_tokens());
    account.state.ledger.record(now, cost, tokens, 1);
    let write = || Write::Usage {
        pool: Arc::clone(&pool.name),
        account: Arc::clone(&account.name),
        cost,
        tokens,
    };
    if core.shared.as_ref().is_some_and(|s| s.queue(write())) {
        return; // the store says which thresholds this request reached first, across replicas
    }
    if let Some(budget) = account.budget.as_ref() {
        if m.cost.is_some_and(|c| c > 0.0) && budget.weekly_usd > 0.0 {
            let used = account.state.view(now).week_cost / budget.weekly_usd;
            let webhook_on = snap.webhook.is_some();
            core.notifier
                .budget(webhook_on, &pool.name, &account.name, used, &snap.thresholds);
        }
    }
}

/// The route's request metrics and the account's tokens and cost.
fn metrics(core: &Sidecar, ctx: &impl FinishCtx, m: &Metered, status: u16, elapsed: Duration) {
    let upstream = ctx.link().map_or(Duration::ZERO, |l| l.upstream_time());
    let route = ctx.route().and_then(|r| r.metrics.get());
    if let Some(rm) = route.or_else(|| core.metrics.unrouted.get()) {
        rm.by_class[crate::metrics::class_index(status)].inc();
        rm.duration.observe(elapsed.as_secs_f64());
        if let Some(t) = ctx.ttfb() {
            rm.ttfb.observe(t.as_secs_f64());
        }
        rm.overhead.observe(elapsed.saturating_sub(upstream).as_secs_f64());
    }
    if let Some(am) = ctx.account().and_then(|a| a.metrics.get()) {
        let u = &m.usage;
        for (counter, n) in am.tokens.iter().zip([u.input, u.output, u.cache_read, u.cache_write]) {
            counter.inc_by(n.unwrap_or(0));
        }
        if let Some(c) = m.cost {
            am.cost.inc_by(c);
        }
    }
}

/// What the access line and the log row share.
struct Line<'a> {
    route: Option<Arc<str>>,
    pool: Option<Arc<str>>,
    account: Option<Arc<str>>,
    status: u16,
    error_kind: Option<ErrorKind>,
    duration_ms: f64,
    ttfb_ms: Option<f64>,
    attempts: u32,
    request_id: &'a str,
}

/// The access line and the request-log row.
#[allow(clippy::too_many_arguments)]
fn logs(
    core: &Sidecar,
    session: &Session,
    ctx: &mut impl FinishCtx,
    m: Metered,
    status: u16,
    error_kind: Option<ErrorKind>,
    elapsed: Duration,
    now: i64,
) {
    let rid = ctx.request_id().clone(); // a reference count, not a copy
    let request_id = rid.to_str().unwrap_or("-");
    let line = Line {
        route: ctx.route().map(|r| Arc::clone(&r.name)),
        pool: ctx.pool().map(|p| Arc::clone(&p.name)),
        account: ctx.account().map(|a| Arc::clone(&a.name)),
        status,
        error_kind,
        duration_ms: elapsed.as_secs_f64() * 1000.0,
        ttfb_ms: ctx.ttfb().map(|d| d.as_secs_f64() * 1000.0),
        attempts: ctx.attempts(),
        request_id,
    };
    access_line(session, ctx, &m, &line);
    if let Some(log) = &core.log {
        log.record(row(session, ctx, m, line, now));
    }
}

fn access_line(session: &Session, ctx: &impl FinishCtx, m: &Metered, l: &Line<'_>) {
    let req = session.req_header();
    crate::logline::log(&crate::logline::Access {
        request_id: l.request_id,
        route: l.route.as_deref().unwrap_or("-"),
        pool: l.pool.as_deref().unwrap_or("-"),
        account: l.account.as_deref().unwrap_or("-"),
        client: ctx.client().map_or("-", |c| &**c),
        method: req.method.as_str(),
        path: req.uri.path(),
        status: l.status,
        duration_ms: l.duration_ms,
        ttfb_ms: l.ttfb_ms,
        attempts: l.attempts,
        model: m.model.as_deref(),
        input_tokens: m.usage.input,
        output_tokens: m.usage.output,
        cache_read_tokens: m.usage.cache_read,
        cache_write_tokens: m.usage.cache_write,
        cost_usd: m.cost,
        usage_source: m.source.as_str(),
        error_kind: l.error_kind.map(ErrorKind::as_str),
    });
}

fn row(session: &Session, ctx: &mut impl FinishCtx, m: Metered, l: Line<'_>, now: i64) -> Row {
    let req = session.req_header();
    Row {
        ts: now,
        request_id: l.request_id.to_string(),
        route: l.route,
        pool: l.pool,
        account: l.account,
        provider: ctx.pool().map(|p| p.provider.kind().name()),
        model: m.model,
        session: ctx.take_session(),
        client: ctx.client().cloned(),
        method: req.method.as_str().to_string(),
        path: req.uri.path().to_string(),
        status: l.status,
        stream: ctx.streamed() || ctx.sse(),
        duration_ms: l.duration_ms,
        ttfb_ms: l.ttfb_ms,
        usage: m.usage,
        cost_usd: m.cost,
        usage_source: m.source.as_str(),
        attempts: l.attempts,
        error_kind: l.error_kind.map(ErrorKind::as_str),
        note: ctx.note(),
    }
}

/// Say once per model and process that a model has no price (its cost is logged as null).
fn warn_unpriced(model: Option<&str>) {
    static SEEN: OnceLock<DashMap<String, ()>> = OnceLock::new();
    let seen = SEEN.get_or_init(DashMap::new);
    let raw = model.unwrap_or("(unknown)");
    if seen.contains_key(raw) {
        return; // said already (a clean name is its own key): no allocation per request
    }
    let name = sanitize(raw);
    if seen.len() < 1024 && seen.insert(name.clone(), ()).is_none() {
        tracing::warn!(model = %name, "no price for this model: its cost is logged as null");
    }
}
