//! A scripted lab for testing code that links mq-core (feature `testing`).
//!
//! [`TestLab`] makes a lab in a temporary directory: a lock directory with
//! its `VERSION`, one `reboot` program per board, an inventory with a pool.
//! Its [`MachineQueue`] reaches it with `sh` on this machine (the local
//! transport), so [`run_job`](MachineQueue::run_job), locks, pools and
//! cancellation run for real, in-process: no network, no sshd, no root, no
//! QEMU; nothing but `sh` and coreutils (and procmail's `lockfile` when it
//! is installed: without it the lock scripts' own equivalent runs).
//!
//! Boards are scripted from Rust with [`Board`]; what the harness asked of
//! them is in [`TestLab::calls`]; the state left behind is in
//! [`TestLab::locks`] and [`TestLab::leftovers`]. The lab removes itself
//! when dropped.
//!
//! ```
//! use mq_core::testing::{Board, TestLab};
//! use mq_core::job::{Cancel, JobSpec};
//!
//! let lab = TestLab::builder()
//!     .board("board1", Board::prints(["Booting", "All is well in the universe"]))
//!     .build();
//! let spec = JobSpec {
//!     target: "board1".into(),
//!     files: vec![lab.image("sel4test.elf", b"ELF")],
//!     completion: Some("All is well".into()),
//!     timeout: Some(30),
//!     ..JobSpec::default()
//! };
//! let report = lab.queue().run_job(&spec, None, &Cancel::new(), &mut |_| {}).unwrap();
//! assert_eq!(report.exit_code, 0);
//! assert_eq!(lab.calls()[0].completion.as_deref(), Some("All is well"));
//! assert_eq!(lab.calls()[0].files[0], b"ELF");
//! assert!(lab.locks().iter().all(|(_, state)| *state == mq_lock::LockState::Free));
//! ```
//!
//! A board that dies, next to one another client holds (README's example):
//!
//! ```
//! use mq_core::health::RunClass;
//! use mq_core::job::{Cancel, JobSpec};
//! use mq_core::testing::{Board, TestLab};
//! use mq_core::Outcome;
//! use mq_lock::LockState;
//!
//! let lab = TestLab::builder()
//!     .board("b1", Board::exits_with(7))                    // a board that dies
//!     .board("b2", Board::prints(["Booting", "All is well in the universe"]))
//!     .build();
//! let busy = lab.hold("b2", "someone-else");                // as another client would
//! let spec = JobSpec {
//!     target: "b1".into(),
//!     files: vec![lab.image("sel4test.elf", b"ELF")],
//!     completion: Some("All is well".into()),
//!     timeout: Some(30),
//!     ..JobSpec::default()
//! };
//! let report = lab.queue().run_job(&spec, None, &Cancel::new(), &mut |_| {}).unwrap();
//! assert_eq!(report.exit_code, 7);
//! assert_eq!(report.outcome, Some(Outcome::SourceClosed { status: Some(7) }));
//! assert_eq!(report.class, Some(RunClass::Infrastructure));
//! assert!(report.retry_safe);                               // nothing of the test ran
//! drop(busy);
//! assert!(lab.locks().iter().all(|(_, s)| *s == LockState::Free));
//! ```
//!
//! # `TestLab` or `MockTransport`
//! Use a `TestLab` to test what a harness does with jobs and boards: retries,
//! busy boards, cancels, reports. Use [`mq_transport::mock::MockTransport`]
//! to check the exact commands a piece of code sends, one by one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mq_lock::{AcquireOptions, LockState};
use mq_transport::fault::FaultTransport;
use mq_transport::{LocalTransport, Transport};

use crate::config::{Config, Environment, Overrides, TransportKind};
use crate::inventory::SYSTEM_COLUMNS;
use crate::queue::MachineQueue;

/// The program every test board runs (mq's own tests use it too).
pub const BOARD_PROGRAM: &str = include_str!("sh/test_board.sh");

/// What a board does once powered on: the lines it prints, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Board {
    steps: Vec<Step>,
    delay: Option<Duration>,
    files: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Line(String),
    Exit(i32),
}

impl Board {
    /// Prints `lines`, then stays on printing nothing (mq ends the run when
    /// it sees the completion or error text, or at the timeout).
    pub fn prints<I, S>(lines: I) -> Board
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Board {
            steps: lines.into_iter().map(|l| Step::Line(l.into())).collect(),
            delay: None,
            files: 1,
        }
    }

    /// Prints nothing at all after power-on: the run ends at its timeout
    /// (`[[Timeout]]`, exit 4).
    pub fn never_boots() -> Board {
        Board::prints(Vec::<String>::new())
    }

    /// Prints `lines`, then hangs: a test that never prints its completion
    /// text.
    pub fn boots_then_hangs<I, S>(lines: I) -> Board
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Board::prints(lines)
    }

    /// Boots and prints `text` (a job's error text, say), then hangs.
    pub fn prints_error(text: &str) -> Board {
        Board::prints(["Booting", text])
    }

    /// Boots, then its runner dies with `code` (a board that lost power,
    /// a broken serial line): neither the completion nor the error text,
    /// nor a timeout.
    pub fn exits_with(code: i32) -> Board {
        Board::prints(["Booting"]).then_exits(code)
    }

    /// After its lines, the runner ends with `code` instead of hanging.
    pub fn then_exits(mut self, code: i32) -> Board {
        self.steps.push(Step::Exit(code));
        self
    }

    /// Waits `delay` before each line (a slow boot).
    pub fn line_delay(mut self, delay: Duration) -> Board {
        self.delay = Some(delay);
        self
    }

    /// How many image files the board takes (`num_files` in the inventory;
    /// 1 unless said).
    pub fn takes_files(mut self, n: u8) -> Board {
        self.files = n;
        self
    }

    /// The console file the board program reads.
    fn console(&self) -> String {
        let mut out = String::new();
        for step in &self.steps {
            match step {
                Step::Line(line) => {
                    if let Some(d) = self.delay {
                        out.push_str(&format!("@sleep {:.3}\n", d.as_secs_f64()));
                    }
                    out.push_str(line);
                    out.push('\n');
                }
                Step::Exit(code) => out.push_str(&format!("@exit {code}\n")),
            }
        }
        if !self.steps.iter().any(|s| matches!(s, Step::Exit(_))) {
            out.push_str("@hang\n");
        }
        out
    }
}

/// Builds a [`TestLab`]: boards (each its own system and machine) and pools.
#[derive(Debug, Default)]
pub struct TestLabBuilder {
    boards: Vec<(String, Board)>,
    pools: Vec<(String, Vec<String>)>,
}

impl TestLabBuilder {
    /// Adds a board named `name` (system and machine names alike).
    pub fn board(mut self, name: &str, board: Board) -> TestLabBuilder {
        self.boards.push((name.to_string(), board));
        self
    }

    /// Adds a pool of boards added before or after.
    pub fn pool(mut self, name: &str, members: &[&str]) -> TestLabBuilder {
        self.pools.push((
            name.to_string(),
            members.iter().map(|m| m.to_string()).collect(),
        ));
        self
    }

    /// Makes the lab.
    ///
    /// # Panics
    /// When the temporary directory cannot be written, or a board name is
    /// not a valid system name: a broken test set-up.
    pub fn build(self) -> TestLab {
        TestLab::make(self).unwrap_or_else(|e| panic!("cannot make the test lab: {e}"))
    }
}

/// One call of a board's `reboot` program: what the harness asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardCall {
    /// The board (system) it ran on.
    pub board: String,
    /// Its arguments, as PROTOCOL.md's runner gets them.
    pub args: Vec<String>,
    /// `-c`: the completion text (`None` when empty).
    pub completion: Option<String>,
    /// `-e`: the error text (`None` when empty).
    pub error: Option<String>,
    /// `-t`: the timeout in seconds (`None` for -1).
    pub timeout: Option<u64>,
    /// `-a`/`-i`: the console stays open for typing.
    pub keep_alive: bool,
    /// The images' contents, kernel first.
    pub files: Vec<Vec<u8>>,
}

/// A lab in a temporary directory; see the module docs.
pub struct TestLab {
    dir: tempfile::TempDir,
    boards: Vec<String>,
    config: Config,
    transport: Arc<FaultTransport<LocalTransport>>,
}

impl TestLab {
    /// Two boards printing `All is well in the universe` after boot,
    /// `board1` and `board2`, in the pool `boards`.
    pub fn new() -> TestLab {
        let board = Board::prints(["Booting", "All is well in the universe"]);
        TestLab::builder()
            .board("board1", board.clone())
            .board("board2", board)
            .pool("boards", &["board1", "board2"])
            .build()
    }

    /// A lab of your own boards and pools.
    pub fn builder() -> TestLabBuilder {
        TestLabBuilder::default()
    }

    fn make(spec: TestLabBuilder) -> std::io::Result<TestLab> {
        let dir = tempfile::Builder::new().prefix("mq-testlab-").tempdir()?;
        let root = dir.path();
        for sub in ["base", "tftpboot", "inventory", "tmp", "images"] {
            std::fs::create_dir_all(root.join(sub))?;
        }
        std::fs::write(root.join("base/VERSION"), "5\n")?;
        let mut systems = format!("{}\n", SYSTEM_COLUMNS.join("\t"));
        for (name, board) in &spec.boards {
            if mq_lock::check_system(name).is_err() {
                return Err(std::io::Error::other(format!(
                    "'{name}' is not a system name"
                )));
            }
            let board_dir = root.join("tftpboot").join(name);
            std::fs::create_dir_all(board_dir.join("calls"))?;
            write_executable(&board_dir.join("reboot"), BOARD_PROGRAM)?;
            std::fs::write(board_dir.join("console"), board.console())?;
            std::fs::write(board_dir.join("ere"), "")?;
            let n = board.files;
            systems.push_str(&format!(
                "{name}\t{name}\tarm\ttest\tarmv8-a\ttest\ttest\t1\t1GB\t?\t{n}\t{n}\tno\tno\n"
            ));
        }
        std::fs::write(root.join("inventory/systems.tsv"), systems)?;
        let pools: String = spec
            .pools
            .iter()
            .map(|(name, members)| format!("{name}\t{}\n", members.join("\t")))
            .collect();
        std::fs::write(root.join("inventory/pools.tsv"), pools)?;
        let config = lab_config(root)?;
        let local = LocalTransport::new().env("TMPDIR", &root.join("tmp").display().to_string());
        Ok(TestLab {
            boards: spec.boards.into_iter().map(|(name, _)| name).collect(),
            config,
            transport: Arc::new(FaultTransport::new(local)),
            dir,
        })
    }

    /// A queue over the lab, as a harness would open one over a real lab
    /// host. Every queue shares the lab's transport (see [`faults`](Self::faults)).
    ///
    /// # Panics
    /// When the lab's inventory cannot be read (it was written at build).
    pub fn queue(&self) -> MachineQueue {
        let inventory = self
            .config
            .load_inventory()
            .expect("the test lab's inventory reads");
        let transport: Arc<dyn Transport> = self.transport.clone();
        MachineQueue::with_transport(self.config.clone(), inventory, transport)
    }

    /// The lab's configuration (host `testlab`, local transport).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The transport under every queue: cut it, fail its Nth operation or
    /// slow it down to test a harness's handling of a lab host that goes
    /// away or a slow upload.
    pub fn faults(&self) -> &FaultTransport<LocalTransport> {
        &self.transport
    }

    /// The lab's directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes an image file into the lab's `images/` and returns its path.
    ///
    /// # Panics
    /// When the file cannot be written.
    pub fn image(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.dir.path().join("images").join(name);
        std::fs::write(&path, contents).expect("an image in the test lab");
        path
    }

    /// Makes `board` busy: its lock is taken with `key`, by the protocol,
    /// as another client would (the owner is you: a test lab has no second
    /// Unix user, so the holder is told apart by its key). Released when the
    /// returned [`Hold`] is dropped.
    ///
    /// # Panics
    /// When the lock cannot be taken (it is already held).
    pub fn hold(&self, board: &str, key: &str) -> Hold {
        let queue = self.queue();
        let options = AcquireOptions {
            key: key.to_string(),
            retries: 0,
            ..AcquireOptions::default()
        };
        queue
            .acquire(board, &options, &mut |_| {})
            .unwrap_or_else(|e| panic!("cannot hold {board}: {e}"));
        Hold {
            queue,
            board: board.to_string(),
            key: key.to_string(),
        }
    }

    /// Every board's lock, in board order.
    ///
    /// # Panics
    /// When the lock directory cannot be read.
    pub fn locks(&self) -> Vec<(String, LockState)> {
        let names: Vec<&str> = self.boards.iter().map(String::as_str).collect();
        self.queue()
            .locks()
            .info_many(&names)
            .expect("the test lab's locks read")
    }

    /// What jobs left on the "host": temporary directories not removed.
    pub fn leftovers(&self) -> Vec<PathBuf> {
        let mut left: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join("tmp"))
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        left.sort();
        left
    }

    /// Every call of every board's `reboot`, oldest first.
    pub fn calls(&self) -> Vec<BoardCall> {
        let mut calls = Vec::new();
        for board in &self.boards {
            let dir = self.dir.path().join("tftpboot").join(board).join("calls");
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(call) = read_call(board, &entry.path()) {
                    calls.push((name, call));
                }
            }
        }
        // The names start with the time in nanoseconds.
        calls.sort_by(|a, b| a.0.cmp(&b.0));
        calls.into_iter().map(|(_, call)| call).collect()
    }

    /// Whether `board` was powered off (`reboot --shutdown`) since the lab
    /// was made.
    pub fn powered_off(&self, board: &str) -> bool {
        self.dir
            .path()
            .join("tftpboot")
            .join(board)
            .join("powered-off")
            .exists()
    }
}

impl Default for TestLab {
    fn default() -> TestLab {
        TestLab::new()
    }
}

/// A board held by "another client" ([`TestLab::hold`]); dropping it
/// releases the lock.
pub struct Hold {
    queue: MachineQueue,
    board: String,
    key: String,
}

impl Hold {
    /// Releases the lock now.
    pub fn release(self) {}
}

impl Drop for Hold {
    fn drop(&mut self) {
        let _ = self.queue.release(&self.board, &self.key, false);
    }
}

fn lab_config(root: &Path) -> std::io::Result<Config> {
    let overrides = Overrides {
        host: Some("testlab".into()),
        base: Some(root.join("base").display().to_string()),
        inventory: Some(root.join("inventory")),
        transport: Some(TransportKind::Local),
        tftpboot: Some(root.join("tftpboot").display().to_string()),
        ..Overrides::default()
    };
    // Nothing from this process's MQ_* variables or ~/.mq.
    Config::resolve(
        &overrides,
        &Environment::new(Vec::<(String, String)>::new(), None),
    )
    .map_err(std::io::Error::other)
}

fn write_executable(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

fn read_call(board: &str, dir: &Path) -> Option<BoardCall> {
    let raw = std::fs::read(dir.join("args")).ok()?;
    // Each argument ends with a NUL; an empty one is an argument too.
    let raw = raw.strip_suffix(&[0]).unwrap_or(&raw);
    let args: Vec<String> = raw
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let files = ["kernel", "rootserver", "dtb", "bitstream"]
        .iter()
        .filter_map(|name| std::fs::read(dir.join(name)).ok())
        .collect();
    Some(BoardCall {
        board: board.to_string(),
        completion: value("-c").filter(|t| !t.is_empty()),
        error: value("-e").filter(|t| !t.is_empty()),
        timeout: value("-t").and_then(|t| t.parse().ok()),
        keep_alive: args.iter().any(|a| a == "-a" || a == "-i"),
        files,
        args,
    })
}
