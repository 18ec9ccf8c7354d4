#![no_main]
//! sse_meter: the SSE framer and the usage meter never panic, for any provider and any bytes cut
//! anywhere (empty chunks included, as the proxy may be handed one); the framer never hands out an
//! event larger than its limit and counts every oversized one; and when the limit leaves room for
//! every event, the chunk boundaries change nothing: the same events, the same reading (usage,
//! model, completeness, in-band error, source, content/error/done flags) whole, cut, byte by byte
//! or gzipped, and in strip mode the client gets exactly the events minus the usage-only ones.
//!
//! Input: see `llm_sidecar_fuzz::Input`. Flags: bit 7 clear, the limit is the body's length (no
//! event can need more: what an event keeps is at most the bytes since its start); bit 7 set, the
//! limit is `(flags & 0x3f) * 4` bytes and only the no-panic and limit properties are checked.
//! Bit 6 (not part of the limit): the gzipped body goes through the meter too.

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use llm_sidecar::provider::ProviderKind;
use llm_sidecar::usage::sse::{Frame, Framer};
use llm_sidecar::usage::{Event, Meter, Reading, Source};
use llm_sidecar_fuzz::{bytewise, gzip, Input, PROVIDERS};

/// Each event as (name, data), or `None` for an oversized one.
type Frames = Vec<Option<(Vec<u8>, Vec<u8>)>>;

/// What a framer with `limit` reports for `chunks`.
fn frames(limit: usize, chunks: &[&[u8]]) -> Frames {
    let mut f = Framer::with_limit(limit);
    assert_eq!(f.limit(), limit);
    let mut got: Frames = Vec::new();
    for chunk in chunks {
        f.feed_frames(chunk, &mut |frame, end| {
            assert!(end <= chunk.len(), "event end {end} past its chunk ({})", chunk.len());
            match frame {
                Frame::Event { name, data } => {
                    assert!(
                        name.len() + data.len() <= limit,
                        "an event of {} + {} bytes out of a framer limited to {limit}",
                        name.len(),
                        data.len()
                    );
                    got.push(Some((name.to_vec(), data.to_vec())));
                }
                Frame::Oversized => got.push(None),
            }
        });
    }
    let oversized = got.iter().filter(|g| g.is_none()).count() as u64;
    assert_eq!(f.oversized(), oversized, "oversized events counted once each");
    got
}

/// One response through a meter.
struct Run {
    reading: Reading,
    source: Source,
    /// The bytes the client received.
    out: Vec<u8>,
    /// saw_content, error_before_content, saw_done.
    flags: (bool, bool, bool),
    oversized: u64,
}

fn meter(kind: ProviderKind, strip: bool, gzipped: bool, limit: usize, chunks: &[&[u8]]) -> Run {
    let mut m = Meter::new(kind.get(), true, strip, limit);
    if gzipped {
        m = m.gunzip();
    }
    let mut out = Vec::new();
    for chunk in chunks {
        let mut body = Some(Bytes::copy_from_slice(chunk));
        m.feed(&mut body);
        out.extend_from_slice(body.as_deref().unwrap_or_default());
    }
    if let Some(rest) = m.take_pending() {
        out.extend_from_slice(&rest);
    }
    let oversized = m.oversized();
    let (reading, source) = m.finish();
    Run {
        reading,
        source,
        out,
        flags: (m.saw_content, m.error_before_content, m.saw_done),
        oversized,
    }
}

fn assert_same(kind: ProviderKind, a: &Run, b: &Run, what: &str) {
    let r = (&a.reading, &b.reading);
    assert_eq!(r.0.usage, r.1.usage, "{kind:?} usage, {what}");
    assert_eq!(r.0.model, r.1.model, "{kind:?} model, {what}");
    assert_eq!(r.0.complete, r.1.complete, "{kind:?} complete, {what}");
    assert_eq!(r.0.error, r.1.error, "{kind:?} in-band error, {what}");
    assert_eq!(a.source, b.source, "{kind:?} usage source, {what}");
    assert_eq!(a.flags, b.flags, "{kind:?} content/error/done flags, {what}");
}

/// `events` without the ones the provider calls usage-only (what strip mode removes).
fn kept(kind: ProviderKind, events: &Frames) -> Frames {
    let p = kind.get();
    events
        .iter()
        .filter(|e| match e {
            Some((name, data)) => p.sse_event(name, data, &mut Reading::default()) != Event::UsageOnly,
            None => true,
        })
        .cloned()
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::parse(data) else {
        return;
    };
    let body = input.body;
    let roomy = input.flags & 0x80 == 0;
    let limit = if roomy {
        body.len()
    } else {
        usize::from(input.flags & 0x3f) * 4
    };
    let cut = input.chunks(true);
    let bytes = bytewise(body);
    let whole: [&[u8]; 1] = [body];
    let chunkings: [(&str, &[&[u8]]); 3] = [("whole", &whole[..]), ("cut", &cut[..]), ("bytewise", &bytes[..])];

    // The framer alone.
    let events = frames(limit, &whole);
    for (what, chunks) in &chunkings[1..] {
        let got = frames(limit, chunks);
        if roomy {
            assert!(got == events, "other events when {what}: {got:?} vs {events:?}");
        }
    }
    if roomy {
        assert!(events.iter().all(Option::is_some), "an event over a roomy limit");
    }

    // One provider per input, picked by the body's length (which the fuzzer varies freely):
    // every provider on every input ran at under 100 inputs a second.
    if let Some(kind) = PROVIDERS.get(body.len() % PROVIDERS.len()).copied() {
        // Metering only: the client gets the bytes as sent.
        let plain = meter(kind, false, false, limit, &whole);
        assert!(plain.out == body, "{kind:?}: metering changed the bytes");
        for (what, chunks) in &chunkings[1..] {
            let run = meter(kind, false, false, limit, chunks);
            assert!(run.out == body, "{kind:?}: metering changed the bytes ({what})");
            if roomy {
                assert_same(kind, &plain, &run, what);
                assert_eq!(run.oversized, 0, "{kind:?}: oversized under a roomy limit ({what})");
            }
        }
        // Through gzip on inputs with flag bit 6 (compressing is the costliest step).
        if input.flags & 0x40 != 0 {
            let gz = gzip(body);
            for (what, chunks) in [("gzip", vec![&gz[..]]), ("gzip cut", input.split(&gz, true))] {
                let run = meter(kind, false, true, limit, &chunks);
                assert!(run.out == gz, "{kind:?}: metering changed the gzipped bytes ({what})");
                if roomy {
                    assert_same(kind, &plain, &run, what);
                }
            }
        }

        // Strip mode: usage-only events removed, nothing else.
        let expected = roomy.then(|| kept(kind, &events));
        for (what, chunks) in &chunkings {
            let run = meter(kind, true, false, limit, chunks);
            assert!(run.out.len() <= body.len(), "{kind:?}: strip mode added bytes ({what})");
            if let Some(expected) = &expected {
                assert_same(kind, &plain, &run, what);
                let seen = frames(usize::MAX, &[&run.out[..]]);
                assert!(
                    &seen == expected,
                    "{kind:?}: the client's events in strip mode ({what}): {seen:?}, expected {expected:?}"
                );
            }
        }
    }
});
