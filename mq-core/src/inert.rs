//! Text from the lab host made harmless for a terminal.
//!
//! Keys, health reasons, holders and file names on the host are written by
//! other lab users. Shown raw, an escape sequence in a reason can erase and
//! redraw a line of `mq status` (a retired board shown as good), set the
//! terminal's title or write its clipboard (OSC 52), and a bidi override can
//! make text read backwards. Every piece of host text that mq prints for a
//! person goes through [`inert`] or [`inert_lines`]; JSON keeps the exact
//! text (see [`json_safe`]).

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` can change what a terminal shows beyond printing itself: the
/// C0 controls, DEL, the C1 controls (which xterm and others honour as
/// 8-bit CSI, OSC...), and Unicode's bidirectional overrides and isolates.
fn is_active(c: char) -> bool {
    matches!(c, '\0'..='\x1f' | '\x7f'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every control character shown as an escape: `\x1b` for the
/// C0, DEL and C1 controls (tabs and line breaks too: a table cell or a
/// field is one line), `\u{202e}` for bidi overrides. Text without any is
/// returned as it is, without a copy.
///
/// ```
/// assert_eq!(mq_core::inert("x\x1b[2K| good"), "x\\x1b[2K| good");
/// assert_eq!(mq_core::inert("tab\there"), "tab\\x09here");
/// assert_eq!(mq_core::inert("plain key-1"), "plain key-1");
/// ```
pub fn inert(text: &str) -> Cow<'_, str> {
    escape(text, |_| false)
}

/// [`inert`] for whole lines of output: line breaks and tabs (the columns
/// of mq.sh's TSV listings) are kept, every other control is escaped.
///
/// ```
/// assert_eq!(mq_core::inert_lines("a\tb\n\x1b]52;c;eA==\x07\n"), "a\tb\n\\x1b]52;c;eA==\\x07\n");
/// ```
pub fn inert_lines(text: &str) -> Cow<'_, str> {
    escape(text, |c| c == '\n' || c == '\t')
}

/// JSON text (from serde_json, which escapes only the C0 controls) with
/// DEL, the C1 controls and the bidi overrides written as `\u` escapes too:
/// the same value to a JSON reader, nothing active on a terminal.
///
/// ```
/// let json = serde_json::to_string("a\u{9b}2J").unwrap();
/// assert_eq!(mq_core::json_safe(&json), "\"a\\u009b2J\"");
/// ```
pub fn json_safe(json: &str) -> Cow<'_, str> {
    if !json.chars().any(is_active) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_active(c) {
            // C0 controls never reach here outside strings: serde_json
            // escapes them in strings and writes only \n and spaces between.
            if c == '\n' {
                out.push(c);
            } else {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn escape(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(|c| is_active(c) && !keep(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if !is_active(c) || keep(c) {
            out.push(c);
        } else if (c as u32) < 0x100 {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_control_is_escaped_and_nothing_else() {
        assert_eq!(
            inert("\u{1b}\u{7}\u{7f}\u{85}\u{9b}"),
            "\\x1b\\x07\\x7f\\x85\\x9b"
        );
        assert_eq!(inert("abc\u{202e}cba"), "abc\\u{202e}cba");
        assert_eq!(inert("é ü 日本 \\ $"), "é ü 日本 \\ $");
        assert_eq!(inert("a\r\nb"), "a\\x0d\\x0ab");
        assert_eq!(inert_lines("a\r\nb"), "a\\x0d\nb");
    }

    #[test]
    fn json_stays_the_same_value() {
        let text = "x\u{1b}[2K\u{9d}52;c;eA==\u{7}\u{7f}\u{2066}y";
        let json = serde_json::to_string_pretty(&serde_json::json!({ "reason": text })).unwrap();
        let safe = json_safe(&json);
        assert!(!safe.chars().any(|c| is_active(c) && c != '\n'), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["reason"], text);
    }
}
