//! A harness policy on mq-core, and its tests against `mq_core::testing`:
//! run a test image on a pool; when the *board* fails (it died, the
//! connection to the lab host went), try another attempt; when the *test*
//! fails (error text, timeout), report it and stop. A busy board is reported
//! with its holder; a cancel from another thread stops everything.
//!
//! ```sh
//! cargo run --example retrying_harness -- POOL 'All is well in the universe' 600 IMAGE
//! cargo test --example retrying_harness      # its tests: no lab host needed
//! ```
//!
//! Copy it as the start of your own harness: the tests show how to script
//! boards (`Board::prints`, `exits_with`, ...), hold a board as someone else
//! would, and check what your harness asked of the boards.

use std::time::Duration;

use mq_core::job::{Cancel, JobError, JobEvent, JobReport, JobSpec};
use mq_core::{exit, MachineQueue};

/// What the harness concluded.
#[derive(Debug)]
pub enum Verdict {
    /// The test ran to a verdict (passed or failed) on `report.system`.
    Ran {
        report: Box<JobReport>,
        /// Attempts the board (not the test) failed before this one.
        retried: u32,
    },
    /// Every attempt failed for the board's or the lab's reasons.
    GaveUp { attempts: u32, last: String },
    /// The board was busy and the harness was told not to wait.
    Busy { holder: String },
    /// Cancelled.
    Cancelled,
}

/// Whether a finished run is a verdict about the test (0 passed, 3 error
/// text, 4 timeout) rather than about the board.
fn is_test_verdict(report: &JobReport) -> bool {
    matches!(
        exit::from_status(report.exit_code),
        exit::OK | exit::ERROR_TEXT | exit::TIMEOUT
    )
}

/// Runs `spec` up to `attempts` times while the board or the lab fails.
/// With `wait: false` a busy board is reported instead of waited for.
pub fn run_with_retries(
    queue: &MachineQueue,
    spec: &JobSpec,
    attempts: u32,
    wait: bool,
    cancel: &Cancel,
) -> Verdict {
    let spec = JobSpec {
        retries: if wait { -1 } else { 0 },
        ..spec.clone()
    };
    let mut last = String::new();
    for attempt in 0..attempts {
        let mut holder = None;
        let result = queue.run_job(&spec, None, cancel, &mut |event| {
            if let JobEvent::Waiting { owner, since } = event {
                holder = Some(format!("{owner} since {since}"));
            }
        });
        match result {
            Ok(report) if is_test_verdict(&report) => {
                return Verdict::Ran {
                    report: Box::new(report),
                    retried: attempt,
                }
            }
            Ok(report) => {
                last = format!(
                    "{}: {}",
                    report.system,
                    report
                        .outcome
                        .as_ref()
                        .map_or(String::new(), |o| o.summary())
                )
            }
            Err(JobError::Interrupted) => return Verdict::Cancelled,
            Err(JobError::Queue(_)) if !wait && holder.is_some() => {
                return Verdict::Busy {
                    holder: holder.unwrap_or_default(),
                };
            }
            // Bad options, unknown boards: no attempt can do better.
            Err(e @ (JobError::Check(_) | JobError::UnknownTarget(_))) => {
                return Verdict::GaveUp {
                    attempts: attempt + 1,
                    last: e.to_string(),
                }
            }
            Err(e) => last = e.to_string(),
        }
        if cancel.is_cancelled() {
            return Verdict::Cancelled;
        }
        // A moment for a lab host that went away to come back.
        std::thread::sleep(Duration::from_millis(100));
    }
    Verdict::GaveUp { attempts, last }
}

fn main() {
    use mq_core::{Config, Environment, Overrides};
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [target, completion, timeout, files @ ..] = &args[..] else {
        eprintln!(
            "usage: retrying_harness SYSTEM-OR-POOL COMPLETION-TEXT TIMEOUT-SECONDS IMAGE..."
        );
        std::process::exit(1);
    };
    let Ok(timeout) = timeout.parse() else {
        eprintln!("retrying_harness: {timeout}: the timeout is whole seconds");
        std::process::exit(1);
    };
    let queue = Config::resolve(&Overrides::default(), &Environment::from_process())
        .map_err(|e| e.to_string())
        .and_then(|c| MachineQueue::connect(c).map_err(|e| e.to_string()))
        .unwrap_or_else(|e| {
            eprintln!("retrying_harness: {e}");
            std::process::exit(1)
        });
    let spec = JobSpec {
        target: target.clone(),
        files: files.iter().map(Into::into).collect(),
        completion: Some(completion.clone()),
        timeout: Some(timeout),
        key: format!("retrying-harness-{}", std::process::id()),
        ..JobSpec::default()
    };
    let cancel = Cancel::from_flag(mq_core::interrupt_on_signals());
    let verdict = run_with_retries(&queue, &spec, 3, true, &cancel);
    println!("{verdict:?}");
    std::process::exit(match verdict {
        Verdict::Ran { report, .. } => report.exit_code,
        Verdict::GaveUp { .. } | Verdict::Busy { .. } => exit::INFRASTRUCTURE.into(),
        Verdict::Cancelled => exit::INTERRUPTED.into(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use mq_core::testing::{Board, TestLab};
    use mq_core::LockState;

    const PASS: &str = "All is well in the universe";

    fn spec(lab: &TestLab, target: &str) -> JobSpec {
        JobSpec {
            target: target.into(),
            files: vec![lab.image("sel4test.elf", b"sel4test image")],
            completion: Some(PASS.into()),
            error: Some("FAILED".into()),
            timeout: Some(20),
            key: "harness-test".into(),
            ..JobSpec::default()
        }
    }

    #[test]
    fn a_board_that_keeps_dying_is_tried_three_times_and_a_good_one_once() {
        let lab = TestLab::builder()
            .board("dead1", Board::exits_with(7))
            .board("good1", Board::prints(["Booting", PASS]))
            .build();
        let verdict = run_with_retries(&lab.queue(), &spec(&lab, "dead1"), 3, true, &Cancel::new());
        let Verdict::GaveUp { attempts, last } = verdict else {
            panic!("a board that always dies gives up: {verdict:?}");
        };
        assert_eq!(attempts, 3);
        assert!(last.contains("dead1"), "{last}");
        assert_eq!(lab.calls().len(), 3, "three attempts reached the board");
        // Each attempt released its lock and removed its files.
        assert!(lab.locks().iter().all(|(_, s)| *s == LockState::Free));
        assert_eq!(lab.leftovers(), Vec::<std::path::PathBuf>::new());

        let verdict = run_with_retries(&lab.queue(), &spec(&lab, "good1"), 3, true, &Cancel::new());
        let Verdict::Ran { report, retried } = verdict else {
            panic!("{verdict:?}")
        };
        assert_eq!((report.exit_code, retried), (0, 0));
        let call = lab.calls().pop().unwrap();
        assert_eq!(call.board, "good1");
        assert_eq!(call.completion.as_deref(), Some(PASS));
        assert_eq!(call.error.as_deref(), Some("FAILED"));
        assert_eq!(call.timeout, Some(20));
        assert_eq!(call.files, vec![b"sel4test image".to_vec()]);
    }

    #[test]
    fn the_lab_connection_lost_once_is_retried() {
        let lab = TestLab::builder()
            .board("b1", Board::prints(["Booting", PASS]))
            .build();
        // The first attempt's connection fails as it asks for the lock (a
        // whole run is one session: the acquire's).
        lab.faults().fail_operation(1);
        let verdict = run_with_retries(&lab.queue(), &spec(&lab, "b1"), 3, true, &Cancel::new());
        let Verdict::Ran { report, retried } = verdict else {
            panic!("{verdict:?}")
        };
        assert_eq!((report.exit_code, retried), (0, 1));
        assert!(lab.locks().iter().all(|(_, s)| *s == LockState::Free));
    }

    #[test]
    fn a_failing_test_is_not_retried() {
        let lab = TestLab::builder()
            .board("b1", Board::prints(["Booting", "sel4test: FAILED"]))
            .build();
        let verdict = run_with_retries(&lab.queue(), &spec(&lab, "b1"), 3, true, &Cancel::new());
        let Verdict::Ran { report, retried } = verdict else {
            panic!("{verdict:?}")
        };
        assert_eq!((report.exit_code, retried), (3, 0));
        assert_eq!(lab.calls().len(), 1);
    }

    #[test]
    fn a_busy_board_is_reported_with_its_holder() {
        let lab = TestLab::builder()
            .board("b1", Board::prints(["Booting", PASS]))
            .build();
        let _held = lab.hold("b1", "someone-else");
        let verdict = run_with_retries(&lab.queue(), &spec(&lab, "b1"), 3, false, &Cancel::new());
        let Verdict::Busy { holder } = verdict else {
            panic!("{verdict:?}")
        };
        assert!(holder.contains(&mq_core_user(&lab)), "{holder}");
        assert!(lab.calls().is_empty(), "the board was never touched");
        // The other client's lock is still there, with its key.
        let (_, state) = &lab.locks()[0];
        assert!(matches!(state, LockState::Held(h) if h.key == "someone-else"));
    }

    #[test]
    fn a_cancel_from_another_thread_stops_a_waiting_harness() {
        let lab = TestLab::builder()
            .board("b1", Board::prints(["Booting", PASS]))
            .build();
        let held = lab.hold("b1", "someone-else");
        let cancel = Cancel::new();
        let canceller = cancel.clone();
        let started = std::time::Instant::now();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            canceller.cancel();
        });
        let verdict = run_with_retries(&lab.queue(), &spec(&lab, "b1"), 3, true, &cancel);
        t.join().unwrap();
        assert!(matches!(verdict, Verdict::Cancelled), "{verdict:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(held);
        // Nothing of the harness's is left: no lock, no waiting process.
        assert!(lab.locks().iter().all(|(_, s)| *s == LockState::Free));
        assert!(lab.calls().is_empty());
    }

    #[test]
    fn a_cancel_while_the_board_runs_stops_the_board() {
        let lab = TestLab::builder()
            .board("b1", Board::boots_then_hangs(["Booting"]))
            .build();
        let cancel = Cancel::new();
        let canceller = cancel.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(800));
            canceller.cancel();
        });
        let verdict = run_with_retries(&lab.queue(), &spec(&lab, "b1"), 3, true, &cancel);
        t.join().unwrap();
        assert!(matches!(verdict, Verdict::Cancelled), "{verdict:?}");
        assert_eq!(lab.calls().len(), 1);
        assert!(lab.locks().iter().all(|(_, s)| *s == LockState::Free));
        assert_eq!(lab.leftovers(), Vec::<std::path::PathBuf>::new());
    }

    fn mq_core_user(lab: &TestLab) -> String {
        lab.queue().transport().user().to_string()
    }
}
