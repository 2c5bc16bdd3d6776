//! What a job reports: its times, outcome, markers, class and exit code.

use super::*;
pub use crate::time::format_rfc3339;

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

pub(crate) fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

pub(crate) fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_rfc3339(*t))
}

/// A report with nothing measured yet.
pub(crate) fn empty_report(system: &str, outcome: Option<Outcome>) -> JobReport {
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
pub(crate) fn exit_code(
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

/// How a console ended, for its report.
pub(crate) struct Ending {
    pub(crate) interrupted: bool,
    /// The runner's exit status.
    pub(crate) status: i32,
    /// From the invocation's start to the runner's end.
    pub(crate) run: Duration,
}

/// The report of a run whose console has ended.
pub(crate) fn run_report(
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
