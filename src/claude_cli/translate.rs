//! The translator of [`super`] (the events module): fed one stdout line at a time, it writes the
//! SSE for it at once (streaming) or keeps the text (JSON); its end is in `finish.rs`.

use std::time::SystemTime;

use serde_json::{json, Value};

#[path = "finish.rs"]
mod finish;

use super::{epoch, sanitize, AssistantLine, Head, Init, RateLimitLine, ResultLine, StreamLine, MAX_JSON_TEXT};

/// One run's translation. Its state is a few flags and ids: lines are handled as they come and
/// never kept (a JSON answer keeps its text, up to [`MAX_JSON_TEXT`]).
pub struct Translator {
    stream: bool,
    id: String,
    requested_model: Option<String>,
    model: Option<String>,
    /// `message_start` was written (streaming) / the model produced output.
    started: bool,
    next_index: usize,
    /// The streamed text block open now: (its index upstream, its index here).
    open: Option<(u64, usize)>,
    /// The id of the message whose text came as partials (its `assistant` line is skipped).
    streamed: Option<String>,
    texts: Vec<String>,
    text_bytes: usize,
    too_long: bool,
    emitted_text: bool,
    session_id: Option<String>,
    limited: bool,
    limit_reset: Option<SystemTime>,
    /// The text of an error the CLI reported as an assistant message (sanitized).
    error_text: Option<String>,
    result: Option<ResultLine>,
}

impl Translator {
    /// `stream`: write SSE; else build one JSON body. `model`: the requested model, named in the
    /// answer until the API's own name for it is seen.
    pub fn new(stream: bool, model: Option<&str>) -> Self {
        let bytes: [u8; 12] = rand::random();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Translator {
            stream,
            id: format!("msg_cli_{hex}"),
            requested_model: model.map(str::to_string),
            model: None,
            started: false,
            next_index: 0,
            open: None,
            streamed: None,
            texts: Vec::new(),
            text_bytes: 0,
            too_long: false,
            emitted_text: false,
            session_id: None,
            limited: false,
            limit_reset: None,
            error_text: None,
            result: None,
        }
    }

    /// The message id the client sees.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether SSE was written (the response status is then committed).
    pub fn started(&self) -> bool {
        self.started
    }

    /// Handle one stdout line (without its newline); SSE for it is appended to `out`. Lines that
    /// are not JSON, or not understood, are skipped.
    pub fn line(&mut self, line: &[u8], out: &mut Vec<u8>) {
        let Ok(head) = serde_json::from_slice::<Head>(line) else {
            return;
        };
        if head.parent_tool_use_id.is_some() {
            return;
        }
        match head.kind.as_str() {
            "system" if head.subtype.as_deref() == Some("init") => {
                if let Ok(init) = serde_json::from_slice::<Init>(line) {
                    self.session_id = init.session_id.or(self.session_id.take());
                }
            }
            "rate_limit_event" => {
                if let Ok(r) = serde_json::from_slice::<RateLimitLine>(line) {
                    if r.rate_limit_info.status.as_deref() == Some("rejected") {
                        self.limited = true;
                        self.limit_reset = r.rate_limit_info.resets_at.and_then(epoch).or(self.limit_reset);
                    }
                }
            }
            "assistant" => self.assistant(line, out),
            "stream_event" if self.stream => self.stream_event(line, out),
            "result" => self.result = serde_json::from_slice(line).ok().or(self.result.take()),
            _ => {}
        }
    }

    fn assistant(&mut self, line: &[u8], out: &mut Vec<u8>) {
        let Ok(a) = serde_json::from_slice::<AssistantLine>(line) else {
            return;
        };
        if let Some(kind) = a.error.as_deref() {
            self.limited |= kind == "rate_limit";
            if self.error_text.is_none() {
                let parts: Vec<&str> = a.message.content.iter().filter_map(|b| b.text.as_deref()).collect();
                self.error_text = Some(sanitize(&parts.join(" ")));
            }
            return;
        }
        if a.message.model.as_deref() == Some("<synthetic>") {
            return;
        }
        if self.model.is_none() {
            self.model = a.message.model;
        }
        if self.stream && a.message.id.is_some() && a.message.id == self.streamed {
            return;
        }
        for block in a.message.content {
            if let ("text", Some(t)) = (block.kind.as_str(), block.text) {
                self.whole_text(&t, out);
            }
        }
    }

    fn stream_event(&mut self, line: &[u8], out: &mut Vec<u8>) {
        let Ok(StreamLine { event: ev }) = serde_json::from_slice::<StreamLine>(line) else {
            return;
        };
        match ev.kind.as_str() {
            "message_start" => {
                self.close_open(out);
                if let Some(m) = ev.message {
                    self.model = self.model.take().or(m.model);
                    self.streamed = m.id;
                }
                self.start(out);
            }
            "content_block_start" => {
                self.close_open(out);
                let (Some(i), Some(block)) = (ev.index, ev.content_block) else {
                    return;
                };
                if block.kind != "text" {
                    return;
                }
                self.start(out);
                let k = self.open_block(out);
                self.open = Some((i, k));
                if let Some(t) = block.text.filter(|t| !t.is_empty()) {
                    self.delta(out, k, &t);
                }
            }
            "content_block_delta" => {
                let (Some(i), Some(d)) = (ev.index, ev.delta) else {
                    return;
                };
                if let (Some((open, k)), "text_delta", Some(t)) = (self.open, d.kind.as_str(), d.text) {
                    if open == i {
                        self.delta(out, k, &t);
                    }
                }
            }
            "content_block_stop" if self.open.is_some_and(|(open, _)| Some(open) == ev.index) => self.close_open(out),
            _ => {}
        }
    }

    fn model_name(&self) -> &str {
        self.model
            .as_deref()
            .or(self.requested_model.as_deref())
            .unwrap_or("claude")
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        if self.stream {
            let message = json!({
                "id": self.id, "type": "message", "role": "assistant", "model": self.model_name(),
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": { "input_tokens": 0, "output_tokens": 0 },
            });
            sse(
                out,
                "message_start",
                &json!({ "type": "message_start", "message": message }),
            );
        }
    }

    fn open_block(&mut self, out: &mut Vec<u8>) -> usize {
        let k = self.next_index;
        self.next_index += 1;
        let block = json!({ "type": "text", "text": "" });
        sse(
            out,
            "content_block_start",
            &json!({ "type": "content_block_start", "index": k, "content_block": block }),
        );
        k
    }

    fn delta(&mut self, out: &mut Vec<u8>, k: usize, text: &str) {
        self.emitted_text |= !text.is_empty();
        let delta = json!({ "type": "text_delta", "text": text });
        sse(
            out,
            "content_block_delta",
            &json!({ "type": "content_block_delta", "index": k, "delta": delta }),
        );
    }

    fn close_open(&mut self, out: &mut Vec<u8>) {
        if let Some((_, k)) = self.open.take() {
            sse(
                out,
                "content_block_stop",
                &json!({ "type": "content_block_stop", "index": k }),
            );
        }
    }

    /// A whole text block: three events when streaming, kept text otherwise.
    fn whole_text(&mut self, text: &str, out: &mut Vec<u8>) {
        if text.is_empty() {
            return;
        }
        if self.stream {
            self.start(out);
            let k = self.open_block(out);
            self.delta(out, k, text);
            sse(
                out,
                "content_block_stop",
                &json!({ "type": "content_block_stop", "index": k }),
            );
            return;
        }
        self.started = true;
        self.emitted_text = true;
        if self.text_bytes + text.len() > MAX_JSON_TEXT {
            self.too_long = true;
            return;
        }
        self.text_bytes += text.len();
        self.texts.push(text.to_string());
    }
}

fn sse(out: &mut Vec<u8>, name: &str, data: &Value) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
#[path = "translate_tests.rs"]
mod tests;
