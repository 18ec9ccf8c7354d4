#![no_main]
//! translate_stream: a `StreamTranslator` for every (upstream, client) dialect pair never panics
//! on any bytes cut anywhere; its output does not depend on where the chunks were cut (whole, cut,
//! byte by byte); nothing is written after the end; and the output is linear in the input: at
//! most `PER_BYTE` bytes per input byte plus `FIXED`.
//!
//! The bound: the most an input byte can cost is an OpenAI upstream chunk listing tool calls
//! `[{},{},...]` (3 bytes per call, each a new call with a generated id): about 230-260 bytes out
//! per call (Anthropic: a `content_block_stop` and a `content_block_start`; OpenAI: one chunk with
//! its id/model prefix), so under 90 per byte. Text is re-escaped at most byte for byte; numbers in
//! Gemini arguments at most ~5x. The start, the end marker and the usage chunk are `FIXED`. A
//! quadratic blow-up (say, re-sending what was accumulated on every event) passes this bound on
//! inputs of a few KiB.
//!
//! Input: see `llm_sidecar_fuzz::Input`; empty chunks are left out here (the framer's handling of
//! them is `sse_meter`'s). Flags: bit 0, the OpenAI client asked for the usage chunk; bit 7, also
//! run with an event limit of `(flags & 0x7e) * 8` bytes (no-panic and bound only).

use libfuzzer_sys::fuzz_target;
use llm_sidecar::provider::Dialect;
use llm_sidecar::translate::{StreamMeta, StreamTranslator};
use llm_sidecar_fuzz::{bytewise, Input, DIALECTS};

const PER_BYTE: usize = 128;
const FIXED: usize = 8 << 10;

fn translate(from: Dialect, to: Dialect, include_usage: bool, limit: Option<usize>, chunks: &[&[u8]]) -> Vec<u8> {
    let meta = StreamMeta {
        id: "chatcmpl-fuzz".into(),
        created: 1_750_000_000,
        model: "front-model".into(),
        include_usage,
    };
    let mut t = StreamTranslator::new(from, to, meta);
    if let Some(max) = limit {
        t = t.with_event_limit(max);
    }
    let mut out = Vec::new();
    for chunk in chunks {
        t.feed(chunk, &mut out);
    }
    t.finish(&mut out);
    let mut after = Vec::new();
    t.finish(&mut after);
    t.feed(
        b"data: [DONE]\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        &mut after,
    );
    assert!(
        after.is_empty(),
        "{from:?} -> {to:?}: written after the end: {:?}",
        String::from_utf8_lossy(&after)
    );
    out
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::parse(data) else {
        return;
    };
    let body = input.body;
    let include_usage = input.flags & 1 != 0;
    let cut = input.chunks(false);
    let bytes = bytewise(body);
    let bound = PER_BYTE * body.len() + FIXED;
    // One (upstream, client) pair per input, picked by the body's length (which the fuzzer
    // varies freely): every pair on every input ran at under 100 inputs a second.
    let pairs: Vec<(Dialect, Dialect)> = DIALECTS
        .iter()
        .flat_map(|&f| DIALECTS.iter().map(move |&t| (f, t)))
        .collect();
    let (from, to) = pairs[body.len() % pairs.len()];
    {
        {
            let whole = translate(from, to, include_usage, None, &[body]);
            assert!(
                whole.len() <= bound,
                "{from:?} -> {to:?}: {} bytes out of {} in",
                whole.len(),
                body.len()
            );
            for (what, chunks) in [("cut", &cut[..]), ("bytewise", &bytes[..])] {
                let got = translate(from, to, include_usage, None, chunks);
                assert!(
                    got == whole,
                    "{from:?} -> {to:?}: {what} gives other bytes:\n{}\nwhole:\n{}",
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&whole)
                );
            }
            if input.flags & 0x80 != 0 {
                let max = usize::from(input.flags & 0x7e) * 8;
                let limited = translate(from, to, include_usage, Some(max), &cut);
                assert!(
                    limited.len() <= bound,
                    "{from:?} -> {to:?}, events limited to {max}: {} bytes out of {} in",
                    limited.len(),
                    body.len()
                );
            }
        }
    }
});
