//! Anthropic Messages streams: upstream events into internal [`Event`]s (thinking and server
//! tool blocks skipped, input usage from `message_start` merged with `message_delta`'s), and
//! internal events out as Anthropic events for a client.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{stop_reason, stop_str, Block, RawUsage, UsageOut};
use crate::provider::Dialect;
use crate::translate::error;
use crate::translate::form::{Event, StopReason, Usage};
use crate::translate::jsonw::write_str;
use crate::translate::stream::StreamMeta;

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(rename = "type")]
    kind: Option<String>,
    message: Option<Start>,
    index: Option<u64>,
    #[serde(borrow)]
    content_block: Option<Block<'a>>,
    delta: Option<Delta>,
    usage: Option<RawUsage>,
}

#[derive(Deserialize)]
struct Start {
    id: Option<String>,
    model: Option<String>,
    usage: Option<RawUsage>,
}

#[derive(Deserialize)]
struct Delta {
    text: Option<String>,
    partial_json: Option<String>,
    stop_reason: Option<String>,
}

/// Reads an upstream Anthropic stream. Blocks come one at a time: only the current one is
/// remembered (its upstream index, and its internal index when it is text or tool_use).
#[derive(Default)]
pub(in crate::translate) struct Decoder {
    usage: RawUsage,
    current: Option<(u64, Option<usize>)>,
    next: usize,
}

impl Decoder {
    pub(in crate::translate) fn event(&mut self, name: &[u8], data: &[u8], out: &mut Vec<Event>) {
        let Ok(d) = serde_json::from_slice::<Data>(data) else {
            return;
        };
        // The event name and the data's `type` agree; the name wins when both are present.
        let kind = if name.is_empty() {
            d.kind.as_deref().unwrap_or("").as_bytes()
        } else {
            name
        };
        match kind {
            b"message_start" => {
                let start = d.message.unwrap_or(Start {
                    id: None,
                    model: None,
                    usage: None,
                });
                self.usage.merge(&start.usage.unwrap_or_default());
                let usage = self.usage.usage();
                out.push(Event::Start {
                    id: start.id,
                    model: start.model,
                    usage,
                });
            }
            b"content_block_start" => self.block_start(d, out),
            b"content_block_delta" => self.block_delta(d, out),
            b"content_block_stop" => {
                if let Some((upstream, internal)) = self.current.take() {
                    match internal {
                        Some(index) if d.index.is_none_or(|i| i == upstream) => out.push(Event::BlockStop { index }),
                        _ => {}
                    }
                }
            }
            b"message_delta" => {
                self.usage.merge(&d.usage.unwrap_or_default());
                let stop = d.delta.and_then(|x| x.stop_reason).map(|s| stop_reason(&s));
                let usage = Some(self.usage.usage());
                out.push(Event::Delta { stop, usage });
            }
            b"message_stop" => out.push(Event::Done),
            b"error" => out.push(Event::Error(error::in_band(Dialect::Anthropic, data))),
            _ => {} // ping, unknown events
        }
    }

    fn block_start(&mut self, d: Data, out: &mut Vec<Event>) {
        let upstream = d.index.unwrap_or(0);
        let Some(block) = d.content_block else { return };
        let internal = match block.kind.as_deref() {
            Some("text") | Some("tool_use") => Some(self.next),
            _ => None, // thinking, redacted_thinking, server tool blocks
        };
        self.current = Some((upstream, internal));
        let Some(index) = internal else { return };
        self.next += 1;
        if block.kind.as_deref() == Some("text") {
            let text = block.text.unwrap_or_default();
            out.push(Event::Text { index, text });
            return;
        }
        let id = block.id.unwrap_or_default();
        let name = block.name.unwrap_or_default();
        out.push(Event::ToolStart { index, id, name });
        // The input is streamed as deltas; a complete one given up front is sent as one.
        if let Some(input) = block.input.filter(|i| i.as_object().is_some_and(|o| !o.is_empty())) {
            let fragment = input.to_string();
            out.push(Event::ToolArgs { index, fragment });
        }
    }

    fn block_delta(&mut self, d: Data, out: &mut Vec<Event>) {
        // A text delta without its block's start (upstreams that skip it) opens a text block.
        let implicit = self.current.is_none() && d.delta.as_ref().is_some_and(|x| x.text.is_some());
        if implicit {
            self.current = Some((d.index.unwrap_or(0), Some(self.next)));
            self.next += 1;
        }
        let Some((upstream, Some(index))) = self.current else {
            return;
        };
        if d.index.is_some_and(|i| i != upstream) {
            return;
        }
        let Some(delta) = d.delta else { return };
        if let Some(text) = delta.text {
            out.push(Event::Text { index, text });
        } else if let Some(fragment) = delta.partial_json.filter(|f| !f.is_empty()) {
            out.push(Event::ToolArgs { index, fragment });
        }
    }
}

/// Writes a stream for an Anthropic client. Internal block indices are dense from 0 and used
/// as they are; `message_delta` waits for the end, when the usage is complete.
pub(in crate::translate) struct Encoder {
    id: String,
    model: String,
    started: bool,
    open: Option<usize>,
    /// Blocks started so far (the next new block index).
    next: usize,
    called: bool,
    stop: Option<StopReason>,
    usage: Usage,
}

impl Encoder {
    pub(in crate::translate) fn new(meta: &StreamMeta) -> Encoder {
        Encoder {
            id: meta.id.clone(),
            model: meta.model.clone(),
            started: false,
            open: None,
            next: 0,
            called: false,
            stop: None,
            usage: Usage::default(),
        }
    }

    pub(in crate::translate) fn event(&mut self, event: Event, out: &mut Vec<u8>) {
        if let Event::Error(info) = &event {
            error::write_stream_error(Dialect::Anthropic, info, out);
            return;
        }
        if let Event::Start { usage, .. } = &event {
            self.usage.merge(usage);
        }
        self.start(out);
        match event {
            Event::Text { index, text } => {
                // An empty text only opens its block (the upstream's content_block_start).
                if self.enter(index, out, || json!({"type": "text", "text": ""})) && !text.is_empty() {
                    let mut data = format!(
                        r#"{{"type":"content_block_delta","index":{index},"delta":{{"type":"text_delta","text":"#
                    )
                    .into_bytes();
                    write_str(&mut data, &text);
                    data.extend_from_slice(b"}}");
                    sse(out, "content_block_delta", &data);
                }
            }
            Event::ToolStart { index, id, name } => {
                self.called = true;
                self.enter(
                    index,
                    out,
                    || json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                );
            }
            Event::ToolArgs { index, fragment } => {
                if index < self.next {
                    let mut data = format!(r#"{{"type":"content_block_delta","index":{index},"delta":{{"type":"input_json_delta","partial_json":"#).into_bytes();
                    write_str(&mut data, &fragment);
                    data.extend_from_slice(b"}}");
                    sse(out, "content_block_delta", &data);
                }
            }
            Event::BlockStop { index } if self.open == Some(index) => self.close(out),
            Event::Delta { stop, usage } => {
                self.stop = stop.or(self.stop);
                if let Some(u) = usage {
                    self.usage.merge(&u);
                }
            }
            Event::Done => self.done(out),
            Event::Start { .. } | Event::BlockStop { .. } | Event::Error(_) => {}
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let message = json!({
            "type": "message_start",
            "message": {
                "id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": [],
                "stop_reason": null, "stop_sequence": null, "usage": UsageOut::from(&self.usage),
            },
        });
        sse(out, "message_start", message.to_string().as_bytes());
    }

    /// Make `index` the open block, starting it (as `block()`) when it is new. False when it
    /// is an older block (out of order upstream): a text delta for it cannot be placed.
    fn enter(&mut self, index: usize, out: &mut Vec<u8>, block: impl FnOnce() -> Value) -> bool {
        if self.open == Some(index) {
            return true;
        }
        if index < self.next {
            return false;
        }
        self.close(out);
        self.open = Some(index);
        self.next = index + 1;
        let data = json!({"type": "content_block_start", "index": index, "content_block": block()});
        sse(out, "content_block_start", data.to_string().as_bytes());
        true
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some(index) = self.open.take() {
            let data = format!(r#"{{"type":"content_block_stop","index":{index}}}"#);
            sse(out, "content_block_stop", data.as_bytes());
        }
    }

    fn done(&mut self, out: &mut Vec<u8>) {
        self.close(out);
        let fallback = if self.called {
            StopReason::ToolCalls
        } else {
            StopReason::Stop
        };
        let delta = json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_str(self.stop.unwrap_or(fallback)), "stop_sequence": null},
            "usage": UsageOut::from(&self.usage),
        });
        sse(out, "message_delta", delta.to_string().as_bytes());
        sse(out, "message_stop", br#"{"type":"message_stop"}"#);
    }
}

fn sse(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
}
