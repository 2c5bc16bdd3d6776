//! Running an image on a board, PROTOCOL.md's `run`, as a library: what
//! `mq run` does, with progress events, a cancellation handle and a typed
//! report.
//!
//! The steps: check everything that can be checked locally; choose the board
//! (a pool's free member); check the board takes what was given; take the
//! lock (or, with `reuse_held_lock`, check it is ours); make temporary files on
//! the host; upload; run the board's `reboot` on a pseudo-terminal and watch
//! its console; fetch the log; remove the temporary files; release the lock.
//! Cleanup runs on every path out, reconnecting if the connection was lost.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use mq_console::{
    ConsoleSource, KeepAlive, Match, MatcherBuilder, Outcome, Session, SessionOptions, SourceRead,
};
use mq_lock::{AcquireOptions, Kept, LockClient, LockError, LockState, WaitEvent};
use mq_transport::{fill, quote, PtyProcess, PtySize, ReadOutcome, Transport, TransportError};
use serde::Serialize;

mod finish;
mod receive;

use crate::health;
use crate::inventory::{System, UnknownTarget};
use crate::queue::{open_transport, MachineQueue, QueueError};

/// Seconds added to the completion timeout for the lock's reclaim timeout,
/// covering the upload and the runner's own start-up and power-off.
pub const RECLAIM_MARGIN: u64 = 300;
/// How long past `-d` mq waits for a board's runner to end by itself before
/// stopping it (its own deadline, for runners that do not honour `-t`).
pub const CLIENT_DEADLINE_MARGIN: Duration = Duration::from_secs(60);
/// How often a run with a reclaim timeout touches its lock while it lives
/// (see [`mq_lock::Kept`]): a waiter reclaims a lock by its age, so a live
/// run is never reclaimed however long its upload or board takes, and a
/// dead one is, its reclaim timeout after its last touch.
pub const KEEP_FRESH_PERIOD: Duration = Duration::from_secs(30);
/// How often cleanup reconnects after a lost connection.
pub const CLEANUP_ATTEMPTS: u32 = 3;

/// What [`make_temp_dir`] prints before the directory's path.
const TEMP_DIR_MARK: &str = "mq-temp-dir ";

/// The scripts a job runs on the host besides the lock's (`src/sh/`).
const MAKE_TEMP_DIR: &str = include_str!("sh/make_temp_dir.sh");
const REMOVE_TEMP_DIR: &str = include_str!("sh/remove_temp_dir.sh");
const INVOCATION: &str = include_str!("sh/invocation.sh");

/// Makes a run's temporary directory on the host (the log and each file
/// sent go in it) and prints its path after [`TEMP_DIR_MARK`]. One line,
/// so that a redirection can follow it.
fn make_temp_dir() -> String {
    fill(
        MAKE_TEMP_DIR.trim_end(),
        &[("temp_dir_mark", TEMP_DIR_MARK)],
    )
}

/// Removes a run's temporary directory (a shell word: quoted, or
/// `"$mq_d"`); prints a line only when it is still there afterwards.
fn remove_temp_dir(dir: &str) -> String {
    fill(
        REMOVE_TEMP_DIR.trim_end(),
        &[("dir", dir), ("still_there_mark", STILL_THERE_MARK)],
    )
}

/// The file `name` in the run's directory, as a shell word: the run's
/// scripts know the directory as `$mq_d`.
fn in_run_dir(name: &str) -> String {
    format!("\"$mq_d\"/{}", quote(name))
}

/// What [`remove_temp_dir`] prints before a directory that would not go.
const STILL_THERE_MARK: &str = "mq: still there: ";

/// What to run; the same options as `mq run`.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// The system or pool (`-s`).
    pub target: String,
    /// Image files, kernel first (`-f`, repeated).
    pub files: Vec<PathBuf>,
    /// The completion text, a regular expression (`-c`).
    pub completion: Option<String>,
    /// The error text, a regular expression (`-e`).
    pub error: Option<String>,
    /// Seconds to wait for the completion text; `None`: for ever (`-d`, -1).
    pub timeout: Option<u64>,
    /// Where the console log goes (`-l`).
    pub log: Option<PathBuf>,
    /// After completion the console becomes interactive (`-a`).
    pub keep_alive: bool,
    /// Boot Linux by PXE (`-L`).
    pub linux: bool,
    /// A device tree to use (`-b`).
    pub dtb: Option<PathBuf>,
    /// An FPGA bitstream to load (`--bitstream`).
    pub bitstream: Option<PathBuf>,
    /// The lock key (`-k`; `0`: none).
    pub key: String,
    /// Run under a lock already held, and leave it held (`-n`).
    pub reuse_held_lock: bool,
    /// Seconds between lock attempts (`-w`).
    pub retry_seconds: u32,
    /// Lock retries, negative for ever (`-t`).
    pub retries: i64,
    /// Only reserve the board until the input says so (`-r`).
    pub reservation: bool,
    /// Run on a system named directly whatever its health (`--any-health`:
    /// an admin looking at a board out of service). Pools always skip
    /// systems out of service.
    pub any_health: bool,
    /// Place in line among mq waiters (`--priority`): higher first.
    pub priority: i32,
    /// Give up waiting after this many seconds (`--queue-timeout`).
    pub queue_timeout: Option<u64>,
}

impl Default for JobSpec {
    fn default() -> JobSpec {
        JobSpec {
            target: String::new(),
            files: Vec::new(),
            completion: None,
            error: None,
            timeout: None,
            log: None,
            keep_alive: false,
            linux: false,
            dtb: None,
            bitstream: None,
            key: "0".into(),
            reuse_held_lock: false,
            retry_seconds: 1,
            retries: -1,
            reservation: false,
            any_health: false,
            priority: 0,
            queue_timeout: None,
        }
    }
}

/// Progress of a job, as it happens.
#[derive(Debug)]
#[non_exhaustive]
pub enum JobEvent<'a> {
    /// A pool's member was chosen.
    Selected {
        /// The system.
        system: &'a str,
        /// The pool.
        pool: &'a str,
    },
    /// Taking the lock.
    Acquiring {
        /// The system.
        system: &'a str,
    },
    /// Waiting: someone else holds it.
    Waiting {
        /// The holder.
        owner: &'a str,
        /// Since when.
        since: &'a str,
    },
    /// Waiting: this job's place in the line of mq waiters, when it (or
    /// the board's holder) changes.
    InLine {
        /// The place, the board it is for and the estimate.
        place: &'a mq_lock::Place,
    },
    /// The lock is ours.
    Acquired {
        /// The system.
        system: &'a str,
        /// How long it took.
        waited: Duration,
    },
    /// Uploading an image.
    Uploading {
        /// The local file.
        file: &'a Path,
        /// Bytes sent.
        done: u64,
        /// Bytes in all.
        total: u64,
    },
    /// The board is reserved until the input says so.
    Reserved {
        /// The system.
        system: &'a str,
    },
    /// The reservation ended; the board is being powered off.
    PoweringOff {
        /// The system.
        system: &'a str,
    },
    /// Console bytes, as they arrive.
    Console(&'a [u8]),
    /// Something worth telling that changes nothing.
    Warning(&'a str),
}

/// What a job did.
///
/// Its JSON form (`mq run --json-report`) is an interface, versioned by
/// [`REPORT_VERSION`]: durations are seconds as numbers (`lock_wait_s`),
/// times are RFC 3339 in UTC; every field is documented in the README.
#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    /// The report format's version ([`REPORT_VERSION`]).
    pub version: u32,
    /// The system used.
    pub system: String,
    /// The pool it was chosen from, if any.
    pub pool: Option<String>,
    /// The lab host the board lives on (an SSH destination from the
    /// configuration or the inventory's `host` column; `local` over the
    /// local transport).
    pub host: String,
    /// The user the lock was held as on the host.
    pub user: String,
    /// The lock key (`0`: none).
    pub key: String,
    /// When the job started.
    #[serde(serialize_with = "rfc3339")]
    pub started_at: SystemTime,
    /// When it ended (the lock released).
    #[serde(serialize_with = "rfc3339")]
    pub ended_at: SystemTime,
    /// Time spent waiting for the lock.
    #[serde(rename = "lock_wait_s", serialize_with = "seconds")]
    pub lock_wait: Duration,
    /// Time spent uploading images.
    #[serde(rename = "upload_s", serialize_with = "seconds")]
    pub upload: Duration,
    /// Time spent on the console: the board runner from start to exit.
    #[serde(rename = "run_s", serialize_with = "seconds")]
    pub run: Duration,
    /// Time after the console ended: log fetch, temporary files, release.
    #[serde(rename = "finish_s", serialize_with = "seconds")]
    pub finish: Duration,
    /// Time from start to finish.
    #[serde(rename = "total_s", serialize_with = "seconds")]
    pub total: Duration,
    /// How the run ended, in agreement with `exit_code`: `completed` (0),
    /// `error-text` (3), `timeout` (4), `source-closed` with the runner's
    /// status (the runner ended without a verdict, or died of a signal
    /// whatever it had printed), `interrupted` (130). `None` for a
    /// reservation.
    pub outcome: Option<Outcome>,
    /// The remote runner's exit status (`None` for a reservation).
    pub remote_status: Option<i32>,
    /// The exit code `mq run` gives: the remote runner's, as mq.sh.
    pub exit_code: i32,
    /// Where the log was written.
    pub log: Option<PathBuf>,
    /// Console markers seen.
    pub markers: Vec<Match>,
    /// Bytes of console output.
    pub console_bytes: u64,
    /// What the run says about the board: passed, test (the test failed),
    /// infrastructure (the board or the lab failed), interrupted; `None`
    /// for a reservation. See [`crate::health::classify`].
    pub class: Option<health::RunClass>,
    /// An infrastructure failure before the image ran: running the job
    /// again (on another board) repeats nothing of the test.
    pub retry_safe: bool,
    /// What mq could not follow of the job as given (a completion text with
    /// a back-reference: the runner's verdict decided), one sentence each.
    pub notes: Vec<String>,
}

/// The version of [`JobReport`]'s JSON form.
pub const REPORT_VERSION: u32 = 1;

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_rfc3339(*t))
}

/// `2026-11-29T12:30:05.123Z`: a time in UTC, to the millisecond.
pub fn format_rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Why a job did not run to its end.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// A check failed before anything happened on the host.
    #[error("{0}")]
    Check(String),
    /// The name is neither a system nor a pool.
    #[error(transparent)]
    UnknownTarget(#[from] UnknownTarget),
    /// `-n` was given but the lock is not ours (or has another key).
    #[error("Failed to run because you said you own the lock (-n flag), but you don't!\n{info}")]
    NotHolder {
        /// The system.
        system: String,
        /// Its info line.
        info: String,
    },
    /// A queue operation failed (connection, lock).
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The connection failed during the job (cleanup was attempted).
    #[error("{0}")]
    Transport(#[from] TransportError),
    /// Cleanup after the job left something on the host (the text says
    /// exactly what, and how to release it).
    #[error("{0}")]
    LeftBehind(String),
    /// The host could not do what the job needed once the lock was held
    /// (a temporary directory).
    #[error("{0}")]
    Host(String),
    /// The console could not be read (a local failure, not the connection).
    #[error("console: {0}")]
    Console(String),
    /// The log (`-l`) could not be written during or after the run.
    #[error("cannot write the log {}: {message}", path.display())]
    Log {
        /// The log.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Stopped by the cancellation handle (^C, SIGTERM, SIGHUP) before the
    /// board started (waiting, uploading); once it started, `run_job`
    /// returns its report with [`Outcome::Interrupted`] and exit code 130.
    #[error("interrupted")]
    Interrupted,
}

impl From<LockError> for JobError {
    fn from(e: LockError) -> JobError {
        match e {
            LockError::Interrupted { .. } => JobError::Interrupted,
            other => JobError::Queue(QueueError::Lock(other)),
        }
    }
}

/// Stops a job from another thread (or a signal handler's flag). The job
/// cleans up fully (the board stopped, its files removed, the lock given
/// back) before it returns: [`JobError::Interrupted`] when the board had not
/// started yet (waiting in line, uploading), else its [`JobReport`] with
/// [`Outcome::Interrupted`], class `interrupted` and exit code 130.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A handle not yet cancelled.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// A handle over an existing flag (e.g. one a signal handler sets).
    pub fn from_flag(flag: Arc<AtomicBool>) -> Cancel {
        Cancel(flag)
    }

    /// Cancels.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether it was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0)
    }
}

/// Every check of PROTOCOL.md that needs no host, in mq.sh's order and
/// words: the options, the files, and, when the target is a system rather
/// than a pool, what that system takes.
pub fn check_job(spec: &JobSpec, inventory: &crate::Inventory) -> Result<(), JobError> {
    let target = inventory.resolve(&spec.target)?;
    check_spec(spec)?;
    if let crate::Target::System(system) = target {
        check_system(spec, system)?;
    }
    Ok(())
}

/// The checks of PROTOCOL.md that need neither host nor inventory.
pub fn check_spec(spec: &JobSpec) -> Result<(), JobError> {
    check_options(spec)?;
    pattern_matcher(spec)?;
    Ok(())
}

/// [`check_spec`] but for the patterns, which [`pattern_matcher`] checks by
/// compiling them.
fn check_options(spec: &JobSpec) -> Result<(), JobError> {
    match (spec.reservation, &spec.completion) {
        (false, Some(c)) if c.is_empty() => {
            return Err(JobError::Check(
                "-c: an empty completion text would match every line".into(),
            ))
        }
        (false, None) => {
            return Err(JobError::Check(
                "mq run needs -c TEXT (run until the completion text) or -r (reserve the board)"
                    .into(),
            ))
        }
        (true, Some(_)) => {
            return Err(JobError::Check(
                "-r (reserve) and -c (run) do not go together".into(),
            ))
        }
        _ => {}
    }
    for file in spec.files.iter().chain(&spec.dtb).chain(&spec.bitstream) {
        if !file.is_file() {
            return Err(JobError::Check(format!(
                "File \"{}\" either does not exist, or is not considered a valid file",
                file.display()
            )));
        }
        // Readable now, not only after waiting for a busy board.
        if let Err(e) = std::fs::File::open(file) {
            return Err(JobError::Check(format!(
                "cannot read {}: {e}",
                file.display()
            )));
        }
    }
    if let Some(log) = &spec.log {
        check_log_path(log)?;
    }
    if spec.dtb.is_some() && !spec.linux {
        return Err(JobError::Check(
            "-b (device tree) needs -L (boot Linux)".into(),
        ));
    }
    for (what, seconds) in [
        ("-d", spec.timeout),
        ("--queue-timeout", spec.queue_timeout),
    ] {
        if seconds.is_some_and(|s| s > MAX_SECONDS) {
            return Err(JobError::Check(format!(
                "{what} is at most {MAX_SECONDS} seconds (ten years)"
            )));
        }
    }
    mq_lock::check_key(&spec.key).map_err(|e| JobError::Check(format!("-k: {e}")))
}

/// The longest `-d` or `--queue-timeout` a job takes: ten years (any more
/// would overflow the deadlines made from it).
pub const MAX_SECONDS: u64 = 10 * 365 * 24 * 3600;

/// Where `-l FILE` may be written: an existing file (or device, FIFO,
/// symlink to one) that is not a directory and that this user may write, or
/// a new name in a directory this user may write. Checked before any lock is
/// taken, without creating or changing anything.
fn check_log_path(path: &Path) -> Result<(), JobError> {
    use nix::unistd::{access, AccessFlags};
    let refuse = |why: String| {
        Err(JobError::Check(format!(
            "cannot write the log {}: {why}",
            path.display()
        )))
    };
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => refuse("it is a directory".into()),
        Ok(_) => match access(path, AccessFlags::W_OK) {
            Ok(()) => Ok(()),
            Err(e) => refuse(e.desc().to_lowercase()),
        },
        Err(_) => {
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            match std::fs::metadata(parent) {
                Ok(meta) if meta.is_dir() => {
                    match access(parent, AccessFlags::W_OK | AccessFlags::X_OK) {
                        Ok(()) => Ok(()),
                        Err(e) => {
                            refuse(format!("{}: {}", parent.display(), e.desc().to_lowercase()))
                        }
                    }
                }
                Ok(_) => refuse(format!("{} is not a directory", parent.display())),
                Err(e) => refuse(format!("{}: {e}", parent.display())),
            }
        }
    }
}

/// The longest board invocation sent inline in the exec request.
const MAX_INLINE_COMMAND: usize = 16 * 1024;
/// The longest acquire sent with a run's commands riding on it (every
/// member's, for a pool): libssh2 sends no packet over about 35,000 bytes
/// (mq-transport's tests send 28 KiB).
const MAX_ACQUIRE_COMMAND: usize = 28 * 1024;
/// Room the acquire script itself takes beside a run's commands riding on
/// it (about 6.5 KiB for one system, measured: see `acquire_sizes`)...
const ACQUIRE_SCRIPT_ALLOWANCE: usize = 8 * 1024;
/// ... and for each system more it waits for (about 0.75 KiB).
const ACQUIRE_MEMBER_ALLOWANCE: usize = 1024;

/// Puts `text` into the file `remote` on the host (through a private local
/// file, since transports copy files).
fn upload_text(host: &dyn Transport, text: &str, remote: &str) -> Result<(), JobError> {
    use std::io::Write;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let local = std::env::temp_dir().join(format!("mq-invocation-{}-{nanos}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&local)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(source) = written {
        let _ = std::fs::remove_file(&local);
        return Err(JobError::Transport(TransportError::LocalFile {
            path: local,
            source,
        }));
    }
    let sent = host.upload(&local, remote, &mut |_, _| true);
    let _ = std::fs::remove_file(&local);
    Ok(sent?)
}

/// After the run, the runner's own log (complete even where the console
/// lost bytes) replaces what mq wrote live, written through the path the
/// user named as `scp` would: the same file truncated and rewritten, never a
/// new file renamed over it. A device, FIFO or socket keeps what it was
/// given live (rewriting it would repeat the console).
fn replace_with_runner_log(
    host: &dyn Transport,
    log_remote: &str,
    path: &Path,
    file: &mut std::fs::File,
    events: &mut dyn FnMut(JobEvent<'_>),
) -> Result<(), JobError> {
    let fetched = match host.run(&format!("cat {}", quote(log_remote))) {
        Ok(out) if out.status.success() => out.stdout,
        Ok(out) => {
            let text = format!(
                "kept the console as seen: the runner's log could not be read: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            events(JobEvent::Warning(&text));
            return Ok(());
        }
        Err(e) if e.is_connection_lost() => return Err(e.into()),
        Err(e) => {
            let text =
                format!("kept the console as seen: the runner's log could not be fetched: {e}");
            events(JobEvent::Warning(&text));
            return Ok(());
        }
    };
    replace_log(path, file, &fetched)
}

/// The `-l` file becomes the runner's log (when there is one, and the file
/// is a regular file: not a terminal or a pipe the user gave).
fn replace_log(path: &Path, file: &mut std::fs::File, log: &[u8]) -> Result<(), JobError> {
    use std::io::{Seek, Write};
    let regular = file.metadata().is_ok_and(|m| m.is_file());
    if log.is_empty() || !regular {
        return Ok(());
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(log))
        .map_err(|e| JobError::Log {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// The console matcher of a job, or the check failure of a bad pattern.
fn pattern_matcher(spec: &JobSpec) -> Result<mq_console::Matcher, JobError> {
    console_matcher(spec).map_err(|e| JobError::Check(e.to_string()))
}

/// The checks that depend on the chosen system.
fn check_system(spec: &JobSpec, system: &System) -> Result<(), JobError> {
    if spec.linux && !system.pxe_linux {
        return Err(JobError::Check(format!(
            "System {} cannot boot Linux by PXE (-L); see 'mq features'",
            system.name
        )));
    }
    if spec.dtb.is_some() && !system.dtb {
        return Err(JobError::Check(format!(
            "System {} does not take a custom device tree (-b); see 'mq features'",
            system.name
        )));
    }
    if !spec.reservation {
        let wanted = if spec.linux {
            system.num_files_linux
        } else {
            system.num_files
        };
        if spec.files.len() != usize::from(wanted) {
            return Err(JobError::Check(format!(
                "Wrong number of files specified for system {} (it takes {wanted}, {} given)",
                system.name,
                spec.files.len()
            )));
        }
    }
    Ok(())
}

/// The kernel-first advice for two-file systems (PROTOCOL.md).
fn kernel_first_warning(spec: &JobSpec) -> Option<String> {
    let name = |p: &PathBuf| {
        p.file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default()
    };
    match &spec.files[..] {
        [first, second] if !name(first).contains("kernel") && name(second).contains("kernel") => {
            Some(format!(
                "Warning: the kernel goes first: '{}' looks like the kernel but is the second file",
                second.display()
            ))
        }
        _ => None,
    }
}

/// The local matcher: each text as a regular expression and as plain text,
/// so `(10 tests)` matches itself whatever the remote runner makes of it.
fn console_matcher(spec: &JobSpec) -> Result<mq_console::Matcher, mq_console::PatternError> {
    MatcherBuilder::board_run(spec.completion.as_deref(), spec.error.as_deref()).build()
}

/// A pty process as a console source; remembers a transport error.
struct PtyConsole<'a> {
    process: &'a mut dyn PtyProcess,
    error: Option<TransportError>,
    /// Splits the console from the host's finish, when there is one.
    scanner: Option<finish::MarkScanner>,
    /// Console bytes taken from the process, not yet read.
    ready: Vec<u8>,
    ended: bool,
}

impl<'a> PtyConsole<'a> {
    /// A console over `process`, split at `end_mark`; `first` is console
    /// already read from it.
    fn new(
        process: &'a mut dyn PtyProcess,
        end_mark: Option<Vec<u8>>,
        first: &[u8],
    ) -> PtyConsole<'a> {
        let mut scanner = end_mark.map(finish::MarkScanner::new);
        let ready = match scanner.as_mut() {
            Some(scanner) => scanner.take(first),
            None => first.to_vec(),
        };
        PtyConsole {
            process,
            error: None,
            scanner,
            ready,
            ended: false,
        }
    }

    /// The bytes after the host's end mark, once the console reached it.
    fn finished_on_host(&mut self) -> Option<Vec<u8>> {
        self.scanner.as_mut()?.after.take()
    }

    fn at_mark(&self) -> bool {
        self.scanner.as_ref().is_some_and(|s| s.after.is_some())
    }
}

impl ConsoleSource for PtyConsole<'_> {
    fn read(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<SourceRead> {
        loop {
            if !self.ready.is_empty() {
                let n = buf.len().min(self.ready.len());
                buf[..n].copy_from_slice(&self.ready[..n]);
                self.ready.drain(..n);
                return Ok(SourceRead::Data(n));
            }
            if self.ended || self.at_mark() {
                return Ok(SourceRead::Eof);
            }
            match self.process.read(buf, timeout) {
                Ok(ReadOutcome::Data(n)) => match self.scanner.as_mut() {
                    Some(scanner) => {
                        self.ready = scanner.take(&buf[..n]);
                        if self.ready.is_empty() && !self.at_mark() {
                            return Ok(SourceRead::TimedOut);
                        }
                    }
                    None => return Ok(SourceRead::Data(n)),
                },
                Ok(ReadOutcome::Eof) => {
                    self.ended = true;
                    if let Some(scanner) = self.scanner.as_mut() {
                        self.ready = scanner.flush();
                    }
                }
                Ok(ReadOutcome::TimedOut) => return Ok(SourceRead::TimedOut),
                Err(e) => {
                    let io = io::Error::other(e.to_string());
                    self.error = Some(e);
                    return Err(io);
                }
            }
        }
    }

    fn send(&mut self, data: &[u8]) -> io::Result<()> {
        self.process.write(data).map_err(|e| {
            let io = io::Error::other(e.to_string());
            self.error = Some(e);
            io
        })
    }
}

/// What the host's finish reported, and the finish script's own status.
struct HostFinish {
    /// `None` when the report was cut short (the connection went).
    report: Option<finish::Report>,
    status: mq_transport::ExitStatus,
    /// Writing the runner's log to the `-l` file failed.
    log_error: Option<io::Error>,
}

impl HostFinish {
    fn runner_status(&self) -> i32 {
        self.report
            .as_ref()
            .map_or(self.status.shell_code(), |r| r.runner_status)
    }
}

/// Reads the host's finish to its end: the report after the end mark, and
/// the script's exit status. The runner's log in it goes to `log` as it
/// comes.
fn read_host_finish(
    process: &mut dyn PtyProcess,
    after: Vec<u8>,
    log: &mut dyn io::Write,
    cancel: &Cancel,
) -> Result<HostFinish, JobError> {
    let mut reader = finish::ReportReader::new(log);
    reader.feed(&after);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        if cancel.is_cancelled() {
            process
                .hangup()
                .map_err(|e| transport_or_interrupt(cancel, e))?;
            return Err(JobError::Interrupted);
        }
        match process
            .read(&mut buf, Some(Duration::from_millis(100)))
            .map_err(|e| transport_or_interrupt(cancel, e))?
        {
            ReadOutcome::Data(n) => reader.feed(&buf[..n]),
            ReadOutcome::TimedOut => {}
            ReadOutcome::Eof => break,
        }
    }
    let status = process
        .wait()
        .map_err(|e| transport_or_interrupt(cancel, e))?;
    let log_error = reader.sink_error.take();
    Ok(HostFinish {
        report: reader.finish(),
        status,
        log_error,
    })
}

/// The `-l` file, replaced by the runner's log as the host sends it (what
/// the console wrote there meanwhile was a first draft). A file that is
/// not regular (a FIFO, a terminal) keeps the console and gets no more.
struct ReplaceLog<'f> {
    file: Option<&'f mut std::fs::File>,
    started: bool,
}

impl io::Write for ReplaceLog<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        use std::io::Seek;
        let Some(file) = self.file.as_mut() else {
            return Ok(buf.len());
        };
        if !self.started {
            self.started = true;
            if !file.metadata().is_ok_and(|m| m.is_file()) {
                self.file = None;
                return Ok(buf.len());
            }
            file.set_len(0)?;
            file.rewind()?;
        }
        file.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |f| f.flush())
    }
}

/// Console bytes to the event callback.
struct EventSink<'a>(&'a mut dyn FnMut(JobEvent));

impl io::Write for EventSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (self.0)(JobEvent::Console(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What the steps of a job under its lock share.
struct Job<'a> {
    spec: &'a JobSpec,
    system: &'a System,
    cancel: &'a Cancel,
    events: &'a mut dyn FnMut(JobEvent),
}

/// A report with nothing measured yet.
fn empty_report(system: &str, outcome: Option<Outcome>) -> JobReport {
    JobReport {
        version: REPORT_VERSION,
        system: system.to_string(),
        pool: None,
        host: String::new(),
        user: String::new(),
        key: String::new(),
        started_at: SystemTime::UNIX_EPOCH,
        ended_at: SystemTime::UNIX_EPOCH,
        lock_wait: Duration::ZERO,
        upload: Duration::ZERO,
        run: Duration::ZERO,
        finish: Duration::ZERO,
        total: Duration::ZERO,
        outcome,
        remote_status: None,
        exit_code: 0,
        log: None,
        markers: Vec::new(),
        console_bytes: 0,
        class: None,
        retry_safe: false,
        notes: Vec::new(),
    }
}

/// `mq run`'s exit code for a console that ended with `outcome`: 130 when
/// interrupted; 0 after a detach from a completed interactive console (it
/// hangs the runner up, but the run completed); 4 with a line when mq's own
/// deadline stopped a runner that ignores -t; else the runner's status.
fn exit_code(
    job: &mut Job<'_>,
    outcome: &Outcome,
    detached: bool,
    interrupted: bool,
    runner_status: i32,
    runner_timed_out: bool,
) -> i32 {
    if interrupted {
        return Outcome::Interrupted.exit_code();
    }
    if detached && matches!(outcome, Outcome::Completed { .. }) {
        return 0;
    }
    match (outcome, job.spec.timeout) {
        // mq's own deadline, not the runner's -t (which it reported).
        (Outcome::Timeout { .. }, Some(timeout)) if !runner_timed_out => {
            (job.events)(JobEvent::Console(b"\r\n[[Timeout]]\r\n"));
            let text = format!(
                "the board did not end within -d {timeout} s + {} s (its reboot program does not honour -t); mq stopped it",
                CLIENT_DEADLINE_MARGIN.as_secs()
            );
            (job.events)(JobEvent::Warning(&text));
            mq_console::EXIT_TIMEOUT
        }
        _ => runner_status,
    }
}

/// The `-l` file, created before the board is touched.
fn open_local_log(spec: &JobSpec) -> Result<Option<std::fs::File>, JobError> {
    let Some(path) = &spec.log else {
        return Ok(None);
    };
    std::fs::File::create(path)
        .map(Some)
        .map_err(|e| JobError::Log {
            path: path.clone(),
            message: e.to_string(),
        })
}

/// How the console is watched: mq's own deadline, keep-alive input, interrupts.
fn session_options(
    spec: &JobSpec,
    input: Option<Box<dyn Read + Send>>,
    cancel: &Cancel,
) -> SessionOptions {
    SessionOptions {
        // The runner enforces -t; this only guards against a runner that
        // never ends.
        timeout: spec
            .timeout
            .map(|t| Duration::from_secs(t) + CLIENT_DEADLINE_MARGIN),
        until_closed: true,
        keep_alive: spec
            .keep_alive
            .then_some(input)
            .flatten()
            .map(|i| KeepAlive {
                input: mq_console::spawn_reader(i),
                detach: Some(0x1d),
            }),
        interrupt: Some(cancel.flag()),
        ..SessionOptions::default()
    }
}

/// An interrupt is an interrupt on every transport: with the system ssh
/// client, the signal may reach ssh too and end its connection before mq
/// hangs the console up.
fn transport_or_interrupt(cancel: &Cancel, e: TransportError) -> JobError {
    if cancel.is_cancelled() {
        JobError::Interrupted
    } else {
        JobError::Transport(e)
    }
}

/// What a run's console needs: the invocation, where the run's files are,
/// the images it sends, the host's end mark.
struct Console<'a> {
    /// The session running the run's commands, and what it said already.
    process: Box<dyn PtyProcess>,
    first: Vec<u8>,
    dir: &'a str,
    uploads: &'a [receive::Upload],
    end_mark: Vec<u8>,
}

/// What the steps under the lock start from: what the acquire's `then`
/// printed (the run's directory), the session it handed over (with what it
/// said past the hand-over), the plan.
struct Held {
    lines: Option<Vec<String>>,
    session: Option<(Box<dyn PtyProcess>, Vec<u8>)>,
    plan: Option<Plan>,
}

/// See [`MachineQueue::plan`].
struct Plan {
    uploads: Vec<receive::Upload>,
    end_mark: Vec<u8>,
    /// The run's commands; `$mq_d` is the run's directory.
    script: String,
}

/// PROTOCOL.md's invocation of `reboot`, every value quoted; `log` and the
/// image `files` are shell words.
fn reboot_command(spec: &JobSpec, reboot: &str, log: &str, files: &[String]) -> String {
    let n_images = spec.files.len();
    let mut cmd = quote(reboot);
    if spec.linux {
        cmd.push_str(" -L");
    }
    let mut extra = files[n_images..].iter();
    if spec.dtb.is_some() {
        cmd.push_str(&format!(" -b {}", extra.next().expect("dtb sent")));
    }
    if spec.bitstream.is_some() {
        cmd.push_str(&format!(
            " --bitstream {}",
            extra.next().expect("bitstream sent")
        ));
    }
    let timeout_text = spec.timeout.map_or("-1".to_string(), |t| t.to_string());
    cmd.push_str(&format!(
        " -l {log} -c {} -t {} -e {} -k {}",
        quote(spec.completion.as_deref().unwrap_or("")),
        quote(&timeout_text),
        quote(spec.error.as_deref().unwrap_or("")),
        files[0],
    ));
    if let Some(root) = files.get(1).filter(|_| n_images > 1) {
        cmd.push_str(&format!(" -u {root}"));
    }
    if spec.keep_alive {
        cmd.push_str(" -a -i");
    }
    cmd
}

/// How a console ended, for its report.
struct Ending {
    interrupted: bool,
    /// The runner's exit status.
    status: i32,
    /// From the invocation's start to the runner's end.
    run: Duration,
}

/// The report of a run whose console has ended.
fn run_report(
    job: &mut Job<'_>,
    report: mq_console::Report,
    ending: &Ending,
    finish: Duration,
) -> JobReport {
    let outcome = if ending.interrupted {
        Outcome::Interrupted
    } else if health::killed_by_signal(ending.status)
        && !report.detached
        && matches!(
            report.outcome,
            Outcome::Completed { .. } | Outcome::ErrorText { .. }
        )
    {
        // A runner killed by a signal did not end with a verdict, whatever
        // it printed: the report says what the status says.
        Outcome::SourceClosed {
            status: Some(ending.status),
        }
    } else {
        match report.outcome {
            // The console (the pty) ended before the runner's status was
            // known to it; the status is known now.
            Outcome::SourceClosed { status: None } => Outcome::SourceClosed {
                status: Some(ending.status),
            },
            other => other,
        }
    };
    // A detach hangs the runner up after its verdict: mq's doing, not the
    // board's.
    let status = if report.detached { 0 } else { ending.status };
    let (class, retry_safe) = health::classify(status, &outcome, &report.markers, report.bytes > 0);
    let runner_timed_out = report.markers.iter().any(|m| {
        matches!(&m.kind, mq_console::Kind::Marker(label)
            if label == "[[Timeout]]" || label == "[[Boot timeout]]")
    });
    JobReport {
        exit_code: exit_code(
            job,
            &outcome,
            report.detached,
            ending.interrupted,
            ending.status,
            runner_timed_out,
        ),
        outcome: Some(outcome),
        remote_status: Some(ending.status),
        log: job.spec.log.clone(),
        markers: report.markers,
        console_bytes: report.bytes,
        run: ending.run,
        finish,
        class: Some(class),
        retry_safe,
        ..empty_report(&job.system.name, None)
    }
}

/// What [`MachineQueue::check_job`] found.
struct Checked {
    matcher: mq_console::Matcher,
    notes: Vec<String>,
    /// The system, or a pool's members that can run the job, in the order
    /// to try them (the one announced first).
    members: Vec<System>,
    pool: Option<String>,
}

/// What is left on the host, to clean up.
struct Leftovers {
    system: String,
    release: bool,
    temp_dir: Option<String>,
}

/// A job's board chosen, its matcher built, and when `run_job` began (the
/// choice counts in the report's total).
struct Chosen {
    choice: crate::Choice,
    matcher: mq_console::Matcher,
    started: (Instant, SystemTime),
}

impl MachineQueue {
    /// Runs a job. `input` (usually stdin) ends a reservation (a line or its
    /// end) and, with `keep_alive`, is typed into the console.
    pub fn run_job(
        &self,
        spec: &JobSpec,
        input: Option<Box<dyn Read + Send>>,
        cancel: &Cancel,
        events: &mut dyn FnMut(JobEvent),
    ) -> Result<JobReport, JobError> {
        // Everything that can be checked here is, before the host is asked.
        check_options(spec)?;
        let matcher = pattern_matcher(spec)?;
        let started = (Instant::now(), SystemTime::now());
        // A pool's members on other hosts: connected first, so that a host
        // that never answers cannot keep ^C waiting for its ConnectTimeout.
        if let Some(members) = self.inventory().pool_members(&spec.target) {
            let names: Vec<&str> = members.iter().map(|s| s.name.as_str()).collect();
            self.connect_sites(&names, cancel)?;
        }
        let choice = self.choose(&spec.target)?;
        // The board's own lab host runs it (see crate::sites).
        let queue = self.for_system(&choice.system)?;
        let chosen = Chosen {
            choice,
            matcher,
            started,
        };
        queue.run_chosen(spec, chosen, input, cancel, events)
    }

    /// [`run_job`](Self::run_job) on this queue's host, for a choice made.
    fn run_chosen(
        &self,
        spec: &JobSpec,
        chosen: Chosen,
        input: Option<Box<dyn Read + Send>>,
        cancel: &Cancel,
        events: &mut dyn FnMut(JobEvent),
    ) -> Result<JobReport, JobError> {
        let (started, started_wall) = chosen.started;
        let checked = self.check_job(spec, chosen.choice, chosen.matcher, events)?;
        let plans = checked
            .members
            .iter()
            .map(|system| self.plan(spec, system))
            .collect::<Result<Vec<_>, _>>()?;
        if cancel.is_cancelled() {
            return Err(JobError::Interrupted);
        }
        let lock_started = Instant::now();
        let pool = checked.pool.clone();
        let (system, held, kept) = self.take_lock(
            spec,
            &checked.members,
            pool.as_deref(),
            plans,
            cancel,
            events,
        )?;
        let lock_wait = lock_started.elapsed();
        let mut leftovers = Leftovers {
            system: system.name.clone(),
            release: !spec.reuse_held_lock,
            temp_dir: None,
        };
        let mut job = Job {
            spec,
            system: &system,
            cancel,
            events,
        };
        let result = self.with_lock(&mut job, checked.matcher, input, held, &mut leftovers);
        let cleanup_started = Instant::now();
        // The lock stops being refreshed just before it is released.
        drop(kept);
        let cleanup = self.clean_up(leftovers, &spec.key);
        let cleanup_took = cleanup_started.elapsed();
        let mut report = match (result, cleanup) {
            (Ok(report), Ok(())) => report,
            (Ok(_), Err(left)) => {
                events(JobEvent::Warning(&left));
                return Err(JobError::LeftBehind(left));
            }
            (Err(e), Err(left)) => {
                events(JobEvent::Warning(&left));
                return Err(e);
            }
            (Err(e), Ok(())) => return Err(e),
        };
        report.pool = checked.pool;
        report.lock_wait = lock_wait;
        report.finish += cleanup_took;
        report.total = started.elapsed();
        report.notes = checked.notes;
        report.host = self.config().host.value.clone();
        report.user = self.transport().user().to_string();
        report.key = spec.key.clone();
        report.started_at = started_wall;
        report.ended_at = SystemTime::now();
        Ok(report)
    }

    /// Every check of the chosen system that needs no lock (the options and
    /// patterns were checked by [`run_job`](Self::run_job)): the pool's choice
    /// said, the system and its files, the members that can run the job.
    fn check_job(
        &self,
        spec: &JobSpec,
        choice: crate::Choice,
        matcher: mq_console::Matcher,
        events: &mut dyn FnMut(JobEvent),
    ) -> Result<Checked, JobError> {
        let notes = matcher.notes().to_vec();
        for note in &notes {
            events(JobEvent::Warning(note));
        }
        let system = |name: &str| {
            self.inventory()
                .system(name)
                .ok_or_else(|| JobError::Check(format!("no system {name}")))
                .cloned()
        };
        let first = system(&choice.system)?;
        if let Some(pool) = &choice.pool {
            events(JobEvent::Selected {
                system: &first.name,
                pool,
            });
        }
        if let Some(note) = &choice.note {
            events(JobEvent::Warning(note));
        }
        check_system(spec, &first)?;
        // The other members a pool's wait may take: those that can run
        // this job too (-n checks the one lock named).
        let mut members = vec![first];
        if !spec.reuse_held_lock {
            for name in &choice.members[1..] {
                let member = system(name)?;
                if check_system(spec, &member).is_ok() {
                    members.push(member);
                }
            }
        }
        if let Some(warning) = kernel_first_warning(spec) {
            events(JobEvent::Warning(&warning));
        }
        Ok(Checked {
            matcher,
            notes,
            members,
            pool: choice.pool,
        })
    }

    /// Takes the system's lock (or checks that the caller holds it, with
    /// `reuse_held_lock`). A run's directory is made in the same round trip,
    /// and the run's commands ride on the acquire's own session when they
    /// fit one exec request: no session of their own to open. Otherwise
    /// the returned [`Kept`] keeps a lock with a reclaim timeout fresh.
    fn take_lock(
        &self,
        spec: &JobSpec,
        members: &[System],
        pool: Option<&str>,
        mut plans: Vec<Option<Plan>>,
        cancel: &Cancel,
        events: &mut dyn FnMut(JobEvent),
    ) -> Result<(System, Held, Option<Kept>), JobError> {
        let first = &members[0];
        if spec.reuse_held_lock {
            self.check_holder(&first.name, &spec.key)?;
            let held = Held {
                lines: None,
                session: None,
                plan: plans.swap_remove(0),
            };
            return Ok((first.clone(), held, None));
        }
        let lock_started = Instant::now();
        events(JobEvent::Acquiring {
            system: &first.name,
        });
        let options = AcquireOptions {
            key: spec.key.clone(),
            retry_seconds: spec.retry_seconds,
            retries: spec.retries,
            reclaim_timeout: spec.timeout.map(|d| d + RECLAIM_MARGIN),
            cancel: Some(cancel.flag()),
            force_fallback: false,
            // Without a reclaim timeout nobody reclaims the lock: its
            // time stays the time it was taken.
            keep_fresh: spec.timeout.map(|_| KEEP_FRESH_PERIOD),
            // A system named directly must be in service (a pool's choice
            // was made among those that are), checked before the wait.
            precheck: if pool.is_none() && !spec.any_health {
                health::precheck_script(&self.config().base.value, &first.name)
            } else {
                String::new()
            },
            priority: spec.priority,
            queue_timeout: spec.queue_timeout,
            pool: pool.unwrap_or_default().to_string(),
        };
        let then = plans[0]
            .as_ref()
            .map(|_| make_temp_dir())
            .unwrap_or_default();
        // Every member's commands ride on the acquire when they fit one
        // exec request together; the taken member's run.
        let scripts: Vec<String> = plans
            .iter()
            .flatten()
            .map(|p| format!("[ -n \"$mq_d\" ] || exit 76\n{}", p.script))
            .collect();
        let room = ACQUIRE_SCRIPT_ALLOWANCE + ACQUIRE_MEMBER_ALLOWANCE * members.len();
        let fits = scripts.iter().map(String::len).sum::<usize>() + room <= MAX_ACQUIRE_COMMAND;
        let handovers: Vec<&str> = if fits {
            scripts.iter().map(String::as_str).collect()
        } else {
            Vec::new()
        };
        let mut waiting = |e| match e {
            WaitEvent::Holder { owner, since } => events(JobEvent::Waiting {
                owner: &owner,
                since: &since,
            }),
            WaitEvent::Place(place) => events(JobEvent::InLine { place: &place }),
        };
        let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
        let mut kept =
            self.locks()
                .acquire_any(&names, &options, &then, &handovers, &mut waiting)?;
        let taken = names.iter().position(|n| *n == kept.system).unwrap_or(0);
        let system = members[taken].clone();
        if let (Some(pool), true) = (pool, taken != 0) {
            events(JobEvent::Selected {
                system: &system.name,
                pool,
            });
        }
        let plan = plans.swap_remove(taken);
        let lines = Some(std::mem::take(&mut kept.lines));
        events(JobEvent::Acquired {
            system: &system.name,
            waited: lock_started.elapsed(),
        });
        if !handovers.is_empty() {
            let session = kept.into_session();
            let held = Held {
                lines,
                session,
                plan,
            };
            return Ok((system, held, None));
        }
        let held = Held {
            lines,
            session: None,
            plan,
        };
        Ok((system, held, Some(kept)))
    }

    /// `-n`: the lock must be ours (and hold the key, if one was given).
    fn check_holder(&self, system: &str, key: &str) -> Result<(), JobError> {
        let state = self.info(system)?;
        let me = self.locks().preflight()?.user;
        let ours = match &state {
            LockState::Held(h) => h.owner == me && (key == "0" || h.key == key),
            LockState::Free => false,
        };
        if ours {
            Ok(())
        } else {
            Err(JobError::NotHolder {
                system: system.into(),
                info: state.info_line(system),
            })
        }
    }

    /// The job under its lock, in steps: a reservation, or the temporary
    /// directory, the uploads, the board's invocation and its console.
    fn with_lock(
        &self,
        job: &mut Job<'_>,
        matcher: mq_console::Matcher,
        input: Option<Box<dyn Read + Send>>,
        held: Held,
        leftovers: &mut Leftovers,
    ) -> Result<JobReport, JobError> {
        let Some(plan) = held.plan else {
            return self.reserve(job, &self.reboot_program(job.system), input);
        };
        let dir = self.temp_dir(held.lines)?;
        leftovers.temp_dir = Some(dir.clone());
        let (process, first) = match held.session {
            Some(session) => session,
            None => {
                let cmd = self.invocation(&plan, &dir)?;
                let size = PtySize {
                    cols: 200,
                    rows: 50,
                };
                (self.transport().spawn_pty(&cmd, size)?, Vec::new())
            }
        };
        let console = Console {
            process,
            first,
            dir: &dir,
            uploads: &plan.uploads,
            end_mark: plan.end_mark,
        };
        let (report, host) = self.console(job, console, matcher, input)?;
        if let Some(host) = host {
            self.take_host_cleanup(host, leftovers, job.events);
        }
        Ok(report)
    }

    /// PROTOCOL.md's `TFTPBOOT/MACHINE/reboot` of `system`.
    fn reboot_program(&self, system: &System) -> String {
        format!(
            "{}/{}/reboot",
            self.config().tftpboot.value.trim_end_matches('/'),
            system.machine
        )
    }

    /// `-r`: the board is the user's until the input says so, then off.
    fn reserve(
        &self,
        job: &mut Job<'_>,
        reboot: &str,
        input: Option<Box<dyn Read + Send>>,
    ) -> Result<JobReport, JobError> {
        let system = &job.system.name;
        (job.events)(JobEvent::Reserved { system });
        wait_for_enter(input, job.cancel)?;
        (job.events)(JobEvent::PoweringOff { system });
        let out = self
            .transport()
            .run(&format!("{} --shutdown", quote(reboot)))?;
        if !out.status.success() {
            let text = format!("powering off {system} failed: {}", out.stderr_text().trim());
            (job.events)(JobEvent::Warning(&text));
        }
        Ok(empty_report(system, None))
    }

    /// The run's temporary directory on the host: made while acquiring (its
    /// lines are `said`), or with -n (no acquire) in a round trip of its own.
    fn temp_dir(&self, said: Option<Vec<String>>) -> Result<String, JobError> {
        let said = match said {
            Some(said) => said,
            None => {
                let out = self.transport().run(&format!("{} 2>&1", make_temp_dir()))?;
                out.stdout_text().lines().map(str::to_string).collect()
            }
        };
        said.iter()
            .find_map(|l| l.strip_prefix(TEMP_DIR_MARK))
            .filter(|d| d.starts_with('/'))
            .map(str::to_string)
            .ok_or_else(|| {
                JobError::Host(format!(
                    "cannot make a temporary directory on the host: {}",
                    said.join("; ")
                ))
            })
    }

    /// The images (then the DTB and the bitstream) and their names in the
    /// run's directory; they travel through the console's terminal ([`receive`]).
    fn uploads(&self, spec: &JobSpec) -> Result<Vec<receive::Upload>, JobError> {
        spec.files
            .iter()
            .chain(&spec.dtb)
            .chain(&spec.bitstream)
            .enumerate()
            .map(|(i, local)| {
                let size = std::fs::metadata(local)
                    .map_err(TransportError::local_file(local))?
                    .len();
                Ok(receive::Upload {
                    local: local.clone(),
                    name: format!("img{i}"),
                    size,
                })
            })
            .collect()
    }

    /// The run's commands for a session of their own (the directory made
    /// beforehand). An exec request carries a command of at most about 32
    /// KiB (OpenSSH's packet limit); a longer one (a huge -c) goes up as a
    /// script into `dir`, and the pty runs that.
    fn invocation(&self, plan: &Plan, dir: &str) -> Result<String, JobError> {
        let cmd = format!("mq_d={}\n{}", quote(dir), plan.script);
        if cmd.len() <= MAX_INLINE_COMMAND {
            return Ok(cmd);
        }
        let script = format!("{dir}/invocation");
        upload_text(self.transport().as_ref(), &cmd, &script)?;
        Ok(format!("exec sh {}", quote(&script)))
    }

    /// Everything a run does on the host once its lock is held, known before
    /// the lock is asked for (so that it can ride on the acquire's session):
    /// receive the images, PROTOCOL.md's invocation of the board's `reboot`
    /// (every value quoted), the host's finish. `None` for a reservation.
    fn plan(&self, spec: &JobSpec, system: &System) -> Result<Option<Plan>, JobError> {
        if spec.reservation {
            return Ok(None);
        }
        let uploads = self.uploads(spec)?;
        let names: Vec<String> = uploads.iter().map(|u| in_run_dir(&u.name)).collect();
        let log = in_run_dir("log");
        let finish = self.finish(spec, system, &log)?;
        let script = fill(
            INVOCATION.trim_end(),
            &[
                ("receive", &receive::script(&uploads)),
                ("guard", &finish.guard),
                (
                    "reboot",
                    &reboot_command(spec, &self.reboot_program(system), &log, &names),
                ),
                ("finish", &finish.script),
            ],
        );
        Ok(Some(Plan {
            uploads,
            end_mark: finish.mark,
            script,
        }))
    }

    /// Runs the invocation on a pty and watches its console until the
    /// runner ends (or mq's own deadline, or an interrupt); then the log.
    /// Where the host finished the job, what it reported comes back too.
    fn console(
        &self,
        job: &mut Job<'_>,
        run: Console<'_>,
        matcher: mq_console::Matcher,
        input: Option<Box<dyn Read + Send>>,
    ) -> Result<(JobReport, Option<HostFinish>), JobError> {
        let spec = job.spec;
        let cancel = job.cancel;
        let dir = run.dir;
        let mut local_log = open_local_log(spec)?;
        let upload_started = Instant::now();
        let mut process = run.process;
        let first = receive::send(process.as_mut(), run.first, run.uploads, cancel, job.events)?;
        let upload = upload_started.elapsed();
        let started = Instant::now();
        let mut session = Session::new(matcher, session_options(spec, input, cancel))
            .tee(EventSink(&mut *job.events));
        if let Some(file) = local_log.as_mut() {
            session = session.tee(file);
        }
        let mut console = PtyConsole::new(process.as_mut(), Some(run.end_mark), &first);
        let report = session.run(&mut console);
        if let Some(e) = console.error.take() {
            return Err(transport_or_interrupt(cancel, e));
        }
        let report = report.map_err(|e| JobError::Console(e.to_string()))?;
        let after = console.finished_on_host();
        let (ending, host) = match after {
            Some(after) => {
                let mut log = ReplaceLog {
                    file: local_log.as_mut(),
                    started: false,
                };
                let host = read_host_finish(process.as_mut(), after, &mut log, cancel)?;
                if let (Some(path), Some(e)) = (&spec.log, &host.log_error) {
                    return Err(JobError::Log {
                        path: path.clone(),
                        message: e.to_string(),
                    });
                }
                let ending = Ending {
                    interrupted: false,
                    status: host.runner_status(),
                    run: started.elapsed(),
                };
                (ending, Some(host))
            }
            None => {
                let ending = self.end_from_client(job, process.as_mut(), &report, started)?;
                if let (false, Some(path), Some(file)) =
                    (ending.interrupted, &spec.log, local_log.as_mut())
                {
                    let log_remote = format!("{dir}/log");
                    replace_with_runner_log(self.transport(), &log_remote, path, file, job.events)?;
                }
                (ending, None)
            }
        };
        let finish = started.elapsed() - ending.run;
        let mut report = run_report(job, report, &ending, finish);
        report.upload = upload;
        Ok((report, host))
    }

    /// The console ended without the host's finish (mq's deadline, an
    /// interrupt, a detach, a runner script of old): the board is stopped if
    /// it may still run, and the shell's status is the runner's.
    fn end_from_client(
        &self,
        job: &Job<'_>,
        process: &mut dyn PtyProcess,
        report: &mq_console::Report,
        started: Instant,
    ) -> Result<Ending, JobError> {
        let cancel = job.cancel;
        // An interrupt after the completion text (a keep-alive console, or
        // a runner still powering off) stops the board all the same.
        let finished = !matches!(
            report.outcome,
            Outcome::Interrupted | Outcome::Timeout { .. }
        ) && !report.detached
            && !cancel.is_cancelled();
        if !finished {
            process
                .hangup()
                .map_err(|e| transport_or_interrupt(cancel, e))?;
        }
        let status = process
            .wait()
            .map_err(|e| transport_or_interrupt(cancel, e))?;
        // Once the board ran, an interrupt still gives a report (bytes,
        // markers, times), with the interrupted outcome and status 130.
        let interrupted = (matches!(report.outcome, Outcome::Interrupted) || cancel.is_cancelled())
            && !report.detached;
        Ok(Ending {
            interrupted,
            status: status.shell_code(),
            run: started.elapsed(),
        })
    }

    /// The lines that let the host finish the job (see [`finish`]): the
    /// directory removed and, unless `-n`, the lock released.
    fn finish(
        &self,
        spec: &JobSpec,
        system: &System,
        log: &str,
    ) -> Result<finish::Finish, JobError> {
        // The board's health is counted by the finish, under its lock,
        // before the release (not by the guard: a client that went away
        // says nothing about the board).
        let health = health::update_script(
            &system.name,
            log,
            &spec.key,
            spec.completion.as_deref(),
            spec.error.as_deref(),
        );
        let remove = remove_temp_dir("\"$mq_d\"");
        let cleanup = if spec.reuse_held_lock {
            finish::Cleanup::RemoveOnly(remove)
        } else {
            let script = self
                .locks()
                .release_script(&system.name, &spec.key, false, &remove)
                .map_err(QueueError::Lock)?;
            finish::Cleanup::Release(script)
        };
        Ok(finish::Finish::new(
            &quote(&self.reboot_program(system)),
            log,
            spec.log.is_some(),
            &self.locks().script_head(),
            &health,
            &cleanup,
        ))
    }

    /// What the host's finish did: what it removed and released is off the
    /// leftovers; anything else stays for [`clean_up`](Self::clean_up),
    /// which tries again and says exactly what is left.
    fn take_host_cleanup(
        &self,
        host: HostFinish,
        leftovers: &mut Leftovers,
        events: &mut dyn FnMut(JobEvent),
    ) {
        let Some(report) = host.report else {
            return;
        };
        for change in report
            .said
            .lines()
            .filter_map(|l| l.strip_prefix(health::CHANGED_MARK))
        {
            let (state, reason) = change.split_once(' ').unwrap_or((change, ""));
            let text = format!(
                "{} is now {state} (board health): {reason}",
                leftovers.system
            );
            events(JobEvent::Warning(&text));
        }
        let left_dir = report.said.lines().any(|l| l.starts_with(STILL_THERE_MARK));
        if !left_dir {
            leftovers.temp_dir = None;
        }
        if !leftovers.release {
            return;
        }
        let verdict = self.locks().release_outcome(
            &leftovers.system,
            &host.status,
            &report.said,
            &report.said,
        );
        // Released; or not ours any more (taken over after its reclaim
        // timeout, or released by hand): nothing of ours to release.
        if matches!(verdict, Ok(_) | Err(LockError::NotYours { .. })) {
            leftovers.release = false;
        }
    }

    /// Removes the temporary files and releases the lock (one round trip);
    /// reconnects up to [`CLEANUP_ATTEMPTS`] times if the connection is gone.
    /// On failure, says exactly what is left and how to release it.
    fn clean_up(&self, mut left: Leftovers, key: &str) -> Result<(), String> {
        let mut last_error = match clean_with(self.locks(), &mut left, key) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        for attempt in 0..CLEANUP_ATTEMPTS {
            if !is_connection_lost(&last_error) {
                break;
            }
            std::thread::sleep(Duration::from_secs(1 << attempt));
            match open_transport(self.config()) {
                Ok(transport) => {
                    let locks = LockClient::new(transport, &self.config().base.value);
                    match clean_with(&locks, &mut left, key) {
                        Ok(()) => return Ok(()),
                        Err(e) => last_error = e,
                    }
                }
                Err(e) => last_error = CleanupError::Transport(e),
            }
        }
        let mut text = format!(
            "could not clean up on {}: {last_error}",
            self.config().host.value
        );
        if left.release {
            text.push_str(&format!(
                "\n  the lock of {} may still be held: release it with: mq sem -signal {} -k {}",
                left.system,
                left.system,
                quote(key)
            ));
        }
        if let Some(dir) = &left.temp_dir {
            text.push_str(&format!("\n  temporary files left on the host: {dir}"));
        }
        Err(text)
    }
}

#[derive(Debug, thiserror::Error)]
enum CleanupError {
    #[error(transparent)]
    Transport(TransportError),
    #[error(transparent)]
    Lock(LockError),
}

fn is_connection_lost(e: &CleanupError) -> bool {
    match e {
        CleanupError::Transport(t) | CleanupError::Lock(LockError::Transport(t)) => {
            t.is_connection_lost() || t.is_connect_failure()
        }
        CleanupError::Lock(_) => false,
    }
}

/// Removes the temporary directory and releases the lock, in one round trip
/// when there are both; clears from `left` what is done.
fn clean_with<T: Transport>(
    locks: &LockClient<T>,
    left: &mut Leftovers,
    key: &str,
) -> Result<(), CleanupError> {
    // Prints nothing when the directory is gone.
    let remove = left
        .temp_dir
        .as_deref()
        .map(|dir| remove_temp_dir(&quote(dir)));
    let said = if left.release {
        match locks.release_after(&left.system, key, false, remove.as_deref().unwrap_or("")) {
            Ok(said) => said,
            // Not ours any more (taken over after its reclaim timeout, or
            // released by hand): nothing of ours to release. The directory
            // went first, in the same script.
            Err(LockError::NotYours { .. }) => String::new(),
            Err(e) => return Err(CleanupError::Lock(e)),
        }
    } else if let Some(remove) = &remove {
        let out = locks
            .transport()
            .run(remove)
            .map_err(CleanupError::Transport)?;
        out.stdout_text()
    } else {
        String::new()
    };
    left.release = false;
    if said.trim().is_empty() {
        left.temp_dir = None;
        Ok(())
    } else {
        Err(CleanupError::Lock(LockError::Remote {
            context: "removing temporary files".into(),
            host: locks.transport().describe(),
            detail: said.trim().to_string(),
        }))
    }
}

/// A reservation lasts until a line (Enter) or the end of `input`, or a cancel.
fn wait_for_enter(input: Option<Box<dyn Read + Send>>, cancel: &Cancel) -> Result<(), JobError> {
    let Some(input) = input else {
        return Ok(());
    };
    let chunks: Receiver<Vec<u8>> = mq_console::spawn_reader(input);
    loop {
        if cancel.is_cancelled() {
            return Err(JobError::Interrupted);
        }
        match chunks.recv_timeout(Duration::from_millis(100)) {
            Ok(chunk) if chunk.contains(&b'\n') => return Ok(()),
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}

#[cfg(test)]
mod report_tests {
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn rfc3339_times() {
        let at = |secs: u64, ms: u64| {
            super::format_rfc3339(
                UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(ms),
            )
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(1_700_000_000, 7), "2023-11-14T22:13:20.007Z");
        assert_eq!(at(951_782_400, 0), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(4_102_444_799, 999), "2099-12-31T23:59:59.999Z");
    }
}

#[cfg(test)]
mod script_tests {
    use super::*;

    #[test]
    fn timeouts_past_ten_years_are_refused_not_overflowed() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("kernel");
        std::fs::write(&image, "k").unwrap();
        for (timeout, queue_timeout, what) in [
            (Some(u64::MAX), None, "-d"),
            (None, Some(u64::MAX), "--queue-timeout"),
        ] {
            let spec = JobSpec {
                target: "board1".into(),
                files: vec![image.clone()],
                completion: Some("All is well".into()),
                timeout,
                queue_timeout,
                ..JobSpec::default()
            };
            let e = check_spec(&spec).unwrap_err().to_string();
            assert!(e.contains(&format!("{what} is at most")), "{e}");
        }
    }

    #[test]
    fn the_job_scripts_pass_dash_bash_and_shellcheck() {
        // The run's commands as a real job plans them, in each shape.
        let lab = crate::testing::TestLab::new();
        let queue = lab.queue();
        let system = queue.inventory().system("board1").unwrap().clone();
        let mut scripts = Vec::new();
        for (log, reuse, keep_alive) in [(true, false, false), (false, true, true)] {
            let spec = JobSpec {
                target: "board1".into(),
                files: vec![lab.image("kernel", b"k")],
                completion: Some("All is well".into()),
                timeout: Some(60),
                log: log.then(|| lab.path().join("log")),
                reuse_held_lock: reuse,
                keep_alive,
                ..JobSpec::default()
            };
            let plan = queue.plan(&spec, &system).unwrap().unwrap();
            scripts.push(format!("mq_d=/tmp/mq-run.x\n{}", plan.script));
        }
        let mut problems = Vec::new();
        for (name, text) in [
            ("make_temp_dir.sh", make_temp_dir()),
            ("remove_temp_dir.sh", remove_temp_dir("'/tmp/mq-run.x'")),
            ("invocation.sh", scripts[0].clone()),
            ("invocation.sh, -n -a", scripts[1].clone()),
        ] {
            let Some(found) = mq_testkit::check_sh_script(name, &text) else {
                return;
            };
            problems.extend(found);
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
