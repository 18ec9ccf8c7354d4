//! What the fuzz targets share: how an input's first bytes choose options and cut its body into
//! chunks, the providers and dialects to run through, and gzip for the compressed paths.
//!
//! Split-based targets read their input as:
//!
//! | bytes          | meaning                                                              |
//! |----------------|----------------------------------------------------------------------|
//! | 1              | flags (each target says what its bits mean; 0 is the common case)   |
//! | 1              | `n`: how many cuts follow (`n % 8`)                                  |
//! | `2 * (n % 8)`  | the cuts: little-endian u16 each, a position in the body modulo its length + 1 |
//! | the rest       | the body                                                             |
//!
//! so a seed is a fixture with `\x00\x00` in front (`fuzz/seeds.sh` writes them that way).

use std::io::Write;

use llm_sidecar::provider::{Dialect, ProviderKind};

/// Every provider the meter can read (claude-cli speaks Anthropic's API, with its own cost).
pub const PROVIDERS: [ProviderKind; 5] = [
    ProviderKind::Anthropic,
    ProviderKind::Openai,
    ProviderKind::Gemini,
    ProviderKind::Openrouter,
    ProviderKind::ClaudeCli,
];

/// Every dialect the translation layer knows.
pub const DIALECTS: [Dialect; 3] = [Dialect::OpenAi, Dialect::Anthropic, Dialect::Gemini];

/// An input of a split-based target: flags, cut points, body.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// Options for the target.
    pub flags: u8,
    cuts: &'a [u8],
    /// The bytes under test.
    pub body: &'a [u8],
}

impl<'a> Input<'a> {
    /// Read `data` as flags, cuts and body; `None` when it is too short for the two header bytes.
    pub fn parse(data: &'a [u8]) -> Option<Input<'a>> {
        let (&flags, rest) = data.split_first()?;
        let (&n, rest) = rest.split_first()?;
        let len = (usize::from(n % 8) * 2).min(rest.len());
        let (cuts, body) = rest.split_at(len);
        Some(Input { flags, cuts, body })
    }

    /// The body cut at the input's cut points.
    pub fn chunks(&self, keep_empty: bool) -> Vec<&'a [u8]> {
        self.split(self.body, keep_empty)
    }

    /// `bytes` (the body, or something made from it) cut at the input's cut points, in order.
    /// Repeated points, or points at either end, give empty chunks: kept only when `keep_empty`.
    pub fn split<'b>(&self, bytes: &'b [u8], keep_empty: bool) -> Vec<&'b [u8]> {
        let mut at: Vec<usize> = self
            .cuts
            .chunks_exact(2)
            .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])) % (bytes.len() + 1))
            .collect();
        at.sort_unstable();
        let mut chunks = Vec::with_capacity(at.len() + 1);
        let mut start = 0;
        for end in at {
            chunks.push(&bytes[start..end]);
            start = end;
        }
        chunks.push(&bytes[start..]);
        if !keep_empty {
            chunks.retain(|c| !c.is_empty());
        }
        chunks
    }
}

/// `body` in the smallest pieces worth the time: one byte at a time up to 512 bytes (the most
/// boundaries a stream can have), 7-byte pieces beyond, where byte by byte made the stream
/// targets run at under 100 inputs a second (the input's own cuts still put boundaries anywhere).
pub fn bytewise(body: &[u8]) -> Vec<&[u8]> {
    let size = if body.len() <= 512 { 1 } else { 7 };
    body.chunks(size).collect()
}

/// `body` gzipped, as an upstream that compresses its answer sends it.
pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(body).expect("gzip into memory");
    e.finish().expect("gzip into memory")
}
