//! Gemini streams (`streamGenerateContent?alt=sse`): upstream chunks into internal [`Event`]s
//! (function calls arrive whole: start, one arguments fragment, stop; usage is cumulative on
//! every chunk), and internal events out as Gemini chunks.

use serde_json::{json, Value};

use super::{call_id, stop_reason, stop_str, usage, usage_json};
use crate::provider::Dialect;
use crate::translate::error;
use crate::translate::form::{Event, StopReason, Usage};
use crate::translate::stream::StreamMeta;

/// Reads an upstream Gemini stream. Gemini has no end marker: the chunk with a finishReason
/// is the last word, and the stream is complete when the upstream ends after it.
#[derive(Default)]
pub(in crate::translate) struct Decoder {
    started: bool,
    text: Option<usize>,
    next: usize,
    calls: usize,
    finished: bool,
}

impl Decoder {
    pub(in crate::translate) fn event(&mut self, data: &[u8], out: &mut Vec<Event>) {
        let Ok(v) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        if v.get("error").is_some_and(|e| !e.is_null()) {
            out.push(Event::Error(error::in_band(Dialect::Gemini, data)));
            return;
        }
        let usage = v.get("usageMetadata").map(usage);
        let response_id = v.get("responseId").and_then(Value::as_str);
        if !self.started {
            self.started = true;
            out.push(Event::Start {
                id: response_id.map(String::from),
                model: v.get("modelVersion").and_then(Value::as_str).map(String::from),
                usage: usage.unwrap_or_default(),
            });
        }
        let candidate = v.get("candidates").and_then(Value::as_array).and_then(|c| c.first());
        let parts = candidate.and_then(|c| c.get("content")).and_then(|c| c.get("parts"));
        for part in parts.and_then(Value::as_array).into_iter().flatten() {
            self.part(part, response_id, out);
        }
        let reason = candidate.and_then(|c| c.get("finishReason")).and_then(Value::as_str);
        // A blocked prompt gets no candidate at all, only the reason: that is the end too.
        let blocked = candidate.is_none() && v.pointer("/promptFeedback/blockReason").is_some();
        if reason.is_some() || blocked {
            self.close_text(out);
            self.finished = true;
        }
        let stop = match reason {
            Some(r) => Some(stop_reason(r, self.calls > 0)),
            None => blocked.then_some(StopReason::ContentFilter),
        };
        if stop.is_some() || usage.is_some() {
            out.push(Event::Delta { stop, usage });
        }
    }

    fn part(&mut self, part: &Value, response_id: Option<&str>, out: &mut Vec<Event>) {
        if part.get("thought").and_then(Value::as_bool) == Some(true) {
            return;
        }
        if let Some(text) = part.get("text").and_then(Value::as_str).filter(|t| !t.is_empty()) {
            let index = match self.text {
                Some(index) => index,
                None => {
                    let index = self.next;
                    self.next += 1;
                    self.text = Some(index);
                    index
                }
            };
            out.push(Event::Text {
                index,
                text: text.to_string(),
            });
        } else if let Some(call) = part.get("functionCall") {
            self.close_text(out);
            let index = self.next;
            self.next += 1;
            let own = call.get("id").and_then(Value::as_str);
            let id = call_id(own, response_id, self.calls);
            self.calls += 1;
            let name = call.get("name").and_then(Value::as_str).unwrap_or("").to_string();
            out.push(Event::ToolStart { index, id, name });
            let fragment = call.get("args").map_or_else(|| "{}".into(), Value::to_string);
            out.push(Event::ToolArgs { index, fragment });
            out.push(Event::BlockStop { index });
        }
    }

    fn close_text(&mut self, out: &mut Vec<Event>) {
        if let Some(index) = self.text.take() {
            out.push(Event::BlockStop { index });
        }
    }

    /// The upstream ended: complete after a finishReason, cut short otherwise.
    pub(in crate::translate) fn end(&mut self, out: &mut Vec<Event>) -> bool {
        self.close_text(out);
        if self.finished {
            out.push(Event::Done);
        }
        self.finished
    }
}

/// Writes a stream for a Gemini-speaking client (for completeness; no front door speaks
/// Gemini). A function call is held until its block stops, since Gemini sends calls whole.
pub(in crate::translate) struct Encoder {
    id: String,
    model: String,
    /// The call being received: block index, name, arguments so far.
    call: Option<(usize, String, String)>,
    stop: Option<StopReason>,
    usage: Usage,
}

impl Encoder {
    pub(in crate::translate) fn new(meta: &StreamMeta) -> Encoder {
        Encoder {
            id: meta.id.clone(),
            model: meta.model.clone(),
            call: None,
            stop: None,
            usage: Usage::default(),
        }
    }

    pub(in crate::translate) fn event(&mut self, event: Event, out: &mut Vec<u8>) {
        match event {
            Event::Error(info) => error::write_stream_error(Dialect::Gemini, &info, out),
            Event::Text { text, .. } if !text.is_empty() => self.chunk(out, json!([{ "text": text }]), None),
            Event::ToolStart { index, name, .. } => self.call = Some((index, name, String::new())),
            Event::ToolArgs { index, fragment } => match &mut self.call {
                Some((i, _, args)) if *i == index => args.push_str(&fragment),
                _ => {}
            },
            Event::BlockStop { index } if self.call.as_ref().is_some_and(|c| c.0 == index) => {
                if let Some((_, name, args)) = self.call.take() {
                    let args = crate::translate::anthropic::input_object(&args);
                    self.chunk(out, json!([{ "functionCall": { "name": name, "args": args } }]), None);
                }
            }
            Event::Delta { stop, usage } => {
                self.stop = stop.or(self.stop);
                if let Some(u) = usage {
                    self.usage.merge(&u);
                }
            }
            Event::Start { usage, .. } => self.usage.merge(&usage),
            Event::Done => {
                let reason = stop_str(self.stop.unwrap_or(StopReason::Stop));
                self.chunk(out, json!([]), Some(reason));
            }
            Event::Text { .. } | Event::BlockStop { .. } => {}
        }
    }

    fn chunk(&self, out: &mut Vec<u8>, parts: Value, finish: Option<&str>) {
        let mut candidate = json!({"content": {"role": "model", "parts": parts}, "index": 0});
        let mut chunk = json!({"candidates": [], "modelVersion": self.model, "responseId": self.id});
        if let (Some(reason), Some(c), Some(o)) = (finish, candidate.as_object_mut(), chunk.as_object_mut()) {
            c.insert("finishReason".into(), reason.into());
            o.insert("usageMetadata".into(), usage_json(&self.usage));
        }
        if let Some(o) = chunk.as_object_mut() {
            o.insert("candidates".into(), json!([candidate]));
        }
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(chunk.to_string().as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
    }
}
