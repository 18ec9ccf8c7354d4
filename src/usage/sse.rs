//! An incremental Server-Sent Events framer: chunks in, complete events out, whatever the chunk
//! boundaries (events and lines split anywhere, `\n`, `\r\n` or `\r` line ends, comments). It
//! copies only a line that straddles a chunk boundary; it never holds the chunk itself.

/// Called with (event name, data, offset just past the event in the current chunk).
pub type OnEvent<'a> = dyn FnMut(&[u8], &[u8], usize) + 'a;

/// Tracks the event being read across chunks.
#[derive(Default)]
pub struct Framer {
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
    /// The previous chunk ended in `\r`: a leading `\n` in the next one belongs to it.
    after_cr: bool,
    event: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
}

impl Framer {
    /// Feed one chunk. `on_event(name, data, end)` runs for every event that completes in it;
    /// `end` is the offset in `chunk` just past the blank line that ended the event.
    pub fn feed(&mut self, chunk: &[u8], on_event: &mut OnEvent<'_>) {
        let mut pos = 0;
        if self.after_cr && chunk.first() == Some(&b'\n') {
            pos = 1;
        }
        self.after_cr = false;
        while pos < chunk.len() {
            let Some(rel) = memchr::memchr2(b'\n', b'\r', &chunk[pos..]) else {
                self.partial.extend_from_slice(&chunk[pos..]);
                return;
            };
            let end = pos + rel;
            let mut next = end + 1;
            if chunk[end] == b'\r' {
                match chunk.get(next) {
                    Some(b'\n') => next += 1,
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
            if self.partial.is_empty() {
                self.line(&chunk[pos..end], next, on_event);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&chunk[pos..end]);
                self.line(&line, next, on_event);
                line.clear();
                self.partial = line; // keep the allocation
            }
            pos = next;
        }
    }

    fn line(&mut self, line: &[u8], end: usize, on_event: &mut OnEvent<'_>) {
        if line.is_empty() {
            if self.has_data {
                if self.data.last() == Some(&b'\n') {
                    self.data.pop();
                }
                on_event(&self.event, &self.data, end);
            }
            self.event.clear();
            self.data.clear();
            self.has_data = false;
            return;
        }
        if line[0] == b':' {
            return; // comment / keep-alive
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"event" => {
                self.event.clear();
                self.event.extend_from_slice(value);
            }
            b"data" => {
                self.data.extend_from_slice(value);
                self.data.push(b'\n');
                self.has_data = true;
            }
            _ => {} // id, retry, unknown fields
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(chunks: &[&[u8]]) -> Vec<(String, String, usize, usize)> {
        let mut f = Framer::default();
        let mut out = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            f.feed(c, &mut |e, d, end| {
                out.push((
                    String::from_utf8_lossy(e).into(),
                    String::from_utf8_lossy(d).into(),
                    i,
                    end,
                ))
            });
        }
        out
    }

    #[test]
    fn whole_events_with_offsets() {
        let s = b"event: a\ndata: {\"x\":1}\n\nevent: b\ndata: 2\n\n";
        let got = events(&[s]);
        assert_eq!(
            got,
            [
                ("a".into(), "{\"x\":1}".into(), 0, 24),
                ("b".into(), "2".into(), 0, s.len())
            ]
        );
    }

    #[test]
    fn split_anywhere_gives_the_same_events() {
        let s: &[u8] = b"event: message_start\r\ndata: {\"a\":\r\n\r\n: ping comment\n\ndata: x\rdata: y\r\r";
        let whole: Vec<(String, String)> = events(&[s]).into_iter().map(|(e, d, _, _)| (e, d)).collect();
        assert_eq!(
            whole,
            [("message_start".into(), "{\"a\":".into()), ("".into(), "x\ny".into())]
        );
        for cut in 1..s.len() {
            let split: Vec<(String, String)> = events(&[&s[..cut], &s[cut..]])
                .into_iter()
                .map(|(e, d, _, _)| (e, d))
                .collect();
            assert_eq!(split, whole, "split at {cut}");
        }
        let bytewise: Vec<&[u8]> = s.chunks(1).collect();
        let got: Vec<(String, String)> = events(&bytewise).into_iter().map(|(e, d, _, _)| (e, d)).collect();
        assert_eq!(got, whole, "one byte at a time");
    }

    #[test]
    fn comments_and_dataless_events_are_not_dispatched() {
        assert!(events(&[b": OPENROUTER PROCESSING\n\n", b"event: ping\n\n"]).is_empty());
        assert_eq!(
            events(&[b"data\n\n"]).len(),
            1,
            "a bare `data` field is an empty data line"
        );
    }
}
