//! The per-response meter, fed from the response body filter. JSON bodies are kept as the
//! chunks that already exist (no copy) and read once at the end; SSE is framed as it passes and
//! only the events that carry usage are parsed. Nothing is held back, except in one mode: when the
//! sidecar asked an OpenAI stream for usage on the client's behalf, the usage-only event is
//! removed, so an event split across chunks waits for its end.

use bytes::Bytes;

use super::sse::{Frame, Framer};
use super::{Event, Reading, Source};
use crate::provider::Provider;

/// JSON bodies larger than this are not read for usage (usage source `none`).
const MAX_JSON: usize = 8 * 1024 * 1024;

/// Reads one response's usage, model, and in-band errors as its body passes, chunk by chunk.
pub struct Meter {
    provider: &'static dyn Provider,
    reading: Reading,
    mode: Mode,
    /// The upstream gzipped its answer: usage is read from the inflated bytes (the client gets
    /// the bytes as sent). `None` inside after a corrupt stream.
    gunzip: Option<Option<Box<flate2::write::GzDecoder<Vec<u8>>>>>,
    /// First content event seen (the response is committed from here).
    pub saw_content: bool,
    /// An in-band error arrived before any content.
    pub error_before_content: bool,
    /// The provider's end-of-stream marker passed (`[DONE]`, `message_stop`).
    pub saw_done: bool,
}

enum Mode {
    Json { parts: Vec<Bytes>, size: usize },
    Sse { framer: Framer, strip: Option<Strip> },
}

/// Bytes of the current, unfinished event (strip mode only).
#[derive(Default)]
struct Strip {
    pending: Vec<u8>,
    /// The current event grew past the limit: its bytes are passed on as they come (it is no
    /// usage-only chunk), whatever it turns out to be.
    passing: bool,
}

impl Strip {
    /// Frame `chunk`, removing usage-only events; `None` when it passes untouched.
    fn feed(
        &mut self,
        framer: &mut Framer,
        chunk: &Bytes,
        note: &mut dyn FnMut(&[u8], &[u8]) -> Event,
    ) -> Option<Bytes> {
        let max = framer.limit();
        // `out` stays `None` while the output is exactly a prefix of `chunk`.
        let mut out: Option<Vec<u8>> = None;
        let mut start = 0; // where the current event's bytes begin in `chunk`
        framer.feed_frames(chunk, &mut |frame, end| {
            let keep = match frame {
                Frame::Event { name, data } => note(name, data) != Event::UsageOnly || self.passing,
                Frame::Oversized => true,
            };
            self.passing = false;
            if !(keep && out.is_none() && self.pending.is_empty()) {
                let buf = out.get_or_insert_with(|| chunk[..start].to_vec());
                if keep {
                    buf.extend_from_slice(&self.pending);
                    buf.extend_from_slice(&chunk[start..end]);
                }
                self.pending.clear();
            }
            start = end;
        });
        // Whatever follows the last complete event waits for the event's end, up to the event
        // limit; past it, it is passed on.
        let rest = &chunk[start..];
        if self.passing || self.pending.len() + rest.len() > max {
            self.passing = true;
            let buf = out.get_or_insert_with(|| chunk[..start].to_vec());
            buf.extend_from_slice(&self.pending);
            buf.extend_from_slice(rest);
            self.pending = Vec::new();
            start = chunk.len();
        } else {
            self.pending.extend_from_slice(rest);
        }
        match out {
            Some(buf) => Some(Bytes::from(buf)),
            None if start < chunk.len() => Some(chunk.slice(..start)),
            None => None, // the chunk passes untouched
        }
    }
}

impl Meter {
    /// `sse`: the response is an event stream. `strip_usage_only`: remove usage-only events.
    /// `max_event`: the most bytes of one event kept (`limits.max_sse_event_bytes`).
    pub fn new(provider: &'static dyn Provider, sse: bool, strip_usage_only: bool, max_event: usize) -> Self {
        let mode = if sse {
            Mode::Sse {
                framer: Framer::with_limit(max_event),
                strip: strip_usage_only.then(Strip::default),
            }
        } else {
            Mode::Json {
                parts: Vec::new(),
                size: 0,
            }
        };
        Meter {
            provider,
            reading: Reading::default(),
            mode,
            gunzip: None,
            saw_content: false,
            error_before_content: false,
            saw_done: false,
        }
    }

    /// Read usage from the gzip-inflated body (the chunks themselves pass unchanged; usage-only
    /// events are not removed).
    pub fn gunzip(mut self) -> Self {
        if let Mode::Sse { strip, .. } = &mut self.mode {
            *strip = None;
        }
        self.gunzip = Some(Some(Box::new(flate2::write::GzDecoder::new(Vec::new()))));
        self
    }

    /// Observe one body chunk; in strip mode it may be rewritten.
    pub fn feed(&mut self, body: &mut Option<Bytes>) {
        if self.gunzip.is_some() {
            let Some(chunk) = body.as_ref() else { return };
            // Inflate in small steps so one chunk never expands into a large buffer.
            for piece in chunk.chunks(1024) {
                let Some(Some(dec)) = self.gunzip.as_mut() else { return };
                match std::io::Write::write_all(dec, piece).and_then(|()| std::io::Write::flush(dec)) {
                    Ok(()) => {
                        let plain = std::mem::take(dec.get_mut());
                        if !plain.is_empty() {
                            self.observe(&mut Some(Bytes::from(plain)));
                        }
                    }
                    Err(_) => self.gunzip = Some(None), // corrupt: stop reading; what was read stays
                }
            }
            return;
        }
        self.observe(body);
    }

    fn observe(&mut self, body: &mut Option<Bytes>) {
        let Some(chunk) = body.as_ref() else { return };
        let (provider, reading) = (self.provider, &mut self.reading);
        let mut flags = Flags {
            saw_content: &mut self.saw_content,
            error_before_content: &mut self.error_before_content,
            saw_done: &mut self.saw_done,
        };
        match &mut self.mode {
            Mode::Json { parts, size } => {
                *size += chunk.len();
                if *size <= MAX_JSON {
                    parts.push(chunk.clone());
                } else {
                    parts.clear();
                }
            }
            Mode::Sse { framer, strip: None } => {
                framer.feed(chunk, &mut |name, data, _| {
                    flags.note(provider.sse_event(name, data, reading))
                });
            }
            Mode::Sse {
                framer,
                strip: Some(strip),
            } => {
                let note = &mut |name: &[u8], data: &[u8]| {
                    let event = provider.sse_event(name, data, reading);
                    flags.note(event);
                    event
                };
                if let Some(out) = strip.feed(framer, chunk, note) {
                    *body = Some(out);
                }
            }
        }
    }

    /// The kind of the error reported inside the stream, if any (the reading stays).
    pub fn in_band_error(&self) -> Option<String> {
        self.reading.error.clone()
    }

    /// Bytes still held in strip mode when the stream ends (an unfinished event).
    pub fn take_pending(&mut self) -> Option<Bytes> {
        match &mut self.mode {
            Mode::Sse { strip: Some(s), .. } if !s.pending.is_empty() => {
                Some(Bytes::from(std::mem::take(&mut s.pending)))
            }
            _ => None,
        }
    }

    /// SSE events that went over the event limit (passed through unmetered).
    pub fn oversized(&self) -> u64 {
        match &self.mode {
            Mode::Sse { framer, .. } => framer.oversized(),
            Mode::Json { .. } => 0,
        }
    }

    /// Whether a JSON body was too large to be read for usage.
    pub fn too_large(&self) -> bool {
        matches!(self.mode, Mode::Json { size, .. } if size > MAX_JSON)
    }

    /// The reading and how it is known, once the response is over.
    pub fn finish(&mut self) -> (Reading, Source) {
        if let Mode::Json { parts, .. } = &mut self.mode {
            if !parts.is_empty() {
                let joined;
                let body: &[u8] = if parts.len() == 1 {
                    &parts[0]
                } else {
                    joined = parts.concat();
                    &joined
                };
                self.provider.json_usage(body, &mut self.reading);
                parts.clear();
            }
        }
        let reading = std::mem::take(&mut self.reading);
        let source = if reading.usage.is_empty() {
            Source::None
        } else if reading.complete {
            Source::Reported
        } else {
            Source::Partial
        };
        (reading, source)
    }
}

struct Flags<'a> {
    saw_content: &'a mut bool,
    error_before_content: &'a mut bool,
    saw_done: &'a mut bool,
}

impl Flags<'_> {
    fn note(&mut self, event: Event) {
        match event {
            Event::Content => *self.saw_content = true,
            Event::Error if !*self.saw_content => *self.error_before_content = true,
            Event::Done => *self.saw_done = true,
            _ => {}
        }
    }
}
