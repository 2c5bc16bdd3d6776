//! POSIX extended regular expressions (what a board's runner greps `-c` and
//! `-e` with, and what mq.sh users write) in the syntax of the `regex` crate.
//!
//! Every text the old client accepts must be accepted: GNU grep's reading
//! of an ERE is the reference. Where the two syntaxes differ:
//! * a `{` that starts no valid interval (`{"result":"pass"}`, a lone `{`) is
//!   literal, and so is a `}` outside one; `{,m}` is `{0,m}`;
//! * `*`, `+`, `?` and an interval with nothing to repeat (at the start, after
//!   `(` or `|`) are literal;
//! * in a bracket expression a backslash is literal, a `]` first is literal,
//!   and the crate's own class syntax (`[`, `&&`, `--`, `~~`) is escaped;
//! * `\<` and `\>` are word starts and ends; `\w \W \s \S \b \B` carry over;
//!   a backslash before any other character makes it literal;
//! * back-references (`\1`..`\9`) cannot be expressed: the translation says
//!   so, and the caller relies on the runner's own verdict.

/// Why a text has no translation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Untranslatable {
    /// A back-reference (`\1`...), which the `regex` crate cannot match.
    BackReference(char),
}

impl std::fmt::Display for Untranslatable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Untranslatable::BackReference(d) => write!(f, "the back-reference \\{d}"),
        }
    }
}

/// Translates an ERE to the `regex` crate's syntax.
pub fn translate(ere: &str) -> Result<String, Untranslatable> {
    let chars: Vec<char> = ere.chars().collect();
    let mut out = String::with_capacity(ere.len() + 8);
    let mut i = 0;
    // Whether a repetition here would have an atom to repeat.
    let mut can_repeat = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                i += 1;
                match chars.get(i) {
                    None => out.push_str(r"\\"),
                    Some(&d @ '1'..='9') => return Err(Untranslatable::BackReference(d)),
                    Some('<') => out.push_str(r"\b{start}"),
                    Some('>') => out.push_str(r"\b{end}"),
                    Some(&e @ ('w' | 'W' | 's' | 'S' | 'b' | 'B')) => {
                        out.push('\\');
                        out.push(e);
                    }
                    Some('`') => out.push_str(r"\A"),
                    Some('\'') => out.push_str(r"\z"),
                    Some(&other) => push_literal(&mut out, other),
                }
                // \b and friends are assertions; GNU lets them be repeated
                // harmlessly, the crate does too.
                can_repeat = true;
                i += 1;
            }
            '[' => {
                i = bracket(&chars, i, &mut out);
                can_repeat = true;
            }
            '{' => match interval(&chars, i) {
                Some((text, end)) if can_repeat => {
                    out.push_str(&text);
                    i = end;
                }
                _ => {
                    out.push_str(r"\{");
                    can_repeat = true;
                    i += 1;
                }
            },
            '}' => {
                out.push_str(r"\}");
                can_repeat = true;
                i += 1;
            }
            '*' | '+' | '?' => {
                if can_repeat {
                    out.push(c);
                } else {
                    push_literal(&mut out, c);
                    can_repeat = true;
                }
                i += 1;
            }
            '(' | '|' => {
                out.push(c);
                can_repeat = false;
                i += 1;
            }
            '^' => {
                out.push(c);
                can_repeat = false;
                i += 1;
            }
            _ => {
                out.push(c);
                can_repeat = true;
                i += 1;
            }
        }
    }
    Ok(out)
}

fn push_literal(out: &mut String, c: char) {
    out.push_str(&regex::escape(&c.to_string()));
}

/// A valid interval at `start` (`{n}`, `{n,}`, `{n,m}`, `{,m}`): its
/// translation and the index after it.
fn interval(chars: &[char], start: usize) -> Option<(String, usize)> {
    let close = chars[start..].iter().position(|&c| c == '}')? + start;
    let body: String = chars[start + 1..close].iter().collect();
    let (low, high) = match body.split_once(',') {
        None => (body.as_str(), None),
        Some((low, high)) => (low, Some(high)),
    };
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    let ok = match high {
        None => digits(low),
        Some(high) => {
            (digits(low) || low.is_empty())
                && (digits(high) || high.is_empty())
                && !(low.is_empty() && high.is_empty())
        }
    };
    if !ok {
        return None;
    }
    let low = if low.is_empty() { "0" } else { low };
    let text = match high {
        None => format!("{{{low}}}"),
        Some(high) => format!("{{{low},{high}}}"),
    };
    Some((text, close + 1))
}

/// Copies the bracket expression at `start` (its `[`); returns the index
/// after its `]`. Without a closing `]`, the `[` is literal (GNU grep refuses
/// it; mq lets the runner decide).
fn bracket(chars: &[char], start: usize, out: &mut String) -> usize {
    let mut i = start + 1;
    let mut body = String::new();
    if chars.get(i) == Some(&'^') {
        body.push('^');
        i += 1;
    }
    let mut first = true;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ']' if !first => {
                out.push('[');
                out.push_str(&body);
                out.push(']');
                return i + 1;
            }
            '[' if matches!(chars.get(i + 1), Some(':' | '=' | '.')) => {
                let kind = chars[i + 1];
                let end = (i + 2..chars.len().saturating_sub(1))
                    .find(|&j| chars[j] == kind && chars[j + 1] == ']');
                match (kind, end) {
                    (':', Some(end)) => {
                        body.extend(&chars[i..end + 2]);
                        i = end + 2;
                    }
                    // [=x=] and [.x.] name one character here.
                    (_, Some(end)) => {
                        let inner: String = chars[i + 2..end].iter().collect();
                        body.push_str(&regex::escape(&inner));
                        i = end + 2;
                    }
                    (_, None) => {
                        body.push_str(r"\[");
                        i += 1;
                    }
                }
            }
            '\\' | '[' | '&' | '~' => {
                body.push('\\');
                body.push(c);
                i += 1;
            }
            '-' if chars.get(i + 1) == Some(&'-') => {
                body.push_str(r"\-");
                i += 1;
            }
            _ => {
                if c == ']' {
                    body.push_str(r"\]");
                } else {
                    body.push(c);
                }
                i += 1;
            }
        }
        first = false;
    }
    out.push_str(r"\[");
    start + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(ere: &str, text: &str) -> bool {
        regex::Regex::new(&translate(ere).unwrap())
            .unwrap()
            .is_match(text)
    }

    #[test]
    fn braces_that_start_no_interval_are_literal() {
        assert!(matches(r#"{"result":"pass"}"#, r#"{"result":"pass"}"#));
        assert!(matches("{", "a { b"));
        assert!(matches("}", "}"));
        assert!(matches("a{2}", "xaax"));
        assert!(!matches("^a{2}$", "a"));
        assert!(matches("^a{,2}$", "aa"));
        assert!(matches("^a{1,}$", "aaa"));
        assert!(matches("x{a}", "x{a}"));
        assert!(matches("{2}", "{2}"), "nothing to repeat: literal");
    }

    #[test]
    fn repetition_with_nothing_to_repeat_is_literal() {
        assert!(matches("*x", "*x"));
        assert!(matches("(+a)", "+a"));
        assert!(matches("a|?", "?"));
        assert!(matches("^*", "*"));
    }

    #[test]
    fn bracket_expressions_as_posix_has_them() {
        assert!(matches("[]a]", "]"));
        assert!(matches("[^]a]", "b"));
        assert!(!matches("^[^]a]$", "]"));
        assert!(matches(r"[\]", r"\"));
        assert!(matches("[[:digit:]]+ tests", "42 tests"));
        assert!(matches("[a&&b]", "&"));
        assert!(matches("[[]", "["));
        assert!(matches("[", "a[b"), "unclosed: literal");
        assert!(matches("[a-c]x", "bx"));
    }

    #[test]
    fn escapes_and_word_boundaries() {
        assert!(matches(r"\<pass\>", "all pass now"));
        assert!(!matches(r"\<pass\>", "passed"));
        assert!(matches(r"\.", "."));
        assert!(!matches(r"^\.$", "a"));
        assert!(matches(r"\y", "y"), "an unknown escape is the character");
        assert!(matches(r"\w+\s", "ab "));
        assert!(matches("trailing\\", "trailing\\"));
    }

    #[test]
    fn back_references_are_said_to_be_untranslatable() {
        assert_eq!(translate(r"(a)\1"), Err(Untranslatable::BackReference('1')));
        assert_eq!(
            translate("All is well in the universe").unwrap(),
            "All is well in the universe"
        );
    }
}
