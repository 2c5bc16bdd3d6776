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
mod receive;
mod report;
mod reserve;
mod spec;

pub(crate) use self::cleanup::*;
pub(crate) use self::console::*;
pub use self::error::*;
pub use self::report::*;
pub(crate) use self::reserve::*;
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
