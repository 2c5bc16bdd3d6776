//! Every flag and command of `mq`, defined in one place.
//!
//! mq.sh's own spellings (`mq systems help`, single-dash words) are rewritten
//! into these by [`crate::legacy`] before clap sees the arguments.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

/// The value name that marks an argument as "a system or pool name"; shell
/// completions offer the inventory's names for every argument carrying it.
pub const SYSTEM_VALUE_NAME: &str = "SYSTEM";

#[derive(Debug, Parser)]
#[command(
    name = "mq",
    version = concat!(env!("CARGO_PKG_VERSION"), " (machine queue protocol 5)"),
    about = "Machine Queue: take a shared test board, boot an image on it, watch its console, hand it back",
    long_about = None,
    arg_required_else_help = true,
    disable_help_subcommand = true,
    after_help = "Use 'mq COMMAND help' or 'mq COMMAND --help' to get detailed help for each command.\n\
                  Configuration: --host/--base/--inventory, else MQ_HOST/MQ_BASE/MQ_INVENTORY, else ~/.mq, else defaults ('mq config' shows them)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Lab host to reach over SSH (overrides MQ_HOST and ~/.mq's HOST)
    #[arg(long, global = true, value_name = "HOST")]
    pub host: Option<String>,

    /// Lock directory on the lab host (overrides MQ_BASE and ~/.mq's BASE)
    #[arg(long, global = true, value_name = "DIR")]
    pub base: Option<String>,

    /// Directory holding systems.tsv and pools.tsv (overrides MQ_INVENTORY; default: the built-in fleet)
    #[arg(long, global = true, value_name = "DIR")]
    pub inventory: Option<PathBuf>,

    /// How to reach the host: ssh (libssh2, default), openssh (the ssh client), local (overrides MQ_TRANSPORT)
    #[arg(long, global = true, value_name = "KIND", value_parser = ["ssh", "openssh", "local"])]
    pub transport: Option<String>,

    /// SSH client configuration file to read instead of ~/.ssh/config (as ssh -F; overrides MQ_SSH_CONFIG)
    #[arg(long, global = true, value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,

    /// Directory of the boards' reboot programs on the host (default /tftpboot; overrides MQ_TFTPBOOT)
    #[arg(long, global = true, value_name = "DIR")]
    pub tftpboot: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a new job on a machine: take the lock, boot the image, watch the console, release
    #[command(after_help = RUN_HELP)]
    Run(RunArgs),

    /// The lab side: run a board (PROTOCOL.md's reboot), for lab hosts
    #[command(subcommand)]
    Board(BoardCommand),

    /// Make a self-contained lab on this machine (QEMU boards)
    #[command(subcommand)]
    Lab(LabCommand),

    /// Directly interact with the machine locks (mq.sh's sem)
    #[command(after_help = SEM_HELP)]
    Sem(SemArgs),

    /// Take a board's lock and keep it (sem -wait); a pool picks a free member and prints it
    Lock(LockArgs),

    /// Release a board's lock (sem -signal; a refusal exits 3 instead of 0)
    Unlock(UnlockArgs),

    /// Query information on available machines (a table of systems, then of pools)
    #[command(after_help = "'mq systems simple' prints one system name a line, as mq.sh does.")]
    Systems(SystemsArgs),

    /// Print every system as tab-separated values with a header (as mq.sh)
    #[command(name = "system-tsv")]
    SystemTsv,

    /// Print every pool and its members as tab-separated values (as mq.sh)
    #[command(name = "pool-tsv")]
    PoolTsv,

    /// List the pools and their members
    Pools(JsonArgs),

    /// Show which systems can PXE-boot Linux (run -L) and take a custom DTB (run -b)
    Features(FeaturesArgs),

    /// Board health: which systems get jobs, and why not (see also: set, log, check)
    Health(HealthArgs),

    /// Who waits for which board, in the order they will be served
    Queue(FeaturesArgs),

    /// The whole lab: every board's health, holder, key, hold time, line and last run
    #[command(after_help = STATUS_HELP)]
    Status(StatusArgs),

    /// A read-only web dashboard of the lab, live (also /api/status and /metrics)
    #[command(after_help = SERVE_HELP)]
    Serve(ServeArgs),

    /// Show the effective configuration and where each value came from
    Config(ConfigArgs),

    /// Print a shell completion script (commands, flags, system and pool names)
    #[command(
        after_help = "bash: mq completions bash > ~/.local/share/bash-completion/completions/mq\n\
                      zsh:  mq completions zsh > ~/.zfunc/_mq  (with ~/.zfunc in fpath)\n\
                      fish: mq completions fish > ~/.config/fish/completions/mq.fish\n\
                      System and pool names are those of the inventory configured when the script is made."
    )]
    Completions(CompletionsArgs),

    /// Print this usage
    Help,
}

#[derive(Debug, Args)]
pub struct SystemsArgs {
    /// 'simple': print one system name a line instead of the tables
    #[arg(value_parser = ["simple"])]
    pub format: Option<String>,

    /// Print an array of objects with every inventory column
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct FeaturesArgs {
    /// Systems or pools to show (default: all systems)
    #[arg(value_name = SYSTEM_VALUE_NAME)]
    pub names: Vec<String>,

    /// Print an array of objects with every inventory column
    #[arg(long)]
    pub json: bool,
}

const STATUS_HELP: &str = "One round trip to the lab host for the whole lab, however many boards.\n\
A cron job that reminds holders of long holds:\n  \
mq status --long 4h --json | jq -r '.boards[] | select(.long_hold) | \"\\(.holder.owner) \\(.system)\"'";

const SERVE_HELP: &str =
    "Pages: / (the lab), /board/SYSTEM (a board's history), /api/status (JSON, version 1),\n\
/metrics (Prometheus text format), /events (server-sent events). Nothing on it changes the lab.\n\
It keeps one SSH connection and reads the lab once a refresh, however many browsers watch.";

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Systems or pools to show (default: every board)
    #[arg(value_name = SYSTEM_VALUE_NAME)]
    pub names: Vec<String>,

    /// A hold this long or longer is flagged LONG (2h, 90m, 45s or seconds)
    #[arg(long, value_name = "TIME", default_value = "2h")]
    pub long: String,

    /// Redraw every 2 s (in place on a terminal) until interrupted
    #[arg(long)]
    pub watch: bool,

    /// Print JSON (the dashboard's /api/status) instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on (anything but loopback shows the lab to the network)
    #[arg(long, value_name = "ADDRESS:PORT", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// Seconds between reads of the lab
    #[arg(long, value_name = "SECONDS", default_value_t = 2)]
    pub refresh: u64,

    /// A hold this long or longer is flagged long (2h, 90m, 45s or seconds)
    #[arg(long, value_name = "TIME", default_value = "2h")]
    pub long: String,
}

#[derive(Debug, Args)]
pub struct JsonArgs {
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
    /// Show how mq reaches the lab host over SSH (as `ssh -G` resolves it):
    /// host, user, jump hosts, identities, known_hosts, algorithms, and every
    /// directive skipped or refused with its file and line
    #[arg(long)]
    pub ssh: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    pub shell: Shell,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

const SEM_HELP: &str = "\
mq.sh's spellings work as they always have:
  mq sem -info SYSTEM      mq sem -mr-info SYSTEM    mq sem dumpall
  mq sem -wait SYSTEM      mq sem -signal SYSTEM     mq sem -cancel SYSTEM
and so do words without the dash: mq sem info SYSTEM, mq sem wait SYSTEM, ...
A pool name picks a member (a free one if any) and prints its name first.

mq sem cleanup -k KEY  (new) cancels your waits with KEY and releases every lock
you hold with KEY, on every system: what a cancelled CI job runs.

Exit status: 0 done (mq.sh also exits 0 when -signal refuses: not yours / wrong
key); 1 bad usage, unknown system, host unreachable or wrong version;
2 the lock was not acquired; 130 interrupted.";

/// Options shared by the lock commands (mq.sh's sem options).
#[derive(Debug, Args)]
pub struct LockOptions {
    /// The lock key (CI uses repo-workflow-runid-job-index); 0 means no key
    #[arg(
        short = 'k',
        long = "key",
        value_name = "KEY",
        default_value = "0",
        allow_hyphen_values = true
    )]
    pub key: String,

    /// Seconds between attempts to take the lock (default 1; mq.sh's is 8)
    #[arg(short = 'w', value_name = "SECONDS", allow_hyphen_values = true)]
    pub retry: Option<String>,

    /// Retries when taking the lock; -1 for ever (default)
    #[arg(short = 't', value_name = "RETRIES", allow_hyphen_values = true)]
    pub retries: Option<String>,

    /// Reclaim timeout written into the lock: after this many seconds a waiter may take it over
    #[arg(short = 'T', value_name = "SECONDS", allow_hyphen_values = true)]
    pub timeout: Option<String>,

    /// Place in the line of mq waiters: higher goes first (default 0, -1000 to 1000)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub priority: Option<String>,

    /// Give up after waiting this many seconds (exit 7), leaving the line
    #[arg(long = "queue-timeout", value_name = "SECONDS")]
    pub queue_timeout: Option<String>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("action").required(true)
    .args(["info", "mr_info", "signal", "wait", "cancel", "dumpall", "cleanup"])))]
pub struct SemArgs {
    /// Show the lock of SYSTEM
    #[arg(long, value_name = SYSTEM_VALUE_NAME)]
    pub info: Option<String>,

    /// Show the lock of SYSTEM in one machine-readable line
    #[arg(long = "mr-info", value_name = SYSTEM_VALUE_NAME)]
    pub mr_info: Option<String>,

    /// Release the lock of SYSTEM
    #[arg(long, value_name = SYSTEM_VALUE_NAME)]
    pub signal: Option<String>,

    /// Take the lock of SYSTEM, waiting for it
    #[arg(long, value_name = SYSTEM_VALUE_NAME)]
    pub wait: Option<String>,

    /// Cancel your waits for SYSTEM's lock with the key given by -k
    #[arg(long, value_name = SYSTEM_VALUE_NAME)]
    pub cancel: Option<String>,

    /// Show every locked system, one machine-readable line each
    #[arg(long)]
    pub dumpall: bool,

    /// Cancel your waits with -k KEY and release every lock you hold with it
    #[arg(long, requires = "key")]
    pub cleanup: bool,

    /// Release even a lock you do not hold (-signal)
    #[arg(short = 'f', long = "force")]
    pub force: bool,

    #[command(flatten)]
    pub options: LockOptions,

    /// Print JSON (info, mr-info, dumpall)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// The system or pool
    #[arg(value_name = SYSTEM_VALUE_NAME)]
    pub system: String,

    #[command(flatten)]
    pub options: LockOptions,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// The system
    #[arg(value_name = SYSTEM_VALUE_NAME)]
    pub system: String,

    /// The lock key the lock was taken with
    #[arg(
        short = 'k',
        long = "key",
        value_name = "KEY",
        default_value = "0",
        allow_hyphen_values = true
    )]
    pub key: String,

    /// Release even a lock you do not hold
    #[arg(short = 'f', long = "force")]
    pub force: bool,
}

const RUN_HELP: &str = "\
As mq.sh: mq run -s SYSTEM -c 'All is well in the universe' -f kernel.elf -f sel4test-driver
Two-file systems take the kernel first, then the root server (-u on the host).
A pool name picks a free member (\"Selecting system 'X' from pool 'P'\").

Exit status: the board runner's (0 completed; runners made by mq use 3 error
text, 4 timeout, 5 console closed); 1 bad usage or a failed check (nothing
was changed); 2 the lock was not acquired; 6 the connection failed during the
run (the lock is released on reconnect, or mq says what was left); 130
interrupted (^C, SIGTERM, SIGHUP: the board is stopped and everything cleaned up).

With -a, after the completion text your terminal is the board's console
(raw mode); Ctrl-] detaches.";

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Reserve the board until Enter or end of input, then power it off
    #[arg(short = 'r')]
    pub reserve: bool,

    /// Run under a lock you already hold (checked, with its key if -k), and keep it
    #[arg(short = 'n')]
    pub no_lock: bool,

    /// After the completion text, keep the console connected (interactive)
    #[arg(short = 'a')]
    pub keep_alive: bool,

    /// Completion text (a regular expression): the run succeeds when it appears
    #[arg(short = 'c', value_name = "TEXT", allow_hyphen_values = true)]
    pub completion: Option<String>,

    /// Error text (a regular expression): the run fails when it appears
    #[arg(short = 'e', value_name = "TEXT", allow_hyphen_values = true)]
    pub error: Option<String>,

    /// Seconds to wait for the completion text (-1: no timeout, the default)
    #[arg(short = 'd', value_name = "SECONDS", allow_hyphen_values = true)]
    pub timeout: Option<String>,

    /// The lock key (CI uses repo-workflow-runid-job-index); 0 means no key
    #[arg(
        short = 'k',
        value_name = "KEY",
        default_value = "0",
        allow_hyphen_values = true
    )]
    pub key: String,

    /// Write the console log to FILE
    #[arg(short = 'l', value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// Boot Linux by PXE (systems whose pxe_linux is yes)
    #[arg(short = 'L')]
    pub linux: bool,

    /// A device tree (with -L, on systems whose dtb is yes)
    #[arg(short = 'b', value_name = "FILE")]
    pub dtb: Option<PathBuf>,

    /// An FPGA bitstream to load first
    #[arg(long = "bitstream", value_name = "FILE")]
    pub bitstream: Option<PathBuf>,

    /// The system or pool
    #[arg(short = 's', value_name = SYSTEM_VALUE_NAME)]
    pub system: Option<String>,

    /// An image file (repeat: kernel first)
    #[arg(short = 'f', value_name = "FILE", allow_hyphen_values = true)]
    pub files: Vec<PathBuf>,

    /// Seconds between attempts to take the lock (default 1; mq.sh's is 8)
    #[arg(short = 'w', value_name = "SECONDS", allow_hyphen_values = true)]
    pub retry: Option<String>,

    /// Retries when taking the lock; -1 for ever (default)
    #[arg(short = 't', value_name = "RETRIES", allow_hyphen_values = true)]
    pub retries: Option<String>,

    /// Write a JSON report of the run (times, outcome, markers, exit code) to FILE
    #[arg(long = "json-report", value_name = "FILE")]
    pub json_report: Option<PathBuf>,

    /// Run on a system named with -s whatever its health (bad, maintenance...)
    #[arg(long = "any-health")]
    pub any_health: bool,

    /// Place in the line of mq waiters: higher goes first (default 0, -1000 to 1000)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub priority: Option<String>,

    /// Give up after waiting this many seconds (exit 7), leaving the line
    #[arg(long = "queue-timeout", value_name = "SECONDS")]
    pub queue_timeout: Option<String>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct HealthArgs {
    #[command(subcommand)]
    pub action: Option<HealthCommand>,

    /// Systems or pools to show (default: every system)
    #[arg(value_name = SYSTEM_VALUE_NAME)]
    pub names: Vec<String>,

    /// Print an array of objects
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum HealthCommand {
    /// Set a system's state (good, unknown, bad, maintenance, retired)
    Set {
        /// The system
        #[arg(value_name = SYSTEM_VALUE_NAME)]
        system: String,
        /// The new state
        #[arg(value_parser = ["good", "unknown", "bad", "maintenance", "retired"])]
        state: String,
        /// Why (shown to everyone, kept in the log)
        #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
        reason: String,
    },
    /// The log of changes of state, oldest first
    Log {
        /// Only this system's changes
        #[arg(value_name = SYSTEM_VALUE_NAME)]
        system: Option<String>,
        /// Print an array of objects
        #[arg(long)]
        json: bool,
    },
    /// Run systems' health checks (the inventory's health.tsv) and set good or bad
    Check {
        /// Systems or pools to check
        #[arg(value_name = SYSTEM_VALUE_NAME)]
        names: Vec<String>,
        /// Every system that has a check
        #[arg(long, conflicts_with = "names")]
        all: bool,
        /// Only systems in the unknown state (what a lab runs from cron)
        #[arg(long, conflicts_with = "names")]
        unknown: bool,
        /// With --all: check boards in maintenance or retired too (an admin
        /// set those on purpose; they are skipped otherwise)
        #[arg(long, requires = "all")]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum BoardCommand {
    /// Boot a board and watch its console: what /tftpboot/MACHINE/reboot runs
    #[command(after_help = "\
Exit status: 0 completed, 3 error text, 4 timeout ([[Timeout]] or [[Boot timeout]]
is printed), 5 the console ended first, 6 the board could not be run, 130
interrupted (SIGINT, SIGTERM, SIGHUP). The board is powered off (QEMU killed)
however the run ends.

The lab file (one [board NAME] section per board; kind = qemu | command) is
described in mq-lab's documentation and in the README.")]
    Reboot(RebootArgs),
}

#[derive(Debug, Args)]
pub struct RebootArgs {
    /// The lab file
    #[arg(long, value_name = "FILE")]
    pub lab: PathBuf,

    /// The board (a [board NAME] of the lab file)
    #[arg(long, value_name = "NAME")]
    pub board: String,

    /// Boot Linux: the kernel and initrd with the board's command line
    #[arg(short = 'L')]
    pub linux: bool,

    /// A device tree
    #[arg(short = 'b', value_name = "FILE")]
    pub dtb: Option<PathBuf>,

    /// An FPGA bitstream
    #[arg(long = "bitstream", value_name = "FILE")]
    pub bitstream: Option<PathBuf>,

    /// Write the console log to FILE as it arrives
    #[arg(short = 'l', value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// The completion text (a regular expression; also matched literally)
    #[arg(short = 'c', value_name = "TEXT", allow_hyphen_values = true)]
    pub completion: Option<String>,

    /// Seconds to wait for the completion text (-1: no timeout)
    #[arg(
        short = 't',
        value_name = "SECONDS",
        allow_hyphen_values = true,
        default_value = "-1"
    )]
    pub timeout: String,

    /// The error text (a regular expression; also matched literally)
    #[arg(short = 'e', value_name = "TEXT", allow_hyphen_values = true)]
    pub error: Option<String>,

    /// The kernel image
    #[arg(short = 'k', value_name = "FILE")]
    pub kernel: Option<PathBuf>,

    /// The root server (second image; an initrd for QEMU)
    #[arg(short = 'u', value_name = "FILE")]
    pub rootserver: Option<PathBuf>,

    /// Keep the console connected after the completion text
    #[arg(short = 'a')]
    pub keep_alive: bool,

    /// Interactive console (with -a)
    #[arg(short = 'i')]
    pub interactive: bool,

    /// Power the board off and exit
    #[arg(long)]
    pub shutdown: bool,
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Write a complete lab into DIR: lock directory, QEMU boards, reboot wrappers, inventory, images
    Init(LabInitArgs),
}

#[derive(Debug, Args)]
pub struct LabInitArgs {
    /// Where to make the lab (created if missing)
    pub dir: PathBuf,

    /// How many QEMU x86 boards
    #[arg(long, default_value_t = 2)]
    pub boards: usize,
}

/// The lock options, checked: mq.sh's messages where it has them.
pub(crate) struct Checked {
    pub(crate) key: String,
    pub(crate) retry_seconds: u32,
    pub(crate) retries: i64,
    pub(crate) timeout: u64,
    pub(crate) priority: i32,
    pub(crate) queue_timeout: Option<u64>,
}

/// The longest span any option takes, in seconds (ten years): beyond it a
/// number is a typo, and the host's shell arithmetic and mq's clocks stay
/// far from overflowing.
pub(crate) const MAX_SECONDS: u64 = 10 * 365 * 24 * 3600;
/// The most retries `-t` takes (procmail's lockfile counts them in an int).
pub(crate) const MAX_RETRIES: i64 = i32::MAX as i64 - 1;

/// A whole number within `range`; `None` for anything else. Each flag says
/// its own message (mq.sh's where it has one), so clap does not parse these.
pub(crate) fn number<T>(text: &str, range: std::ops::RangeInclusive<T>) -> Option<T>
where
    T: std::str::FromStr + PartialOrd,
{
    text.parse().ok().filter(|n| range.contains(n))
}

impl LockOptions {
    /// The options checked, with mq.sh's messages where it has them.
    pub(crate) fn check(&self) -> Result<Checked, crate::Failure> {
        let options = self;
        // mq.sh's default is 0 (never reclaimable), so 0 is accepted too.
        let timeout = match &options.timeout {
            None => 0,
            // mq.sh's own line, which scripts may know.
            Some(text) => number(text, 0..=MAX_SECONDS).ok_or_else(|| {
                crate::Failure::stdout(
                    "-T <timeout> requires a positive integer",
                    mq_core::exit::USAGE,
                )
            })?,
        };
        let retry_seconds = match &options.retry {
            None => 1,
            Some(text) => number(text, 1..=MAX_SECONDS as u32).ok_or_else(|| {
                crate::Failure::new(
                    format!("mq: -w {text}: the retry period is a whole number of seconds, 1 to {MAX_SECONDS}"),
                    mq_core::exit::USAGE,
                )
            })?,
        };
        let retries = match &options.retries {
            None => -1,
            Some(text) => number(text, -1..=MAX_RETRIES).ok_or_else(|| {
                crate::Failure::new(
                    format!(
                        "mq: -t {text}: retries are a whole number up to {MAX_RETRIES}, or -1 for ever"
                    ),
                    mq_core::exit::USAGE,
                )
            })?,
        };
        let priority = match &options.priority {
            None => 0,
            Some(text) => number(text, -1000..=1000).ok_or_else(|| {
                crate::Failure::new(
                    format!("mq: --priority {text}: a whole number from -1000 to 1000"),
                    mq_core::exit::USAGE,
                )
            })?,
        };
        let queue_timeout = match &options.queue_timeout {
            None => None,
            Some(text) => Some(number(text, 1..=MAX_SECONDS).ok_or_else(|| {
                crate::Failure::new(
                    format!(
                        "mq: --queue-timeout {text}: a whole number of seconds, 1 to {MAX_SECONDS}"
                    ),
                    mq_core::exit::USAGE,
                )
            })?),
        };
        mq_core::check_key(&options.key)
            .map_err(|e| crate::Failure::new(format!("mq: -k: {e}"), mq_core::exit::USAGE))?;
        Ok(Checked {
            priority,
            queue_timeout,
            key: options.key.clone(),
            retry_seconds,
            retries,
            timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_messages() {
        let opts = |t: Option<&str>, w: Option<&str>, r: Option<&str>, k: &str| LockOptions {
            key: k.into(),
            retry: w.map(Into::into),
            retries: r.map(Into::into),
            timeout: t.map(Into::into),
            priority: None,
            queue_timeout: None,
        };
        for bad in ["-5", "x", "1.5", "315360001"] {
            let f = opts(Some(bad), None, None, "0").check().err().unwrap();
            assert_eq!(
                f.stdout.as_deref(),
                Some("-T <timeout> requires a positive integer")
            );
            assert_eq!(f.code, 1);
        }
        assert!(opts(None, Some("0"), None, "0").check().is_err());
        assert!(opts(None, None, Some("-2"), "0").check().is_err());
        assert!(opts(None, None, None, "a\nb").check().is_err());
        let ok = opts(Some("30"), Some("2"), Some("-1"), "k")
            .check()
            .ok()
            .unwrap();
        assert_eq!((ok.timeout, ok.retry_seconds, ok.retries), (30, 2, -1));
        // 0 is mq.sh's own default: never reclaimed.
        assert_eq!(
            opts(Some("0"), None, None, "0")
                .check()
                .ok()
                .unwrap()
                .timeout,
            0
        );
    }
}
