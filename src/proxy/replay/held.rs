//! A whole answer's head held back until its body ends, then sent with the body's length in
//! place of chunked encoding: one write instead of a chunked head, chunk and terminator (Pingora
//! 0.9.1 flushes after each of those). A failure or a trailer before the end lets the head go
//! first, as it was.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::protocols::http::HttpTask;

/// The held head and its body so far.
#[derive(Default)]
pub(super) struct Held {
    head: Option<Box<ResponseHeader>>,
    body: Vec<u8>,
}

impl Held {
    /// A head is waiting for its body.
    pub(super) fn holding(&self) -> bool {
        self.head.is_some()
    }

    /// `tasks` as they go to the client: with `whole` (the answer is written whole at its end) a
    /// head is held until its body ends.
    pub(super) fn hold(&mut self, whole: bool, tasks: Vec<HttpTask>) -> Vec<HttpTask> {
        let mut out = Vec::with_capacity(tasks.len() + 1);
        for task in tasks {
            match task {
                HttpTask::Header(head, false) if self.head.is_none() && whole => {
                    self.head = Some(head);
                }
                HttpTask::Body(data, end) if self.head.is_some() => {
                    match data {
                        // The usual case: the whole body in its last task, taken without a copy.
                        Some(d) if end && self.body.is_empty() => {
                            self.release(&mut out, d);
                            continue;
                        }
                        Some(d) => self.body.extend_from_slice(&d),
                        None => {}
                    }
                    if end {
                        let body = self.take_body();
                        self.release(&mut out, body);
                    }
                }
                HttpTask::Done if self.head.is_some() => {
                    let body = self.take_body();
                    self.release(&mut out, body);
                    out.push(HttpTask::Done);
                }
                other => {
                    if let Some(head) = self.head.take() {
                        out.push(HttpTask::Header(head, false));
                        let body = self.take_body();
                        if !body.is_empty() {
                            out.push(HttpTask::Body(Some(body), false));
                        }
                    }
                    out.push(other);
                }
            }
        }
        out
    }

    fn take_body(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.body))
    }

    /// The held head, now with the body's length, and the body.
    fn release(&mut self, out: &mut Vec<HttpTask>, body: Bytes) {
        let Some(mut head) = self.head.take() else { return };
        head.remove_header(&http::header::TRANSFER_ENCODING);
        // A length is always a valid header value.
        let _ = head.insert_header(http::header::CONTENT_LENGTH, body.len());
        out.push(HttpTask::Header(head, false));
        out.push(HttpTask::Body(Some(body), true));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> HttpTask {
        let mut h = ResponseHeader::build(200, None).expect("head");
        h.insert_header("transfer-encoding", "chunked").expect("header");
        HttpTask::Header(Box::new(h), false)
    }

    fn body(text: &'static str, end: bool) -> HttpTask {
        HttpTask::Body(Some(Bytes::from_static(text.as_bytes())), end)
    }

    /// Each task as text: `head <content-length>/<transfer-encoding>`, `body <text> <end>`, ...
    fn shown(tasks: &[HttpTask]) -> Vec<String> {
        let value = |h: &ResponseHeader, n: &str| {
            h.headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_string()
        };
        tasks
            .iter()
            .map(|t| match t {
                HttpTask::Header(h, _) => {
                    format!("head {}/{}", value(h, "content-length"), value(h, "transfer-encoding"))
                }
                HttpTask::Body(b, end) => {
                    let text = b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
                    format!("body {} {end}", text.unwrap_or_default())
                }
                HttpTask::Done => "done".into(),
                HttpTask::Failed(_) => "failed".into(),
                _ => "other".into(),
            })
            .collect()
    }

    #[test]
    fn a_whole_answer_goes_with_its_length_in_one_piece() {
        let mut held = Held::default();
        let first = held.hold(true, vec![head(), body("ab", false)]);
        assert!(first.is_empty(), "the head waits for the body: {:?}", shown(&first));
        assert!(held.holding(), "a head is held");
        let rest = held.hold(true, vec![body("cd", true)]);
        assert_eq!(
            shown(&rest),
            ["head 4/-", "body abcd true"],
            "the length replaces chunked encoding"
        );
        assert!(!held.holding(), "nothing held after the end");
        let one = Held::default().hold(true, vec![head(), body("xyz", true)]);
        assert_eq!(shown(&one), ["head 3/-", "body xyz true"], "a body in one task");
        let empty = Held::default().hold(true, vec![head(), HttpTask::Done]);
        assert_eq!(
            shown(&empty),
            ["head 0/-", "body  true", "done"],
            "an answer without a body is sized 0"
        );
    }

    #[test]
    fn a_failure_before_the_end_lets_the_head_go_first_as_it_was() {
        let mut held = Held::default();
        assert!(held.hold(true, vec![head(), body("ab", false)]).is_empty(), "held");
        let failed = pingora::Error::new(pingora::ErrorType::ConnectionClosed);
        let out = held.hold(true, vec![HttpTask::Failed(failed)]);
        assert_eq!(
            shown(&out),
            ["head -/chunked", "body ab false", "failed"],
            "the head as it was, what came of the body, then the failure"
        );
        assert!(!held.holding(), "nothing held after the failure");
    }

    #[test]
    fn without_whole_tasks_pass_unchanged() {
        let out = Held::default().hold(false, vec![head(), body("ab", false), body("cd", true)]);
        assert_eq!(
            shown(&out),
            ["head -/chunked", "body ab false", "body cd true"],
            "a stream's tasks pass as they are"
        );
    }
}
