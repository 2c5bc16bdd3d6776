//! A console session: drive a byte source to an [`Outcome`], teeing every
//! byte to sinks as it arrives.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::markers::Diagnosis;
use crate::matcher::{Kind, Match, Matcher};

/// Exit code of a completed run.
pub const EXIT_COMPLETED: i32 = 0;
/// Exit code when an error text was seen.
pub const EXIT_ERROR_TEXT: i32 = 3;
/// Exit code when time ran out (completion text not seen, or no output for the boot timeout).
pub const EXIT_TIMEOUT: i32 = 4;
/// Exit code when the console ended without a verdict.
pub const EXIT_CONSOLE_CLOSED: i32 = 5;
/// Exit code for infrastructure failures (connection, lock, files).
pub const EXIT_INFRASTRUCTURE: i32 = 6;
/// Exit code after an interrupt (^C), as a shell reports SIGINT.
pub const EXIT_INTERRUPTED: i32 = 130;

/// What one read from a source gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceRead {
    /// Bytes were read.
    Data(usize),
    /// The source is finished.
    Eof,
    /// Nothing within the timeout.
    TimedOut,
}

/// Where console bytes come from: a board's serial console, a remote
/// command, a file being replayed.
pub trait ConsoleSource {
    /// Reads, waiting at most `timeout` (`None`: until something happens).
    fn read(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<SourceRead>;

    /// Sends bytes to the console (keep-alive mode). Unsupported by default.
    fn send(&mut self, _data: &[u8]) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this console takes no input",
        ))
    }

    /// The exit status of whatever produced the output, once it ended.
    fn status(&mut self) -> Option<i32> {
        None
    }
}

/// A [`ConsoleSource`] over any blocking [`Read`]: a thread reads, the
/// session waits on it with timeouts.
pub struct ReaderSource {
    chunks: Receiver<io::Result<Vec<u8>>>,
    held: Vec<u8>,
    ended: bool,
}

impl ReaderSource {
    /// Reads `reader` on a thread of its own.
    pub fn new<R: Read + Send + 'static>(mut reader: R) -> ReaderSource {
        let (tx, rx) = mpsc::sync_channel(16);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if tx.send(Ok(buf[..n].to_vec())).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        break;
                    }
                }
            }
        });
        ReaderSource {
            chunks: rx,
            held: Vec::new(),
            ended: false,
        }
    }
}

impl ConsoleSource for ReaderSource {
    fn read(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<SourceRead> {
        if self.held.is_empty() && !self.ended {
            let next = match timeout {
                None => self.chunks.recv().map_err(|_| ()),
                Some(t) => match self.chunks.recv_timeout(t) {
                    Ok(chunk) => Ok(chunk),
                    Err(mpsc::RecvTimeoutError::Timeout) => return Ok(SourceRead::TimedOut),
                    Err(mpsc::RecvTimeoutError::Disconnected) => Err(()),
                },
            };
            match next {
                Ok(chunk) => self.held = chunk?,
                Err(()) => self.ended = true,
            }
        }
        if self.held.is_empty() {
            return Ok(SourceRead::Eof);
        }
        let n = buf.len().min(self.held.len());
        buf[..n].copy_from_slice(&self.held[..n]);
        self.held.drain(..n);
        Ok(SourceRead::Data(n))
    }
}

/// Keep-alive: the console is connected both ways (what the user types goes
/// to it from the start) and stays so after the completion text, until it
/// closes or the user types the detach byte.
pub struct KeepAlive {
    /// What the user types, chunk by chunk (closed: no more input).
    pub input: Receiver<Vec<u8>>,
    /// The byte that detaches (default Ctrl-], 0x1d, as telnet); `None`: none.
    pub detach: Option<u8>,
}

/// Reads `input` (what the user types: stdin, say) on a thread of its own,
/// handing chunks over a channel, as [`KeepAlive::input`] takes them; the
/// channel closes when the input ends.
pub fn spawn_reader(mut input: Box<dyn std::io::Read + Send>) -> Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match input.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// How a session runs.
#[derive(Default)]
pub struct SessionOptions {
    /// Give up after this long (`None`: never; mq.sh's `-1`).
    pub timeout: Option<Duration>,
    /// Give up if not one byte arrives within this long.
    pub boot_timeout: Option<Duration>,
    /// Keep going after an error text (default: stop at the first).
    pub continue_after_error: bool,
    /// Read until the source closes even after a verdict (the first
    /// completion or error text is still the outcome): for sources whose end
    /// and exit status matter, such as a remote runner that finishes up
    /// after printing the completion text.
    pub until_closed: bool,
    /// After the completion text, keep the console connected.
    pub keep_alive: Option<KeepAlive>,
    /// Set from elsewhere (a signal handler) to stop.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// When a verdict comes from a line still arriving, read on this long
    /// (at most) for the rest of that line, so sinks get it whole.
    pub line_grace: Option<Duration>,
}

/// A flag for [`SessionOptions::interrupt`] that ^C, SIGTERM and SIGHUP set
/// (a hung-up terminal is an interrupt too): what every interruptible
/// command of mq registers.
pub fn interrupt_on_signals() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        let _ = signal_hook::flag::register(signal, Arc::clone(&flag));
    }
    flag
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// The completion text was seen.
    Completed {
        /// The match.
        matched: Match,
    },
    /// An error text was seen.
    ErrorText {
        /// The match.
        matched: Match,
    },
    /// Time ran out.
    Timeout {
        /// Whether any byte arrived at all.
        saw_output: bool,
        /// Whether it was the boot timeout (no output at all in time).
        boot: bool,
        /// The last non-empty line seen.
        last_line: Option<String>,
        /// What the output and markers say about it.
        diagnosis: Diagnosis,
    },
    /// The console ended without a verdict.
    SourceClosed {
        /// The exit status of what produced it, if known.
        status: Option<i32>,
    },
    /// Stopped by an interrupt.
    Interrupted,
}

impl Outcome {
    /// The exit code this crate documents for the outcome.
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Completed { .. } => EXIT_COMPLETED,
            Outcome::ErrorText { .. } => EXIT_ERROR_TEXT,
            Outcome::Timeout { .. } => EXIT_TIMEOUT,
            Outcome::SourceClosed { .. } => EXIT_CONSOLE_CLOSED,
            Outcome::Interrupted => EXIT_INTERRUPTED,
        }
    }

    /// The marker line CI scripts grep for, when there is one.
    pub fn ci_marker(&self) -> Option<&'static str> {
        match self {
            Outcome::Timeout { boot: true, .. } => Some("[[Boot timeout]]"),
            Outcome::Timeout { .. } => Some("[[Timeout]]"),
            _ => None,
        }
    }

    /// A one-line summary.
    pub fn summary(&self) -> String {
        match self {
            Outcome::Completed { matched } => format!(
                "completed: '{}' on line {}",
                matched.text, matched.line_number
            ),
            Outcome::ErrorText { matched } => format!(
                "error text '{}' on line {}",
                matched.text, matched.line_number
            ),
            Outcome::Timeout { diagnosis, .. } => format!("timed out: {diagnosis}"),
            Outcome::SourceClosed { status: Some(s) } => {
                format!("console closed (exit status {s}) before the completion text")
            }
            Outcome::SourceClosed { status: None } => {
                "console closed before the completion text".into()
            }
            Outcome::Interrupted => "interrupted".into(),
        }
    }
}

/// What a session saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// How it ended.
    pub outcome: Outcome,
    /// Every marker matched, in stream order.
    pub markers: Vec<Match>,
    /// Raw bytes read.
    pub bytes: u64,
    /// Time from start to the outcome.
    pub elapsed: Duration,
    /// In keep-alive mode: the user detached (rather than the console closing).
    pub detached: bool,
    /// Sinks that failed and were dropped (e.g. a closed terminal).
    pub sink_errors: Vec<String>,
}

/// What a running session has seen so far.
#[derive(Default)]
struct Seen {
    bytes: u64,
    markers: Vec<Match>,
    sink_errors: Vec<String>,
    /// The outcome decided, while the console still goes on.
    verdict: Option<Outcome>,
    detached: bool,
    /// Set when stopping waits only for the verdict's line to end.
    grace_until: Option<Instant>,
    input_open: bool,
}

/// Drives a source to an outcome. Build one, add sinks, [`Session::run`].
pub struct Session<'a> {
    matcher: Matcher,
    options: SessionOptions,
    sinks: Vec<Box<dyn Write + 'a>>,
}

impl<'a> Session<'a> {
    /// A session matching with `matcher`.
    pub fn new(matcher: Matcher, options: SessionOptions) -> Session<'a> {
        Session {
            matcher,
            options,
            sinks: Vec::new(),
        }
    }

    /// Copies every byte to `sink` as it arrives (flushed each time).
    pub fn tee(mut self, sink: impl Write + 'a) -> Session<'a> {
        self.sinks.push(Box::new(sink));
        self
    }

    /// Runs until an outcome.
    pub fn run(mut self, source: &mut dyn ConsoleSource) -> io::Result<Report> {
        let started = Instant::now();
        let deadline = self.options.timeout.map(|t| started + t);
        let boot_deadline = self.options.boot_timeout.map(|t| started + t);
        let keep = self.options.keep_alive.take();
        let mut seen = Seen {
            input_open: keep.is_some(),
            ..Seen::default()
        };
        let mut buf = vec![0u8; 64 * 1024];
        let outcome = loop {
            if let Some(outcome) = self.stop_before_read(keep.as_ref(), source, &mut seen)? {
                break outcome;
            }
            let completed = matches!(seen.verdict, Some(Outcome::Completed { .. }));
            let interactive = completed && keep.is_some();
            let now = Instant::now();
            let until = match (deadline, boot_deadline.filter(|_| seen.bytes == 0)) {
                _ if interactive => None,
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if let Some(until) = until.filter(|u| now >= *u) {
                if let Some(v) = seen.verdict.take() {
                    break v;
                }
                break self.timeout(seen.bytes, boot_deadline == Some(until), &seen.markers);
            }
            let slice = if keep.is_some() {
                Duration::from_millis(20)
            } else {
                Duration::from_millis(50)
            };
            let wait = until.map_or(slice, |u| (u - now).min(slice));
            let bounded = self.options.interrupt.is_some() || until.is_some() || keep.is_some();
            match source.read(&mut buf, bounded.then_some(wait))? {
                SourceRead::TimedOut => continue,
                SourceRead::Eof => break self.at_end(source, &mut seen),
                SourceRead::Data(n) => {
                    if let Some(outcome) = self.take(&buf[..n], keep.is_some(), &mut seen) {
                        break outcome;
                    }
                }
            }
        };
        Ok(Report {
            outcome,
            markers: seen.markers,
            bytes: seen.bytes,
            elapsed: started.elapsed(),
            detached: seen.detached,
            sink_errors: seen.sink_errors,
        })
    }

    /// Ends the session before the next read on an interrupt, a detach or
    /// input that ended, or a grace period that is over.
    fn stop_before_read(
        &mut self,
        keep: Option<&KeepAlive>,
        source: &mut dyn ConsoleSource,
        seen: &mut Seen,
    ) -> io::Result<Option<Outcome>> {
        if self.interrupted() {
            return Ok(Some(seen.verdict.take().unwrap_or(Outcome::Interrupted)));
        }
        if let Some(keep) = keep {
            if forward_input(keep, source, &mut seen.input_open)? {
                seen.detached = true;
                return Ok(Some(seen.verdict.take().unwrap_or(Outcome::Interrupted)));
            }
        }
        if let Some(until) = seen.grace_until {
            if Instant::now() >= until || self.matcher.partial_line().is_empty() {
                return Ok(Some(
                    seen.verdict.take().expect("a verdict during the grace"),
                ));
            }
        }
        Ok(None)
    }

    /// The console closed: what is left of the last line is judged.
    fn at_end(&mut self, source: &mut dyn ConsoleSource, seen: &mut Seen) -> Outcome {
        let rest = self.matcher.finish();
        let last = self.judge(rest, &mut seen.markers);
        seen.verdict
            .take()
            .or(last)
            .or_else(|| self.reported_timeout(&seen.markers))
            .unwrap_or(Outcome::SourceClosed {
                status: source.status(),
            })
    }

    /// Takes a chunk of console: to the sinks, through the matcher. Returns
    /// the outcome when the session ends here; a verdict that lets the
    /// console go on (until it closes, or typed into) is kept.
    fn take(&mut self, chunk: &[u8], keep_alive: bool, seen: &mut Seen) -> Option<Outcome> {
        seen.bytes += chunk.len() as u64;
        self.write_sinks(chunk, &mut seen.sink_errors);
        let found = self.matcher.feed(chunk);
        let new = self.judge(found, &mut seen.markers);
        if seen.verdict.is_some() {
            return None;
        }
        let v = new?;
        let goes_on =
            self.options.until_closed || (keep_alive && matches!(v, Outcome::Completed { .. }));
        if !goes_on {
            match self.options.line_grace {
                Some(grace) if !self.matcher.partial_line().is_empty() => {
                    seen.grace_until = Some(Instant::now() + grace);
                }
                _ => return Some(v),
            }
        }
        seen.verdict = Some(v);
        None
    }

    /// The console ended after the board's runner said it timed out
    /// (`[[Timeout]]`, `[[Boot timeout]]`): a timeout, not a console that
    /// closed early.
    fn reported_timeout(&self, markers: &[Match]) -> Option<Outcome> {
        let label = markers.iter().rev().find_map(|m| match &m.kind {
            Kind::Marker(label) if label == "[[Timeout]]" || label == "[[Boot timeout]]" => {
                Some(label.as_str())
            }
            _ => None,
        })?;
        let mut outcome = self.timeout(1, false, markers);
        if let Outcome::Timeout { boot, .. } = &mut outcome {
            *boot = label == "[[Boot timeout]]";
        }
        Some(outcome)
    }

    fn timeout(&self, bytes: u64, boot_deadline_hit: bool, markers: &[Match]) -> Outcome {
        let boot = bytes == 0 && boot_deadline_hit;
        let labels = markers.iter().filter_map(|m| match &m.kind {
            Kind::Marker(label) => Some(label.as_str()),
            _ => None,
        });
        let partial = self.matcher.partial_line();
        let last_line = if partial.trim().is_empty() {
            self.matcher.last_line()
        } else {
            Some(partial.trim().to_string())
        };
        Outcome::Timeout {
            saw_output: bytes > 0,
            boot,
            last_line,
            diagnosis: Diagnosis::from_markers(bytes > 0, labels),
        }
    }

    fn interrupted(&self) -> bool {
        self.options
            .interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst))
    }

    /// Records markers; returns the verdict if a completion or error matched.
    fn judge(&self, found: Vec<Match>, markers: &mut Vec<Match>) -> Option<Outcome> {
        let mut verdict = None;
        for m in found {
            match m.kind {
                Kind::Marker(_) => markers.push(m),
                Kind::Completion if verdict.is_none() => {
                    verdict = Some(Outcome::Completed { matched: m })
                }
                Kind::Error if verdict.is_none() && !self.options.continue_after_error => {
                    verdict = Some(Outcome::ErrorText { matched: m })
                }
                _ => {}
            }
        }
        verdict
    }

    fn write_sinks(&mut self, data: &[u8], errors: &mut Vec<String>) {
        let mut i = 0;
        while i < self.sinks.len() {
            match self.sinks[i]
                .write_all(data)
                .and_then(|()| self.sinks[i].flush())
            {
                Ok(()) => i += 1,
                Err(e) => {
                    errors.push(e.to_string());
                    self.sinks.remove(i);
                }
            }
        }
    }
}

/// Sends what the user typed; `true` when they typed the detach byte.
fn forward_input(
    keep: &KeepAlive,
    source: &mut dyn ConsoleSource,
    open: &mut bool,
) -> io::Result<bool> {
    while *open {
        match keep.input.try_recv() {
            Ok(chunk) => {
                let detach_at = keep.detach.and_then(|d| chunk.iter().position(|&b| b == d));
                let upto = detach_at.unwrap_or(chunk.len());
                if upto > 0 {
                    source.send(&chunk[..upto])?;
                }
                if detach_at.is_some() {
                    return Ok(true);
                }
            }
            Err(TryRecvError::Empty) => break,
            Err(TryRecvError::Disconnected) => *open = false,
        }
    }
    Ok(false)
}
