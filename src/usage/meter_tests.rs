//! Metering fixtures per provider, with exact expected numbers, fed whole and split at every
//! byte, including the failure cases peers are known for.

use bytes::Bytes;

use super::{Event, Meter, Reading, Source, Usage};
use crate::provider::ProviderKind;
use crate::validate::check_json;

fn meter(kind: ProviderKind, sse: bool, strip: bool) -> Meter {
    Meter::new(kind.get(), sse, strip, 1 << 20)
}

/// Feed `chunks`; return what the client would receive and the final reading.
fn run(kind: ProviderKind, sse: bool, strip: bool, chunks: &[&[u8]]) -> (Vec<u8>, Reading, Source, Meter) {
    let mut m = meter(kind, sse, strip);
    let mut out = Vec::new();
    for c in chunks {
        let mut body = Some(Bytes::copy_from_slice(c));
        m.feed(&mut body);
        out.extend_from_slice(body.as_deref().unwrap_or_default());
    }
    if let Some(rest) = m.take_pending() {
        out.extend_from_slice(&rest);
    }
    let (reading, source) = m.finish();
    (out, reading, source, m)
}

/// Every split of `stream` into two chunks, and byte by byte, gives `expect`.
fn all_splits(kind: ProviderKind, strip: bool, stream: &[u8], expect: &Usage, expect_out: &[u8]) {
    let mut cases: Vec<Vec<&[u8]>> = (1..stream.len()).map(|i| vec![&stream[..i], &stream[i..]]).collect();
    cases.push(stream.chunks(1).collect());
    cases.push(vec![stream]);
    for chunks in cases {
        let (out, reading, _, _) = run(kind, true, strip, &chunks);
        assert_eq!(
            &reading.usage,
            expect,
            "usage with chunks of {:?}",
            chunks.iter().map(|c| c.len()).collect::<Vec<_>>()
        );
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(expect_out),
            "client bytes, split {:?}",
            chunks.iter().map(|c| c.len()).collect::<Vec<_>>()
        );
    }
}

const ANTHROPIC_STREAM: &str = concat!(
    "event: message_start\r\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude-sonnet-5\",",
    "\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":3,\"cache_read_input_tokens\":7,\"output_tokens\":1,",
    "\"cache_creation\":{\"ephemeral_5m_input_tokens\":1,\"ephemeral_1h_input_tokens\":2}}}}\r\n\r\n",
    ": keep-alive comment\r\n\r\n",
    "event: ping\r\ndata: {\"type\": \"ping\"}\r\n\r\n",
    "event: content_block_start\r\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\r\n\r\n",
    "event: content_block_delta\r\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\\\"usage\\\": 999\"}}\r\n\r\n",
    "event: content_block_stop\r\ndata: {\"type\":\"content_block_stop\",\"index\":0}\r\n\r\n",
    "event: message_delta\r\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}\r\n\r\n",
    "event: message_stop\r\ndata: {\"type\":\"message_stop\"}\r\n\r\n",
);

fn anthropic_expected() -> Usage {
    Usage {
        input: Some(25),
        output: Some(15),
        cache_read: Some(7),
        cache_write: Some(3),
        cache_write_1h: Some(2),
        ..Usage::default()
    }
}

#[test]
fn anthropic_stream_merges_message_start_and_message_delta() {
    let s = ANTHROPIC_STREAM.as_bytes();
    all_splits(ProviderKind::Anthropic, false, s, &anthropic_expected(), s);
    let (_, reading, source, m) = run(ProviderKind::Anthropic, true, false, &[s]);
    assert_eq!(reading.model.as_deref(), Some("claude-sonnet-5"));
    assert_eq!(source, Source::Reported);
    assert!(m.saw_content && !m.error_before_content);
}

#[test]
fn anthropic_cumulative_delta_totals_win_and_are_not_added() {
    // Server tools: message_delta repeats input and cache totals, larger than message_start's.
    let s = concat!(
        "event: message_start\ndata: {\"message\":{\"model\":\"claude-opus-5\",\"usage\":{\"input_tokens\":2679,\"cache_read_input_tokens\":0,\"output_tokens\":3}}}\n\n",
        "event: message_delta\ndata: {\"usage\":{\"input_tokens\":10682,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":510}}\n\n",
    );
    let (_, r, source, _) = run(ProviderKind::Anthropic, true, false, &[s.as_bytes()]);
    assert_eq!(
        (r.usage.input, r.usage.output, r.usage.cache_read),
        (Some(10682), Some(510), Some(0))
    );
    assert_eq!(source, Source::Reported);
}

#[test]
fn anthropic_stream_cut_after_message_start_is_partial_with_its_input() {
    let cut = ANTHROPIC_STREAM
        .split("event: content_block_delta")
        .next()
        .unwrap_or_default();
    let (_, r, source, _) = run(ProviderKind::Anthropic, true, false, &[cut.as_bytes()]);
    assert_eq!(source, Source::Partial, "no message_delta: partial");
    assert_eq!(
        (r.usage.input, r.usage.output, r.usage.cache_read),
        (Some(25), Some(1), Some(7)),
        "input from message_start kept"
    );
}

#[test]
fn anthropic_json_and_in_band_error() {
    let body = br#"{"id":"m","model":"claude-haiku-4-5","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":12,"output_tokens":5,"cache_read_input_tokens":100,"cache_creation_input_tokens":null}}"#;
    let (_, r, source, _) = run(ProviderKind::Anthropic, false, false, &[&body[..10], &body[10..]]);
    assert_eq!(
        r.usage,
        Usage {
            input: Some(12),
            output: Some(5),
            cache_read: Some(100),
            ..Usage::default()
        }
    );
    assert_eq!(
        (source, r.model.as_deref()),
        (Source::Reported, Some("claude-haiku-4-5"))
    );
    let err = "event: message_start\ndata: {\"message\":{\"usage\":{\"input_tokens\":9}}}\n\nevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    let (_, _, _, m) = run(ProviderKind::Anthropic, true, false, &[err.as_bytes()]);
    assert!(
        m.error_before_content && !m.saw_content,
        "in-band error before content is flagged"
    );
}

fn openai_chunk(content: &str) -> String {
    format!("data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4.1-2025-04-14\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{content}\"}}}}],\"usage\":null}}\n\n")
}

const OPENAI_USAGE: &str = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4.1-2025-04-14\",\"choices\":[],\"usage\":{\"prompt_tokens\":66,\"completion_tokens\":41,\"total_tokens\":107,\"prompt_tokens_details\":{\"cached_tokens\":32,\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0}}}\n\n";

fn openai_expected() -> Usage {
    Usage {
        input: Some(66),
        output: Some(41),
        cache_read: Some(32),
        input_includes_cache: true,
        ..Usage::default()
    }
}

#[test]
fn openai_stream_reads_the_usage_chunk_and_can_strip_it() {
    let stream = format!(
        "{}{}{}data: [DONE]\n\n",
        openai_chunk("Hel"),
        openai_chunk("lo"),
        OPENAI_USAGE
    );
    let s = stream.as_bytes();
    all_splits(ProviderKind::Openai, false, s, &openai_expected(), s);
    let stripped = format!("{}{}data: [DONE]\n\n", openai_chunk("Hel"), openai_chunk("lo"));
    all_splits(ProviderKind::Openai, true, s, &openai_expected(), stripped.as_bytes());
    let (_, r, source, _) = run(ProviderKind::Openai, true, true, &[s]);
    assert_eq!(
        (source, r.model.as_deref()),
        (Source::Reported, Some("gpt-4.1-2025-04-14"))
    );
}

#[test]
fn openai_stream_without_usage_reports_none_and_passes_untouched() {
    let stream = format!("{}{}data: [DONE]\n\n", openai_chunk("a"), openai_chunk("b"));
    let (out, r, source, _) = run(ProviderKind::Openai, true, true, &[stream.as_bytes()]);
    assert_eq!(
        (source, r.usage),
        (Source::None, Usage::default()),
        "never invent tokens"
    );
    assert_eq!(out, stream.as_bytes());
}

#[test]
fn openai_json_responses_api_and_openrouter_cost() {
    let chat = br#"{"model":"gpt-4.1","choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":11,"completion_tokens":4,"prompt_tokens_details":{"cached_tokens":3}}}"#;
    let (_, r, s, _) = run(ProviderKind::Openai, false, false, &[chat]);
    assert_eq!(
        (r.usage.input, r.usage.output, r.usage.cache_read, s),
        (Some(11), Some(4), Some(3), Source::Reported)
    );
    let resp = br#"{"id":"resp_1","model":"gpt-5","output":[],"usage":{"input_tokens":12033,"input_tokens_details":{"cached_tokens":11904},"output_tokens":44,"total_tokens":12077}}"#;
    let (_, r, _, _) = run(ProviderKind::Openai, false, false, &[resp]);
    assert_eq!(
        (r.usage.input, r.usage.cache_read, r.usage.output),
        (Some(12033), Some(11904), Some(44))
    );
    assert_eq!(r.usage.uncached_input(), 129, "cached tokens come out of the input");
    let sse = concat!(
        "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"model\":\"gpt-5\",\"usage\":null}}\n\n",
        "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\"}\n\n",
        "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"model\":\"gpt-5\",\"usage\":{\"input_tokens\":11,\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":18}}}\n\n",
    );
    let (_, r, s, m) = run(ProviderKind::Openai, true, false, &[sse.as_bytes()]);
    assert_eq!(
        (r.usage.input, r.usage.output, s),
        (Some(11), Some(18), Source::Reported)
    );
    assert!(m.saw_content);
    let router = br#"{"model":"anthropic/claude-sonnet-5","usage":{"prompt_tokens":194,"completion_tokens":2,"cost":0.95,"prompt_tokens_details":{"cached_tokens":0,"cache_write_tokens":100}}}"#;
    let (_, r, _, _) = run(ProviderKind::Openrouter, false, false, &[router]);
    assert_eq!(
        (r.usage.cost, r.usage.cache_write, r.usage.uncached_input()),
        (Some(0.95), Some(100), 94)
    );
    let keepalive = format!(": OPENROUTER PROCESSING\n\n{}", OPENAI_USAGE);
    let (out, r, _, _) = run(ProviderKind::Openrouter, true, false, &[keepalive.as_bytes()]);
    assert_eq!(
        (r.usage.input, out.len()),
        (Some(66), keepalive.len()),
        "comments pass and are ignored"
    );
}

#[test]
fn openai_in_band_error_chunk() {
    let s = "data: {\"id\":\"x\",\"error\":{\"code\":\"server_error\",\"message\":\"Provider disconnected\"},\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":\"error\"}]}\n\n";
    let (_, _, _, m) = run(ProviderKind::Openrouter, true, false, &[s.as_bytes()]);
    assert!(m.error_before_content, "error object in the first chunk");
}

#[test]
fn include_usage_is_added_only_when_needed() {
    let p = ProviderKind::Openai.get();
    let prep = |path: &str, body: &str| {
        let info = check_json(body.as_bytes(), 64).expect("json");
        let (out, strip) = p.prepare_body(path, &info, Bytes::copy_from_slice(body.as_bytes()));
        (String::from_utf8_lossy(&out).into_owned(), strip)
    };
    let (out, strip) = prep(
        "/v1/chat/completions",
        r#" {"model":"gpt-4.1","stream":true,"messages":[]}"#,
    );
    assert!(strip, "the sidecar asked: strip the usage chunk");
    let v: serde_json::Value = serde_json::from_str(&out).expect("still JSON");
    assert_eq!(v["stream_options"]["include_usage"], true);
    assert!(
        out.ends_with(r#""model":"gpt-4.1","stream":true,"messages":[]}"#),
        "client bytes kept: {out}"
    );
    let (out, strip) = prep(
        "/v1/chat/completions?x=1",
        r#"{"stream":true,"stream_options":{"include_obfuscation":false}}"#,
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert!(
        strip && v["stream_options"]["include_usage"] == true && v["stream_options"]["include_obfuscation"] == false,
        "{out}"
    );
    let (out, strip) = prep("/v1/chat/completions", r#"{"stream":true,"stream_options":null}"#);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert!(
        strip && v["stream_options"]["include_usage"] == true,
        "null options replaced, no duplicate key: {out}"
    );
    assert_eq!(out.matches("stream_options").count(), 1, "{out}");
    let asked = r#"{"stream":true,"stream_options":{"include_usage":true}}"#;
    assert_eq!(
        prep("/v1/chat/completions", asked),
        (asked.to_string(), false),
        "client asked itself: untouched"
    );
    // Bodies serde_json cannot re-serialise are still edited (on the bytes): a lone surrogate,
    // a number out of range.
    for odd in [r#""\ud800""#, "1e999999"] {
        let body = format!(r#"{{"stream":true,"stream_options":{{"include_usage":false}},"x":{odd}}}"#);
        let (out, strip) = prep("/v1/chat/completions", &body);
        assert!(strip, "metering kept for {odd}");
        assert!(
            out.contains(r#""stream_options":{"include_usage":true}"#) && out.contains(odd),
            "option set, rest untouched: {out}"
        );
    }
    let (out, strip) = prep(
        "/v1/chat/completions",
        r#"{"stream":true,"stream_options":{"include_usage":false,"include_usage":0}}"#,
    );
    assert!(
        strip && !out.contains("false") && out.matches(r#""include_usage":true"#).count() == 2,
        "every duplicate set to true: {out}"
    );
    let (out, _) = prep("/v1/chat/completions", r#"{"stream":true,"stream_options":{}}"#);
    assert!(
        out.contains(r#""stream_options":{"include_usage":true}}"#),
        "empty options: {out}"
    );
    let no_stream = r#"{"stream":false}"#;
    assert_eq!(prep("/v1/chat/completions", no_stream), (no_stream.to_string(), false));
    let responses = r#"{"stream":true}"#;
    assert_eq!(
        prep("/v1/responses", responses),
        (responses.to_string(), false),
        "Responses API always reports usage"
    );
}

#[test]
fn gemini_json_array_and_cumulative_stream() {
    let one = br#"{"candidates":[{"content":{"parts":[{"text":"hi"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":4,"cachedContentTokenCount":2,"thoughtsTokenCount":10,"totalTokenCount":23},"modelVersion":"gemini-2.5-flash"}"#;
    let (_, r, s, _) = run(ProviderKind::Gemini, false, false, &[one]);
    assert_eq!(
        r.usage,
        Usage {
            input: Some(9),
            output: Some(14),
            cache_read: Some(2),
            input_includes_cache: true,
            ..Usage::default()
        },
        "thinking counted as output"
    );
    assert_eq!((s, r.model.as_deref()), (Source::Reported, Some("gemini-2.5-flash")));
    let many = br#"[{"candidates":[{"content":{}}],"usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":1}},{"candidates":[{"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":7}}]"#;
    let (_, r, _, _) = run(ProviderKind::Gemini, false, false, &[many]);
    assert_eq!(
        (r.usage.input, r.usage.output),
        (Some(4), Some(7)),
        "array form: last chunk"
    );
    let chunk = |cand: u64, fin: bool| {
        let finish = if fin { ",\"finishReason\":\"STOP\"" } else { "" };
        format!("data: {{\"candidates\":[{{\"content\":{{\"parts\":[{{\"text\":\"x\"}}]}}{finish}}}],\"usageMetadata\":{{\"promptTokenCount\":4,\"candidatesTokenCount\":{cand},\"thoughtsTokenCount\":2042}}}}\r\n\r\n")
    };
    let stream = format!("{}{}{}", chunk(49, false), chunk(3000, false), chunk(5947, true));
    let expect = Usage {
        input: Some(4),
        output: Some(5947 + 2042),
        input_includes_cache: true,
        ..Usage::default()
    };
    all_splits(
        ProviderKind::Gemini,
        false,
        stream.as_bytes(),
        &expect,
        stream.as_bytes(),
    );
    let cut = format!("{}{}", chunk(49, false), chunk(3000, false));
    let (_, r, s, _) = run(ProviderKind::Gemini, true, false, &[cut.as_bytes()]);
    assert_eq!(
        (s, r.usage.output),
        (Source::Partial, Some(5042)),
        "cut before finishReason"
    );
}

#[test]
fn events_are_classified_for_the_preamble() {
    let mut r = Reading::default();
    let a = ProviderKind::Anthropic.get();
    assert_eq!(a.sse_event(b"ping", b"{}", &mut r), Event::Other);
    assert_eq!(a.sse_event(b"content_block_delta", b"{}", &mut r), Event::Content);
    assert_eq!(a.sse_event(b"message_stop", b"{}", &mut r), Event::Done);
    let o = ProviderKind::Openai.get();
    assert_eq!(o.sse_event(b"", b"[DONE]", &mut r), Event::Done);
}
