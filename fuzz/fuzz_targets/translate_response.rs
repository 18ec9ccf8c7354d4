#![no_main]
//! translate_response: an upstream's complete answer, any bytes, never makes a decoder panic, and
//! every decoded answer encodes in every dialect to a JSON object; reading an error answer never
//! panics either and gives the status it was given with a kind and message fit for a log line
//! (sanitized: no control character, at most 500 bytes).
//!
//! Input: byte 0 is flags (bits 0-2: the HTTP status for `decode_error`, bit 3: name the model the
//! upstream named instead of the client's); the rest is the answer.

use libfuzzer_sys::fuzz_target;
use llm_sidecar::translate::{decode_error, decode_response, encode_response, ReplyMeta};
use llm_sidecar_fuzz::DIALECTS;
use serde::de::IgnoredAny;

const STATUSES: [u16; 8] = [400, 401, 429, 500, 503, 529, 200, 0];

fn loggable(s: &str) -> bool {
    s.len() <= 500 && !s.chars().any(char::is_control)
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let status = STATUSES[usize::from(flags & 7)];
    for from in DIALECTS {
        let info = decode_error(from, status, body);
        assert_eq!(info.status, status, "{from:?}: the status is the one given");
        assert!(loggable(&info.kind), "{from:?}: kind {:?}", info.kind);
        assert!(loggable(&info.message), "{from:?}: message {:?}", info.message);

        let Ok(reply) = decode_response(from, body) else {
            continue;
        };
        let meta = ReplyMeta {
            id: "msg_fuzz".into(),
            created: 1_750_000_000,
            model: if flags & 8 != 0 {
                reply.model.clone().unwrap_or_default()
            } else {
                "front-model".into()
            },
        };
        for to in DIALECTS {
            let out = encode_response(to, &reply, &meta);
            // IgnoredAny, not Value: a tool call's arguments may nest deeper than Value allows.
            assert!(
                out.first() == Some(&b'{') && serde_json::from_slice::<IgnoredAny>(&out).is_ok(),
                "{from:?} -> {to:?}: not a JSON object: {:?}",
                String::from_utf8_lossy(&out)
            );
        }
    }
});
