//! A small JSON writer for request bodies the door builds: a string with nothing to escape (the
//! common case) is found so by vectorized scans and copied whole, where serde_json looks at every
//! byte (which was most of the cost of a translated request: its texts are most of its bytes);
//! numbers and `Value`s are serde_json's.

use serde_json::Value;

/// JSON appended to a buffer. Separators are automatic: each value (and each key) writes the
/// comma its position needs.
pub(super) struct JsonOut<'a> {
    buf: &'a mut Vec<u8>,
    /// The next value is the first of its container, or follows its key: no comma.
    first: bool,
}

impl JsonOut<'_> {
    pub(super) fn new(buf: &mut Vec<u8>) -> JsonOut<'_> {
        JsonOut { buf, first: true }
    }

    /// JSON text as it is (a literal piece of the output, its own commas included); a value
    /// written next gets no comma when the text ends with `{`, `[`, `:` or `,`.
    pub(super) fn raw(&mut self, text: &[u8]) {
        self.buf.extend_from_slice(text);
        self.first = matches!(text.last(), Some(b'{' | b'[' | b':' | b','));
    }

    fn sep(&mut self) {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
    }

    pub(super) fn begin_object(&mut self) {
        self.open(b'{');
    }

    pub(super) fn end_object(&mut self) {
        self.close(b'}');
    }

    pub(super) fn begin_array(&mut self) {
        self.open(b'[');
    }

    pub(super) fn end_array(&mut self) {
        self.close(b']');
    }

    fn open(&mut self, bracket: u8) {
        self.sep();
        self.buf.push(bracket);
        self.first = true;
    }

    fn close(&mut self, bracket: u8) {
        self.buf.push(bracket);
        self.first = false;
    }

    /// A member's key; its value comes next.
    pub(super) fn key(&mut self, key: &str) {
        self.sep();
        write_str(self.buf, key);
        self.buf.push(b':');
        self.first = true;
    }

    pub(super) fn string(&mut self, s: &str) {
        self.sep();
        write_str(self.buf, s);
    }

    pub(super) fn bool(&mut self, b: bool) {
        self.sep();
        self.buf.extend_from_slice(if b { b"true" } else { b"false" });
    }

    /// A number or any other serializable value, as serde_json writes it.
    pub(super) fn value<T: serde::Serialize + ?Sized>(&mut self, v: &T) {
        self.sep();
        // Numbers, strings and `Value`s (string keys only) always serialize, and a Vec never
        // fails to take bytes: there is no error to report.
        let _ = serde_json::to_writer(&mut self.buf, v);
    }

    /// `key: s`.
    pub(super) fn str_member(&mut self, key: &str, s: &str) {
        self.key(key);
        self.string(s);
    }

    /// `key: s` when there is an `s`.
    pub(super) fn opt_string(&mut self, key: &str, s: Option<&str>) {
        if let Some(s) = s {
            self.str_member(key, s);
        }
    }

    /// `key: json` as a `Value`.
    pub(super) fn member(&mut self, key: &str, v: &Value) {
        self.key(key);
        self.value(v);
    }
}

/// Whether `bytes` hold nothing JSON must escape: no `"`, `\` or control character. Both scans
/// run many bytes per instruction (memchr's, and a fold the compiler vectorizes).
fn clean(bytes: &[u8]) -> bool {
    if bytes.len() < 32 {
        // Keys and short values: a plain loop costs less than setting up the scans.
        return bytes.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\');
    }
    let control = |c: &[u8]| c.iter().fold(0u8, |acc, &b| acc | u8::from(b < 0x20)) != 0;
    memchr::memchr2(b'"', b'\\', bytes).is_none() && !bytes.chunks(256).any(control)
}

/// `s` as a JSON string literal, byte for byte as serde_json writes it.
pub(super) fn write_str(buf: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    buf.reserve(bytes.len() + 2);
    buf.push(b'"');
    if clean(bytes) {
        buf.extend_from_slice(bytes);
        buf.push(b'"');
        return;
    }
    let mut run = 0; // start of the bytes not yet copied
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'\n' => Some(b'n'),
            b'\r' => Some(b'r'),
            b'\t' => Some(b't'),
            0x08 => Some(b'b'),
            0x0c => Some(b'f'),
            _ => None,
        };
        if short.is_some() || b < 0x20 {
            buf.extend_from_slice(bytes.get(run..i).unwrap_or_default());
            run = i + 1;
            match short {
                Some(c) => buf.extend_from_slice(&[b'\\', c]),
                None => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    let hex = |n: u8| HEX.get(usize::from(n & 15)).copied().unwrap_or(b'0');
                    buf.extend_from_slice(&[b'\\', b'u', b'0', b'0', hex(b >> 4), hex(b)]);
                }
            }
        }
    }
    buf.extend_from_slice(bytes.get(run..).unwrap_or_default());
    buf.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_read_back_as_written_for_every_special_byte_at_every_offset() {
        for special in (0u8..0x20).chain([b'"', b'\\', b'/', 0x7f]) {
            for at in 0..20 {
                let mut s = "abcdefghijklmnopqrst".to_string().into_bytes();
                s.insert(at, special);
                let s = String::from_utf8(s).unwrap_or_default();
                // The string alone (21 bytes: the short-string path) and in a longer one.
                for text in [s.clone(), format!("{s}é😀{s}")] {
                    let mut bytes = Vec::new();
                    JsonOut::new(&mut bytes).string(&text);
                    assert_eq!(
                        bytes,
                        serde_json::to_vec(&text).unwrap_or_default(),
                        "byte {special:#x} at {at}: the bytes serde_json writes"
                    );
                    let back: String = serde_json::from_slice(&bytes)
                        .unwrap_or_else(|e| panic!("byte {special:#x} at {at}: not JSON ({e}): {bytes:?}"));
                    assert_eq!(
                        back,
                        text,
                        "byte {special:#x} at {at} of {} bytes reads back",
                        text.len()
                    );
                }
            }
        }
    }

    #[test]
    fn a_special_byte_far_into_a_long_string_is_escaped() {
        for at in [0, 255, 256, 257, 511, 600, 699] {
            for special in [0x01, b'"', b'\\'] {
                let mut s = vec![b'a'; 700];
                if let Some(b) = s.get_mut(at) {
                    *b = special;
                }
                let text = String::from_utf8(s).unwrap_or_default();
                let mut bytes = Vec::new();
                JsonOut::new(&mut bytes).string(&text);
                let back: String = serde_json::from_slice(&bytes).unwrap_or_default();
                assert_eq!(back, text, "byte {special:#x} at {at} of 700 reads back");
            }
        }
    }

    #[test]
    fn containers_get_their_separators() {
        let mut bytes = Vec::new();
        let mut out = JsonOut::new(&mut bytes);
        out.begin_object();
        out.key("a");
        out.begin_array();
        out.value(&1);
        out.string("x");
        out.begin_object();
        out.end_object();
        out.bool(false);
        out.end_array();
        out.opt_string("b", None);
        out.opt_string("c", Some("d"));
        out.member("e", &serde_json::json!({"f": [null]}));
        out.end_object();
        out.raw(b",[");
        out.value(&2);
        out.raw(b"]");
        assert_eq!(
            String::from_utf8(bytes).unwrap_or_default(),
            r#"{"a":[1,"x",{},false],"c":"d","e":{"f":[null]}},[2]"#,
            "commas between values and members only"
        );
    }
}
