//! `mq run`: mq.sh's run, over mq-core's job API.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use mq_core::job::{check_job, Cancel, JobError, JobEvent, JobSpec};
use mq_core::Config;

use crate::errors::job_failure;
use crate::flags::{self, LockOptions, RunArgs};
use crate::sem;
use crate::wait_display::WaitDisplay;
use crate::Failure;
use mq_core::exit;

fn spec(args: &RunArgs) -> Result<JobSpec, Failure> {
    let checked = LockOptions {
        key: args.key.clone(),
        retry: args.retry.clone(),
        retries: args.retries.clone(),
        timeout: None,
        priority: args.priority.clone(),
        queue_timeout: args.queue_timeout.clone(),
    }
    .check()?;
    let timeout = match args.timeout.as_deref() {
        None | Some("-1") => None,
        Some(text) => Some(flags::number(text, 0..=flags::MAX_SECONDS).ok_or_else(|| {
            Failure::stdout(
                format!(
                    "-d {text}: the timeout is a whole number of seconds up to {}, or -1 for none",
                    flags::MAX_SECONDS
                ),
                exit::USAGE,
            )
        })?),
    };
    let Some(target) = args.system.clone() else {
        return Err(Failure::stdout(
            "mq run needs -s SYSTEM (a system or a pool); see mq run --help",
            exit::USAGE,
        ));
    };
    Ok(JobSpec {
        target,
        files: args.files.clone(),
        completion: args.completion.clone(),
        error: args.error.clone(),
        timeout,
        log: args.log.clone(),
        keep_alive: args.keep_alive,
        linux: args.linux,
        dtb: args.dtb.clone(),
        bitstream: args.bitstream.clone(),
        key: checked.key,
        reuse_held_lock: args.no_lock,
        retry_seconds: checked.retry_seconds,
        retries: checked.retries,
        reservation: args.reserve,
        any_health: args.any_health,
        priority: checked.priority,
        queue_timeout: checked.queue_timeout,
    })
}

/// `mq run ...`.
pub fn run(args: RunArgs, config: Config) -> Result<(), Failure> {
    let spec = spec(&args)?;
    let report_path = args.json_report.clone();
    let result = run_spec(&spec, config);
    if let Some(path) = report_path {
        let value = match &result {
            Ok(report) => serde_json::to_value(report).unwrap_or_default(),
            Err(f) => serde_json::json!({
                "error": f.stdout.clone().unwrap_or_default() + &f.message,
                "exit_code": f.code,
            }),
        };
        std::fs::write(&path, format!("{value:#}\n")).map_err(|e| {
            Failure::new(
                format!("mq: cannot write {}: {e}", path.display()),
                exit::USAGE,
            )
        })?;
    }
    let report = result?;
    if report.exit_code != 0 {
        let message = if matches!(report.outcome, Some(mq_core::Outcome::Interrupted)) {
            stopped(&report.system, spec.reuse_held_lock, true)
        } else {
            String::new()
        };
        return Err(Failure::new(message, exit::from_status(report.exit_code)));
    }
    Ok(())
}

fn run_spec(spec: &JobSpec, config: Config) -> Result<mq_core::JobReport, Failure> {
    // Everything that needs no host is checked before connecting.
    let inventory = config.load_inventory()?;
    let job = check_job(spec, &inventory).map_err(job_failure)?;
    let cancel = Cancel::from_flag(sem::interrupt_flag());
    // ^C is heard while connecting too (a host that never answers).
    let queue =
        mq_core::MachineQueue::connect_cancellable(config, inventory, &[&spec.target], &cancel)
            .map_err(job_failure)?;

    let interactive = spec.keep_alive && std::io::stdin().is_terminal();
    let input: Option<Box<dyn std::io::Read + Send>> = (spec.reservation || spec.keep_alive)
        .then(|| Box::new(std::io::stdin()) as Box<dyn std::io::Read + Send>);
    let mut printer = Printer::new(interactive);
    if spec.reuse_held_lock {
        // -n: the lock was held before and stays held.
        printer.system = spec.target.clone();
        printer.acquired = true;
        printer.reused_lock = true;
    }
    let result = queue.run_checked(job, input, &cancel, &mut |event| printer.event(event));
    printer.finish();
    result.map_err(|e| match e {
        JobError::Interrupted => Failure::new(printer.interrupted(), exit::INTERRUPTED),
        other => job_failure(other),
    })
}

/// What an interrupt once the lock was held did: the board stopped (or
/// never started), and the lock released, or with -n still held.
fn stopped(system: &str, reused_lock: bool, started: bool) -> String {
    let what = if started {
        "was stopped"
    } else {
        "was not started"
    };
    if reused_lock {
        format!("mq: interrupted; {system} {what}, and its lock (taken before, -n) is still held")
    } else {
        format!("mq: interrupted; {system} {what} and its lock released")
    }
}

/// Prints a job's events with mq.sh's lines.
struct Printer {
    waiting: Option<WaitDisplay>,
    /// mq.sh's holder line is printed once.
    told_holder: bool,
    system: String,
    upload_line: bool,
    raw: Option<RawMode>,
    interactive: bool,
    last_upload_draw: Option<Instant>,
    /// How far the job got, for what an interrupt says was undone.
    acquired: bool,
    started: bool,
    reused_lock: bool,
}

impl Printer {
    /// What an interrupt did, by how far the job had got (mq-core cleans up
    /// every path: a wait is ended on the host, a held lock released, a
    /// started board powered off by its runner).
    fn interrupted(&self) -> String {
        let system = &self.system;
        if system.is_empty() {
            "mq: interrupted before any lock was asked for; nothing changed on the host".into()
        } else if !self.acquired {
            format!("mq: interrupted while waiting for {system}; the wait was ended and no lock was taken")
        } else if !self.started && !self.reused_lock {
            format!("mq: interrupted before {system} was started; its lock was released")
        } else {
            stopped(system, self.reused_lock, self.started)
        }
    }

    fn new(interactive: bool) -> Printer {
        Printer {
            waiting: None,
            told_holder: false,
            system: String::new(),
            upload_line: false,
            raw: None,
            interactive,
            last_upload_draw: None,
            acquired: false,
            started: false,
            reused_lock: false,
        }
    }

    fn event(&mut self, event: JobEvent) {
        let mut out = std::io::stdout().lock();
        match event {
            JobEvent::Selected { system, pool } => {
                let _ = writeln!(out, "Selecting system '{system}' from pool '{pool}'");
            }
            JobEvent::Acquiring { system } => {
                self.system = system.to_string();
                let _ = writeln!(out, "Acquiring lock for {system}");
            }
            JobEvent::Waiting { owner, since } => self.waiting(&mut out, owner, since),
            JobEvent::InLine { place } => {
                let system = &self.system;
                let w = self
                    .waiting
                    .get_or_insert_with(|| WaitDisplay::start(system));
                w.event(mq_core::WaitEvent::Place(place.clone()));
            }
            JobEvent::Acquired { .. } => {
                self.acquired = true;
                if let Some(w) = self.waiting.take() {
                    w.finish();
                }
                let _ = writeln!(out, "Lock acquired, we are allowed to run");
            }
            // A progress line for big images on a terminal only.
            // A progress line for big images on a terminal only.
            JobEvent::Uploading { file, done, total }
                if total >= 1 << 20 && std::io::stderr().is_terminal() =>
            {
                self.upload_progress(file, done, total)
            }
            JobEvent::Reserved { system } => {
                self.started = true;
                let _ = writeln!(out, "This is a reservation. You now own {system} and");
                let _ = writeln!(
                    out,
                    "can do what you want. Press ctrl+d or enter here when done"
                );
            }
            JobEvent::PoweringOff { .. } => {
                let _ = writeln!(out, "Attempting to power off machine now that you are done");
            }
            JobEvent::Console(bytes) => {
                self.started = true;
                if self.upload_line {
                    eprint!("\r\x1b[K");
                    self.upload_line = false;
                }
                if self.interactive && self.raw.is_none() {
                    self.raw = RawMode::enter();
                }
                let _ = out.write_all(bytes);
                let _ = out.flush();
            }
            JobEvent::Warning(text) => {
                drop(out);
                eprintln!("mq: {}", mq_core::inert_lines(text));
            }
            _ => {}
        }
    }

    /// The holder line once, then the live wait display.
    fn waiting(&mut self, out: &mut impl Write, owner: &str, since: &str) {
        if !self.told_holder {
            self.told_holder = true;
            let _ = writeln!(
                out,
                "Lock for {} held by {} since {}",
                self.system,
                mq_core::inert(owner),
                mq_core::inert(since)
            );
            let _ = out.flush();
        }
        let system = &self.system;
        let w = self
            .waiting
            .get_or_insert_with(|| WaitDisplay::start(system));
        w.event(mq_core::WaitEvent::Holder {
            owner: owner.into(),
            since: since.into(),
        });
    }

    /// Redraws the upload line, at most ten times a second.
    fn upload_progress(&mut self, file: &std::path::Path, done: u64, total: u64) {
        let due = self
            .last_upload_draw
            .is_none_or(|t| t.elapsed().as_millis() >= 100 || done == total);
        if due {
            self.last_upload_draw = Some(Instant::now());
            eprint!(
                "\r\x1b[KUploading {}: {}% ({:.1}/{:.1} MB)",
                file.display(),
                done * 100 / total.max(1),
                done as f64 / 1e6,
                total as f64 / 1e6
            );
            self.upload_line = true;
        }
    }

    fn finish(&mut self) {
        if let Some(w) = self.waiting.take() {
            w.finish();
        }
        if self.upload_line {
            eprint!("\r\x1b[K");
        }
        self.raw = None;
    }
}

/// The terminal in raw mode for an interactive console; restored when dropped.
struct RawMode {
    saved: nix::sys::termios::Termios,
}

impl RawMode {
    fn enter() -> Option<RawMode> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&stdin, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        use nix::sys::termios::{tcsetattr, SetArg};
        let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.saved);
    }
}
