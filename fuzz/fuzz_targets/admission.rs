#![no_main]
//! admission: request admission never panics on any body, what `validate::check_json` admits is
//! JSON that the `json` scanners read member for member, and the OpenAI `include_usage` rewrite
//! of an admitted JSON object is still JSON, asking for usage.
//!
//! Input: byte 0 picks `max_depth` (`b % 128 + 1`, so 1..=128); the rest is the request body.
//!
//! What `check_json` accepting guarantees (src/validate.rs: a byte scan, then serde into
//! `BodyInfo`, which parses `model`, `stream`, `metadata` and `session_id` as values and only
//! skips the other members): the body is well-formed JSON starting with `{`, without NUL, nested
//! at most `max_depth` deep. It does *not* guarantee that `serde_json::Value` accepts it: skipped
//! members are not checked for lone UTF-16 surrogates in `\u` escapes, for numbers beyond f64, or
//! for UTF-8 (from_slice skips bytes of an ignored string unchecked), and `Value` refuses more
//! than 127 levels where `max_depth` may be 128. Those are the only differences asserted away.

use std::fmt;
use std::ops::Range;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use llm_sidecar::json;
use llm_sidecar::provider::ProviderKind;
use llm_sidecar::validate::check_json;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

/// The number of top-level members of a JSON object, duplicates included.
struct Members(usize);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Count;
        impl<'de> Visitor<'de> for Count {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut n = 0;
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Members(n))
            }
        }
        d.deserialize_map(Count)
    }
}

/// The errors of serde_json's full parse on text its skipping parse lets through (see above).
fn only_value_refuses(e: &serde_json::Error) -> bool {
    let m = e.to_string();
    m.contains("surrogate") || m.contains("hex escape") || m.contains("number out of range")
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let max_depth = usize::from(first % 128) + 1;

    // The scanners, on anything: ranges inside the document, `members` agreeing with
    // `each_member` (first of duplicates).
    if let Some(end) = json::value_end(body, 0) {
        assert!(end <= body.len(), "value_end {end} past the end ({})", body.len());
    }
    let mut listed: Vec<(Vec<u8>, Range<usize>)> = Vec::new();
    json::each_member(body, |key, range| {
        assert!(
            range.start <= range.end && range.end <= body.len(),
            "member range {range:?} outside the document ({})",
            body.len()
        );
        listed.push((key.to_vec(), range));
    });
    let keys = [&b"model"[..], &b"stream"[..], &b"stream_options"[..]];
    let found = json::members(body, keys);
    for (key, got) in keys.iter().zip(found) {
        let first = listed
            .iter()
            .find(|(k, _)| k.as_slice() == *key)
            .and_then(|(_, r)| body.get(r.clone()));
        assert_eq!(got, first, "members() and each_member() disagree on {key:?}");
    }
    let [model_raw, stream_raw, _] = found;

    let Ok(info) = check_json(body, max_depth) else {
        return;
    };

    // Admitted: an object, no NUL, well-formed JSON, each member's value one JSON value, and
    // each_member lists every member.
    assert_eq!(
        body.iter().find(|b| !b.is_ascii_whitespace()),
        Some(&b'{'),
        "admitted, so an object"
    );
    assert!(!body.contains(&0), "admitted with a NUL byte");
    if let Err(e) = serde_json::from_slice::<IgnoredAny>(body) {
        panic!("admitted but not well-formed JSON: {e}");
    }
    for (key, range) in &listed {
        let value = &body[range.clone()];
        assert!(
            serde_json::from_slice::<IgnoredAny>(value).is_ok(),
            "member {:?}: its range {range:?} is not one JSON value: {:?}",
            String::from_utf8_lossy(key),
            String::from_utf8_lossy(value)
        );
    }
    if let Ok(Members(n)) = serde_json::from_slice::<Members>(body) {
        assert_eq!(listed.len(), n, "each_member missed members of a well-formed object");
    }

    // serde_json's Value accepts it too, but for the documented differences.
    let value = serde_json::from_slice::<Value>(body);
    match &value {
        Ok(v) => assert!(v.is_object(), "admitted, so an object"),
        Err(e) => assert!(
            std::str::from_utf8(body).is_err() || max_depth > 127 || only_value_refuses(e),
            "admitted at depth {max_depth} but serde_json refuses it: {e}"
        ),
    }

    // The fields the sidecar reads are the values the scanner finds (a plain key, written
    // without escapes, is the only one: serde refuses a duplicate).
    if let Some(raw) = model_raw {
        let v: Value = serde_json::from_slice(raw).unwrap_or_else(|e| panic!("model parsed by serde, not alone: {e}"));
        assert_eq!(v.as_str().map(str::to_owned), info.model, "model");
    }
    if let Some(raw) = stream_raw {
        let v: Value = serde_json::from_slice(raw).unwrap_or_else(|e| panic!("stream parsed by serde, not alone: {e}"));
        assert_eq!(v.as_bool(), info.stream, "stream");
    }

    // The include_usage rewrite (OpenAI and OpenRouter share it): only streaming chat requests,
    // the bytes untouched when there is nothing to do.
    let openai = ProviderKind::Openai.get();
    let (same, asked) = openai.prepare_body("/v1/responses", &info, Bytes::copy_from_slice(body));
    assert!(!asked && same == body, "only chat completions are rewritten");
    let (out, asked) = openai.prepare_body("/v1/chat/completions", &info, Bytes::copy_from_slice(body));
    if info.stream != Some(true) {
        assert!(!asked && out == body, "only streams are rewritten");
        return;
    }
    assert_eq!(asked, out != body, "asked for usage exactly when the body changed");
    let Ok(Value::Object(_)) = &value else {
        return;
    };
    let rewritten: Value = serde_json::from_slice(&out).unwrap_or_else(|e| {
        panic!(
            "a JSON object rewritten into invalid JSON ({e}): {:?}",
            String::from_utf8_lossy(&out)
        )
    });
    assert!(rewritten.is_object(), "still an object");
    // With keys written plainly and one stream_options, the client's own duplicates cannot
    // hide the option: it is on.
    let options = listed.iter().filter(|(k, _)| k.as_slice() == b"stream_options").count();
    if !body.contains(&b'\\') && options <= 1 {
        assert_eq!(
            rewritten["stream_options"]["include_usage"],
            Value::Bool(true),
            "usage asked for: {:?}",
            String::from_utf8_lossy(&out)
        );
    }
});
