//! A request for a target that speaks the client's own dialect: the client's bytes, with the
//! top-level `model` replaced and the door's own members removed, in one copy.

use serde::de::IgnoredAny;

use crate::json;

/// The body with its top-level `model` set to `model` (written first; every `model` member of
/// the client's is removed) and the top-level members named in `drop` removed. Everything else
/// is copied byte for byte. `None` when the body is not a well-formed JSON object.
pub fn passthrough(body: &[u8], model: &str, drop: &[&str]) -> Option<Vec<u8>> {
    // Well-formedness first (no copy): the scan below then only has to find the members.
    serde_json::from_slice::<IgnoredAny>(body).ok()?;
    let quoted = serde_json::to_vec(model).ok()?;
    let mut out = Vec::with_capacity(body.len() + quoted.len() + 10);
    out.extend_from_slice(b"{\"model\":");
    out.extend_from_slice(&quoted);
    let mut i = skip_ws(body, 0);
    if body.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(body, i + 1);
    if body.get(i) == Some(&b'}') {
        out.push(b'}');
        return Some(out);
    }
    loop {
        let start = i;
        let key_end = json::string_end(body, start)?;
        let raw_key = body.get(start..key_end)?;
        let colon = skip_ws(body, key_end);
        let value_start = skip_ws(body, colon + 1);
        let end = json::value_end(body, value_start)?;
        if !removed(raw_key, drop)? {
            out.push(b',');
            out.extend_from_slice(body.get(start..end)?);
        }
        i = skip_ws(body, end);
        match body.get(i) {
            Some(b',') => i = skip_ws(body, i + 1),
            Some(b'}') => break,
            _ => return None,
        }
    }
    out.push(b'}');
    Some(out)
}

/// Whether the member with this key (quotes included, as written) goes: `model` or one of
/// `drop`. A key with escapes is decoded first, so `"mod\u0065l"` cannot slip past.
fn removed(raw_key: &[u8], drop: &[&str]) -> Option<bool> {
    let decoded;
    let key = if raw_key.contains(&b'\\') {
        decoded = serde_json::from_slice::<String>(raw_key).ok()?;
        decoded.as_bytes()
    } else {
        raw_key.get(1..raw_key.len().saturating_sub(1))?
    };
    Some(key == b"model" || drop.iter().any(|d| d.as_bytes() == key))
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
