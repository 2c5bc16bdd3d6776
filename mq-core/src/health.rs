//! Board health: whether a system should get jobs, kept on the lab host next
//! to the locks so every mq user sees the same (`BASE/health/`, see
//! `docs/PROTOCOL-EXTENSIONS.md`). A system with no file is `good`.
//!
//! mq sees every run's outcome, so it can tell a board that fails to boot
//! from a test that fails: [`classify`] sorts a finished run into
//! passed / test failure / infrastructure failure. Infrastructure failures
//! in a row move a board to `unknown` (it needs a health check), then to
//! `bad`, by the host's own finish of the run, under the board's lock; a
//! passing run resets the count; test failures never touch health. Pools
//! pick `good` members (then `unknown` ones, saying so) and skip the rest.
//!
//! ```
//! use mq_core::health::{classify, RunClass};
//! use mq_core::Outcome;
//!
//! // A runner that died before any boot marker: the board's fault, and the
//! // test never ran, so retrying it elsewhere is safe.
//! let died = Outcome::SourceClosed { status: Some(1) };
//! assert_eq!(classify(1, &died, &[], false), (RunClass::Infrastructure, true));
//! ```

use std::fmt;

use mq_console::{markers, Kind, Match, Outcome};
use serde::Serialize;

/// Where a system stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Gets jobs.
    Good,
    /// Suspect: infrastructure failures in a row; needs a health check.
    /// Pools use it only when no member is good.
    Unknown,
    /// Out of pools until a health check passes (or an admin says so).
    Bad,
    /// Taken out by an admin.
    Maintenance,
    /// Gone for good.
    Retired,
}

impl State {
    /// Every state, in the order of the table.
    pub const ALL: [State; 5] = [
        State::Good,
        State::Unknown,
        State::Bad,
        State::Maintenance,
        State::Retired,
    ];

    /// The word in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            State::Good => "good",
            State::Unknown => "unknown",
            State::Bad => "bad",
            State::Maintenance => "maintenance",
            State::Retired => "retired",
        }
    }

    /// Parses [`State::name`].
    pub fn parse(text: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.name() == text)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A system's health record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// The system.
    pub system: String,
    /// Its state.
    pub state: State,
    /// When the state was set (RFC 3339, UTC), empty for a system never set.
    pub since: String,
    /// Who set it (a user, or `mq` for an automatic change).
    pub by: String,
    /// Why.
    pub reason: String,
    /// The run that caused an automatic change (its key), if any.
    pub run: String,
    /// Infrastructure failures in a row.
    pub failures: u32,
}

impl Health {
    /// A system with no file: good.
    pub fn good(system: &str) -> Health {
        Health {
            system: system.to_string(),
            state: State::Good,
            since: String::new(),
            by: String::new(),
            reason: String::new(),
            run: String::new(),
            failures: 0,
        }
    }

    /// Parses a health file (`key=value` lines, values escaped as
    /// [`escape`] does); unknown keys are ignored; a file without a known
    /// state (a bad one, none at all, or more than [`MAX_FILE`] bytes) is
    /// `None`, as the host's scripts read it.
    pub fn parse(system: &str, text: &str) -> Option<Health> {
        if text.len() > MAX_FILE {
            return None;
        }
        let mut health = Health::good(system);
        let mut stated = false;
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = unescape(value);
            match key {
                "state" => {
                    health.state = State::parse(&value)?;
                    stated = true;
                }
                "since" => health.since = value,
                "by" => health.by = value,
                "reason" => health.reason = value,
                "run" => health.run = value,
                "failures" => health.failures = value.parse().unwrap_or(0),
                _ => {}
            }
        }
        stated.then_some(health)
    }

    /// [`Health::parse`], with a file that does not parse (no known state:
    /// written by hand, or by someone else, empty, a link, too big) as
    /// `unknown`: nobody can vouch for the board. Only a board with no
    /// file at all is good by default (the callers tell the two apart).
    pub fn parse_or_unknown(system: &str, text: &str) -> Health {
        Health::parse(system, text).unwrap_or_else(|| Health {
            state: State::Unknown,
            reason: "unreadable health file".into(),
            ..Health::good(system)
        })
    }

    /// The file's text.
    pub fn render(&self) -> String {
        format!(
            "state={}\nsince={}\nby={}\nreason={}\nrun={}\nfailures={}\n",
            self.state,
            escape(&self.since),
            escape(&self.by),
            escape(&self.reason),
            escape(&self.run),
            self.failures
        )
    }
}

/// One line of the health log: a change of state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// When (RFC 3339, UTC).
    pub at: String,
    /// The system.
    pub system: String,
    /// The state before.
    pub from: String,
    /// The state after.
    pub to: String,
    /// Who.
    pub by: String,
    /// Why.
    pub reason: String,
    /// The run that caused it, if automatic.
    pub run: String,
}

impl Change {
    /// The log line (tab-separated, fields escaped).
    pub fn render(&self) -> String {
        [
            &self.at,
            &self.system,
            &self.from,
            &self.to,
            &self.by,
            &self.reason,
            &self.run,
        ]
        .iter()
        .map(|f| escape(f))
        .collect::<Vec<_>>()
        .join("\t")
    }

    /// The change as `owner`'s log says it: a change by a person is by the
    /// log's owner (whatever the line says); `mq` stands for a run's
    /// automatic change, made by its user.
    pub fn told_by(mut self, owner: &str) -> Change {
        if self.by != "mq" {
            self.by = owner.to_string();
        }
        self
    }

    /// Parses [`Change::render`]; `None` for a line that is not one.
    pub fn parse(line: &str) -> Option<Change> {
        let f: Vec<String> = line.split('\t').map(unescape).collect();
        let [at, system, from, to, by, reason, run] = <[String; 7]>::try_from(f).ok()?;
        Some(Change {
            at,
            system,
            from,
            to,
            by,
            reason,
            run,
        })
    }
}

/// Values in health files and the log are escaped as mq-lock's tickets are.
pub use mq_lock::{escape_line as escape, unescape_line as unescape};

/// What a finished run says about its board.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunClass {
    /// The completion text: the board works.
    Passed,
    /// The test failed (error text, or a timeout after the image started):
    /// the board did its job.
    Test,
    /// The board or the lab failed: no output, no boot, the runner could not
    /// run, the console ended early.
    Infrastructure,
    /// Stopped by the user or a CI cancel: says nothing about the board.
    Interrupted,
}

/// The boot markers that say the image itself started (the boot loader
/// handed over to it, or later), from mq-console's seL4 set.
pub fn image_started_markers() -> impl Iterator<Item = &'static markers::Marker> {
    markers::SEL4
        .iter()
        .filter(|m| matches!(m.class, markers::Class::Boot(stage) if stage >= 2))
}

/// Whether `markers` (a run's matches) show the image started.
pub fn image_started(found: &[Match]) -> bool {
    found.iter().any(|m| {
        matches!(&m.kind, Kind::Marker(label)
            if image_started_markers().any(|b| b.label == label))
    })
}

/// The console markers that say the lab itself failed, whatever the image:
/// the board never produced a console in time, or the console server went.
pub const INFRASTRUCTURE_MARKERS: [&str; 4] = [
    "[[Boot timeout]]",
    "console is down",
    "console server shutting down",
    POWER_OFF_FAILED,
];

/// The marker of a board left on after its run (mq's board runner, or the
/// host's finish after a runner that died): the lab failed, whatever the
/// test printed.
pub const POWER_OFF_FAILED: &str = "[[Power off failed]]";

/// Whether a runner's exit status says it was killed by a signal (a shell's
/// 128 + N): whatever it printed before, the run did not end by itself.
pub fn killed_by_signal(runner_status: i32) -> bool {
    (129..=192).contains(&runner_status)
}

/// Sorts a finished run by what its console showed, not by its runner's
/// exit status: PROTOCOL.md defines the runner's arguments, not its
/// statuses (the old lab's runner exits 1 for an error text and for a
/// timeout alike). In order:
///
/// 1. interrupted by the user: [`RunClass::Interrupted`];
/// 2. the completion text: passed; the error text: a test failure; either
///    from a runner then killed by a signal (status 129 to 192), or with a
///    board that could not be powered off ([`POWER_OFF_FAILED`]):
///    infrastructure;
/// 3. [`INFRASTRUCTURE_MARKERS`] or no console output at all:
///    infrastructure;
/// 4. mq's own deadline ([`Outcome::Timeout`]) once the image started: a
///    test failure (mq stopped the runner; its status says nothing);
/// 5. a runner killed by a signal, or mq-lab's own "console ended first"
///    and "could not run the board" (statuses 5 and 6: the only statuses
///    read besides signals): infrastructure;
/// 6. a runner that ended with 0 (success for every runner; the completion
///    text may be one mq's matcher cannot follow, see
///    [`MatcherBuilder::completion_text`](mq_console::MatcherBuilder::completion_text)):
///    passed;
/// 7. anything else (`[[Timeout]]`, mq's own deadline, a runner that ended
///    without a verdict): a test failure once the image started (a boot
///    marker of stage 2 or later), else infrastructure.
///
/// Returns the class and whether a retry is safe: an infrastructure failure
/// before the image ran (nothing of the test ran; running it again elsewhere
/// duplicates nothing). The host's finish classifies the same way from the
/// runner's log for the health count (`docs/PROTOCOL-EXTENSIONS.md`); a test
/// checks they agree.
pub fn classify(
    runner_status: i32,
    outcome: &Outcome,
    found: &[Match],
    saw_output: bool,
) -> (RunClass, bool) {
    if matches!(outcome, Outcome::Interrupted) {
        return (RunClass::Interrupted, false);
    }
    let started = image_started(found);
    let lab_failed = found.iter().any(|m| {
        matches!(&m.kind, Kind::Marker(label) if INFRASTRUCTURE_MARKERS.contains(&label.as_str()))
    });
    let killed = killed_by_signal(runner_status);
    let left_on = found
        .iter()
        .any(|m| matches!(&m.kind, Kind::Marker(label) if label == POWER_OFF_FAILED));
    let class = match outcome {
        Outcome::Completed { .. } | Outcome::ErrorText { .. } if killed || left_on => {
            RunClass::Infrastructure
        }
        Outcome::Completed { .. } => RunClass::Passed,
        Outcome::ErrorText { .. } => RunClass::Test,
        _ if lab_failed || !saw_output => RunClass::Infrastructure,
        // mq's own deadline: mq stopped the runner, its status says nothing.
        Outcome::Timeout { .. } if started => RunClass::Test,
        _ if killed || matches!(runner_status, 5 | 6) => RunClass::Infrastructure,
        _ if runner_status == 0 => RunClass::Passed,
        _ if started => RunClass::Test,
        _ => RunClass::Infrastructure,
    };
    (class, class == RunClass::Infrastructure && !started)
}

/// A system's health check: a job that must complete for the board to be
/// `good` again (`mq health check`), from the inventory directory's
/// `health.tsv`: `SYSTEM<TAB>COMPLETION<TAB>TIMEOUT<TAB>FILE[<TAB>FILE]`,
/// files relative to that directory, `#` comments and blank lines ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthCheck {
    /// The system.
    pub system: String,
    /// The completion text (a regular expression, as `-c`).
    pub completion: String,
    /// Seconds (as `-d`).
    pub timeout: u64,
    /// The image files, kernel first.
    pub files: Vec<std::path::PathBuf>,
}

/// A line of `health.tsv` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct HealthCheckError {
    /// The file.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// Why.
    pub message: String,
}

/// Reads `DIR/health.tsv` (no file: no checks), checking each system
/// against `inventory`.
pub fn load_checks(
    dir: &std::path::Path,
    inventory: &crate::Inventory,
) -> Result<Vec<HealthCheck>, HealthCheckError> {
    let path = dir.join("health.tsv");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(Vec::new());
    };
    let mut checks: Vec<HealthCheck> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let bad = |message: String| HealthCheckError {
            file: path.display().to_string(),
            line: n + 1,
            message,
        };
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [system, completion, timeout, files @ ..] = &fields[..] else {
            return Err(bad(
                "expected SYSTEM, COMPLETION, TIMEOUT and 1 or 2 files, tab-separated".into(),
            ));
        };
        let Some(known) = inventory.system(system) else {
            return Err(bad(format!("no system {system} in the inventory")));
        };
        if files.len() != usize::from(known.num_files) {
            return Err(bad(format!(
                "{system} takes {} file(s), {} given",
                known.num_files,
                files.len()
            )));
        }
        let timeout = timeout
            .parse()
            .ok()
            .filter(|&t| t > 0)
            .ok_or_else(|| bad(format!("the timeout is seconds, found '{timeout}'")))?;
        if completion.is_empty() {
            return Err(bad("the completion text is empty".into()));
        }
        if checks.iter().any(|c| c.system == *system) {
            return Err(bad(format!("a second check for {system}")));
        }
        checks.push(HealthCheck {
            system: system.to_string(),
            completion: completion.to_string(),
            timeout,
            files: files.iter().map(|f| dir.join(f)).collect(),
        });
    }
    Ok(checks)
}

/// The health scripts (`src/sh/`).
const UPDATE: &str = include_str!("sh/health_update.sh");
const READ: &str = include_str!("sh/health_read.sh");
const SET: &str = include_str!("sh/health_set.sh");
const PRECHECK: &str = include_str!("sh/health_precheck.sh");
const LOG: &str = include_str!("sh/health_log.sh");
const MUTEX: &str = include_str!("sh/health_mutex.sh");
/// Precedes each system's file in what [`read_script`] prints.
const FILE_MARK: &str = "MQ-HEALTH-FILE ";

/// The most bytes of a health file anyone reads; a bigger one is unknown
/// (`mq health`, `mq status`, the host's checks before a run and at its
/// end all say so alike).
pub const MAX_FILE: usize = 4096;
/// Printed by the run's finish when it changed the board's state:
/// `MQ-HEALTH STATE REASON`.
pub(crate) const CHANGED_MARK: &str = "MQ-HEALTH ";

/// The finish's update of `system`'s count and state, under its lock (see
/// `sh/health_update.sh`); `log` is the runner's log, `run` the job's key.
/// It runs after the lock client's
/// [`script_head`](mq_lock::LockClient::script_head).
pub(crate) fn update_script(
    system: &str,
    log: &str,
    run: &str,
    completion: Option<&str>,
    error: Option<&str>,
) -> String {
    let image_started: Vec<&str> = image_started_markers().map(|m| m.pattern).collect();
    let lab_failed: Vec<&str> = markers::SEL4
        .iter()
        .filter(|m| INFRASTRUCTURE_MARKERS.contains(&m.label))
        .map(|m| m.pattern)
        .collect();
    // A key with a line break would end the record's line.
    let run_text = run.replace(['\n', '\r'], " ");
    mq_transport::fill(
        UPDATE.trim_end(),
        &[
            ("mutex_fn", MUTEX.trim_end()),
            ("system_file", &mq_transport::quote(system)),
            ("system", &mq_transport::quote(system)),
            (
                "image_started",
                &mq_transport::quote(&image_started.join("|")),
            ),
            ("lab_failed", &mq_transport::quote(&lab_failed.join("|"))),
            ("completion", &mq_transport::quote(completion.unwrap_or(""))),
            ("error", &mq_transport::quote(error.unwrap_or(""))),
            ("log", log),
            ("run", &mq_transport::quote(&escape(run))),
            ("health_mark", CHANGED_MARK),
            ("power_off_failed", POWER_OFF_FAILED),
            ("run_text", &mq_transport::quote(&run_text)),
        ],
    )
}

/// Prints each of `systems`' health file; runs after the lock client's
/// [`script_head`](mq_lock::LockClient::script_head), as every health
/// script (see [`mq_lock::LockClient::run_script`]).
pub(crate) fn read_script(base: &str, systems: &[&str]) -> String {
    let names: Vec<String> = systems.iter().map(|s| mq_transport::quote(s)).collect();
    let dir = mq_transport::quote(&format!("{}/health", base.trim_end_matches('/')));
    mq_transport::fill(
        READ.trim_end(),
        &[
            ("systems", &names.join(" ")),
            ("file_mark", FILE_MARK),
            ("health_dir", &dir),
        ],
    )
}

/// Parses what [`read_script`] printed, in the order of `systems`.
pub(crate) fn parse_read(systems: &[&str], out: &str) -> Vec<Health> {
    let mut files: Vec<(String, String)> = Vec::new();
    for line in out.lines() {
        if let Some(system) = line.strip_prefix(FILE_MARK) {
            files.push((system.to_string(), String::new()));
        } else if let Some((_, text)) = files.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    systems
        .iter()
        .map(|s| {
            files.iter().find(|(name, _)| name == s).map_or_else(
                || Health::good(s),
                // The reader added a line break after the file's bytes.
                |(_, text)| Health::parse_or_unknown(s, text.strip_suffix('\n').unwrap_or(text)),
            )
        })
        .collect()
}

/// An admin's setting of `health`, logged as `change`.
pub(crate) fn set_script(health: &Health, change: &Change) -> String {
    let q = |text: &str| mq_transport::quote(&escape(text));
    mq_transport::fill(
        SET.trim_end(),
        &[
            ("mutex_fn", MUTEX.trim_end()),
            ("system_file", &mq_transport::quote(&health.system)),
            ("content", &mq_transport::quote(&health.render())),
            ("at", &q(&change.at)),
            ("system", &q(&change.system)),
            ("to", &q(&change.to)),
            ("by", &q(&change.by)),
            ("reason", &q(&change.reason)),
        ],
    )
}

/// The acquire's precheck for a job naming `system` itself: refuses (before
/// the wait) a system that is not good, with its state and reason.
pub(crate) fn precheck_script(base: &str, system: &str) -> String {
    let file = format!("{}/health/{system}", base.trim_end_matches('/'));
    mq_transport::fill(
        PRECHECK.trim_end(),
        &[("health_file", &mq_transport::quote(&file))],
    )
}

/// Every user's health log (see `sh/health_log.sh`).
pub(crate) fn log_script() -> String {
    mq_transport::fill(LOG, &[])
}

/// Parses what [`log_script`] printed: every change, oldest first, each
/// said by its log's owner.
pub(crate) fn parse_log(out: &str) -> Vec<Change> {
    let mut changes: Vec<Change> = out
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter_map(|(owner, line)| Some(Change::parse(line)?.told_by(owner)))
        .collect();
    changes.sort_by(|a, b| a.at.cmp(&b.at));
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host's finish and [`classify`] sort runs alike, by what the
    /// console showed: each case runs the finish's update with `sh` on a
    /// board with one failure counted, and the matcher over the same console.
    /// Statuses are those of mq-lab's runner and of the old lab's (1 for an
    /// error text and for a timeout alike).
    #[test]
    fn the_hosts_count_and_classify_agree() {
        let cases: [(i32, &str, RunClass); 18] = [
            (0, "ELF-loader started\nAll is well\n", RunClass::Passed),
            (3, "ELF-loader started\nFAILED\n", RunClass::Test),
            (1, "ELF-loader started\nFAILED\n", RunClass::Test),
            (1, "FAILED\nAll is well\n", RunClass::Test),
            (1, "All is well\nFAILED\n", RunClass::Passed),
            (
                4,
                "Booting all finished, dropped to user space\n",
                RunClass::Test,
            ),
            (1, "ELF-loader started\n[[Timeout]]\n", RunClass::Test),
            (4, "U-Boot 2023.04\n[[Timeout]]\n", RunClass::Infrastructure),
            (
                1,
                "U-Boot 2023.04\n[[Boot timeout]]\n",
                RunClass::Infrastructure,
            ),
            (
                1,
                "ELF-loader started\nconsole is down\n",
                RunClass::Infrastructure,
            ),
            (4, "", RunClass::Infrastructure),
            (0, "", RunClass::Infrastructure),
            (1, "ELF-loader started\n", RunClass::Test),
            (
                137,
                "ELF-loader started\nAll is well\n",
                RunClass::Infrastructure,
            ),
            (137, "ELF-loader started\n", RunClass::Infrastructure),
            (5, "ELF-loader started\n", RunClass::Infrastructure),
            (
                0,
                "ELF-loader started\nAll is well\n[[Power off failed]] pdu: no route\n",
                RunClass::Infrastructure,
            ),
            (
                3,
                "ELF-loader started\nFAILED\n[[Power off failed]] pdu: no route\n",
                RunClass::Infrastructure,
            ),
        ];
        for (status, console, class) in cases {
            let dir = tempfile::tempdir().unwrap();
            let base = dir.path().display().to_string();
            std::fs::create_dir_all(dir.path().join("health")).unwrap();
            std::fs::write(dir.path().join("health/b1"), "state=good\nfailures=1\n").unwrap();
            let log = dir.path().join("log");
            std::fs::write(&log, console).unwrap();
            let script = mq_lock::safe_head(&base)
                + mq_lock::HISTORY_FN
                + &update_script(
                    "b1",
                    &mq_transport::quote(&log.display().to_string()),
                    "k",
                    Some("All is well"),
                    Some("FAILED"),
                );
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("mq_st={status}\n{script}"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = std::fs::read_to_string(dir.path().join("health/b1")).unwrap();
            let counted = Health::parse("b1", &text).unwrap().failures;
            let mut matcher =
                mq_console::MatcherBuilder::board_run(Some("All is well"), Some("FAILED"))
                    .build()
                    .unwrap();
            let mut found = matcher.feed(console.as_bytes());
            found.extend(matcher.finish());
            let outcome = match found
                .iter()
                .find(|m| matches!(m.kind, Kind::Completion | Kind::Error))
            {
                Some(m) if m.kind == Kind::Completion => Outcome::Completed { matched: m.clone() },
                Some(m) => Outcome::ErrorText { matched: m.clone() },
                None => Outcome::SourceClosed {
                    status: Some(status),
                },
            };
            let (classified, _) = classify(status, &outcome, &found, !console.is_empty());
            assert_eq!(classified, class, "status {status}, console {console:?}");
            let expected = match class {
                RunClass::Passed => 0,
                RunClass::Infrastructure => 2,
                _ => 1,
            };
            assert_eq!(
                counted, expected,
                "the host: status {status}, console {console:?}: {class:?}"
            );
        }
    }

    #[test]
    fn the_health_scripts_pass_dash_bash_and_shellcheck() {
        let health = Health::good("b1");
        let change = Change {
            at: "t".into(),
            system: "b1".into(),
            from: "good".into(),
            to: "bad".into(),
            by: "me".into(),
            // (A `$` in single quotes is only shellcheck's worry: the
            // hostile-text tests store and show it verbatim.)
            reason: "it's \"broken\"; the serial line".into(),
            run: String::new(),
        };
        let mut problems = Vec::new();
        // What LockClient::script_head sends first.
        let head = format!(
            "mq_me=me\n{}{}",
            mq_lock::safe_head("/b"),
            mq_lock::HISTORY_FN
        );
        for (name, text) in [
            (
                "health_update.sh",
                format!(
                    "mq_st=4\n{}{}{}",
                    mq_lock::safe_head("/b"),
                    mq_lock::HISTORY_FN,
                    update_script("b1", "'/tmp/log'", "k", Some("done"), Some("FAIL"))
                ),
            ),
            ("health_log.sh", head.clone() + &log_script()),
            (
                "health_read.sh",
                head.clone() + &read_script("/b", &["b1", "b2"]),
            ),
            (
                "health_set.sh",
                head.clone() + &set_script(&health, &change),
            ),
            (
                "health_precheck.sh",
                format!(
                    "mq_refuse() {{ exit 12; }}\n{}",
                    precheck_script("/b", "b1")
                ),
            ),
        ] {
            let Some(found) = mq_testkit::check_sh_script(name, &text) else {
                return;
            };
            problems.extend(found);
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn files_and_log_lines_round_trip_hostile_text() {
        let health = Health {
            system: "sabre".into(),
            state: State::Bad,
            since: "2026-11-29T14:00:00Z".into(),
            by: "alice".into(),
            reason: "it's $(rm -rf /)\nand\ta \\ back".into(),
            run: "ci-1".into(),
            failures: 4,
        };
        assert_eq!(
            Health::parse("sabre", &health.render()),
            Some(health.clone())
        );
        let change = Change {
            at: health.since.clone(),
            system: "sabre".into(),
            from: "unknown".into(),
            to: "bad".into(),
            by: "mq".into(),
            reason: health.reason.clone(),
            run: "ci-1".into(),
        };
        assert!(!change.render().contains('\n'));
        assert_eq!(Change::parse(&change.render()), Some(change));
        assert_eq!(Health::parse("x", "state=broken\n"), None);
        // A file that says no state is nobody's word for the board.
        assert_eq!(Health::parse("x", ""), None);
        assert_eq!(Health::parse("x", "reason=fine\n"), None);
        let big = format!("state=good\n{}", "x".repeat(MAX_FILE));
        assert_eq!(Health::parse("x", &big), None);
        assert_eq!(Health::parse_or_unknown("x", "").state, State::Unknown);
    }
}
