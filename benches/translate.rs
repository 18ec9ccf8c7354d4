//! Criterion benches for the front doors' translation: a 1 KB OpenAI request decoded and encoded
//! for an Anthropic target, and a 20-event Anthropic stream translated into OpenAI chunks (whole
//! and in network-sized pieces).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a bench may stop on a broken fixture
#![allow(missing_docs)] // `criterion_group!` defines an undocumented `pub fn benches` and takes no attributes

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use llm_sidecar::provider::Dialect;
use llm_sidecar::translate::{self, EncodeOpts, StreamMeta, StreamTranslator};

/// An OpenAI Chat Completions request of about `bytes` bytes: a system prompt, a user turn, a tool.
fn openai_request(bytes: usize) -> Vec<u8> {
    let text = "lorem ipsum dolor sit amet ".repeat(bytes / 27 + 1);
    serde_json::to_vec(&serde_json::json!({
        "model": "smart", "stream": true, "temperature": 0.2, "max_tokens": 512,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}],
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
    }))
    .unwrap()
}

fn anthropic_events(deltas: usize) -> Vec<u8> {
    let mut s = String::from("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":1200,\"cache_read_input_tokens\":5000,\"output_tokens\":1}}}\n\n");
    s.push_str("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
    for i in 0..deltas {
        s.push_str(&format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"token {i} \"}}}}\n\n"));
    }
    s.push_str("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n");
    s.push_str("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":500}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    s.into_bytes()
}

fn requests(c: &mut Criterion) {
    let body = openai_request(1024);
    let opts = EncodeOpts {
        default_max_tokens: 4096,
        keep_extra: false,
    };
    let mut g = c.benchmark_group("translate_request");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("openai_1KB_to_anthropic", |b| {
        b.iter(|| {
            let chat = translate::decode_request(Dialect::OpenAi, &body).unwrap();
            translate::encode_request(Dialect::Anthropic, &chat, "claude-sonnet-4-5", &opts).unwrap()
        })
    });
    g.bench_function("passthrough_1KB_model_rewritten", |b| {
        b.iter(|| translate::passthrough(&body, "gpt-4.1", &translate::DOOR_FIELDS).unwrap())
    });
    g.finish();
}

fn streams(c: &mut Criterion) {
    let stream = anthropic_events(16); // 20 events in all
    let meta = StreamMeta {
        id: "chatcmpl-1".into(),
        created: 1,
        model: "smart".into(),
        include_usage: true,
    };
    let mut g = c.benchmark_group("translate_stream");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("anthropic_20_events_to_openai", |b| {
        b.iter(|| {
            let mut t = StreamTranslator::new(Dialect::Anthropic, Dialect::OpenAi, meta.clone());
            let mut out = Vec::with_capacity(stream.len() * 2);
            t.feed(&stream, &mut out);
            t.finish(&mut out);
            out
        })
    });
    g.bench_function("anthropic_20_events_to_openai_in_1400B_pieces", |b| {
        b.iter(|| {
            let mut t = StreamTranslator::new(Dialect::Anthropic, Dialect::OpenAi, meta.clone());
            let mut out = Vec::with_capacity(stream.len() * 2);
            for piece in stream.chunks(1400) {
                t.feed(piece, &mut out);
            }
            t.finish(&mut out);
            out
        })
    });
    g.finish();
}

criterion_group!(benches, requests, streams);
criterion_main!(benches);
