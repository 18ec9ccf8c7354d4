//! Bounded line splitting for the CLI's stdout: bytes go in as they arrive, whole lines come out.
//! A line longer than the limit is refused and never held whole: the buffer stays within the
//! limit, plus a `\r` waiting for its `\n`, plus one read.

use memchr::memchr;

/// A line passed the limit; its bytes were dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong {
    /// The line limit, in bytes.
    pub limit: usize,
}

/// Splits a byte stream on `\n` (a trailing `\r` is dropped too).
pub struct LineSplitter {
    buf: Vec<u8>,
    /// Where the unconsumed bytes begin.
    start: usize,
    /// Bytes before this offset hold no newline.
    scanned: usize,
    max: usize,
    /// The rest of a refused line is being skipped up to its newline.
    skipping: bool,
    /// The most the buffer ever held room for.
    peak: usize,
}

impl LineSplitter {
    /// A splitter refusing lines longer than `max` bytes (the newline not counted).
    pub fn new(max: usize) -> Self {
        LineSplitter {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            max,
            skipping: false,
            peak: 0,
        }
    }

    /// Append bytes just read. Call [`next_line`](Self::next_line) until it gives `None` after each push.
    pub fn push(&mut self, mut chunk: &[u8]) {
        if self.skipping {
            match memchr(b'\n', chunk) {
                Some(i) => {
                    self.skipping = false;
                    chunk = chunk.get(i + 1..).unwrap_or_default();
                }
                None => return,
            }
        }
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
            self.scanned = 0;
        } else if self.start > 0 && self.buf.len() + chunk.len() > self.buf.capacity() {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        let needed = self.buf.len() + chunk.len();
        if needed > self.buf.capacity() {
            // Grow exactly: doubling would let a refused line cost twice the limit.
            let target = needed.max(self.buf.capacity().saturating_mul(2).min(self.max.saturating_add(1)));
            self.buf.reserve_exact(target - self.buf.len());
            self.peak = self.peak.max(self.buf.capacity());
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next whole line, without its newline; `Err` once for a line past the limit (its bytes
    /// are dropped, and so is the rest of it as it arrives).
    pub fn next_line(&mut self) -> Result<Option<Vec<u8>>, TooLong> {
        let pending = self.buf.get(self.scanned..).unwrap_or_default();
        match memchr(b'\n', pending) {
            Some(i) => {
                let end = self.scanned + i;
                let line = self.take(end);
                self.start = end + 1;
                self.scanned = self.start;
                if line.len() > self.max {
                    return Err(TooLong { limit: self.max });
                }
                Ok(Some(line))
            }
            None => {
                self.scanned = self.buf.len();
                // A `\r` waiting for its `\n` is not part of the line (as when both arrive).
                let cr = usize::from(self.buf.last() == Some(&b'\r'));
                if (self.buf.len() - self.start).saturating_sub(cr) > self.max {
                    self.buf = Vec::new();
                    self.start = 0;
                    self.scanned = 0;
                    self.skipping = true;
                    return Err(TooLong { limit: self.max });
                }
                Ok(None)
            }
        }
    }

    /// At the end of the stream: the last line if it had no newline.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        if self.skipping || self.start >= self.buf.len() {
            return None;
        }
        let end = self.buf.len();
        let line = self.take(end);
        self.start = end;
        self.scanned = end;
        Some(line)
    }

    /// The most bytes the buffer ever held room for (what the splitter cost in memory).
    pub fn peak_capacity(&self) -> usize {
        self.peak
    }

    fn take(&self, end: usize) -> Vec<u8> {
        let mut line = self.buf.get(self.start..end).unwrap_or_default();
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        line.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_of_the_limit_is_taken_however_its_crlf_arrives() {
        let mut whole = LineSplitter::new(4);
        whole.push(b"abcd\r\n");
        assert_eq!(all_lines(&mut whole), [b"abcd".to_vec()], "whole");
        let mut split = LineSplitter::new(4);
        split.push(b"abcd\r");
        assert!(
            matches!(split.next_line(), Ok(None)),
            "the line waits for its newline, not refused"
        );
        split.push(b"\n");
        assert_eq!(all_lines(&mut split), [b"abcd".to_vec()], "split between CR and LF");
    }

    fn all_lines(s: &mut LineSplitter) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Ok(Some(l)) = s.next_line() {
            out.push(l);
        }
        out
    }

    #[test]
    fn lines_split_across_pushes_come_out_whole() {
        let text = b"{\"a\":1}\r\n{\"b\":22}\n\n{\"c\":333}";
        for size in 1..text.len() {
            let mut s = LineSplitter::new(100);
            let mut got = Vec::new();
            for chunk in text.chunks(size) {
                s.push(chunk);
                got.extend(all_lines(&mut s));
            }
            got.extend(s.finish());
            let want: Vec<Vec<u8>> = vec![
                b"{\"a\":1}".to_vec(),
                b"{\"b\":22}".to_vec(),
                b"".to_vec(),
                b"{\"c\":333}".to_vec(),
            ];
            assert_eq!(got, want, "chunks of {size} bytes");
        }
    }

    #[test]
    fn an_over_long_line_is_refused_without_growing_past_the_limit() {
        let max = 1 << 20;
        let chunk = vec![b'x'; 64 << 10];
        let mut s = LineSplitter::new(max);
        let mut refused = 0;
        for _ in 0..160 {
            s.push(&chunk);
            loop {
                match s.next_line() {
                    Ok(Some(_)) => panic!("no line may come out of an unterminated 10 MiB run"),
                    Ok(None) => break,
                    Err(e) => {
                        assert_eq!(e.limit, max, "the error names the limit");
                        refused += 1;
                    }
                }
            }
            let peak = s.peak_capacity();
            assert!(peak <= max + chunk.len(), "buffer {peak} stays within limit + one read");
        }
        assert_eq!(refused, 1, "the long line is refused once");
        assert!(
            s.peak_capacity() >= max,
            "the buffer did fill up to the limit: {}",
            s.peak_capacity()
        );
        s.push(b"tail of the long line\n{\"ok\":true}\n");
        assert_eq!(
            all_lines(&mut s),
            vec![b"{\"ok\":true}".to_vec()],
            "the rest of the long line is skipped"
        );
    }

    #[test]
    fn a_cr_waiting_past_the_limit_costs_one_byte_more() {
        // Found by the cli_stream_json fuzz target: a line of exactly the limit is held with its
        // `\r` until the next read says whether a `\n` follows.
        let mut s = LineSplitter::new(4);
        s.push(b"abcd\r");
        assert_eq!(s.next_line(), Ok(None), "the line waits for the byte after its CR");
        s.push(b"xyz");
        assert_eq!(
            s.next_line(),
            Err(TooLong { limit: 4 }),
            "no LF: the line goes on, past the limit"
        );
        assert_eq!(s.peak_capacity(), 4 + 1 + 3, "the limit, the waiting CR and one read");
        s.push(b"\nok\n");
        assert_eq!(
            all_lines(&mut s),
            [b"ok".to_vec()],
            "the refused line is skipped to its end"
        );
    }

    #[test]
    fn a_long_line_ending_in_the_same_push_is_refused() {
        let mut s = LineSplitter::new(4);
        s.push(b"123456\nabc\n");
        assert_eq!(s.next_line(), Err(TooLong { limit: 4 }), "6 bytes > 4");
        assert_eq!(s.next_line(), Ok(Some(b"abc".to_vec())), "the next line still comes");
        assert_eq!(s.finish(), None, "nothing left");
    }
}
