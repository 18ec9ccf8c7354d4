//! The config's value types written as text: durations (`250ms`, `2s`, `10m`) and shares (`20%`).

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration written like `250ms`, `2s`, `10m`, `30d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        // Bounded, so time arithmetic on it can never overflow.
        const MAX: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
        humantime::parse_duration(text.trim())
            .map_err(|e| e.to_string())
            .and_then(|d| {
                if d <= MAX {
                    Ok(Dur(d))
                } else {
                    Err("longer than 10 years".into())
                }
            })
            .map_err(|e| {
                serde::de::Error::custom(format!("invalid duration {text:?} ({e}); write e.g. 250ms, 2s, 10m"))
            })
    }
}

/// A share written `20%` (or a fraction like `0.2`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percent(pub f64);

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Number(f64),
            Text(String),
        }
        let v = match Form::deserialize(d)? {
            Form::Number(n) => n,
            Form::Text(t) => match t.trim().strip_suffix('%').map(|n| n.trim().parse::<f64>()) {
                Some(Ok(n)) => n / 100.0,
                _ => return Err(serde::de::Error::custom(format!("invalid share {t:?}; write e.g. 20%"))),
            },
        };
        Ok(Percent(v))
    }
}
