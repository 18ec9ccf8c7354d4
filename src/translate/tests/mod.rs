//! Tests of the translation module: golden fixtures per direction (requests, answers, streams
//! split at every byte), the front door's checks, usage exactness, and properties.
//!
//! Golden files live in tests/fixtures/translate/. After a deliberate change of output, run
//! `TRANSLATE_BLESS=1 cargo test --lib translate::` to rewrite the expected files, then review
//! the diff before committing it.

mod fuzz;
mod golden;
mod plain;
mod props;
mod replies;
mod requests;
mod streams;
mod tools;
mod validation;

use serde_json::Value;

use super::{EncodeOpts, StreamMeta, StreamTranslator};
use crate::provider::Dialect;
use crate::usage::sse::Framer;

/// A fixture's text, compiled in.
macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/translate/", $name))
    };
}
pub(super) use fixture;

pub(super) fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

/// Compare `actual` with the golden file `name` (its text `expected`), or rewrite the file
/// when blessing.
pub(super) fn golden(name: &str, expected: &str, actual: &Value) {
    if std::env::var_os("TRANSLATE_BLESS").is_some() {
        let path = format!("{}/tests/fixtures/translate/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = serde_json::to_string_pretty(actual).expect("serializable") + "\n";
        std::fs::write(&path, text).expect("golden file written");
        return;
    }
    let expected = json(expected.as_bytes());
    if let (Value::Array(want), Value::Array(got)) = (&expected, actual) {
        for (i, (w, g)) in want.iter().zip(got).enumerate() {
            assert_eq!(g, w, "{name}: event {i} differs");
        }
        assert_eq!(got.len(), want.len(), "{name}: number of events");
    }
    assert_eq!(actual, &expected, "{name}: differs from the golden file");
}

pub(super) fn opts() -> EncodeOpts {
    EncodeOpts {
        default_max_tokens: 4096,
        keep_extra: false,
    }
}

pub(super) fn meta(include_usage: bool) -> StreamMeta {
    StreamMeta {
        id: "chatcmpl-sidecar-1".into(),
        created: 1_750_000_000,
        model: "front-model".into(),
        include_usage,
    }
}

/// The client's bytes for upstream bytes fed in `chunks`, then the end of the upstream.
pub(super) fn translate(from: Dialect, to: Dialect, include_usage: bool, chunks: &[&[u8]]) -> Vec<u8> {
    let mut t = StreamTranslator::new(from, to, meta(include_usage));
    let mut out = Vec::new();
    for c in chunks {
        t.feed(c, &mut out);
    }
    t.finish(&mut out);
    out
}

/// The SSE events in `stream` as `{"event": name, "data": JSON}` (`event` only when named;
/// `data` a string when it is not JSON, like `[DONE]`).
pub(super) fn events(stream: &[u8]) -> Value {
    let mut out = Vec::new();
    Framer::default().feed(stream, &mut |name, data, _| {
        let data = serde_json::from_slice(data).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(data).into()));
        let mut event = serde_json::Map::new();
        if !name.is_empty() {
            event.insert("event".into(), String::from_utf8_lossy(name).into());
        }
        event.insert("data".into(), data);
        out.push(Value::Object(event));
    });
    Value::Array(out)
}
