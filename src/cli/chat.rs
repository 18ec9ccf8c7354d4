//! `llm-sidecar chat`: an interactive REPL through the sidecar. It streams replies as they
//! arrive, keeps the conversation and an `x-session-id`, and understands /new, /model NAME,
//! /session, /see-json, /help, /quit. Line editing and history come from rustyline; Ctrl-C
//! cancels a reply, not the REPL; stream errors are shown, not swallowed.

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use pingora::http::RequestHeader;
use rustyline::error::ReadlineError;

use crate::config::parse_base_url;
use crate::outbound::Outbound;
use crate::provider::{ChatEvent, ProviderKind, Turn};
use crate::secret::Secret;
use crate::usage::sse::Framer;

pub struct Options {
    pub base: Option<String>,
    pub provider: ProviderKind,
    pub model: Option<String>,
}

struct Chat {
    base: String,
    provider: ProviderKind,
    model: String,
    session: String,
    turns: Vec<Turn>,
    last_raw: String,
    client: Outbound,
}

enum Failure {
    Cancelled,
    Failed(String),
}

const HELP: &str = "/new  new conversation and session\n/model NAME  use another model\n/session  show the session id\n/see-json  the last raw response\n/help  this\n/quit  leave (also Ctrl-D)";

fn new_session() -> String {
    format!("chat-{:016x}", rand::random::<u64>())
}

impl Chat {
    async fn reply(&mut self, out: &mut impl Write) -> Result<String, Failure> {
        let p = self.provider.get();
        let (path, body) = p.chat_request(&self.model, &self.turns);
        let target = parse_base_url(&self.base).map_err(Failure::Failed)?;
        let addr = target.addr().await.map_err(Failure::Failed)?;
        let t = Duration::from_secs(600);
        let timeouts = crate::config::Timeouts {
            connect: Duration::from_secs(5),
            first_byte: t,
            first_token: None,
            idle: t,
            total: t,
        };
        let peer = crate::peer::build(addr, &target, &timeouts);
        let full = format!("{}{path}", target.base_path);
        let body = Bytes::from(body.to_string());
        let req =
            request(&full, &target.host_header, self.provider, &self.session, body.len()).map_err(Failure::Failed)?;
        let mut stream = tokio::select! {
            s = self.client.open(&peer, req, Some(body), t) => s.map_err(Failure::Failed)?,
            _ = tokio::signal::ctrl_c() => return Err(Failure::Cancelled),
        };
        let mut raw = Vec::new();
        let mut text = String::new();
        let mut framer = Framer::default();
        let mut error = None;
        loop {
            let chunk = tokio::select! {
                c = stream.chunk() => c.map_err(Failure::Failed)?,
                _ = tokio::signal::ctrl_c() => return Err(Failure::Cancelled),
            };
            let Some(chunk) = chunk else { break };
            raw.extend_from_slice(&chunk);
            if stream.status != 200 {
                continue;
            }
            framer.feed(&chunk, &mut |name, data, _| match p.chat_event(name, data) {
                ChatEvent::Text(t) => {
                    let _ = write!(out, "{t}");
                    let _ = out.flush();
                    text.push_str(&t);
                }
                ChatEvent::Error(e) => error = Some(e),
                ChatEvent::Other => {}
            });
        }
        self.last_raw = String::from_utf8_lossy(&raw).into_owned();
        if stream.status != 200 {
            let v: serde_json::Value = serde_json::from_slice(&raw).unwrap_or_default();
            let message = crate::provider::error_message(&v).unwrap_or_else(|| self.last_raw.clone());
            return Err(Failure::Failed(format!("HTTP {}: {message}", stream.status)));
        }
        match error {
            Some(e) => Err(Failure::Failed(format!("the stream reported an error: {e}"))),
            None => Ok(text),
        }
    }
}

fn request(
    path: &str,
    host: &http::HeaderValue,
    provider: ProviderKind,
    session: &str,
    len: usize,
) -> Result<RequestHeader, String> {
    let e = |e: pingora::BError| e.to_string();
    let mut req = RequestHeader::build("POST", path.as_bytes(), None).map_err(e)?;
    req.insert_header(http::header::HOST, host.clone()).map_err(e)?;
    req.insert_header(http::header::CONTENT_TYPE, "application/json")
        .map_err(e)?;
    req.insert_header(http::header::ACCEPT, "text/event-stream")
        .map_err(e)?;
    req.insert_header(http::header::CONTENT_LENGTH, len).map_err(e)?;
    req.insert_header("x-session-id", session).map_err(e)?;
    // The sidecar replaces this with the real key; a client token, when it wants one.
    let token = std::env::var("LLM_SIDECAR_TOKEN").unwrap_or_else(|_| "placeholder".into());
    let (name, value) = provider.get().default_auth().header(&Secret::new(token))?;
    req.insert_header(name, value).map_err(e)?;
    for (n, v) in provider.get().check_headers() {
        req.insert_header(*n, *v).map_err(e)?;
    }
    Ok(req)
}

/// Run the REPL until /quit or end of input; returns the exit code.
pub fn run(opts: Options) -> i32 {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        eprintln!("cannot start the runtime");
        return 1;
    };
    let mut editor = match rustyline::DefaultEditor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cannot read input: {e}");
            return 1;
        }
    };
    let history = std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".llm-sidecar-history"));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    let p = opts.provider.get();
    let base = opts
        .base
        .unwrap_or_else(|| format!("http://127.0.0.1:8080/{}", opts.provider.name()));
    let mut chat = Chat {
        base,
        provider: opts.provider,
        model: opts.model.unwrap_or_else(|| p.chat_model().to_string()),
        session: new_session(),
        turns: Vec::new(),
        last_raw: String::new(),
        client: Outbound::default(),
    };
    let mut out = std::io::stdout();
    println!(
        "llm-sidecar chat: {} via {} (model {}, session {}); /help for commands",
        chat.provider.name(),
        chat.base,
        chat.model,
        chat.session
    );
    loop {
        let line = match editor.readline("you> ") {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => {
                println!("(Ctrl-C cancels a reply; /quit or Ctrl-D to leave)");
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("error reading input: {e}");
                break;
            }
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(line);
        let (command, arg) = line.split_once(' ').map_or((line, ""), |(c, a)| (c, a.trim()));
        match command {
            "/quit" | "/exit" => break,
            "/help" => println!("{HELP}"),
            "/session" => println!("session {}", chat.session),
            "/see-json" => println!(
                "{}",
                if chat.last_raw.is_empty() {
                    "(no response yet)"
                } else {
                    &chat.last_raw
                }
            ),
            "/new" => {
                chat.turns.clear();
                chat.session = new_session();
                println!("new conversation, session {}", chat.session);
            }
            "/model" if !arg.is_empty() => {
                chat.model = arg.to_string();
                println!("model {}", chat.model);
            }
            "/model" => println!("model {} (/model NAME to change)", chat.model),
            c if c.starts_with('/') => println!("unknown command {c}; /help lists them"),
            _ => {
                chat.turns.push(Turn {
                    user: true,
                    text: line.to_string(),
                });
                print!("assistant> ");
                let _ = out.flush();
                match rt.block_on(chat.reply(&mut out)) {
                    Ok(text) => {
                        println!();
                        chat.turns.push(Turn { user: false, text });
                    }
                    Err(f) => {
                        // The unanswered question leaves the conversation, so it stays valid.
                        chat.turns.pop();
                        match f {
                            Failure::Cancelled => println!("\n(cancelled)"),
                            Failure::Failed(e) => println!("\nerror: {e}"),
                        }
                    }
                }
            }
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    0
}
