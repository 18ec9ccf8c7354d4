//! OpenAI chat completion streams: upstream chunks (`[DONE]`, the usage-only chunk with
//! `choices: []`, in-band `error`) into internal [`Event`]s, and internal events out as chunks
//! for a client (role first, tool calls by ordinal, finish, usage, `[DONE]`).

use serde::Deserialize;
use serde_json::Value;

use super::{stop_reason, stop_str, usage, write_usage};
use crate::provider::Dialect;
use crate::translate::error;
use crate::translate::form::{Event, StopReason, Usage};
use crate::translate::jsonw::write_str;
use crate::translate::jsonw::JsonOut;
use crate::translate::stream::StreamMeta;

#[derive(Deserialize)]
struct Chunk {
    id: Option<String>,
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<Value>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    index: u64,
    delta: Option<Delta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    content: Option<String>,
    refusal: Option<String>,
    tool_calls: Option<Vec<CallDelta>>,
}

#[derive(Deserialize)]
struct CallDelta {
    index: Option<u64>,
    id: Option<String>,
    function: Option<FunctionDelta>,
}

#[derive(Deserialize)]
struct FunctionDelta {
    name: Option<String>,
    arguments: Option<String>,
}

/// Reads an upstream OpenAI stream. Text and tool calls become blocks numbered in order of
/// arrival; a tool call's ordinal keeps its block (per-call state, nothing else grows).
#[derive(Default)]
pub(in crate::translate) struct Decoder {
    started: bool,
    /// The block receiving deltas now.
    open: Option<usize>,
    /// Whether the open block is text.
    open_is_text: bool,
    next: usize,
    /// (upstream tool call index, block index) for every call seen.
    calls: Vec<(u64, usize)>,
}

impl Decoder {
    pub(in crate::translate) fn event(&mut self, data: &[u8], out: &mut Vec<Event>) {
        if data == b"[DONE]" {
            self.close(out);
            out.push(Event::Done);
            return;
        }
        let Ok(chunk) = serde_json::from_slice::<Chunk>(data) else {
            return;
        };
        if chunk.error.as_ref().is_some_and(|e| !e.is_null()) {
            out.push(Event::Error(error::in_band(Dialect::OpenAi, data)));
            return;
        }
        if !self.started {
            self.started = true;
            out.push(Event::Start {
                id: chunk.id,
                model: chunk.model,
                usage: Usage::default(),
            });
        }
        let mut stop = None;
        // One answer is asked for (n > 1 is refused): the first choice.
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            if let Some(delta) = choice.delta {
                self.delta(delta, out);
            }
            if let Some(reason) = choice.finish_reason {
                self.close(out);
                stop = Some(stop_reason(&reason));
            }
        }
        let usage = chunk.usage.filter(Value::is_object).map(|u| usage(&u));
        if stop.is_some() || usage.is_some() {
            out.push(Event::Delta { stop, usage });
        }
    }

    fn delta(&mut self, delta: Delta, out: &mut Vec<Event>) {
        for text in [delta.content, delta.refusal].into_iter().flatten() {
            if text.is_empty() {
                continue;
            }
            let index = match self.open {
                Some(index) if self.open_is_text => index,
                _ => {
                    self.close(out);
                    let index = self.next;
                    self.next += 1;
                    self.open = Some(index);
                    self.open_is_text = true;
                    index
                }
            };
            out.push(Event::Text { index, text });
        }
        for (position, call) in delta.tool_calls.into_iter().flatten().enumerate() {
            let ordinal = call.index.unwrap_or(position as u64);
            let function = call.function;
            let (name, arguments) = function.map_or((None, None), |f| (f.name, f.arguments));
            let index = match self.calls.iter().find(|(o, _)| *o == ordinal) {
                Some((_, index)) => *index,
                None => {
                    self.close(out);
                    let index = self.next;
                    self.next += 1;
                    self.calls.push((ordinal, index));
                    self.open = Some(index);
                    self.open_is_text = false;
                    let id = call.id.unwrap_or_else(|| format!("call_{ordinal}"));
                    let name = name.unwrap_or_default();
                    out.push(Event::ToolStart { index, id, name });
                    index
                }
            };
            if let Some(fragment) = arguments.filter(|a| !a.is_empty()) {
                out.push(Event::ToolArgs { index, fragment });
            }
        }
    }

    fn close(&mut self, out: &mut Vec<Event>) {
        if let Some(index) = self.open.take() {
            out.push(Event::BlockStop { index });
        }
    }
}

/// Writes a stream for an OpenAI client. The finish and usage chunks wait for the end, since
/// an upstream may report its usage after its stop reason.
pub(in crate::translate) struct Encoder {
    /// `data: {"id":..,"object":"chat.completion.chunk","created":..,"model":..,"choices":[`
    prefix: Vec<u8>,
    include_usage: bool,
    started: bool,
    /// Block index of each tool call, by ordinal.
    calls: Vec<usize>,
    stop: Option<StopReason>,
    usage: Usage,
}

impl Encoder {
    pub(in crate::translate) fn new(meta: &StreamMeta) -> Encoder {
        let mut prefix = b"data: {\"id\":".to_vec();
        write_str(&mut prefix, &meta.id);
        prefix.extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"created\":");
        prefix.extend_from_slice(meta.created.to_string().as_bytes());
        prefix.extend_from_slice(b",\"model\":");
        write_str(&mut prefix, &meta.model);
        prefix.extend_from_slice(b",\"choices\":[");
        Encoder {
            prefix,
            include_usage: meta.include_usage,
            started: false,
            calls: Vec::new(),
            stop: None,
            usage: Usage::default(),
        }
    }

    pub(in crate::translate) fn event(&mut self, event: Event, out: &mut Vec<u8>) {
        if let Event::Error(info) = &event {
            error::write_stream_error(Dialect::OpenAi, info, out);
            return;
        }
        if !self.started {
            self.started = true;
            self.choice(out, br#"{"role":"assistant","content":""}"#, None);
        }
        match event {
            Event::Text { text, .. } if !text.is_empty() => {
                let mut delta = br#"{"content":"#.to_vec();
                write_str(&mut delta, &text);
                delta.push(b'}');
                self.choice(out, &delta, None);
            }
            Event::ToolStart { index, id, name } => {
                let ordinal = self.calls.len();
                self.calls.push(index);
                let mut delta = format!(r#"{{"tool_calls":[{{"index":{ordinal},"id":"#).into_bytes();
                write_str(&mut delta, &id);
                delta.extend_from_slice(br#","type":"function","function":{"name":"#);
                write_str(&mut delta, &name);
                delta.extend_from_slice(br#","arguments":""}}]}"#);
                self.choice(out, &delta, None);
            }
            Event::ToolArgs { index, fragment } => {
                let Some(ordinal) = self.calls.iter().position(|b| *b == index) else {
                    return;
                };
                let mut delta =
                    format!(r#"{{"tool_calls":[{{"index":{ordinal},"function":{{"arguments":"#).into_bytes();
                write_str(&mut delta, &fragment);
                delta.extend_from_slice(b"}}]}");
                self.choice(out, &delta, None);
            }
            Event::Delta { stop, usage } => {
                self.stop = stop.or(self.stop);
                if let Some(u) = usage {
                    self.usage.merge(&u);
                }
            }
            Event::Start { usage, .. } => self.usage.merge(&usage),
            Event::Done => self.done(out),
            Event::Text { .. } | Event::BlockStop { .. } | Event::Error(_) => {}
        }
    }

    fn done(&mut self, out: &mut Vec<u8>) {
        let fallback = if self.calls.is_empty() {
            StopReason::Stop
        } else {
            StopReason::ToolCalls
        };
        let finish = stop_str(self.stop.unwrap_or(fallback));
        self.choice(out, b"{}", Some(finish));
        if self.include_usage {
            out.extend_from_slice(&self.prefix);
            out.extend_from_slice(b"],\"usage\":");
            write_usage(&mut JsonOut::new(out), &self.usage);
            out.extend_from_slice(b"}\n\n");
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
    }

    /// One chunk with one choice: `delta` is written as it is.
    fn choice(&self, out: &mut Vec<u8>, delta: &[u8], finish: Option<&str>) {
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(br#"{"index":0,"delta":"#);
        out.extend_from_slice(delta);
        out.extend_from_slice(br#","finish_reason":"#);
        match finish {
            Some(f) => write_str(out, f),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b"}]}\n\n");
    }
}
