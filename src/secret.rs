//! A credential held in memory that never prints: `Debug` and `Display` show `*****`.

use std::fmt;

/// A key or token. The only way to read it is [`Secret::expose`], which keeps every use greppable.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Box<str>);

impl Secret {
    /// Hold `value` as a secret.
    pub fn new(value: impl Into<Box<str>>) -> Self {
        Secret(value.into())
    }

    /// The raw value. Call only where it is put on the wire or compared.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison with a candidate (length is not hidden).
    pub fn matches(&self, candidate: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        self.0.as_bytes().ct_eq(candidate).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("*****")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("*****")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_value() {
        let s = Secret::new("sk-ant-very-secret");
        assert_eq!(format!("{s}"), "*****", "Display must mask");
        assert_eq!(format!("{s:?}"), "*****", "Debug must mask");
        assert_eq!(format!("{:?}", Some(&s)), "Some(*****)", "nested Debug must mask");
    }

    #[test]
    fn matches_only_the_exact_value() {
        let s = Secret::new("tok-123");
        assert!(s.matches(b"tok-123"), "exact value matches");
        assert!(!s.matches(b"tok-124"), "one byte off does not match");
        assert!(!s.matches(b"tok-12"), "prefix does not match");
        assert!(!s.matches(b""), "empty does not match");
    }
}
