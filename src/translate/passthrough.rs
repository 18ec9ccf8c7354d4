//! A request for a target that speaks the client's own dialect: the client's bytes, with the
//! top-level `model` replaced and the door's own members removed, in one copy.

use serde::de::IgnoredAny;

use crate::json;

/// The body with its top-level `model` set to `model` (in place of the client's first `model`
/// member, or first when it has none; any further `model` member is removed) and the top-level
/// members named in `drop` removed. Everything else is copied byte for byte. `None` when the
/// body is not a well-formed JSON object.
pub fn passthrough(body: &[u8], model: &str, drop: &[&str]) -> Option<Vec<u8>> {
    // Well-formedness first (no copy): the scan below then only has to find the members.
    serde_json::from_slice::<IgnoredAny>(body).ok()?;
    let quoted = serde_json::to_vec(model).ok()?;
    let mut out = Vec::with_capacity(body.len() + quoted.len() + 10);
    out.push(b'{');
    // Without a plain `model` key, the model goes first (an escaped one is removed below).
    let [plain] = json::members(body, [b"model"]);
    let mut model_written = plain.is_none();
    if model_written {
        write_member(&mut out, b"\"model\":", &quoted);
    }
    let open = skip_ws(body, 0);
    if body.get(open) != Some(&b'{') {
        return None;
    }
    let mut i = skip_ws(body, open + 1);
    while body.get(i) == Some(&b'"') {
        let key_end = json::string_end(body, i)?;
        let value_start = skip_ws(body, skip_ws(body, key_end) + 1);
        let end = json::value_end(body, value_start)?;
        match member(body.get(i..key_end)?, drop)? {
            Member::Model if !model_written => {
                write_member(&mut out, body.get(i..value_start)?, &quoted);
                model_written = true;
            }
            Member::Model | Member::Dropped => {}
            Member::Kept => write_member(&mut out, body.get(i..end)?, b""),
        }
        i = skip_ws(body, end);
        if body.get(i) == Some(&b',') {
            i = skip_ws(body, i + 1);
        }
    }
    out.push(b'}');
    Some(out)
}

/// Append `head` and `tail` as the next member of the object being written.
fn write_member(out: &mut Vec<u8>, head: &[u8], tail: &[u8]) {
    if out.len() > 1 {
        out.push(b',');
    }
    out.extend_from_slice(head);
    out.extend_from_slice(tail);
}

enum Member {
    Model,
    Dropped,
    Kept,
}

/// What becomes of the member with this key (quotes included, as written). A key with escapes
/// is decoded first, so `"mod\u0065l"` cannot slip past.
fn member(raw_key: &[u8], drop: &[&str]) -> Option<Member> {
    let decoded;
    let key = if raw_key.contains(&b'\\') {
        decoded = serde_json::from_slice::<String>(raw_key).ok()?;
        decoded.as_bytes()
    } else {
        raw_key.get(1..raw_key.len().saturating_sub(1))?
    };
    Some(if key == b"model" {
        Member::Model
    } else if drop.iter().any(|d| d.as_bytes() == key) {
        Member::Dropped
    } else {
        Member::Kept
    })
}

fn skip_ws(doc: &[u8], mut i: usize) -> usize {
    while doc.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn parsed(out: Option<Vec<u8>>) -> Value {
        serde_json::from_slice(&out.expect("a well-formed object")).expect("valid JSON out")
    }

    #[test]
    fn replaces_model_and_removes_members() {
        let body = br#" { "model" : "gpt-x", "messages":[{"role":"user","content":"model \"backend\""}],
            "backend": "pool-a", "session_id":"s1", "stream": true , "n":1 } "#;
        let out = passthrough(body, "gpt-4.1", &["backend", "session_id"]);
        let text = String::from_utf8(out.clone().expect("some")).expect("utf-8");
        assert!(
            text.contains(r#""messages":[{"role":"user","content":"model \"backend\""}]"#),
            "copied as is: {text}"
        );
        assert_eq!(
            parsed(out),
            json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "model \"backend\""}], "stream": true, "n": 1}),
            "model replaced, door members removed, nested look-alikes untouched"
        );
        assert!(
            text.starts_with(r#"{"model" : "gpt-4.1","messages":"#),
            "in place, as written: {text}"
        );
    }

    #[test]
    fn adds_a_missing_model_and_escapes_it() {
        let out = passthrough(br#"{"a":1}"#, "we\"ird", &[]);
        assert_eq!(parsed(out), json!({"model": "we\"ird", "a": 1}), "model added, escaped");
        assert_eq!(
            parsed(passthrough(b"{ }", "m", &[])),
            json!({"model": "m"}),
            "empty object"
        );
    }

    #[test]
    fn escaped_keys_cannot_smuggle_a_model() {
        let out = passthrough(
            br#"{"mod\u0065l":"expensive","b\u0061ckend":"x","k":2}"#,
            "cheap",
            &["backend"],
        );
        assert_eq!(
            parsed(out),
            json!({"model": "cheap", "k": 2}),
            "escaped keys are decoded before comparing"
        );
    }

    #[test]
    fn refuses_what_is_not_a_well_formed_object() {
        for bad in [
            &b"[1,2]"[..],
            b"",
            b"{\"a\":tru}",
            b"{\"a\":1",
            b"{\"a\":1} x",
            b"\"s\"",
            b"{\"a\" 1}",
        ] {
            assert_eq!(passthrough(bad, "m", &[]), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
