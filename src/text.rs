//! Text from peers made safe to log or to put in an answer: control characters removed, cut to a
//! bounded length on a character boundary.

/// At most this many bytes of upstream-provided text reach a log line.
const MAX_LOGGED: usize = 500;

/// Upstream text made safe to log: control characters removed, cut to 500 bytes.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_LOGGED));
    for c in text.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > MAX_LOGGED {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_strips_controls_and_truncates_on_char_boundaries() {
        assert_eq!(sanitize("a\r\nb\u{1b}[31mc\0"), "ab[31mc", "control characters removed");
        let long = "é".repeat(400); // 800 bytes
        let out = sanitize(&long);
        assert!(
            out.len() <= 500 && out.len() >= 498,
            "cut near 500 bytes: {}",
            out.len()
        );
        assert!(out.chars().all(|c| c == 'é'), "no broken characters");
    }
}
