//! Usage metering: what a response reports about tokens and cost, read chunk by chunk as it
//! streams past ([`Meter`]), priced ([`price`]), and added to each account's [`ledger`].

pub mod ledger;
mod meter;
pub mod mirror;
pub mod price;
pub mod sse;

#[cfg(test)]
mod meter_tests;

pub use meter::Meter;

/// Token counts exactly as the provider reported them (`None`: not reported).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Usage {
    /// Input tokens (Anthropic: uncached only; the others: cache reads and writes included).
    pub input: Option<u64>,
    /// Output tokens (Gemini's thinking tokens included).
    pub output: Option<u64>,
    /// Input tokens read from a prompt cache.
    pub cache_read: Option<u64>,
    /// Input tokens written to a prompt cache.
    pub cache_write: Option<u64>,
    /// The part of `cache_write` written for one hour (Anthropic prices it higher).
    pub cache_write_1h: Option<u64>,
    /// Cost stated by the provider itself (OpenRouter's `usage.cost`), in USD.
    pub cost: Option<f64>,
    /// OpenAI, OpenRouter and Gemini count cache reads and writes inside the input;
    /// Anthropic does not.
    pub input_includes_cache: bool,
}

impl Usage {
    /// Nothing was reported: no token count of any kind.
    pub fn is_empty(&self) -> bool {
        self.input.is_none() && self.output.is_none() && self.cache_read.is_none() && self.cache_write.is_none()
    }

    /// Merge a later report of the same response: per field, the larger value. Counts are
    /// cumulative, so this is the latest value, and a field a later event omits or zeroes is
    /// never lost (Anthropic's `message_start` input merged with `message_delta` output).
    pub fn merge(&mut self, later: &Usage) {
        fn max(a: Option<u64>, b: Option<u64>) -> Option<u64> {
            match (a, b) {
                (Some(x), Some(y)) => Some(x.max(y)),
                (x, None) => x,
                (None, y) => y,
            }
        }
        self.input = max(self.input, later.input);
        self.output = max(self.output, later.output);
        self.cache_read = max(self.cache_read, later.cache_read);
        self.cache_write = max(self.cache_write, later.cache_write);
        self.cache_write_1h = max(self.cache_write_1h, later.cache_write_1h);
        self.cost = later.cost.or(self.cost);
        self.input_includes_cache |= later.input_includes_cache;
    }

    /// Input tokens that were neither read from nor written to a cache.
    pub fn uncached_input(&self) -> u64 {
        let input = self.input.unwrap_or(0);
        if self.input_includes_cache {
            input.saturating_sub(
                self.cache_read
                    .unwrap_or(0)
                    .saturating_add(self.cache_write.unwrap_or(0)),
            )
        } else {
            input
        }
    }

    /// Every token counted once.
    pub fn total_tokens(&self) -> u64 {
        // Saturating: the counts come from the upstream, which could send anything.
        [self.cache_read, self.cache_write, self.output]
            .into_iter()
            .fold(self.uncached_input(), |n, c| n.saturating_add(c.unwrap_or(0)))
    }
}

/// What was read from one response.
#[derive(Debug, Default, Clone)]
pub struct Reading {
    /// The tokens and provider-stated cost, merged over the response.
    pub usage: Usage,
    /// The model as the response names it.
    pub model: Option<String>,
    /// The provider's final usage report was seen.
    pub complete: bool,
    /// The type of an error reported inside the stream (`overloaded_error`, ...).
    pub error: Option<String>,
}

/// How the request's usage is known.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The provider's final report.
    Reported,
    /// The response ended early; what the provider had reported until then.
    Partial,
    /// Nothing reported.
    #[default]
    None,
}

impl Source {
    /// The `usage_source` value in the access line and the request log.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Reported => "reported",
            Source::Partial => "partial",
            Source::None => "none",
        }
    }
}

/// What an SSE event is, for the meter (and for holding back a stream's preamble).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Preamble or bookkeeping (`message_start`, `ping`, `response.created`).
    Other,
    /// Generated content: after this the response is committed.
    Content,
    /// A chunk that carries only usage (OpenAI's `choices: []`), removable when the sidecar
    /// asked for it on the client's behalf.
    UsageOnly,
    /// An error reported inside a 200 stream.
    Error,
    /// The provider's end-of-stream marker.
    Done,
}

#[cfg(test)]
mod tests {
    use super::Usage;

    #[test]
    fn counts_from_an_upstream_never_overflow() {
        let u = Usage {
            input: Some(u64::MAX),
            output: Some(u64::MAX),
            cache_read: Some(u64::MAX),
            cache_write: Some(1),
            input_includes_cache: false,
            ..Usage::default()
        };
        assert_eq!(u.total_tokens(), u64::MAX, "saturates instead of wrapping or panicking");
        let included = Usage {
            input_includes_cache: true,
            ..u
        };
        assert_eq!(
            included.uncached_input(),
            0,
            "cache counts past the input leave none uncached"
        );
    }
}
