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

mod cleanup;
mod console;
mod error;
mod finish;
mod lock;
mod plan;
mod receive;
mod report;
mod reserve;
mod spec;

pub(crate) use self::console::*;
pub use self::error::*;
pub use self::report::*;
pub use self::spec::*;

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

/// What the steps of a job under its lock share.
pub(crate) struct Job<'a> {
    pub(crate) spec: &'a JobSpec,
    pub(crate) system: &'a System,
    pub(crate) cancel: &'a Cancel,
    pub(crate) events: &'a mut dyn FnMut(JobEvent),
}

/// What a run's console needs: the invocation, where the run's files are,
/// the images it sends, the host's end mark.
pub(crate) struct Console<'a> {
    /// The session running the run's commands, and what it said already.
    pub(crate) process: Box<dyn PtyProcess>,
    pub(crate) first: Vec<u8>,
    pub(crate) dir: &'a str,
    pub(crate) uploads: &'a [receive::Upload],
    pub(crate) end_mark: Vec<u8>,
}

/// What the steps under the lock start from: what the acquire's `then`
/// printed (the run's directory), the session it handed over (with what it
/// said past the hand-over), the plan.
pub(crate) struct Held {
    pub(crate) lines: Option<Vec<String>>,
    pub(crate) session: Option<(Box<dyn PtyProcess>, Vec<u8>)>,
    pub(crate) plan: Option<Plan>,
}

/// See [`MachineQueue::plan`].
pub(crate) struct Plan {
    pub(crate) uploads: Vec<receive::Upload>,
    pub(crate) end_mark: Vec<u8>,
    /// The run's commands; `$mq_d` is the run's directory.
    pub(crate) script: String,
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
pub(crate) struct Leftovers {
    pub(crate) system: String,
    pub(crate) release: bool,
    pub(crate) temp_dir: Option<String>,
}

/// A job's board chosen, its matcher built, and when `run_job` began (the
/// choice counts in the report's total).
struct Chosen {
    choice: crate::Choice,
    matcher: mq_console::Matcher,
    started: (Instant, SystemTime),
}

impl MachineQueue {
    /// Runs a job: [`check_job`] against this queue's inventory, then
    /// [`run_checked`](Self::run_checked). `input` (usually stdin) ends a
    /// reservation (a line or its end) and, with `keep_alive`, is typed into
    /// the console.
    pub fn run_job(
        &self,
        spec: &JobSpec,
        input: Option<Box<dyn Read + Send>>,
        cancel: &Cancel,
        events: &mut dyn FnMut(JobEvent),
    ) -> Result<JobReport, JobError> {
        let job = check_job(spec, self.inventory())?;
        self.run_checked(job, input, cancel, events)
    }

    /// Runs a job checked once by [`check_job`] (a caller that checked it
    /// before connecting does not pay for the checks twice).
    pub fn run_checked(
        &self,
        job: CheckedJob,
        input: Option<Box<dyn Read + Send>>,
        cancel: &Cancel,
        events: &mut dyn FnMut(JobEvent),
    ) -> Result<JobReport, JobError> {
        let (spec, matcher) = job.into_parts();
        let spec = &spec;
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
        let checked = self.check_member(spec, chosen.choice, chosen.matcher, events)?;
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

    /// Every check of the chosen system that needs no lock (the rest was
    /// [`check_job`]'s): the pool's choice said, the system, the members that
    /// can run the job.
    fn check_member(
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
