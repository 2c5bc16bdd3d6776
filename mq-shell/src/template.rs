//! Fills the `sh` scripts mq sends to hosts. The scripts live as `.sh` files
//! beside the code that sends them (so `sh -n` and `shellcheck` read them as
//! they are), with `@name@` placeholders that [`fill`] replaces in one pass:
//! a value is never scanned again, so a value holding `@x@` stays as it is.
//!
//! Values go in verbatim: a caller passes words already quoted with
//! [`quote`](crate::quote()), numbers, or other filled scripts.
//!
//! The template's comment lines (a `#` first, after blanks) are left out of
//! what is sent, except `# shellcheck` directives: they are for people
//! reading the files, and a run's whole plan has to fit one exec request.
//! (The templates hold no here-documents or multi-line strings, where such a
//! line would be text.)

/// Replaces every `@name@` in `template` (`name`: lower-case letters, digits
/// and `_`) by its value in `values`, leaving out the template's comment
/// lines.
///
/// # Panics
/// On a placeholder with no value, or a value no placeholder uses: both are
/// mistakes in mq's own scripts, found by the tests that fill each of them.
///
/// ```
/// use mq_shell::{fill, quote};
/// let script = fill("rm -f -- @file@ && echo @n@", &[("file", &quote("a b")), ("n", "1")]);
/// assert_eq!(script, "rm -f -- 'a b' && echo 1");
/// // `$@` and an e-mail address are not placeholders.
/// assert_eq!(fill("set -- \"$@\"; echo a@b.c", &[]), "set -- \"$@\"; echo a@b.c");
/// // Comments are for the file's readers.
/// assert_eq!(fill("# why\n  # more\necho @n@ # kept\n", &[("n", "1")]), "echo 1 # kept\n");
/// ```
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let code = without_comments(template);
    let mut out = String::with_capacity(code.len() + 64);
    let mut used = vec![false; values.len()];
    let mut rest = code.as_str();
    while let Some(at) = rest.find('@') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(after.len());
        if name_len == 0 || !after[name_len..].starts_with('@') {
            out.push('@');
            rest = after;
            continue;
        }
        let name = &after[..name_len];
        let Some(i) = values.iter().position(|(n, _)| *n == name) else {
            panic!("script placeholder @{name}@ has no value");
        };
        used[i] = true;
        out.push_str(values[i].1);
        rest = &after[name_len + 1..];
    }
    out.push_str(rest);
    if let Some(i) = used.iter().position(|u| !u) {
        panic!("no placeholder @{}@ in the script", values[i].0);
    }
    out
}

/// `template` without its comment lines (but with `# shellcheck` ones).
fn without_comments(template: &str) -> String {
    template
        .split_inclusive('\n')
        .filter(|line| {
            let line = line.trim_start();
            !line.starts_with('#') || line.starts_with("# shellcheck")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::fill;

    #[test]
    fn one_pass_and_only_names() {
        assert_eq!(fill("@a@@b@", &[("a", "@b@"), ("b", "x")]), "@b@x");
        assert_eq!(fill("@ @A@ @@", &[]), "@ @A@ @@");
        assert_eq!(fill("x@a@", &[("a", "")]), "x");
    }

    #[test]
    #[should_panic(expected = "@missing@ has no value")]
    fn a_placeholder_without_value_is_a_mistake() {
        fill("echo @missing@", &[]);
    }

    #[test]
    #[should_panic(expected = "no placeholder @extra@")]
    fn a_value_without_placeholder_is_a_mistake() {
        fill("echo", &[("extra", "1")]);
    }
}
