//! Incremental matching of console output.
//!
//! The [`Matcher`] consumes byte chunks of any size and reports every match of
//! its patterns once, with the line it is on and its place in the raw stream.
//!
//! Rules:
//! * Matching is per line. A line ends at `\n`, at `\r\n`, or at a bare `\r`
//!   (progress lines that overwrite themselves are lines of their own).
//!   Patterns do not match across lines.
//! * ANSI escape sequences (CSI `ESC [ ... final`, OSC `ESC ] ... BEL|ESC \`,
//!   and two-byte `ESC x`) are invisible to matching: `se\x1b[32mL4` matches
//!   `seL4`. The bytes themselves are never altered; the matcher only reads.
//! * A pattern split across chunks matches; a partial line is matched as it
//!   grows, so a completion text without a newline is seen at once. (So a
//!   pattern whose match can grow with the line, such as one ending in a
//!   greedy `.*`, is reported at the extent it had when first seen.)
//! * Invalid UTF-8 is matched as bytes (patterns are `regex::bytes`) and
//!   shown lossily.
//! * Memory is bounded: a line longer than [`MAX_LINE`] bytes is matched in
//!   pieces of that size that overlap by [`OVERLAP`] bytes, so a match up to
//!   `OVERLAP` bytes long is still found where a piece ends, and a longer one
//!   straddling the cut is missed.
//! * Work per byte is bounded: complete lines are searched once, with one
//!   combined automaton for all patterns; only the current partial line (at
//!   most [`MAX_LINE`] bytes) is searched again as it grows.

use regex::bytes::{Regex, RegexBuilder};
use serde::Serialize;

/// The longest line kept whole for matching.
pub const MAX_LINE: usize = 64 * 1024;
/// How much of an over-long line is kept when it is cut.
pub const OVERLAP: usize = 1024;

/// What a pattern means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "label", rename_all = "kebab-case")]
pub enum Kind {
    /// The test finished: the run succeeded.
    Completion,
    /// The test failed.
    Error,
    /// A known console marker, with its label.
    Marker(String),
}

/// One match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Match {
    /// What matched.
    pub kind: Kind,
    /// The pattern's index among all patterns (completion, error, markers).
    pub pattern: usize,
    /// The matched text (escape sequences removed; lossy UTF-8).
    pub text: String,
    /// The line it is on, as far as it had arrived (escapes removed).
    pub line: String,
    /// 1-based line number.
    pub line_number: u64,
    /// Offset in the raw stream of the match's first byte.
    pub start: u64,
    /// Offset in the raw stream just past its last byte.
    pub end: u64,
}

/// Why patterns were refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PatternError {
    /// A pattern is not a valid regular expression.
    #[error("invalid {what} pattern '{pattern}': {message}")]
    Invalid {
        /// `completion`, `error` or `marker`.
        what: &'static str,
        /// The pattern.
        pattern: String,
        /// What the regex parser said.
        message: String,
    },
    /// A pattern matches the empty string, so it would match every line.
    #[error("{what} pattern '{pattern}' matches empty text")]
    MatchesEmpty {
        /// `completion`, `error` or `marker`.
        what: &'static str,
        /// The pattern.
        pattern: String,
    },
}

/// Builds a [`Matcher`].
#[derive(Debug, Clone, Default)]
pub struct MatcherBuilder {
    patterns: Vec<(Kind, String)>,
    literal: bool,
    notes: Vec<String>,
}

impl MatcherBuilder {
    /// An empty builder.
    pub fn new() -> MatcherBuilder {
        MatcherBuilder::default()
    }

    /// Treats completion and error patterns as literal text (escapes them),
    /// as `mq run -c TEXT -e TEXT` does. Markers stay regular expressions.
    pub fn literal(mut self, yes: bool) -> MatcherBuilder {
        self.literal = yes;
        self
    }

    /// A text whose appearance means the test completed.
    pub fn completion(mut self, pattern: &str) -> MatcherBuilder {
        self.patterns.push((Kind::Completion, pattern.to_string()));
        self
    }

    /// A text whose appearance means the test failed.
    pub fn error(mut self, pattern: &str) -> MatcherBuilder {
        self.patterns.push((Kind::Error, pattern.to_string()));
        self
    }

    /// A completion text as `mq run -c` and board runners take it: a POSIX
    /// extended regular expression (as the runner greps it, see
    /// [`crate::ere`]), and also the same text literally, so that `(10
    /// tests)` matches itself whatever the other side makes of it. A text
    /// mq cannot express (a back-reference) is matched literally only, and
    /// [`Matcher::notes`] says that the runner's verdict decides.
    pub fn completion_text(self, text: &str) -> MatcherBuilder {
        self.text(Kind::Completion, "completion", text)
    }

    /// An error text, as [`MatcherBuilder::completion_text`] takes a completion text.
    pub fn error_text(self, text: &str) -> MatcherBuilder {
        self.text(Kind::Error, "error", text)
    }

    fn text(mut self, kind: Kind, what: &str, text: &str) -> MatcherBuilder {
        let literal = regex::escape(text);
        match crate::ere::translate(text) {
            Ok(pattern) => {
                if pattern != literal {
                    self.patterns.push((kind.clone(), pattern));
                }
            }
            Err(why) => self.notes.push(format!(
                "the {what} text '{text}' uses {why}, which mq's matcher cannot follow: \
                 mq matches it literally and otherwise goes by the board runner's verdict"
            )),
        }
        self.patterns.push((kind, literal));
        self
    }

    /// The console matcher of a board run, on both sides (`mq run` and the
    /// board runner): the seL4 markers, and the completion and error texts
    /// as runners take them ([`MatcherBuilder::completion_text`]). An empty
    /// text is no text (`mq run` refuses an empty `-c` before this).
    pub fn board_run(completion: Option<&str>, error: Option<&str>) -> MatcherBuilder {
        let mut b = MatcherBuilder::new().markers(&crate::markers::sel4_pairs());
        if let Some(c) = completion.filter(|c| !c.is_empty()) {
            b = b.completion_text(c);
        }
        if let Some(e) = error.filter(|e| !e.is_empty()) {
            b = b.error_text(e);
        }
        b
    }

    /// A known marker: a pattern and its label.
    pub fn marker(mut self, pattern: &str, label: &str) -> MatcherBuilder {
        self.patterns
            .push((Kind::Marker(label.to_string()), pattern.to_string()));
        self
    }

    /// Adds every marker of a set (see [`crate::markers`]).
    pub fn markers(mut self, set: &[(&str, &str)]) -> MatcherBuilder {
        for (pattern, label) in set {
            self = self.marker(pattern, label);
        }
        self
    }

    /// Compiles the patterns.
    pub fn build(self) -> Result<Matcher, PatternError> {
        let mut compiled = Vec::with_capacity(self.patterns.len());
        let mut sources = Vec::with_capacity(self.patterns.len());
        for (kind, pattern) in &self.patterns {
            let what = match kind {
                Kind::Completion => "completion",
                Kind::Error => "error",
                Kind::Marker(_) => "marker",
            };
            let source = if self.literal && !matches!(kind, Kind::Marker(_)) {
                regex::escape(pattern)
            } else {
                pattern.clone()
            };
            let regex = compile(&source).map_err(|e| PatternError::Invalid {
                what,
                pattern: pattern.clone(),
                message: e.to_string(),
            })?;
            if regex.is_match(b"") {
                return Err(PatternError::MatchesEmpty {
                    what,
                    pattern: pattern.clone(),
                });
            }
            compiled.push(regex);
            sources.push(format!("(?:{source})"));
        }
        let any = if sources.is_empty() {
            None
        } else {
            Some(
                compile(&sources.join("|")).map_err(|e| PatternError::Invalid {
                    what: "combined",
                    pattern: String::new(),
                    message: e.to_string(),
                })?,
            )
        };
        let count = compiled.len();
        Ok(Matcher {
            notes: self.notes,
            kinds: self.patterns.into_iter().map(|(k, _)| k).collect(),
            regexes: compiled,
            any,
            line: Vec::new(),
            breaks: Vec::new(),
            line_start_raw: 0,
            line_number: 1,
            raw_offset: 0,
            escape: Escape::None,
            pending_cr: false,
            reported_until: vec![0; count],
            scanned_partial: 0,
            last_line: Vec::new(),
        })
    }
}

fn compile(source: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(source)
        .unicode(false)
        .size_limit(64 << 20)
        .dfa_size_limit(64 << 20)
        .build()
}

/// Where the escape-sequence scanner is, across chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    /// After ESC.
    Start,
    /// Inside `ESC [ ...` until a final byte 0x40..=0x7e.
    Csi,
    /// Inside `ESC ] ...` until BEL or `ESC \`.
    Osc,
    /// Inside OSC, after an ESC (a `\` ends it).
    OscEsc,
}

/// The incremental matcher; see the module docs for its rules.
#[derive(Debug)]
pub struct Matcher {
    /// What the builder could not follow (see [`Matcher::notes`]).
    notes: Vec<String>,
    kinds: Vec<Kind>,
    regexes: Vec<Regex>,
    any: Option<Regex>,
    /// The current line's visible bytes (escapes removed).
    line: Vec<u8>,
    /// Where visible bytes stop mapping one-to-one to raw bytes:
    /// `(index in line, raw offset of that byte)`, after each removed run.
    breaks: Vec<(usize, u64)>,
    line_start_raw: u64,
    line_number: u64,
    raw_offset: u64,
    escape: Escape,
    pending_cr: bool,
    /// Per pattern: raw offset up to which matches were reported.
    reported_until: Vec<u64>,
    /// How much of the current partial line has been searched.
    scanned_partial: usize,
    /// The last complete line with something visible on it.
    last_line: Vec<u8>,
}

impl Matcher {
    /// Texts mq cannot match as the runner does (back-references), one
    /// sentence each; empty almost always.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Feeds a chunk; returns the matches it completed, in stream order.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Match> {
        let mut found = Vec::new();
        let mut i = 0;
        while i < chunk.len() {
            if let Some(end) = self.ordinary_run(chunk, i, &mut found) {
                i = end;
                continue;
            }
            let byte = chunk[i];
            let raw = self.raw_offset;
            i += 1;
            self.raw_offset += 1;
            if self.after_cr(byte) || self.in_escape(byte) {
                continue;
            }
            self.byte(byte, raw, &mut found);
        }
        self.scan_partial(&mut found);
        found
    }

    /// The fast path: copies a run of ordinary bytes from `start` up to the
    /// next special one, and returns where it stopped (`None` when the byte
    /// at `start` needs the slow path).
    fn ordinary_run(
        &mut self,
        chunk: &[u8],
        start: usize,
        found: &mut Vec<Match>,
    ) -> Option<usize> {
        if self.escape != Escape::None || self.pending_cr {
            return None;
        }
        let special =
            memchr::memchr3(b'\n', b'\r', 0x1b, &chunk[start..]).map_or(chunk.len(), |p| start + p);
        // Never let the line outgrow its cap, whatever the chunk size.
        let room = MAX_LINE.saturating_sub(self.line.len()).max(1);
        let run_end = special.min(start + room);
        if run_end == start {
            return None;
        }
        self.push_visible(&chunk[start..run_end]);
        if self.line.len() >= MAX_LINE {
            self.cut_long_line(found);
        }
        Some(run_end)
    }

    /// A byte right after a CR: true when it is part of that line end.
    fn after_cr(&mut self, byte: u8) -> bool {
        if !self.pending_cr {
            return false;
        }
        match byte {
            // CRLF: the line already ended at the CR.
            b'\n' => {
                self.pending_cr = false;
                self.line_start_raw = self.raw_offset;
                true
            }
            // CR CR LF (a runner's CRLF through a pty's ONLCR): still the
            // one line end.
            b'\r' => {
                self.line_start_raw = self.raw_offset;
                true
            }
            _ => {
                self.pending_cr = false;
                false
            }
        }
    }

    /// A byte inside an escape sequence: true when the sequence took it.
    fn in_escape(&mut self, byte: u8) -> bool {
        let (next, ended) = match (self.escape, byte) {
            (Escape::None, _) => return false,
            (Escape::Start, b'[') => (Escape::Csi, true),
            (Escape::Start, b']') => (Escape::Osc, true),
            (Escape::Start, _) => (Escape::None, true),
            (Escape::Csi, 0x40..=0x7e) => (Escape::None, true),
            (Escape::Csi, _) => (Escape::Csi, false),
            (Escape::Osc, 0x07) => (Escape::None, true),
            (Escape::Osc, 0x1b) => (Escape::OscEsc, false),
            (Escape::Osc, _) => (Escape::Osc, false),
            (Escape::OscEsc, b'\\') => (Escape::None, true),
            (Escape::OscEsc, _) => (Escape::Osc, false),
        };
        self.escape = next;
        if ended {
            self.note_break();
        }
        true
    }

    /// A byte outside escapes and line ends' tails.
    fn byte(&mut self, byte: u8, raw: u64, found: &mut Vec<Match>) {
        match byte {
            b'\n' => {
                self.end_line(found);
                self.line_start_raw = self.raw_offset;
            }
            b'\r' => {
                self.end_line(found);
                self.line_start_raw = self.raw_offset;
                self.pending_cr = true;
            }
            0x1b => self.escape = Escape::Start,
            // An ordinary byte right after a bare CR.
            _ => {
                if self.line.is_empty() && self.breaks.is_empty() {
                    self.line_start_raw = raw;
                }
                self.line.push(byte);
            }
        }
    }

    /// Ends the stream: matches what is left of the last line.
    pub fn finish(&mut self) -> Vec<Match> {
        let mut found = Vec::new();
        if !self.line.is_empty() {
            self.end_line(&mut found);
        }
        found
    }

    /// Bytes held for the current line (for memory accounting).
    pub fn buffered(&self) -> usize {
        self.line.capacity()
            + self.last_line.capacity()
            + self.breaks.capacity() * std::mem::size_of::<(usize, u64)>()
    }

    /// The current (incomplete) line, escapes removed.
    pub fn partial_line(&self) -> String {
        String::from_utf8_lossy(&self.line).into_owned()
    }

    /// The last complete line with something visible on it (escapes removed).
    pub fn last_line(&self) -> Option<String> {
        (!self.last_line.is_empty())
            .then(|| String::from_utf8_lossy(&self.last_line).trim().to_string())
    }

    /// Raw bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.raw_offset
    }

    fn push_visible(&mut self, bytes: &[u8]) {
        if self.line.is_empty() && self.breaks.is_empty() {
            self.line_start_raw = self.raw_offset;
        }
        self.line.extend_from_slice(bytes);
        self.raw_offset += bytes.len() as u64;
    }

    /// After removed bytes: the next visible byte maps to the current raw offset.
    fn note_break(&mut self) {
        let at = self.line.len();
        match self.breaks.last_mut() {
            Some(last) if last.0 == at => last.1 = self.raw_offset,
            _ => self.breaks.push((at, self.raw_offset)),
        }
    }

    /// The raw offset of visible byte `index` of the current line.
    fn raw_at(&self, index: usize) -> u64 {
        match self.breaks.iter().rev().find(|(at, _)| *at <= index) {
            Some(&(at, raw)) => raw + (index - at) as u64,
            None => self.line_start_raw + index as u64,
        }
    }

    fn end_line(&mut self, found: &mut Vec<Match>) {
        self.search_line(found, 0);
        if self.line.iter().any(|b| !b.is_ascii_whitespace()) {
            // Swap rather than copy: the old last line's buffer is reused.
            std::mem::swap(&mut self.line, &mut self.last_line);
        }
        self.line.clear();
        self.breaks.clear();
        self.scanned_partial = 0;
        self.line_number += 1;
    }

    fn scan_partial(&mut self, found: &mut Vec<Match>) {
        if self.line.len() > self.scanned_partial {
            self.search_line(found, 0);
            self.scanned_partial = self.line.len();
        }
    }

    /// A line too long to keep: match it as it is, then keep its tail.
    fn cut_long_line(&mut self, found: &mut Vec<Match>) {
        self.search_line(found, 0);
        let keep_from = self.line.len() - OVERLAP;
        let keep_raw = self.raw_at(keep_from);
        self.line.drain(..keep_from);
        self.breaks.clear();
        self.breaks.push((0, keep_raw));
        self.scanned_partial = 0;
    }

    /// Searches the current line for matches not yet reported.
    fn search_line(&mut self, found: &mut Vec<Match>, from: usize) {
        let Some(any) = &self.any else { return };
        if !any.is_match_at(&self.line, from) {
            return;
        }
        let mut hits = Vec::new();
        for (p, regex) in self.regexes.iter().enumerate() {
            for m in regex.find_iter(&self.line[from..]) {
                let (s, e) = (from + m.start(), from + m.end());
                let start = self.raw_at(s);
                if start < self.reported_until[p] {
                    continue;
                }
                // The end maps from the last byte, so escapes after it do
                // not stretch the match.
                let end = self.raw_at(e - 1) + 1;
                hits.push((start, end, p, s, e));
            }
        }
        hits.sort();
        let line = String::from_utf8_lossy(&self.line).into_owned();
        for (start, end, p, s, e) in hits {
            self.reported_until[p] = end;
            found.push(Match {
                kind: self.kinds[p].clone(),
                pattern: p,
                text: String::from_utf8_lossy(&self.line[s..e]).into_owned(),
                line: line.clone(),
                line_number: self.line_number,
                start,
                end,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(matches: &[Match]) -> Vec<(String, u64, u64, u64)> {
        matches
            .iter()
            .map(|m| (m.text.clone(), m.line_number, m.start, m.end))
            .collect()
    }

    fn matcher() -> Matcher {
        MatcherBuilder::new()
            .completion("All is well in the universe")
            .error("FAILED")
            .marker("seL4", "kernel")
            .build()
            .unwrap()
    }

    #[test]
    fn a_pty_s_cr_cr_lf_ends_one_line() {
        let mut m = MatcherBuilder::new()
            .completion("done")
            .marker("two", "two")
            .build()
            .unwrap();
        let found = m.feed(b"one\r\r\ntwo\r\r\nthree\r\ndone\r\r\n");
        let lines: Vec<u64> = found.iter().map(|f| f.line_number).collect();
        assert_eq!(lines, [2, 4]);
    }

    #[test]
    fn reports_each_match_once_with_line_and_position() {
        let mut m = matcher();
        let mut all = m.feed(b"boot\nseL4 starting seL4\nAll is ");
        assert_eq!(
            texts(&all),
            [("seL4".into(), 2, 5, 9), ("seL4".into(), 2, 19, 23)]
        );
        all = m.feed(b"well in the universe");
        assert_eq!(all.len(), 1, "a partial line matches as it arrives");
        assert_eq!(all[0].kind, Kind::Completion);
        assert_eq!((all[0].line_number, all[0].start, all[0].end), (3, 24, 51));
        assert!(m.feed(b"\n").is_empty(), "not again when the line ends");
        assert!(m.finish().is_empty());
    }

    #[test]
    fn ansi_colour_inside_a_marker() {
        let mut m = matcher();
        let stream = b"\x1b[1mse\x1b[32mL4\x1b[37m\x1b[0m ok\n";
        let found = m.feed(stream);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].text, "seL4");
        assert_eq!(found[0].line, "seL4 ok");
        // The raw span covers the escape inside the match but not those around it.
        assert_eq!(
            &stream[found[0].start as usize..found[0].end as usize],
            b"se\x1b[32mL4"
        );
    }

    #[test]
    fn osc_and_two_byte_escapes_are_invisible() {
        let mut m = matcher();
        let found = m.feed(b"\x1b]0;title\x07FAI\x1b]2;x\x1b\\LED\x1bc\n");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].line, "FAILED");
    }

    #[test]
    fn crlf_and_bare_cr_end_lines() {
        let mut m = matcher();
        let found = m.feed(b"one\r\nFAILED\r\nprogress 10%\rprogress 20%\rFAILED\r");
        let lines: Vec<u64> = found.iter().map(|f| f.line_number).collect();
        assert_eq!(lines, [2, 5]);
        assert_eq!(found[0].line, "FAILED");
        // CR then LF split across chunks is still one line end.
        let mut m = matcher();
        m.feed(b"a\r");
        let found = m.feed(b"\nFAILED\n");
        assert_eq!(found[0].line_number, 2);
    }

    #[test]
    fn patterns_do_not_span_lines() {
        let mut m = MatcherBuilder::new().completion("a\\s+b").build().unwrap();
        assert!(m.feed(b"a\nb\n").is_empty());
        assert_eq!(m.feed(b"a  b\n").len(), 1);
    }

    #[test]
    fn literal_option_escapes() {
        let mut m = MatcherBuilder::new()
            .literal(true)
            .completion("[[Done]] (1+1)")
            .marker("se(L|l)4", "kernel")
            .build()
            .unwrap();
        assert!(m.feed(b"[[Done]] 11\n").is_empty());
        assert_eq!(m.feed(b"x [[Done]] (1+1) y\n").len(), 1);
        assert_eq!(
            m.feed(b"sel4\n").len(),
            1,
            "markers stay regular expressions"
        );
        assert!(MatcherBuilder::new()
            .completion("[unclosed")
            .build()
            .is_err());
        assert!(MatcherBuilder::new().completion("a*").build().is_err());
    }

    #[test]
    fn invalid_utf8_never_hides_a_match() {
        let mut m = matcher();
        let found = m.feed(b"\xff\xfe FAILED \xc3\x28\n");
        assert_eq!(found.len(), 1);
        assert!(found[0].line.contains("FAILED"));
    }

    #[test]
    fn long_lines_are_bounded_and_still_matched_near_cuts() {
        let mut m = matcher();
        let mut found = Vec::new();
        let filler = vec![b'x'; MAX_LINE - 3];
        found.extend(m.feed(&filler));
        found.extend(m.feed(b"FAILED"));
        for _ in 0..10 {
            found.extend(m.feed(&filler));
        }
        assert!(m.buffered() < 2 * MAX_LINE + 4096, "{}", m.buffered());
        found.extend(m.feed(b"FAILED\n"));
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].start, (MAX_LINE - 3) as u64);
    }

    #[test]
    fn text_right_after_a_bare_cr() {
        let mut m = matcher();
        let found = m.feed(
            b"10%
FAILED
",
        );
        assert_eq!(texts(&found), [("FAILED".into(), 2, 4, 10)]);
    }

    #[test]
    fn escape_split_across_chunks() {
        let mut m = matcher();
        let mut found = m.feed(b"se\x1b");
        found.extend(m.feed(b"[3"));
        found.extend(m.feed(b"2mL4\n"));
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].start, found[0].end), (0, 9));
    }
}
