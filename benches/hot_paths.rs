//! Criterion benches for the hot functions on the request path: JSON validation, the SSE usage
//! meter, the JSON usage reader, account selection and the upstream header rewrite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a bench may stop on a broken fixture
#![allow(missing_docs)] // `criterion_group!` defines an undocumented `pub fn benches` and takes no attributes

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use http::header::HeaderValue;
use llm_sidecar::alloc::pick::{self as select, Walk};
use llm_sidecar::config::{parse_base_url, Account};
use llm_sidecar::provider::{AuthStyle, ProviderKind};
use llm_sidecar::proxy::inject;
use llm_sidecar::secret::Secret;
use llm_sidecar::sidecar::Sidecar;
use llm_sidecar::state::States;
use llm_sidecar::usage::Meter;
use llm_sidecar::{config, validate};
use pingora::http::RequestHeader;

fn request_body(kib: usize) -> Vec<u8> {
    let text = "lorem ipsum dolor sit amet ".repeat(kib * 1024 / 27 + 1);
    serde_json::to_vec(&serde_json::json!({
        "model": "claude-sonnet-5", "max_tokens": 1024, "stream": true,
        "metadata": {"user_id": "user_1"},
        "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
    }))
    .unwrap_or_default()
}

fn validation(c: &mut Criterion) {
    let mut g = c.benchmark_group("validate");
    for kib in [1, 64, 1024] {
        let body = request_body(kib);
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(format!("check_json_{kib}KiB"), |b| {
            b.iter(|| validate::check_json(&body, 64))
        });
    }
    g.finish();
}

fn anthropic_stream(deltas: usize) -> Vec<u8> {
    let mut s = String::from("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-sonnet-5\",\"usage\":{\"input_tokens\":1200,\"cache_read_input_tokens\":5000,\"output_tokens\":1}}}\n\n");
    for i in 0..deltas {
        s.push_str(&format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"token {i} \"}}}}\n\n"));
    }
    s.push_str("event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":500}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    s.into_bytes()
}

fn openai_stream(deltas: usize) -> Vec<u8> {
    let mut s = String::new();
    for i in 0..deltas {
        s.push_str(&format!("data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4.1\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"token {i} \"}}}}],\"usage\":null}}\n\n"));
    }
    s.push_str("data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":900,\"completion_tokens\":500}}\n\ndata: [DONE]\n\n");
    s.into_bytes()
}

/// The stream cut into network-sized chunks that split events anywhere.
fn chunks(stream: &[u8], size: usize) -> Vec<Bytes> {
    stream.chunks(size).map(Bytes::copy_from_slice).collect()
}

fn sse_meter(c: &mut Criterion) {
    let mut g = c.benchmark_group("sse_meter");
    for (name, kind, stream, strip) in [
        (
            "anthropic_500_events",
            ProviderKind::Anthropic,
            anthropic_stream(500),
            false,
        ),
        ("openai_500_events", ProviderKind::Openai, openai_stream(500), false),
        (
            "openai_500_events_strip",
            ProviderKind::Openai,
            openai_stream(500),
            true,
        ),
    ] {
        let parts = chunks(&stream, 1400);
        g.throughput(Throughput::Bytes(stream.len() as u64));
        g.bench_function(name, |b| {
            b.iter_batched(
                || parts.clone(),
                |parts| {
                    let mut m = Meter::new(kind.get(), true, strip, 1 << 20);
                    for p in parts {
                        let mut body = Some(p);
                        m.feed(&mut body);
                    }
                    m.finish()
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn json_usage(c: &mut Criterion) {
    let body = Bytes::from_static(br#"{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-5","content":[{"type":"text","text":"Hello! How can I help you today? Here is a longer answer with some more text in it."}],"stop_reason":"end_turn","usage":{"input_tokens":1200,"output_tokens":87,"cache_read_input_tokens":5000,"cache_creation_input_tokens":300}}"#);
    c.bench_function("json_usage_anthropic", |b| {
        b.iter(|| {
            let mut m = Meter::new(ProviderKind::Anthropic.get(), false, false, 1 << 20);
            let mut chunk = Some(body.clone());
            m.feed(&mut chunk);
            m.finish()
        })
    });
}

fn header_rewrite(c: &mut Criterion) {
    let account = Account {
        name: "team-a".into(),
        name_header: HeaderValue::from_static("team-a"),
        limits: llm_sidecar::config::AccountLimits {
            max_concurrent: None,
            max_queue: 1,
            queue_timeout: std::time::Duration::from_secs(1),
            rpm: None,
            tpm: None,
        },
        weight: 1.0,
        budget: None,
        upstream: parse_base_url("https://api.anthropic.com").expect("fixture"),
        credential: AuthStyle::XApiKey.header(&Secret::new("sk-ant-real")).expect("fixture"),
        state: Default::default(),
        metrics: Default::default(),
        cli: None,
    };
    let mut template = RequestHeader::build("POST", b"/anthropic/v1/messages", None).expect("fixture");
    for (n, v) in [
        ("host", "127.0.0.1:8080"),
        ("x-api-key", "placeholder"),
        ("anthropic-version", "2023-06-01"),
        ("content-type", "application/json"),
        ("content-length", "1234"),
        ("user-agent", "Anthropic/Python 2.13.0"),
        ("connection", "keep-alive"),
    ] {
        let _ = template.append_header(n, v);
    }
    let rid = HeaderValue::from_static("0123456789abcdef0123456789abcdef");
    c.bench_function("inject_rewrite", |b| {
        b.iter_batched(
            || template.clone(),
            |mut req| inject::rewrite(&mut req, &account, "/v1/messages", 1234, &rid),
            BatchSize::SmallInput,
        )
    });
}

/// `select::pick` on its fast path (a slot free), over pools of 2 and 8 accounts with budgets,
/// rpm and tpm limits and ledgers holding a week of spend; with and without a sticky session.
fn account_selection(c: &mut Criterion) {
    std::env::set_var("BENCH_SELECT_KEY", "sk-bench");
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let mut g = c.benchmark_group("select");
    for n in [2, 8] {
        let accounts: String = (0..n)
            .map(|i| {
                format!(
                    "      - {{ name: a{i}, base_url: \"http://127.0.0.1:9\", key_env: BENCH_SELECT_KEY, \
                     rpm: 100000, tpm: 100000000, budget: {{ weekly_usd: 1000, block_usd: 100 }} }}\n"
                )
            })
            .collect();
        let yaml = format!(
            "listen: \"127.0.0.1:1\"\nadmin: {{ listen: \"127.0.0.1:2\" }}\n\
             routes: [ {{ name: r, match: {{ path_prefix: /r }}, pool: p }} ]\n\
             pools:\n  p:\n    provider: anthropic\n    accounts:\n{accounts}"
        );
        let states = States::default();
        let snap = config::load_str(&yaml, &states).expect("bench config");
        let core = Sidecar::new(states, snap, None).expect("sidecar");
        let snap = core.snapshot();
        let now = llm_sidecar::clock::now_ms();
        for (i, a) in snap.pools[0].accounts.iter().enumerate() {
            for h in 0..168 {
                a.state
                    .ledger
                    .record(now - h * 3_600_000, 0.1 * (i + 1) as f64, 1000, 1);
            }
        }
        for (name, session) in [("no_session", None), ("session", Some("conversation-1"))] {
            g.bench_function(format!("pick_{n}_accounts_{name}"), |b| {
                b.iter(|| {
                    let mut walk = Walk::new(0);
                    rt.block_on(select::pick(&core.notifier, &snap, &mut walk, session, None))
                        .map(|p| p.account)
                })
            });
        }
    }
    g.finish();
}

criterion_group!(
    benches,
    validation,
    sse_meter,
    json_usage,
    account_selection,
    header_rewrite
);
criterion_main!(benches);
