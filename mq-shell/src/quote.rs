//! Quoting values for a remote POSIX `sh` command line.
//!
//! Every value mq places in a remote command goes through [`quote`]: the result
//! is one shell word that `sh` turns back into exactly the given bytes, whatever
//! they hold (spaces, quotes, `$()`, backticks, `;`, newlines).

/// Quotes `value` as a single `sh` word.
///
/// Plain values become `'value'`, the form PROTOCOL.md's patterns expect (the
/// cancel pattern looks for `'KEY' > 'BASE/SYSTEM.key'`). A single quote inside
/// is written as `'\''`: close the quote, an escaped quote, reopen.
///
/// ```
/// use mq_shell::quote;
/// assert_eq!(quote("odroidc4_1"), "'odroidc4_1'");
/// assert_eq!(quote("it's"), r"'it'\''s'");
/// assert_eq!(quote(""), "''");
/// ```
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Quotes each value and joins them with spaces: a ready argument list.
pub fn quote_all<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    values.into_iter().map(quote).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// What `sh` makes of `printf '%s' WORD`.
    fn through_sh(word: &str) -> String {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s' {word}"))
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn hostile_values_survive_sh_unchanged() {
        for value in [
            "",
            "plain",
            "two words",
            "it's",
            "''",
            "\"double\"",
            "$(touch /tmp/mq-quote-pwned)",
            "`id`",
            "a;b&&c||d|e",
            "line1\nline2\n",
            "back\\slash",
            "*?[glob]",
            "~root",
            "$HOME ${x:-y}",
            "tab\there",
            "ünïcødé",
            "-n",
        ] {
            assert_eq!(through_sh(&quote(value)), value, "{value:?}");
        }
        assert!(!std::path::Path::new("/tmp/mq-quote-pwned").exists());
    }

    #[test]
    fn quote_all_keeps_words_apart() {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("printf '<%s>' {}", quote_all(["a b", "c'd", ""])))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "<a b><c'd><>");
    }
}
