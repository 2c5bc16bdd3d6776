//! One runner per board: an exclusive `flock` on `STATE/BOARD.lock`, held
//! for the whole run and let go by the kernel however the runner ends.
//!
//! The state directory is shared by every user of the lab, so nothing in it
//! is trusted: a lock is opened without following links and without
//! blocking (a FIFO planted there is refused, not waited on), must be a
//! regular file, and every refusal names the file's owner and the fix.
//! `--shutdown` signals a holder only after checking, on a pidfd that pins
//! the process, that it is a runner of this very board.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::runner::RunnerError;

/// A runner's exclusive hold on one board. Released by the kernel when the
/// runner ends, however it ends.
pub struct BoardLock {
    _file: File,
}

impl BoardLock {
    /// The board's lock file in `state`.
    pub fn path(state: &Path, board: &str) -> PathBuf {
        state.join(format!("{board}.lock"))
    }

    /// Takes the board without waiting, or says which runner has it (or
    /// why its lock cannot be used).
    pub fn take(state: &Path, board: &str) -> Result<BoardLock, RunnerError> {
        let path = BoardLock::path(state, board);
        let file = open_lock(state, &path)?;
        // SAFETY: flock(2) on a descriptor this function owns for the call;
        // no memory is passed.
        let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if taken {
            return Ok(BoardLock { _file: file });
        }
        let who = lock_holder(&path).map_or_else(
            || "another runner".to_string(),
            |pid| format!("the runner with pid {pid}{}", process_owner(pid)),
        );
        Err(RunnerError(format!(
            "board {board} is in use by {who}; one runner per board ({})",
            path.display()
        )))
    }
}

/// Makes the lab's state directory if it is missing: mode 1777 (every
/// user's runner makes its board's lock there; the sticky bit keeps one
/// user from removing another's). A lab set up for many users has it made
/// by its admin instead, 0755 with a lock per board (`mq lab init` does).
pub fn prepare_state(state: &Path) -> Result<(), RunnerError> {
    use std::os::unix::fs::DirBuilderExt;
    if state.is_dir() {
        return Ok(());
    }
    match std::fs::DirBuilder::new().mode(0o1777).create(state) {
        Ok(()) => std::fs::set_permissions(state, std::fs::Permissions::from_mode(0o1777))
            .map_err(|e| RunnerError(format!("{}: {e}", state.display()))),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(RunnerError(format!(
            "cannot make the lab's state directory {}: {e}. The lab admin makes it once \
             (mkdir -m 1777 {}; or 0755 with a lock, mode 0644, for every board, as `mq lab init` makes it)",
            state.display(),
            state.display()
        ))),
    }
}

/// Opens (or makes) a board's lock, refusing anything but a regular file.
fn open_lock(state: &Path, path: &Path) -> Result<File, RunnerError> {
    let existing = || {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
    };
    let file = match existing() {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Readable by all (flock needs only a read descriptor), so every
            // user's runner can take it.
            match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .custom_flags(libc::O_NOFOLLOW)
                .mode(0o644)
                .open(path)
            {
                Ok(file) => {
                    let _ = file.set_permissions(std::fs::Permissions::from_mode(0o644));
                    file
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    existing().map_err(|e| unusable(path, &e))?
                }
                Err(e) => return Err(cannot_create(state, path, &e)),
            }
        }
        Err(e) => return Err(unusable(path, &e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| RunnerError(format!("{}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(RunnerError(format!(
            "the board's lock {} is not a regular file but {} made by {}: refused. The lab admin removes it",
            path.display(),
            kind_of(&meta),
            user_name(meta.uid())
        )));
    }
    Ok(file)
}

/// Why an existing lock cannot be opened, with its owner and the fix.
fn unusable(path: &Path, e: &io::Error) -> RunnerError {
    let meta = std::fs::symlink_metadata(path).ok();
    let owner = meta
        .as_ref()
        .map_or_else(|| "someone".to_string(), |m| user_name(m.uid()));
    if e.raw_os_error() == Some(libc::ELOOP) {
        return RunnerError(format!(
            "the board's lock {} is a symbolic link made by {owner}: refused (a link there could point a runner at anyone's file). The lab admin removes it",
            path.display()
        ));
    }
    let mode = meta.map_or_else(String::new, |m| {
        format!(" with mode {:04o}", m.mode() & 0o7777)
    });
    RunnerError(format!(
        "cannot open the board's lock {}: {e}. It belongs to {owner}{mode}, so other users' runners cannot take the board. \
         The lab admin removes it (rm {}); a state directory only the admin can write, holding a lock for every board (as `mq lab init` makes it), keeps anyone from doing this again",
        path.display(),
        path.display()
    ))
}

/// Why a missing lock cannot be made: the state directory's owner and mode.
fn cannot_create(state: &Path, path: &Path, e: &io::Error) -> RunnerError {
    let how = std::fs::metadata(state).map_or_else(
        |_| String::new(),
        |m| {
            format!(
                " ({} is mode {:04o}, owned by {})",
                state.display(),
                m.mode() & 0o7777,
                user_name(m.uid())
            )
        },
    );
    RunnerError(format!(
        "cannot make the board's lock {}: {e}{how}. Every user's runner needs it: the lab admin makes it once \
         (touch {p} && chmod 644 {p}), or makes the directory shared (chmod 1777 {})",
        path.display(),
        state.display(),
        p = path.display()
    ))
}

fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_fifo() {
        "a FIFO"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else {
        "something else"
    }
}

fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(|| format!("uid {uid}"), |u| format!("user {}", u.name))
}

/// The process holding the `flock` on `path`, as the kernel's lock table
/// (`/proc/locks`) says: never a number anyone could write into a file.
pub fn lock_holder(path: &Path) -> Option<i32> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let dev = meta.dev();
    // glibc's major()/minor() of a dev_t.
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let wanted = format!("{major:02x}:{minor:02x}:{}", meta.ino());
    let table = std::fs::read_to_string("/proc/locks").ok()?;
    table.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // "1: FLOCK  ADVISORY  WRITE 1234 08:02:5678 0 EOF"
        let (kind, pid, file) = (fields.get(1)?, fields.get(4)?, fields.get(5)?);
        (*kind == "FLOCK" && *file == wanted)
            .then(|| pid.parse::<i32>().ok())
            .flatten()
            .filter(|&pid| pid > 0)
    })
}

/// ` (user NAME)` for a process, or nothing.
pub(crate) fn process_owner(pid: i32) -> String {
    std::fs::metadata(format!("/proc/{pid}"))
        .ok()
        .map_or_else(String::new, |m| format!(" ({})", user_name(m.uid())))
}

/// A process pinned by a pidfd: its pid can no longer name another process.
pub(crate) struct Pinned {
    fd: OwnedFd,
    pub(crate) pid: i32,
}

impl Pinned {
    /// Pins `pid`, or `None` when it is gone.
    pub(crate) fn new(pid: i32) -> Option<Pinned> {
        // SAFETY: pidfd_open(2) takes a pid and flags and returns a new
        // descriptor (or -1); no memory is passed. The descriptor is owned
        // by the OwnedFd alone from here on.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` is a valid descriptor just returned to us and not
        // owned by anything else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Some(Pinned { fd, pid })
    }

    /// Sends `signal` to exactly the pinned process (never to a process
    /// that took its pid later).
    pub(crate) fn signal(&self, signal: i32) -> io::Result<()> {
        // SAFETY: pidfd_send_signal(2) with a descriptor we own, a signal
        // number, a null siginfo (allowed: the kernel fills it as kill(2)
        // does) and no flags.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// Whether the process `pid` is a runner of `board` whose state directory
/// is `state`: its command line is `... board reboot ... --lab LAB --board
/// BOARD ...` (not `--shutdown`), with LAB's directory holding `state`.
/// `Err` says what it is instead.
pub(crate) fn is_runner_of(pid: i32, board: &str, state: &Path) -> Result<(), String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map_err(|e| format!("its command line cannot be read: {e}"))?;
    let args: Vec<OsString> = raw
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect();
    let shown = args
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let not_ours = || {
        format!(
            "it is `{}`, not a runner of board {board}",
            shown.chars().take(200).collect::<String>()
        )
    };
    let value = |flag: &str| {
        let eq = format!("{flag}=");
        args.iter().enumerate().find_map(|(i, a)| {
            let a = a.to_str()?;
            if a == flag {
                args.get(i + 1).cloned()
            } else {
                a.strip_prefix(&eq).map(OsString::from)
            }
        })
    };
    let subcommand = args.windows(2).any(|w| w[0] == "board" && w[1] == "reboot");
    if !subcommand || args.iter().any(|a| a == "--shutdown") {
        return Err(not_ours());
    }
    if value("--board").as_deref() != Some(std::ffi::OsStr::new(board)) {
        return Err(not_ours());
    }
    let lab = PathBuf::from(value("--lab").ok_or_else(not_ours)?);
    let lab = if lab.is_absolute() {
        lab
    } else {
        std::fs::read_link(format!("/proc/{pid}/cwd"))
            .map_err(|e| format!("its lab file is relative and its directory cannot be read: {e}"))?
            .join(lab)
    };
    let theirs = lab
        .parent()
        .map(|d| d.join("state"))
        .and_then(|s| s.canonicalize().ok());
    if theirs.is_some() && theirs == state.canonicalize().ok() {
        Ok(())
    } else {
        Err(format!(
            "it runs board {board} of another lab ({})",
            lab.display()
        ))
    }
}
