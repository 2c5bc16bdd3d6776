//! A job as asked for, and every check that needs neither a host nor a lock:
//! options, patterns, files, the log, and the chosen system's features.

use super::*;

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

/// A job that passed every check needing neither host nor lock, checked
/// once: what [`MachineQueue::run_checked`] takes. Made by [`check_job`].
#[derive(Debug)]
pub struct CheckedJob {
    spec: JobSpec,
    matcher: mq_console::Matcher,
}

impl CheckedJob {
    /// The job as asked for.
    pub fn spec(&self) -> &JobSpec {
        &self.spec
    }

    pub(crate) fn into_parts(self) -> (JobSpec, mq_console::Matcher) {
        (self.spec, self.matcher)
    }
}

/// Every check of a job that needs neither host nor lock, once: the target
/// is known, the options, texts, files and log are sound, and a system
/// named by itself can do what is asked (a pool's member is checked when
/// chosen).
pub fn check_job(spec: &JobSpec, inventory: &crate::Inventory) -> Result<CheckedJob, JobError> {
    let target = inventory.resolve(&spec.target)?;
    check_options(spec)?;
    let matcher = pattern_matcher(spec)?;
    if let crate::Target::System(system) = target {
        check_system(spec, system)?;
    }
    Ok(CheckedJob {
        spec: spec.clone(),
        matcher,
    })
}

/// The checks of PROTOCOL.md that need neither host nor inventory.
pub fn check_spec(spec: &JobSpec) -> Result<(), JobError> {
    check_options(spec)?;
    pattern_matcher(spec)?;
    Ok(())
}

/// [`check_spec`] but for the patterns, which [`pattern_matcher`] checks by
/// compiling them.
pub(crate) fn check_options(spec: &JobSpec) -> Result<(), JobError> {
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
pub(crate) fn check_log_path(path: &Path) -> Result<(), JobError> {
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

/// The console matcher of a job, or the check failure of a bad pattern.
pub(crate) fn pattern_matcher(spec: &JobSpec) -> Result<mq_console::Matcher, JobError> {
    console_matcher(spec).map_err(|e| JobError::Check(e.to_string()))
}

/// The checks that depend on the chosen system.
pub(crate) fn check_system(spec: &JobSpec, system: &System) -> Result<(), JobError> {
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
pub(crate) fn kernel_first_warning(spec: &JobSpec) -> Option<String> {
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
pub(crate) fn console_matcher(
    spec: &JobSpec,
) -> Result<mq_console::Matcher, mq_console::PatternError> {
    MatcherBuilder::board_run(spec.completion.as_deref(), spec.error.as_deref()).build()
}
