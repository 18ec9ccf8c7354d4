//! Streams translated event by event as they arrive, never buffered whole: upstream bytes are
//! framed as SSE, each event decoded into internal [`Event`]s by the upstream dialect's decoder
//! and written out at once by the client dialect's encoder.

use super::form::{ErrorInfo, Event};
use super::{anthropic, gemini, openai};
use crate::provider::Dialect;
use crate::usage::sse::Framer;

/// What the client is told about the streamed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamMeta {
    /// The id every chunk or message carries.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// The model name the client asked for.
    pub model: String,
    /// OpenAI clients: send the usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
}

enum Decoder {
    Anthropic(anthropic::stream::Decoder),
    OpenAi(openai::stream::Decoder),
    Gemini(gemini::stream::Decoder),
}

enum Encoder {
    Anthropic(anthropic::stream::Encoder),
    OpenAi(openai::stream::Encoder),
    Gemini(gemini::stream::Encoder),
}

/// Translates one streamed answer from the upstream's dialect to the client's. Memory is one
/// SSE event (in the framer) plus a little state per tool call.
pub struct StreamTranslator {
    framer: Framer,
    decoder: Decoder,
    encoder: Encoder,
    /// Events of the SSE event being translated (reused).
    events: Vec<Event>,
    /// The end marker or an error went out: nothing more is written.
    ended: bool,
}

impl StreamTranslator {
    /// A translator from the upstream dialect `from` to the client dialect `to`.
    pub fn new(from: Dialect, to: Dialect, meta: StreamMeta) -> StreamTranslator {
        let decoder = match from {
            Dialect::Anthropic => Decoder::Anthropic(Default::default()),
            Dialect::OpenAi => Decoder::OpenAi(Default::default()),
            Dialect::Gemini => Decoder::Gemini(Default::default()),
        };
        let encoder = match to {
            Dialect::Anthropic => Encoder::Anthropic(anthropic::stream::Encoder::new(&meta)),
            Dialect::OpenAi => Encoder::OpenAi(openai::stream::Encoder::new(&meta)),
            Dialect::Gemini => Encoder::Gemini(gemini::stream::Encoder::new(&meta)),
        };
        StreamTranslator {
            framer: Framer::default(),
            decoder,
            encoder,
            events: Vec::new(),
            ended: false,
        }
    }

    /// Keep at most `max` bytes of one upstream event (a longer one is skipped).
    pub fn with_event_limit(mut self, max: usize) -> StreamTranslator {
        self.framer = Framer::with_limit(max);
        self
    }

    /// Translate one chunk of upstream bytes (split anywhere), appending to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let StreamTranslator {
            framer,
            decoder,
            encoder,
            events,
            ended,
        } = self;
        framer.feed(chunk, &mut |name, data, _| {
            if *ended {
                return;
            }
            match decoder {
                Decoder::Anthropic(d) => d.event(name, data, events),
                Decoder::OpenAi(d) => d.event(data, events),
                Decoder::Gemini(d) => d.event(data, events),
            }
            pump(encoder, events, ended, out);
        });
    }

    /// The upstream ended: close what is open. Without the upstream's end marker the client
    /// gets an error event in its dialect rather than a clean stop.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        let complete = match &mut self.decoder {
            Decoder::Gemini(d) => d.end(&mut self.events),
            // Had their end marker come, the translator would have ended with it.
            Decoder::Anthropic(_) | Decoder::OpenAi(_) => false,
        };
        if !complete {
            self.events.push(Event::Error(ErrorInfo {
                status: 502,
                kind: "api_error".into(),
                message: "the upstream stream ended before its end marker".into(),
            }));
        }
        pump(&mut self.encoder, &mut self.events, &mut self.ended, out);
        self.ended = true;
    }
}

#[cfg(test)]
impl StreamTranslator {
    /// Room held for decoded events: one SSE event's worth, however long the stream.
    pub(super) fn held_events(&self) -> usize {
        self.events.capacity()
    }
}

/// Hand the decoded events to the encoder, up to and including the first that ends the stream.
fn pump(encoder: &mut Encoder, events: &mut Vec<Event>, ended: &mut bool, out: &mut Vec<u8>) {
    for event in events.drain(..) {
        if *ended {
            continue;
        }
        *ended = matches!(event, Event::Done | Event::Error(_));
        match encoder {
            Encoder::Anthropic(e) => e.event(event, out),
            Encoder::OpenAi(e) => e.event(event, out),
            Encoder::Gemini(e) => e.event(event, out),
        }
    }
}
