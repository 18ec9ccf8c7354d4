//! Prices: USD per million tokens, matched on the response's model by glob (`*`, `?`), first
//! match wins. No match means the cost is unknown (`None`), never zero.

use super::Usage;

/// One `prices[]` entry: USD per million tokens for the models its glob matches.
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    /// Glob on the response's model (`*` and `?`).
    pub model: Box<str>,
    /// Uncached input tokens, USD per million.
    pub input: f64,
    /// Output tokens, USD per million.
    pub output: f64,
    /// Defaults to the input price when not given.
    pub cache_read: Option<f64>,
    /// Defaults to the input price when not given.
    pub cache_write: Option<f64>,
    /// One-hour cache writes (Anthropic); defaults to `cache_write`.
    pub cache_write_1h: Option<f64>,
}

/// The cost of `usage` for `model`, or `None` when no price matches. A cost the provider
/// reported itself (OpenRouter) wins over the table.
pub fn cost(prices: &[Price], model: Option<&str>, usage: &Usage) -> Option<f64> {
    if let Some(c) = usage.cost {
        return Some(c);
    }
    if usage.is_empty() {
        return None;
    }
    let model = model?;
    let p = prices.iter().find(|p| glob(&p.model, model))?;
    let cache_write_price = p.cache_write.unwrap_or(p.input);
    let writes = usage.cache_write.unwrap_or(0);
    let writes_1h = usage.cache_write_1h.unwrap_or(0).min(writes);
    let micro = usage.uncached_input() as f64 * p.input
        + usage.output.unwrap_or(0) as f64 * p.output
        + usage.cache_read.unwrap_or(0) as f64 * p.cache_read.unwrap_or(p.input)
        + (writes - writes_1h) as f64 * cache_write_price
        + writes_1h as f64 * p.cache_write_1h.unwrap_or(cache_write_price);
    Some(micro / 1_000_000.0)
}

/// `*` matches any run of characters, `?` any one; everything else literally.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(model: &str, input: f64, output: f64, cr: Option<f64>, cw: Option<f64>, cw1h: Option<f64>) -> Price {
        Price {
            model: model.into(),
            input,
            output,
            cache_read: cr,
            cache_write: cw,
            cache_write_1h: cw1h,
        }
    }

    #[test]
    fn globs() {
        assert!(glob("claude-sonnet-*", "claude-sonnet-5"));
        assert!(glob("gpt-4.1*", "gpt-4.1"));
        assert!(glob("gpt-4.1*", "gpt-4.1-mini-2025-04-14"));
        assert!(!glob("gpt-4.1*", "gpt-4o"));
        assert!(glob("*flash*", "gemini-2.5-flash-lite"));
        assert!(glob("o?-mini", "o3-mini") && !glob("o?-mini", "o3-mini-high"));
        assert!(glob("*", "") && !glob("a", ""));
        assert!(glob("a*b*c", "aXXbYYc") && !glob("a*b*c", "aXXbYY"));
    }

    #[test]
    fn anthropic_cost_counts_cache_separately_and_prices_one_hour_writes() {
        let prices = [price("claude-sonnet-*", 3.0, 15.0, Some(0.3), Some(3.75), Some(6.0))];
        let u = Usage {
            input: Some(1000),
            output: Some(500),
            cache_read: Some(10_000),
            cache_write: Some(2000),
            cache_write_1h: Some(500),
            ..Usage::default()
        };
        let c = cost(&prices, Some("claude-sonnet-5"), &u).expect("priced");
        let expected = (1000.0 * 3.0 + 500.0 * 15.0 + 10_000.0 * 0.3 + 1500.0 * 3.75 + 500.0 * 6.0) / 1e6;
        assert!((c - expected).abs() < 1e-12, "{c} vs {expected}");
    }

    #[test]
    fn openai_cost_takes_cached_tokens_out_of_the_input() {
        let prices = [price("gpt-4.1*", 2.0, 8.0, Some(0.5), None, None)];
        let u = Usage {
            input: Some(1000),
            output: Some(100),
            cache_read: Some(400),
            input_includes_cache: true,
            ..Usage::default()
        };
        let c = cost(&prices, Some("gpt-4.1-2025-04-14"), &u).expect("priced");
        assert!(
            (c - (600.0 * 2.0 + 400.0 * 0.5 + 100.0 * 8.0) / 1e6).abs() < 1e-12,
            "{c}"
        );
    }

    #[test]
    fn unknown_model_has_no_cost_and_reported_cost_wins() {
        let prices = [price("gpt-4.1*", 2.0, 8.0, None, None, None)];
        let u = Usage {
            input: Some(10),
            output: Some(1),
            ..Usage::default()
        };
        assert_eq!(cost(&prices, Some("mystery-1"), &u), None, "unpriced is None, not 0");
        assert_eq!(cost(&prices, None, &u), None, "no model, no price");
        let reported = Usage {
            cost: Some(0.0123),
            ..u
        };
        assert_eq!(
            cost(&prices, Some("mystery-1"), &reported),
            Some(0.0123),
            "OpenRouter's own cost"
        );
        assert_eq!(
            cost(&prices, Some("gpt-4.1"), &Usage::default()),
            None,
            "no usage, no known cost"
        );
        let first = [
            price("gpt-4.1-mini*", 0.4, 1.6, None, None, None),
            price("gpt-4.1*", 2.0, 8.0, None, None, None),
        ];
        let one = Usage {
            input: Some(1_000_000),
            ..Usage::default()
        };
        assert_eq!(cost(&first, Some("gpt-4.1-mini"), &one), Some(0.4), "first match wins");
    }
}
