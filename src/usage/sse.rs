//! An incremental Server-Sent Events framer: chunks in, complete events out, whatever the chunk
//! boundaries (events and lines split anywhere, `\n`, `\r\n` or `\r` line ends, comments). It
//! copies only a line that straddles a chunk boundary; it never holds the chunk itself.

/// Called with (event name, data, offset just past the event in the current chunk).
pub type OnEvent<'a> = dyn FnMut(&[u8], &[u8], usize) + 'a;

/// What the framer found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete event: its name (may be empty) and data.
    Event {
        /// The `event:` field (empty when the event has none).
        name: &'a [u8],
        /// The `data:` lines, joined by `\n`.
        data: &'a [u8],
    },
    /// An event longer than the framer's limit ended; its bytes were not kept.
    Oversized,
}

/// Tracks the event being read across chunks. What it keeps is bounded by its limit: an event
/// (its data lines, or a single line) longer than that is dropped and reported as
/// [`Frame::Oversized`] when it ends.
pub struct Framer {
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
    /// The previous chunk ended in `\r`: a leading `\n` in the next one belongs to it.
    after_cr: bool,
    event: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
    /// Most bytes kept for one event.
    max: usize,
    /// Inside an event that went over `max`: skipping to its end.
    skipping: bool,
    /// In skip mode: the current line has content (so its end is not a blank line).
    line_has_bytes: bool,
    oversized: u64,
}

impl Default for Framer {
    fn default() -> Self {
        Framer::with_limit(usize::MAX)
    }
}

impl Framer {
    /// A framer that keeps at most `max` bytes of one event.
    pub fn with_limit(max: usize) -> Self {
        Framer {
            partial: Vec::new(),
            after_cr: false,
            event: Vec::new(),
            data: Vec::new(),
            has_data: false,
            max,
            skipping: false,
            line_has_bytes: false,
            oversized: 0,
        }
    }

    /// The most bytes of one event kept.
    pub fn limit(&self) -> usize {
        self.max
    }

    /// Events that went over the limit so far.
    pub fn oversized(&self) -> u64 {
        self.oversized
    }

    /// Feed one chunk. `on_event(name, data, end)` runs for every event that completes in it;
    /// `end` is the offset in `chunk` just past the blank line that ended the event. Oversized
    /// events are skipped.
    pub fn feed(&mut self, chunk: &[u8], on_event: &mut OnEvent<'_>) {
        self.feed_frames(chunk, &mut |frame, end| {
            if let Frame::Event { name, data } = frame {
                on_event(name, data, end)
            }
        });
    }

    /// Feed one chunk, reporting oversized events too.
    pub fn feed_frames(&mut self, chunk: &[u8], on_frame: &mut dyn FnMut(Frame<'_>, usize)) {
        if chunk.is_empty() {
            return; // a `\r` pending from the last chunk still waits for its `\n`
        }
        let mut pos = 0;
        if self.after_cr && chunk.first() == Some(&b'\n') {
            pos = 1;
        }
        self.after_cr = false;
        while pos < chunk.len() {
            let Some(rel) = memchr::memchr2(b'\n', b'\r', &chunk[pos..]) else {
                self.partial_line(&chunk[pos..]);
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
            if self.skipping {
                self.skipped_line(end > pos, next, on_frame);
            } else if self.partial.is_empty() {
                self.line(&chunk[pos..end], next, on_frame);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&chunk[pos..end]);
                self.line(&line, next, on_frame);
                line.clear();
                self.partial = line; // keep the allocation
            }
            pos = next;
        }
    }

    /// The start of a line whose end is in a later chunk.
    fn partial_line(&mut self, bytes: &[u8]) {
        if self.skipping {
            self.line_has_bytes |= !bytes.is_empty();
        } else if self.partial.len() + bytes.len() + self.data.len() > self.max {
            self.start_skipping();
            self.line_has_bytes = !bytes.is_empty();
        } else {
            self.partial.extend_from_slice(bytes);
        }
    }

    /// Drop what is kept of the current event and skip to its end.
    fn start_skipping(&mut self) {
        self.skipping = true;
        self.partial = Vec::new();
        self.data = Vec::new();
        self.event.clear();
        self.has_data = false;
    }

    /// A line end while skipping: a blank line ends the oversized event.
    fn skipped_line(&mut self, bytes_before_end: bool, end: usize, on_frame: &mut dyn FnMut(Frame<'_>, usize)) {
        if bytes_before_end || self.line_has_bytes {
            self.line_has_bytes = false;
            return;
        }
        self.skipping = false;
        self.oversized += 1;
        on_frame(Frame::Oversized, end);
    }

    fn line(&mut self, line: &[u8], end: usize, on_frame: &mut dyn FnMut(Frame<'_>, usize)) {
        if line.is_empty() {
            if self.has_data {
                if self.data.last() == Some(&b'\n') {
                    self.data.pop();
                }
                on_frame(
                    Frame::Event {
                        name: &self.event,
                        data: &self.data,
                    },
                    end,
                );
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
        if self.data.len() + value.len() + self.event.len() > self.max {
            self.start_skipping();
            return;
        }
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
    fn an_empty_chunk_between_cr_and_lf_changes_nothing() {
        let data = |got: Vec<(String, String, usize, usize)>| got.into_iter().map(|e| e.1).collect::<Vec<_>>();
        let whole = data(events(&[b"data: 1\r\ndata: 2\r\n\r\n"]));
        let split = data(events(&[b"data: 1\r", b"", b"\ndata: 2\r\n\r\n"]));
        assert_eq!(whole, ["1\n2"], "one event of two data lines");
        assert_eq!(
            split, whole,
            "the LF after an empty chunk ends the CR's line, not the event"
        );
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
    fn events_over_the_limit_are_skipped_and_reported_at_their_end() {
        let big = format!("data: {}\n\n", "x".repeat(5000));
        let stream = format!(
            "data: a\n\n{big}event: e\ndata: {}\ndata: {}\n\ndata: b\n\n",
            "y".repeat(600),
            "z".repeat(600)
        );
        let bytes = stream.as_bytes();
        for step in [1, 7, 64, bytes.len()] {
            let mut f = Framer::with_limit(1024);
            let mut got = Vec::new();
            for c in bytes.chunks(step) {
                f.feed_frames(c, &mut |frame, _| {
                    got.push(match frame {
                        Frame::Event { data, .. } => String::from_utf8_lossy(data).into_owned(),
                        Frame::Oversized => "<oversized>".into(),
                    })
                });
                assert!(
                    f.partial.capacity() <= 4096 && f.data.capacity() <= 4096,
                    "kept bytes stay near the limit (step {step})"
                );
            }
            assert_eq!(got, ["a", "<oversized>", "<oversized>", "b"], "chunks of {step}");
            assert_eq!(f.oversized(), 2, "both long events counted (chunks of {step})");
        }
    }

    #[test]
    fn an_unterminated_event_is_never_kept_whole() {
        let mut f = Framer::with_limit(1 << 20);
        let chunk = vec![b'x'; 64 * 1024];
        f.feed(b"data: ", &mut |_, _, _| {});
        for _ in 0..64 {
            f.feed(&chunk, &mut |_, _, _| panic!("no event completes"));
        }
        assert!(
            f.partial.capacity() <= 2 << 20,
            "4 MiB fed, at most the limit kept: {}",
            f.partial.capacity()
        );
        assert!(f.skipping, "over the limit: skipping to the event's end");
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
