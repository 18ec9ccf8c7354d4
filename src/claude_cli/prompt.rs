//! The prompt a run writes on the CLI's stdin: one stream-json user message, the shape the Agent
//! SDK writes (`{"type":"user","session_id":"","message":{"role":"user","content":[...]},
//! "parent_tool_use_id":null}`). A new session gets the whole conversation folded into it; a
//! resumed one only the latest user turn, since the CLI keeps the rest. Images pass through as
//! image blocks (stream-json input takes Messages API content).

use serde_json::{json, Value};

use super::conf::SessionState;
use super::fields::Invalid;

/// The stdin bytes for `messages` (the request's field), with `context` (the `@` mentions of the
/// context files) after the query.
pub fn stdin(messages: Option<&Value>, session: &SessionState, context: &str) -> Result<Vec<u8>, Invalid> {
    let messages = messages
        .and_then(Value::as_array)
        .ok_or_else(|| Invalid::new("messages: must be an array"))?;
    let resume = matches!(session, SessionState::Resume { .. });
    let last = latest_user(messages, resume)?;
    let history = if resume {
        &[][..]
    } else {
        messages.get(..last).unwrap_or_default()
    };
    let mut b = Blocks::default();
    fold(&mut b, history)?;
    let mut query = Blocks::default();
    if let Some(latest) = messages.get(last) {
        content(&mut query, latest, last, true)?;
    }
    if query.is_empty() {
        return Err(Invalid::new("query cannot be empty"));
    }
    if !history.is_empty() {
        b.text("\n\nCurrent query: ");
    }
    b.append(query);
    if !context.is_empty() {
        b.text("\n\n");
        b.raw_text(context);
    }
    let line = json!({
        "type": "user",
        "session_id": "",
        "message": { "role": "user", "content": b.finish() },
        "parent_tool_use_id": null,
    });
    let mut out = line.to_string().into_bytes();
    out.push(b'\n');
    Ok(out)
}

/// The index of the latest user message, which must be the last message (no prefill).
fn latest_user(messages: &[Value], resume: bool) -> Result<usize, Invalid> {
    let last = messages
        .iter()
        .rposition(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .ok_or_else(|| {
            Invalid::new(if resume {
                "Cannot resume session: no user messages found in conversation"
            } else {
                "messages: no user message found"
            })
        })?;
    if last + 1 < messages.len() {
        return Err(Invalid::new(format!(
            "messages[{}]: a final assistant message (prefill) is not supported",
            last + 1
        )));
    }
    Ok(last)
}

/// Earlier turns as `User: ...` / `Assistant: ...`, a blank line apart.
fn fold(b: &mut Blocks, history: &[Value]) -> Result<(), Invalid> {
    for (i, m) in history.iter().enumerate() {
        let user = match m.get("role").and_then(Value::as_str) {
            Some("user") => true,
            Some("assistant") => false,
            _ => {
                return Err(Invalid::new(format!(
                    "messages[{i}].role: must be \"user\" or \"assistant\""
                )))
            }
        };
        if i > 0 {
            b.text("\n\n");
        }
        b.text(if user { "User: " } else { "Assistant: " });
        content(b, m, i, user)?;
    }
    Ok(())
}

/// Add a message's content: text (defused) and, from user turns, images; thinking is skipped.
fn content(b: &mut Blocks, m: &Value, i: usize, user: bool) -> Result<(), Invalid> {
    match m.get("content") {
        Some(Value::String(s)) => b.client_text(s),
        Some(Value::Array(blocks)) => {
            let mut texts = 0;
            for (j, block) in blocks.iter().enumerate() {
                let kind = block.get("type").and_then(Value::as_str).unwrap_or("");
                let field = format!("messages[{i}].content[{j}]");
                match kind {
                    "text" => {
                        let text = block.get("text").and_then(Value::as_str);
                        let text = text.ok_or_else(|| Invalid::new(format!("{field}.text: must be a string")))?;
                        if texts > 0 {
                            b.text("\n");
                        }
                        texts += 1;
                        b.client_text(text);
                    }
                    "image" if user => b.image(image(block, &field)?),
                    "thinking" | "redacted_thinking" if !user => {}
                    _ => {
                        return Err(Invalid::new(format!(
                            "{field}: {kind:?} blocks are not supported by the claude-cli upstream"
                        )))
                    }
                }
            }
        }
        _ => {
            return Err(Invalid::new(format!(
                "messages[{i}].content: must be a string or an array"
            )))
        }
    }
    Ok(())
}

/// An image block reduced to what the CLI needs: a base64 or URL source.
fn image(block: &Value, field: &str) -> Result<Value, Invalid> {
    let source = block.get("source").filter(|s| s.is_object());
    let kind = source.and_then(|s| s.get("type")).and_then(Value::as_str);
    let ok = match (kind, source) {
        (Some("base64"), Some(s)) => {
            s.get("media_type").is_some_and(Value::is_string) && s.get("data").is_some_and(Value::is_string)
        }
        (Some("url"), Some(s)) => s.get("url").is_some_and(Value::is_string),
        _ => false,
    };
    match source {
        Some(s) if ok => Ok(json!({ "type": "image", "source": s })),
        _ => Err(Invalid::new(format!(
            "{field}.source: must be a base64 or url image source"
        ))),
    }
}

/// Content blocks under construction: adjacent text merges into one block.
#[derive(Default)]
struct Blocks {
    done: Vec<Value>,
    text: String,
    /// Any non-blank text or an image so far.
    substance: bool,
}

impl Blocks {
    fn text(&mut self, s: &str) {
        self.text.push_str(s);
    }

    fn raw_text(&mut self, s: &str) {
        self.text.push_str(s);
        self.substance |= !s.trim().is_empty();
    }

    /// Client text, defused: Claude Code reads `@path` mentions as files to attach, and a prompt
    /// opening with `/` as a command. A zero-width space before such an `@` or `/` keeps the text
    /// as the model reads it but out of those parsers (only sidecar-checked paths get attached).
    fn client_text(&mut self, s: &str) {
        let at_start = self.done.is_empty() && self.text.trim().is_empty();
        let mut prev_space = self.text.chars().next_back().is_none_or(mention_boundary);
        let mut leading = at_start;
        for c in s.chars() {
            if (c == '@' && prev_space) || (c == '/' && leading) {
                self.text.push('\u{200b}');
            }
            leading &= c.is_whitespace();
            prev_space = mention_boundary(c);
            self.text.push(c);
        }
        self.substance |= !s.trim().is_empty();
    }

    fn image(&mut self, image: Value) {
        self.flush();
        self.done.push(image);
        self.substance = true;
    }

    fn append(&mut self, other: Blocks) {
        self.substance |= other.substance;
        for block in other.done {
            match block.get("text").and_then(Value::as_str) {
                Some(text) if block.get("type").and_then(Value::as_str) == Some("text") => self.text.push_str(text),
                _ => {
                    self.flush();
                    self.done.push(block);
                }
            }
        }
        self.text.push_str(&other.text);
    }

    fn is_empty(&self) -> bool {
        !self.substance
    }

    fn flush(&mut self) {
        if !self.text.is_empty() {
            let text = std::mem::take(&mut self.text);
            self.done.push(json!({ "type": "text", "text": text }));
        }
    }

    fn finish(mut self) -> Vec<Value> {
        self.flush();
        self.done
    }
}

/// What may precede an `@` mention in Claude Code's parser: whitespace or CJK punctuation.
fn mention_boundary(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{3002}' | '\u{3001}' | '\u{ff1f}' | '\u{ff01}')
}

#[cfg(test)]
#[path = "prompt_tests.rs"]
mod tests;
