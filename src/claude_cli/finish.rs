//! The end of a translation: the [`Outcome`] from the `result` line (or its absence, the exit
//! and stderr), then the closing SSE or the JSON body.

use std::time::SystemTime;

use serde_json::{json, Value};

use super::super::{
    describe_exit, error_text, limit, sanitize, status_of, stop_reason, usage_json, Exit, Finished, Outcome,
    ProviderKind, Report, MAX_JSON_TEXT,
};
use super::{sse, Translator};

impl Translator {
    /// End the translation once stdout is closed and the process has exited.
    pub fn finish(mut self, exit: &Exit, now: SystemTime) -> Finished {
        let (outcome, structured) = self.outcome(exit, now);
        let mut tail = Vec::new();
        let mut body = None;
        match &outcome {
            Outcome::Success(report) => {
                let extra = structured.map(|v| v.to_string());
                if self.stream {
                    self.start(&mut tail);
                    self.close_open(&mut tail);
                    if let Some(t) = extra {
                        self.whole_text(&t, &mut tail);
                    }
                    let delta =
                        json!({ "stop_reason": stop_reason(report.stop_reason.as_deref()), "stop_sequence": null });
                    let event = json!({ "type": "message_delta", "delta": delta, "usage": usage_json(report) });
                    sse(&mut tail, "message_delta", &event);
                    sse(&mut tail, "message_stop", &json!({ "type": "message_stop" }));
                } else {
                    if let Some(t) = extra {
                        self.whole_text(&t, &mut tail);
                    }
                    body = Some(self.message(report));
                }
            }
            Outcome::Failed { status, message, .. } => self.fail_stream(*status, message, &mut tail),
            Outcome::RateLimited { message, .. } => self.fail_stream(429, message, &mut tail),
        }
        let started = self.stream && self.started;
        Finished {
            outcome,
            tail,
            body,
            started,
        }
    }

    fn fail_stream(&mut self, status: u16, message: &str, tail: &mut Vec<u8>) {
        if self.stream && self.started {
            self.close_open(tail);
            tail.extend_from_slice(&ProviderKind::Anthropic.get().sse_error(status, message));
        }
    }

    fn message(&mut self, report: &Report) -> Vec<u8> {
        let content: Vec<Value> = self
            .texts
            .drain(..)
            .map(|t| json!({ "type": "text", "text": t }))
            .collect();
        json!({
            "id": self.id, "type": "message", "role": "assistant", "model": self.model_name(),
            "content": content, "stop_reason": stop_reason(report.stop_reason.as_deref()), "stop_sequence": null,
            "usage": usage_json(report),
        })
        .to_string()
        .into_bytes()
    }

    fn outcome(&mut self, exit: &Exit, now: SystemTime) -> (Outcome, Option<Value>) {
        let Some(r) = self.result.take() else {
            return (self.no_result(exit, now), None);
        };
        let report = Report {
            session_id: r.session_id.clone().or_else(|| self.session_id.clone()),
            num_turns: r.num_turns.unwrap_or(0),
            usage: r.usage.unwrap_or_default(),
            cost_usd: r.total_cost_usd.filter(|c| c.is_finite() && *c >= 0.0).unwrap_or(0.0),
            model_usage: r.model_usage.clone().unwrap_or_else(|| json!({})),
            stop_reason: r.stop_reason.clone(),
        };
        if !r.is_error {
            if let Some(notice) = r
                .result
                .as_deref()
                .filter(|t| !self.emitted_text && limit::is_limit_notice(t))
            {
                return (self.limited(notice, Some(report), now), None);
            }
            if self.too_long {
                let message = format!("the answer exceeds {MAX_JSON_TEXT} bytes");
                return (
                    Outcome::Failed {
                        status: 502,
                        message,
                        report: Some(report),
                    },
                    None,
                );
            }
            return (Outcome::Success(report), r.structured_output);
        }
        let text = error_text(&r)
            .or_else(|| self.error_text.clone())
            .unwrap_or_else(|| "the CLI reported an error".to_string());
        if self.limited || r.api_error_status == Some(429) || limit::is_limit_text(&text) {
            return (self.limited(&text, Some(report), now), None);
        }
        let status = status_of(&r);
        (
            Outcome::Failed {
                status,
                message: text,
                report: Some(report),
            },
            None,
        )
    }

    fn limited(&self, text: &str, report: Option<Report>, now: SystemTime) -> Outcome {
        let reset = self.limit_reset.or_else(|| limit::reset_from_text(text, now));
        Outcome::RateLimited {
            reset,
            message: sanitize(text),
            report,
        }
    }

    /// No `result` line: a crash, a refusal on stderr (unknown session, bad flag), or a limit.
    fn no_result(&self, exit: &Exit, now: SystemTime) -> Outcome {
        let said = self.error_text.as_deref().filter(|t| limit::is_limit_text(t));
        if limit::is_limit_text(&exit.stderr_head) {
            return self.limited(&exit.stderr_head, None, now);
        }
        if self.limited || said.is_some() {
            return self.limited(said.unwrap_or("usage limit reached"), None, now);
        }
        let detail = self
            .error_text
            .as_deref()
            .filter(|t| !t.is_empty())
            .unwrap_or(&exit.stderr);
        let message = format!("claude ended without a result ({}): {detail}", describe_exit(exit));
        Outcome::Failed {
            status: 502,
            message: sanitize(&message),
            report: None,
        }
    }
}
