#![no_main]
//! translate_request: a client's request body, any bytes, never makes a front door's decoder or
//! any target's encoder panic; an encoded request is a JSON object sent to a path that starts with
//! `/`, holds no whitespace or control byte and no `.`/`..` segment whatever the model name
//! (Gemini puts it in the path); Gemini is never a front door; the door's answer is the general
//! reader's (the typed reader of plain OpenAI requests reads what it takes exactly as the general
//! reader does); and the pass-through rewrite of a JSON object (model set, door-only members
//! removed) keeps every other member as it was.
//!
//! Input: byte 0 is flags (bits 0-1: `default_max_tokens`, bit 2: `keep_extra`, bits 3-4: the
//! model from a fixed list, bit 5: the model the client named instead); the rest is the body.

use libfuzzer_sys::fuzz_target;
use llm_sidecar::provider::Dialect;
use llm_sidecar::translate::{
    decode_request, decode_request_general, encode_request, passthrough, EncodeOpts, DOOR_FIELDS,
};
use llm_sidecar_fuzz::DIALECTS;
use serde::de::IgnoredAny;
use serde_json::Value;

const MAX_TOKENS: [u64; 4] = [4096, 1, 0, u64::MAX];
const MODELS: [&str; 4] = [
    "m",
    "models/gemini-2.5-flash",
    "claude-sonnet-4-6",
    "x/../../v1?key=1 #",
];

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let opts = EncodeOpts {
        default_max_tokens: MAX_TOKENS[usize::from(flags & 3)],
        keep_extra: flags & 4 != 0,
    };
    assert!(
        decode_request(Dialect::Gemini, body).is_err(),
        "Gemini is not a front door"
    );
    for door in [Dialect::OpenAi, Dialect::Anthropic] {
        let decoded = decode_request(door, body);
        // Only the OpenAI door has a reader of its own (for plain requests) to compare.
        if door == Dialect::OpenAi {
            assert!(
                decoded == decode_request_general(door, body),
                "the OpenAI door's reading differs from the general reader's"
            );
        }
        let chat = match decoded {
            Ok(chat) => chat,
            Err(invalid) => {
                let _ = invalid.to_string();
                continue;
            }
        };
        let model = if flags & 0x20 != 0 {
            chat.model.as_str()
        } else {
            MODELS[usize::from((flags >> 3) & 3)]
        };
        for target in DIALECTS {
            let Ok(encoded) = encode_request(target, &chat, model, &opts) else {
                continue;
            };
            let path = &encoded.path;
            assert!(
                path.starts_with('/') && path.bytes().all(|b| b.is_ascii_graphic()),
                "{door:?} -> {target:?}: path {path:?}"
            );
            let route = path.split('?').next().unwrap_or(path);
            assert!(
                !route.split('/').any(|s| s == "." || s == ".."),
                "{door:?} -> {target:?}: a dot segment in {path:?}"
            );
            assert!(
                encoded.body.first() == Some(&b'{') && serde_json::from_slice::<IgnoredAny>(&encoded.body).is_ok(),
                "{door:?} -> {target:?}: the body is not a JSON object"
            );
        }
    }

    // Pass-through: a well-formed object gets the model and loses the door's own members; every
    // other member is copied as it was (the last of duplicates wins in both).
    let model = MODELS[usize::from((flags >> 3) & 3)];
    let Some(out) = passthrough(body, model, &DOOR_FIELDS) else {
        return;
    };
    let Ok(Value::Object(before)) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let after = match serde_json::from_slice::<Value>(&out) {
        Ok(Value::Object(after)) => after,
        other => panic!(
            "pass-through of a JSON object gave {other:?}: {:?}",
            String::from_utf8_lossy(&out)
        ),
    };
    assert_eq!(after.get("model"), Some(&Value::from(model)), "the model is set");
    for field in DOOR_FIELDS {
        assert!(after.get(field).is_none(), "{field} is removed");
    }
    for (key, value) in &before {
        if key != "model" && !DOOR_FIELDS.contains(&key.as_str()) {
            assert_eq!(after.get(key), Some(value), "member {key:?} kept as it was");
        }
    }
    assert_eq!(
        after.len(),
        before.keys().filter(|k| !DOOR_FIELDS.contains(&k.as_str())).count()
            + usize::from(!before.contains_key("model")),
        "no member added but the model"
    );
});
