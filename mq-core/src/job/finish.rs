//! The host finishes the job: once the board's runner ends, the script that
//! ran it prints an end mark with the runner's status, sends the runner's log
//! (with `-l`), removes the run's temporary files and releases the lock, all
//! on the console's own channel. The client reads that instead of asking in
//! round trips of its own (the log, the release), and a client that dies at
//! the last moment (even of SIGKILL) leaves nothing behind.
//!
//! The end mark carries a nonce drawn per run, so no board output can fake
//! it. The console stops at the mark: what follows is not console.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use mq_transport::{fill, quote};

const FINISH: &str = include_str!("../sh/finish.sh");
const GUARD: &str = include_str!("../sh/guard.sh");

/// What the host's finish does besides reporting.
pub(crate) enum Cleanup {
    /// Remove the temporary directory, then release the lock with this
    /// script (mq-lock's, the directory removal as its `before`).
    Release(String),
    /// Remove the temporary directory only (`-n`: the lock stays the caller's).
    RemoveOnly(String),
}

/// The lines around the invocation: the guard started before it, the
/// finish after it, and the mark the finish prints.
pub(crate) struct Finish {
    pub(crate) mark: Vec<u8>,
    pub(crate) guard: String,
    pub(crate) script: String,
}

impl Finish {
    /// The finish for a run whose runner writes `log_remote`; `send_log`
    /// when the client wants the runner's log.
    /// `log` is the runner's log as a shell word.
    /// `health` runs after the report and before the cleanup; `head` is
    /// what the lock client's scripts start with
    /// ([`script_head`](mq_lock::LockClient::script_head)): the finish
    /// sends it once, before `health`, and the release without it (the
    /// guard, a shell of its own, gets the whole release). `reboot` is the
    /// board's runner as a shell word: after a runner that died of a signal,
    /// the finish powers the board off with its `--shutdown`.
    pub(crate) fn new(
        reboot: &str,
        log: &str,
        send_log: bool,
        head: &str,
        health: &str,
        cleanup: &Cleanup,
    ) -> Finish {
        let mut nonce = RandomState::new().build_hasher();
        nonce.write_u32(std::process::id());
        let mark = format!("MQ-END-{:016x}", nonce.finish());
        let measure = if send_log {
            format!("mq_n=$(wc -c < {log} 2>/dev/null) || mq_n=-1")
        } else {
            String::new()
        };
        let release = match cleanup {
            Cleanup::Release(script) | Cleanup::RemoveOnly(script) => script.as_str(),
        };
        let after_head = release.strip_prefix(head).unwrap_or(release);
        let health = format!("{head}{health}");
        let script = fill(
            FINISH.trim_end(),
            &[
                ("measure_log", &measure),
                ("end_mark", &mark),
                ("reboot", reboot),
                ("power_off_failed", crate::health::POWER_OFF_FAILED),
                ("log", log),
                ("health", health.trim_end()),
                ("release", after_head.trim_end()),
            ],
        );
        let guard = fill(GUARD.trim_end(), &[("cleanup", release.trim_end())]);
        // The invocation's shell leads its session (sshd and the local
        // transport start it so): its process group is its pid.
        let guard = format!(
            "sh -c {} mq-guard \"$$\" \"$$\" \"$mq_d\" \"${{mq_keeper:-}}\" </dev/null >/dev/null 2>&1 &\nmq_guard=$!",
            quote(&guard)
        );
        Finish {
            mark: format!("{mark} ").into_bytes(),
            guard,
            script,
        }
    }
}

/// Splits a console stream at the end mark: bytes before it are console,
/// bytes from it on are the finish's report. A tail that may be the start of
/// the mark is held back until the next bytes tell.
#[derive(Debug)]
pub(crate) struct MarkScanner {
    mark: Vec<u8>,
    held: Vec<u8>,
    /// Everything after the mark, once it was seen.
    pub(crate) after: Option<Vec<u8>>,
}

impl MarkScanner {
    pub(crate) fn new(mark: Vec<u8>) -> MarkScanner {
        MarkScanner {
            mark,
            held: Vec::new(),
            after: None,
        }
    }

    /// Takes a chunk; returns the console bytes it releases.
    pub(crate) fn take(&mut self, chunk: &[u8]) -> Vec<u8> {
        if let Some(after) = self.after.as_mut() {
            after.extend_from_slice(chunk);
            return Vec::new();
        }
        self.held.extend_from_slice(chunk);
        if let Some(at) = find(&self.held, &self.mark) {
            self.after = Some(self.held[at + self.mark.len()..].to_vec());
            let console = self.held[..at].to_vec();
            self.held.clear();
            return console;
        }
        // The longest tail that is a proper prefix of the mark waits.
        let keep = (1..self.mark.len().min(self.held.len() + 1))
            .rev()
            .find(|&k| self.held.ends_with(&self.mark[..k]))
            .unwrap_or(0);
        let release = self.held.len() - keep;
        self.held.drain(..release).collect()
    }

    /// The console ended without the mark: whatever was held is console.
    pub(crate) fn flush(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// What the host reported after the mark.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Report {
    /// The runner's exit status.
    pub(crate) runner_status: i32,
    /// The size of the runner's log the host sent (into the reader's sink),
    /// when it was asked for and readable.
    pub(crate) log_size: Option<u64>,
    /// What the cleanup printed (the directory removal, the release).
    pub(crate) said: String,
}

/// Reads the bytes after the mark as they come (`STATUS LOG-SIZE\n`, the
/// log, the cleanup's lines): the log goes straight to `sink`, so a log of
/// any size costs no memory; the rest is a line and a few more.
pub(crate) struct ReportReader<'a> {
    header: Vec<u8>,
    status: Option<(i32, i64)>,
    /// Log bytes still to come.
    log_left: u64,
    sink: &'a mut dyn std::io::Write,
    /// The first error writing the sink (the rest of the log is dropped).
    pub(crate) sink_error: Option<std::io::Error>,
    said: Vec<u8>,
    /// Bounds what the cleanup may say (it is a few lines).
    cut: bool,
}

/// The most the cleanup's lines are kept of.
const MAX_SAID: usize = 64 * 1024;

impl<'a> ReportReader<'a> {
    pub(crate) fn new(sink: &'a mut dyn std::io::Write) -> ReportReader<'a> {
        ReportReader {
            header: Vec::new(),
            status: None,
            log_left: 0,
            sink,
            sink_error: None,
            said: Vec::new(),
            cut: false,
        }
    }

    /// Takes the next bytes.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) {
        if self.status.is_none() {
            let Some(end) = bytes.iter().position(|&b| b == b'\n') else {
                if self.header.len() < 256 {
                    self.header.extend_from_slice(bytes);
                }
                return;
            };
            self.header.extend_from_slice(&bytes[..end]);
            bytes = &bytes[end + 1..];
            let line = String::from_utf8_lossy(&self.header).into_owned();
            let mut words = line.split_whitespace();
            let status = words.next().and_then(|w| w.parse().ok());
            let size = words.next().and_then(|w| w.parse::<i64>().ok());
            let (Some(status), Some(size)) = (status, size) else {
                self.cut = true;
                return;
            };
            self.status = Some((status, size));
            self.log_left = u64::try_from(size).unwrap_or(0);
        }
        if self.cut {
            return;
        }
        let take = bytes
            .len()
            .min(usize::try_from(self.log_left).unwrap_or(usize::MAX));
        if take > 0 {
            if self.sink_error.is_none() {
                if let Err(e) = self.sink.write_all(&bytes[..take]) {
                    self.sink_error = Some(e);
                }
            }
            self.log_left -= take as u64;
            bytes = &bytes[take..];
        }
        let room = MAX_SAID.saturating_sub(self.said.len());
        self.said.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// The report; `None` when the bytes were cut short (or made no sense).
    pub(crate) fn finish(self) -> Option<Report> {
        let (runner_status, size) = self.status.filter(|_| !self.cut)?;
        if self.log_left > 0 {
            return None;
        }
        Some(Report {
            runner_status,
            log_size: u64::try_from(size).ok(),
            said: String::from_utf8_lossy(&self.said).into_owned(),
        })
    }
}

/// Parses the whole of the bytes after the mark: the report and the log.
#[cfg(test)]
pub(crate) fn parse(after: &[u8]) -> Option<(Report, Vec<u8>)> {
    let mut log = Vec::new();
    let mut reader = ReportReader::new(&mut log);
    reader.feed(after);
    let report = reader.finish()?;
    Some((report, log))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_splits_the_stream_wherever_chunks_break() {
        let stream = b"booting\r\nAll is well\r\nMQ-END-00ff 0 5\nhello[said]\n".to_vec();
        for split in 0..stream.len() {
            let mut scanner = MarkScanner::new(b"MQ-END-00ff ".to_vec());
            let mut console = scanner.take(&stream[..split]);
            console.extend(scanner.take(&stream[split..]));
            assert_eq!(console, b"booting\r\nAll is well\r\n", "split at {split}");
            let after = scanner.after.as_ref().unwrap();
            let (report, log) = parse(after).unwrap();
            assert_eq!(report.runner_status, 0);
            assert_eq!((report.log_size, &log[..]), (Some(5), &b"hello"[..]));
            assert_eq!(report.said, "[said]\n");
            // Fed in pieces, byte by byte: the same.
            let mut log = Vec::new();
            let mut reader = ReportReader::new(&mut log);
            for b in after {
                reader.feed(std::slice::from_ref(b));
            }
            assert_eq!(reader.finish(), Some(report));
            assert_eq!(log, b"hello");
        }
    }

    #[test]
    fn a_tail_that_is_not_the_mark_is_released_at_once() {
        let mut scanner = MarkScanner::new(b"MQ-END-00ff ".to_vec());
        assert_eq!(scanner.take(b"login: "), b"login: ");
        assert_eq!(scanner.take(b"ok\r\nM"), b"ok\r\n");
        assert_eq!(scanner.take(b"Q-EN"), b"");
        assert_eq!(scanner.take(b"X"), b"MQ-ENX");
        assert_eq!(scanner.take(b"MQ"), b"");
        assert_eq!(scanner.flush(), b"MQ");
        assert!(scanner.after.is_none());
    }

    #[test]
    fn a_report_cut_short_is_none() {
        assert_eq!(parse(b"0 10\nshort"), None);
        assert_eq!(parse(b"0"), None);
        let (r, log) = parse(b"3 -1\nmq: still there: /tmp/x\n").unwrap();
        assert_eq!((r.runner_status, r.log_size, log.len()), (3, None, 0));
    }

    #[test]
    fn the_finish_script_passes_dash_bash_and_shellcheck() {
        let mut problems = Vec::new();
        for (send_log, cleanup) in [
            (true, Cleanup::Release("rm -f 'x'; exit 0".into())),
            (false, Cleanup::RemoveOnly("rm -rf -- '/tmp/d'".into())),
        ] {
            let health =
                crate::health::update_script("sabre", "\"$mq_d\"/log", "ci-1", Some("ok"), None);
            let head = format!("b='/b'\n{}{}", mq_lock::SAFE_FN, mq_lock::HISTORY_FN);
            let cleanup = match cleanup {
                Cleanup::Release(s) => Cleanup::Release(format!("{head}{s}")),
                other => other,
            };
            let finish = Finish::new(
                "'/tftpboot/sabre/reboot'",
                "\"$mq_d\"/log",
                send_log,
                &head,
                &health,
                &cleanup,
            );
            // The run's directory and the runner's status, as the invocation sets them.
            let text = format!("mq_d=/tmp/x\n{}\nmq_st=0\n{}", finish.guard, finish.script);
            // The guard's own script runs under `sh -c`, quoted in the above.
            let guard = fill(
                GUARD.trim_end(),
                &[("cleanup", &super::super::remove_temp_dir("\"$mq_d\""))],
            );
            for (name, text) in [("finish.sh", text), ("guard.sh", guard)] {
                let Some(found) = mq_testkit::check_sh_script(name, &text) else {
                    return;
                };
                problems.extend(found);
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
