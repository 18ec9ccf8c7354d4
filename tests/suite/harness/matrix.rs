//! The fault matrix's machinery (`fault_matrix.rs` holds the table): a case and its builder, the
//! client's part of each case, the sidecar's config, and each case's checks: the per-route count,
//! account state and log row of one request.

use std::time::Duration;

use serde_json::{json, Value};

use super::matrix_client::*;
use super::{
    admin_pools, dribble, leave_when, metric, metric_sum, pool_yaml, raw_answers, wait_for, Fake, Logged, Proxy, Reply,
};

/// `llm_sidecar_requests_total` of `route`, all pools and status classes together.
pub async fn route_requests(proxy: &Proxy, route: &str) -> f64 {
    metric_sum(proxy, "llm_sidecar_requests_total{", &format!("route=\"{route}\"")).await
}

/// The `state` of the first account of `pool` in `/admin/pools`.
pub async fn account_state(proxy: &Proxy, pool: &str) -> String {
    let v = admin_pools(proxy).await;
    let pools = v["pools"].as_array().cloned().unwrap_or_default();
    pools
        .iter()
        .find(|p| p["name"] == pool)
        .and_then(|p| p["accounts"][0]["state"].as_str().map(String::from))
        .unwrap_or_else(|| format!("(no pool {pool}: {v})"))
}

/// The log rows of request id `rid`.
pub fn rows_of(s: &Logged, rid: &str) -> Vec<Value> {
    s.rows().into_iter().filter(|r| r["request_id"] == rid).collect()
}

/// The first log row of `rid`, waiting up to 5 s for it. Reading the log blocks the thread:
/// `block_in_place` hands its other tasks (the fakes) to another worker meanwhile; the cases
/// themselves, joined in one task, wait.
pub async fn wait_row(s: &Logged, rid: &str) -> Option<Value> {
    for _ in 0..250 {
        if let Some(r) = tokio::task::block_in_place(|| rows_of(s, rid)).into_iter().next() {
            return Some(r);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// How the client behaves.
#[derive(Clone, Copy)]
pub enum Drive {
    /// POST this many times (request ids `-1`, `-2`, …), the last one measured; read each answer.
    Post(usize),
    /// Send the whole request, hang up once the upstream has it (before the answer's head).
    LeaveBeforeHead,
    /// Read the stream's first chunk, then hang up.
    LeaveMidStream,
    /// Send 5 of 50 declared body bytes, hang up.
    LeaveMidUpload,
    /// Send part of the request head, hang up.
    LeaveMidHead,
    /// Dribble the head one byte per 100 ms, past `server.header_timeout`.
    Slowloris,
    /// A chunked body whose chunk size is not hex.
    BadChunk,
    /// Two requests in one write on one connection.
    Pipelined,
}

/// How the answer's body ends for the client.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum End {
    Clean,
    Cut,
    /// Not checked (the client hung up, or a raw exchange).
    Any,
}

/// An extra check, on what the client got and on the measured request's log row.
pub type Check = (&'static str, fn(&Got, &Value) -> bool);

pub struct Case {
    /// The route, its pool, and the stem of the request ids.
    pub name: &'static str,
    /// What the upstream answers; `None`: nothing listens there.
    pub reply: Option<Reply>,
    /// The pool's `timeouts` mapping.
    pub timeouts: &'static str,
    /// The request asks for a stream.
    pub stream: bool,
    pub drive: Drive,
    /// The status the client sees (`None`: none, it left first).
    pub seen: Option<u16>,
    pub end: End,
    /// The measured request's row: status and `error_kind` (`None`: no row at all).
    pub row: Option<(u16, Option<&'static str>)>,
    /// The account's state afterwards.
    pub state: &'static str,
    /// Requests the upstream received.
    pub calls: Option<usize>,
    /// Refused before any hook: counted in `rejected_requests_total` with this reason.
    pub rejected: Option<&'static str>,
    pub also: Option<Check>,
}

pub fn case(name: &'static str, reply: Option<Reply>, stream: bool) -> Case {
    Case {
        name,
        reply,
        timeouts: "first_byte: 5s, idle: 5s",
        stream,
        drive: Drive::Post(1),
        seen: None,
        end: End::Any,
        row: None,
        state: "healthy",
        calls: None,
        rejected: None,
        also: None,
    }
}

impl Case {
    /// The client sees `status`, its body ends `end`; the row has `status` and `kind`.
    pub fn answers(self, status: u16, end: End, kind: Option<&'static str>) -> Self {
        Case {
            seen: Some(status),
            end,
            row: Some((status, kind)),
            ..self
        }
    }
    /// The client sees no answer; the row has `status` and `kind`.
    pub fn logged(self, status: u16, kind: &'static str) -> Self {
        Case {
            row: Some((status, Some(kind))),
            ..self
        }
    }
    /// Refused before any hook: no row, no route count, counted under `reason`.
    pub fn rejected(self, reason: &'static str, seen: Option<u16>) -> Self {
        Case {
            rejected: Some(reason),
            seen,
            ..self
        }
    }
    pub fn state(self, state: &'static str) -> Self {
        Case { state, ..self }
    }
    pub fn timeouts(self, timeouts: &'static str) -> Self {
        Case { timeouts, ..self }
    }
    pub fn drive(self, drive: Drive) -> Self {
        Case { drive, ..self }
    }
    pub fn calls(self, n: usize) -> Self {
        Case { calls: Some(n), ..self }
    }
    pub fn also(self, what: &'static str, check: fn(&Got, &Value) -> bool) -> Self {
        Case {
            also: Some((what, check)),
            ..self
        }
    }
}

/// Play the client's part; what it got and the request ids it sent.
pub async fn drive(proxy: &Proxy, c: &Case, fake: Option<&Fake>) -> (Got, Vec<String>) {
    let path = format!("/{}/v1/messages", c.name);
    let url = proxy.url(&path);
    let body = if c.stream { STREAM_BODY } else { BODY };
    let rid = |i: usize| format!("fm-{}-{i}", c.name);
    let fail = |e: String| -> Got { panic!("{}: {e}", c.name) };
    let got = match c.drive {
        Drive::Post(n) => {
            let rids: Vec<String> = (1..=n).map(rid).collect();
            let mut got = Got::none();
            for r in &rids {
                got = post(&url, r, body).await.unwrap_or_else(fail);
            }
            return (got, rids);
        }
        Drive::LeaveBeforeHead => {
            let fake = fake.expect("a leave-before-head case has an upstream");
            let reached = wait_for("the upstream has the request", || fake.count() > 0);
            leave_when(proxy.addr, &request(&path, &rid(1), body, ""), reached).await;
            Got::none()
        }
        Drive::LeaveMidStream => post_then_leave(&url, &rid(1), body).await.unwrap_or_else(fail),
        Drive::LeaveMidUpload => {
            let head = format!(
                "POST {path} HTTP/1.1\r\nhost: x\r\nx-request-id: {}\r\ncontent-length: 50\r\n\r\n{{\"a\":",
                rid(1)
            );
            leave_when(proxy.addr, &head, tokio::time::sleep(ms(100))).await;
            Got::none()
        }
        Drive::LeaveMidHead => {
            let head = format!(
                "POST {path} HTTP/1.1\r\nhost: x\r\nx-request-id: {}\r\nx-unfini",
                rid(1)
            );
            leave_when(proxy.addr, &head, tokio::time::sleep(ms(100))).await;
            Got::none()
        }
        Drive::Slowloris => {
            let head = format!(
                "POST {path} HTTP/1.1\r\nhost: x\r\nx-request-id: {}\r\ncontent-length: 2\r\n",
                rid(1)
            );
            let answer = dribble(proxy.addr, head.as_bytes(), ms(3000)).await;
            Got::raw(answer.expect("the sidecar closed a dribbled head within 3 s"))
        }
        Drive::BadChunk => {
            let bytes = format!(
                "POST {path} HTTP/1.1\r\nhost: x\r\nx-request-id: {}\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n",
                rid(1)
            );
            Got::raw(raw_answers(proxy.addr, bytes.as_bytes(), 1).await)
        }
        Drive::Pipelined => {
            let two = request(&path, &rid(1), body, "") + &request(&path, &rid(2), body, "connection: close\r\n");
            let rids = vec![rid(1), rid(2)];
            return (Got::raw(raw_answers(proxy.addr, two.as_bytes(), 2).await), rids);
        }
    };
    (got, vec![rid(1)])
}

pub fn config(cases: &[Case], urls: &[String], ok: &str) -> String {
    let mut routes = String::from("server: { header_timeout: 1s }\nroutes:\n");
    let mut pools = pool_yaml("fm-ok", "anthropic", &[ok.to_string()], "");
    for name in std::iter::once("fm-ok").chain(cases.iter().map(|c| c.name)) {
        routes.push_str(&format!(
            "  - {{ name: {name}, match: {{ path_prefix: /{name} }}, pool: {name} }}\n"
        ));
    }
    for (c, url) in cases.iter().zip(urls) {
        let extra = format!(
            "    timeouts: {{ {} }}\n    breaker: {{ failures: 1, cooldown: 60s }}\n",
            c.timeouts
        );
        pools.push_str(&pool_yaml(c.name, "anthropic", std::slice::from_ref(url), &extra));
    }
    format!("{routes}pools:\n{pools}")
}

/// Play one case and check everything but the final row count; the request ids it sent.
pub async fn play_case(s: &Logged, c: &Case, fake: Option<&Fake>) -> Vec<String> {
    let (proxy, name) = (&s.proxy, c.name);
    let rejected_line = c
        .rejected
        .map(|r| format!("llm_sidecar_rejected_requests_total{{reason=\"{r}\"}}"));
    let rejected_before = match &rejected_line {
        Some(l) => metric(proxy, l).await,
        None => 0.0,
    };
    let before = route_requests(proxy, name).await;

    let (got, rids) = drive(proxy, c, fake).await;
    assert_eq!(
        got.status,
        c.seen,
        "{name}: the status the client sees: {:.300}",
        got.text()
    );
    match c.end {
        End::Clean => assert_eq!(got.clean, Some(true), "{name}: the body ends cleanly"),
        End::Cut => assert_eq!(got.clean, Some(false), "{name}: the body is cut, not ended"),
        End::Any => {}
    }
    let mut row = Value::Null;
    if let Some((status, kind)) = c.row {
        for rid in &rids {
            let r = wait_row(s, rid).await;
            row = r.unwrap_or_else(|| panic!("{name}: a log row for {rid} within 5 s"));
        }
        assert_eq!(row["status"], status, "{name}: the row's status: {row}");
        assert_eq!(row["error_kind"], json!(kind), "{name}: the row's error kind: {row}");
    }
    if let (Some(reason), Some(line)) = (c.rejected, &rejected_line) {
        let mut counted = metric(proxy, line).await - rejected_before;
        for _ in 0..150 {
            if counted >= 1.0 {
                break;
            }
            tokio::time::sleep(ms(20)).await;
            counted = metric(proxy, line).await - rejected_before;
        }
        assert_eq!(counted, 1.0, "{name}: counted once as rejected ({reason})");
    }
    let counted = route_requests(proxy, name).await - before;
    let expected = if c.row.is_some() { rids.len() as f64 } else { 0.0 };
    assert_eq!(
        counted, expected,
        "{name}: llm_sidecar_requests_total counts each request once"
    );
    assert_eq!(account_state(proxy, name).await, c.state, "{name}: the account's state");
    if let (Some(n), Some(fake)) = (c.calls, fake) {
        let seen: Vec<String> = fake
            .seen()
            .iter()
            .map(|r| format!("{} {} {:?}", r.method, r.path, r.header("x-request-id")))
            .collect();
        assert_eq!(fake.count(), n, "{name}: requests the upstream received: {seen:?}");
    }
    if let Some((what, check)) = c.also {
        assert!(
            check(&got, &row),
            "{name}: {what}: {} bytes, {:.300}",
            got.len,
            got.text()
        );
    }
    let next = post(&proxy.url("/fm-ok/v1/messages"), &format!("fm-ok-after-{name}"), BODY).await;
    assert_eq!(
        next.ok().and_then(|g| g.status),
        Some(200),
        "{name}: alive, the next request is served"
    );
    rids
}
