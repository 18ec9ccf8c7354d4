//! Fast scanning of JSON bytes without parsing them: crossing strings with memchr, finding the
//! raw values of an object's top-level members. Used where only a few fields of a large
//! document matter (usage in a response); serde then parses just those values.

/// The index just past the string whose opening quote is at `open`, or `None` when the string
/// is unterminated. Escapes are skipped, not checked.
pub fn string_end(doc: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    loop {
        i += memchr::memchr2(b'"', b'\\', doc.get(i..)?)?;
        if doc[i] == b'"' {
            return Some(i + 1);
        }
        i += 2; // the backslash and the character it escapes
    }
}

/// The index just past the value starting at `start` (after any whitespace), or `None` when the
/// document ends first. Scalars end at the next `,` `}` `]` or whitespace.
pub fn value_end(doc: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    match *doc.get(i)? {
        b'"' => string_end(doc, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            loop {
                match *doc.get(i)? {
                    b'"' => {
                        i = string_end(doc, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            while let Some(b) = doc.get(i) {
                if matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace() {
                    break;
                }
                i += 1;
            }
            Some(i)
        }
    }
}

/// Whether the value `v` is an empty array (`[]`, whitespace allowed inside).
pub fn is_empty_array(v: &[u8]) -> bool {
    v.first() == Some(&b'[') && v.get(skip_ws(v, 1)) == Some(&b']')
}

fn skip_ws(doc: &[u8], mut i: usize) -> usize {
    while doc.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// Calls `f(key, value_range)` for each top-level member of the object `doc`, in order (keys as
/// written, escapes not decoded; ranges index `doc`). Stops at the end of the object or where the
/// document is malformed or cut short.
pub fn each_member(doc: &[u8], mut f: impl FnMut(&[u8], std::ops::Range<usize>)) {
    let mut i = skip_ws(doc, 0);
    if doc.get(i) != Some(&b'{') {
        return;
    }
    i += 1;
    loop {
        i = skip_ws(doc, i);
        if doc.get(i) != Some(&b'"') {
            return; // `}` or malformed: done either way
        }
        let Some(key_end) = string_end(doc, i) else {
            return;
        };
        let key = &doc[i + 1..key_end - 1];
        i = skip_ws(doc, key_end);
        if doc.get(i) != Some(&b':') {
            return;
        }
        let start = skip_ws(doc, i + 1);
        let Some(end) = value_end(doc, start) else {
            return;
        };
        f(key, start..end);
        i = skip_ws(doc, end);
        if doc.get(i) != Some(&b',') {
            return;
        }
        i += 1;
    }
}

/// The raw values of the top-level members of the object `doc` named by `keys`, in the order of
/// `keys`. A member not found, or a document that is not an object or is cut short before it,
/// gives `None`; the first of duplicates wins.
pub fn members<'a, const N: usize>(doc: &'a [u8], keys: [&[u8]; N]) -> [Option<&'a [u8]>; N] {
    let mut found = [None; N];
    each_member(doc, |key, range| {
        if let Some(slot) = keys.iter().position(|k| *k == key) {
            if found[slot].is_none() {
                found[slot] = doc.get(range);
            }
        }
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_top_level_members_only() {
        let doc = br#" { "content": [{"type":"text","text":"\"usage\": {\"x\":1} ]}"}],
            "usage" : {"input_tokens": 3, "nested": {"usage": 9}}, "model":"claude-\u0078", "n": -1.5e3 ,"t":true}"#;
        let [usage, model, n, t, missing] = members(doc, [b"usage", b"model", b"n", b"t", b"nope"]);
        assert_eq!(
            usage,
            Some(&br#"{"input_tokens": 3, "nested": {"usage": 9}}"#[..]),
            "the top-level usage, not the one inside a string or nested"
        );
        assert_eq!(
            model,
            Some(&br#""claude-\u0078""#[..]),
            "raw string value, escapes kept"
        );
        assert_eq!(n, Some(&b"-1.5e3"[..]), "a number ends at whitespace");
        assert_eq!(t, Some(&b"true"[..]), "a literal ends at the closing brace");
        assert_eq!(missing, None, "absent key");
    }

    #[test]
    fn escaped_backslashes_and_quotes_end_strings_correctly() {
        let doc = br#"{"a":"x\\","usage":1,"b":"\\\"usage\":2"}"#;
        assert_eq!(members(doc, [b"usage"]), [Some(&b"1"[..])]);
    }

    #[test]
    fn cut_short_or_not_an_object() {
        assert_eq!(members(br#"{"usage":{"a":1"#, [b"usage"]), [None], "unterminated value");
        assert_eq!(
            members(br#"{"usage":2,"content":"unterminated"#, [b"usage"]),
            [Some(&b"2"[..])],
            "members before the cut are still found"
        );
        assert_eq!(members(br#"[{"usage":1}]"#, [b"usage"]), [None], "an array");
        assert_eq!(members(b"", [b"usage"]), [None], "empty");
        assert_eq!(members(br#"{"usage" 1}"#, [b"usage"]), [None], "no colon");
        assert_eq!(
            members(br#"{"usage":1,"usage":2}"#, [b"usage"]),
            [Some(&b"1"[..])],
            "first duplicate wins"
        );
    }

    #[test]
    fn each_member_gives_ranges_in_order() {
        let doc = br#"{"a": 1, "b" :{"c":[1,2]} ,"a":"x"}"#;
        let mut seen = Vec::new();
        each_member(doc, |k, r| {
            seen.push((String::from_utf8_lossy(k).into_owned(), doc[r].to_vec()))
        });
        let expect = [("a", &b"1"[..]), ("b", br#"{"c":[1,2]}"#), ("a", br#""x""#)];
        assert_eq!(seen.len(), 3, "every member, duplicates included: {seen:?}");
        for ((k, v), (ek, ev)) in seen.iter().zip(expect) {
            assert_eq!((k.as_str(), v.as_slice()), (ek, ev), "member {ek}");
        }
    }

    #[test]
    fn empty_arrays() {
        assert!(is_empty_array(b"[]") && is_empty_array(b"[ \n ]"));
        assert!(!is_empty_array(b"[{}]") && !is_empty_array(b"{}") && !is_empty_array(b"["));
    }

    #[test]
    fn string_and_value_ends() {
        assert_eq!(string_end(br#""ab\"c" x"#, 0), Some(7));
        assert_eq!(string_end(br#""ab\"#, 0), None, "escape at the very end");
        assert_eq!(value_end(br#"[1,[2,"]"],3] z"#, 0), Some(13));
        assert_eq!(value_end(b"[1,2", 0), None, "unterminated array");
    }
}
