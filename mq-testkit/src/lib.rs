//! Test support shared by every mq crate's tests: a real OpenSSH server on a
//! free port of 127.0.0.1 with keys made in a temporary directory, client files
//! that reach it (an ssh_config, a known_hosts, a user key), and throwaway Unix
//! users.
//!
//! Servers are started by the tests themselves, stopped by process id when the
//! [`SshServer`] is dropped, and never touch the machine's own sshd or port 22.
//! When `sshd` is not installed (or a test needs root and is not root), the
//! constructors return `None` and the test says it was skipped.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

mod browser;
mod delay;
mod tmux;
pub use browser::Browser;
pub use delay::DelayProxy;
pub use tmux::Tmux;

/// Where Debian's openssh-server puts the daemon.
pub const SSHD: &str = "/usr/sbin/sshd";

/// Prints why a test is skipped and returns `None`, for `let Some(x) = ... else { return }`.
///
/// Under CI (`CI` set, as `.ci/run` runs) a skip is a failure: CI installs
/// everything the tests need, so a missing prerequisite is a broken CI.
pub fn skip<T>(why: &str) -> Option<T> {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("SKIPPED under CI, which must run every test: {why}");
    }
    eprintln!("SKIPPED: {why}");
    None
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The name of the user running the tests.
pub fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs a command, panicking with its output if it fails.
pub fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Makes an unencrypted ed25519 key pair at `path` (and `path.pub`).
pub fn keygen(path: &Path) -> String {
    keygen_with(path, "ed25519", "")
}

/// Makes a key pair of `kind` with `passphrase` at `path`; returns the public key line.
pub fn keygen_with(path: &Path, kind: &str, passphrase: &str) -> String {
    let path_s = path.to_str().expect("utf-8 temp path");
    sh(
        "ssh-keygen",
        &[
            "-q", "-t", kind, "-N", passphrase, "-C", "mq-test", "-f", path_s,
        ],
    );
    fs::read_to_string(format!("{path_s}.pub"))
        .expect("public key written")
        .trim()
        .to_string()
}

/// A free TCP port on 127.0.0.1 (bound, then released for the server to take).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// Options of a test server.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Extra `sshd_config` lines.
    pub extra_config: Vec<String>,
}

/// A running OpenSSH server on 127.0.0.1, with client files that reach it.
pub struct SshServer {
    /// The port it listens on.
    pub port: u16,
    /// Its temporary directory (keys, config, log).
    pub dir: TempDir,
    /// The host key's public line (`ssh-ed25519 AAAA...`).
    pub host_key: String,
    /// A private key authorized for every user the server lets in.
    pub user_key: PathBuf,
    /// A known_hosts file that holds this server's key.
    pub known_hosts: PathBuf,
    /// The user the client logs in as.
    pub user: String,
    child: Child,
}

impl SshServer {
    /// Starts a server, or returns `None` (with a message) if sshd is missing.
    pub fn start() -> Option<SshServer> {
        SshServer::start_with(ServerOptions::default())
    }

    /// Starts a server with extra configuration.
    pub fn start_with(options: ServerOptions) -> Option<SshServer> {
        if !Path::new(SSHD).exists() {
            return skip("no /usr/sbin/sshd (install openssh-server)");
        }
        if is_root() {
            // The privilege-separation directory sshd insists on; the package
            // creates it at boot, a fresh container may not have it.
            let _ = fs::create_dir_all("/run/sshd");
        }
        let dir = tempfile::Builder::new()
            .prefix("mq-sshd-")
            .tempdir()
            .expect("temp dir");
        let host_key_path = dir.path().join("host_ed25519");
        let host_key = keygen(&host_key_path);
        let user_key = dir.path().join("id_ed25519");
        let user_pub = keygen(&user_key);
        let auth_dir = dir.path().join("authorized_keys");
        fs::create_dir(&auth_dir).expect("authorized_keys dir");
        let user = current_user();
        fs::write(auth_dir.join(&user), format!("{user_pub}\n")).expect("authorized_keys");
        set_mode(dir.path(), 0o755);
        set_mode(&auth_dir, 0o755);

        for _attempt in 0..5 {
            let port = free_port();
            let config = dir.path().join("sshd_config");
            // Extra lines go first: sshd keeps the first value it reads.
            let mut text: String = options
                .extra_config
                .iter()
                .map(|line| format!("{line}\n"))
                .collect();
            text += &format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\n\
                 AuthorizedKeysFile {}/%u\nStrictModes no\nUsePAM no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\nPermitRootLogin prohibit-password\n\
                 AllowTcpForwarding yes\nLogLevel VERBOSE\nMaxSessions 200\n\
                 MaxStartups 200\nPrintMotd no\nSubsystem sftp internal-sftp\n",
                host_key_path.display(),
                dir.path().join("sshd.pid").display(),
                auth_dir.display(),
            );
            fs::write(&config, text).expect("sshd_config");
            let log = dir.path().join("sshd.log");
            let mut child = Command::new(SSHD)
                .arg("-D")
                .arg("-f")
                .arg(&config)
                .arg("-E")
                .arg(&log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start sshd");
            if wait_listening(port, &mut child) {
                let known_hosts = dir.path().join("known_hosts");
                fs::write(&known_hosts, format!("[127.0.0.1]:{port} {host_key}\n"))
                    .expect("known_hosts");
                return Some(SshServer {
                    port,
                    dir,
                    host_key,
                    user_key,
                    known_hosts,
                    user,
                    child,
                });
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("sshd did not start; see its log");
    }

    /// The process id of the listening sshd.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's log so far (LogLevel VERBOSE: one "Accepted" line a login).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// How many connections the server has accepted so far.
    pub fn connections(&self) -> usize {
        self.log().matches("Connection from 127.0.0.1").count()
    }

    /// Authorizes the test key for `user` as well.
    pub fn authorize(&self, user: &str, public_key: &str) {
        let path = self.dir.path().join("authorized_keys").join(user);
        let mut text = fs::read_to_string(&path).unwrap_or_default();
        text.push_str(public_key);
        text.push('\n');
        fs::write(path, text).expect("authorized_keys");
    }

    /// An ssh_config block naming this server `alias`, for the test user,
    /// with the test key and known_hosts, strict host key checking and no agent.
    pub fn config_block(&self, alias: &str) -> String {
        self.config_block_for(alias, &self.user)
    }

    /// [`SshServer::config_block`] for another user (see [`SshServer::authorize_user`]).
    pub fn config_block_for(&self, alias: &str, user: &str) -> String {
        self.config_block_via(alias, user, self.port)
    }

    /// [`SshServer::config_block_for`] reaching the server through `port`
    /// (a [`DelayProxy`] in front of it); the server's key is trusted there too.
    pub fn config_block_via(&self, alias: &str, user: &str, port: u16) -> String {
        if port != self.port {
            let mut known = fs::read_to_string(&self.known_hosts).unwrap_or_default();
            let line = format!("[127.0.0.1]:{port} {}\n", self.host_key);
            if !known.contains(&line) {
                known.push_str(&line);
                fs::write(&self.known_hosts, known).expect("known_hosts");
            }
        }
        format!(
            "Host {alias}\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  IdentityFile {}\n  \
             IdentitiesOnly yes\n  IdentityAgent none\n  UserKnownHostsFile {}\n  \
             GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  BatchMode yes\n",
            port,
            user,
            self.user_key.display(),
            self.known_hosts.display()
        )
    }

    /// The host goes away at once: the server and every session it forked
    /// are killed (SIGKILL, by process id), as a machine that dies.
    pub fn kill_now(&self) {
        let pid = self.pid();
        for session in descendants_of(pid) {
            signal(session, nix::sys::signal::Signal::SIGKILL);
        }
        signal(pid, nix::sys::signal::Signal::SIGKILL);
    }

    /// Lets `user` log in with the test key.
    pub fn authorize_user(&self, user: &str) {
        let public = fs::read_to_string(self.user_key.with_extension("pub")).expect("test key");
        self.authorize(user, public.trim());
    }

    /// Writes [`SshServer::config_block`] for `alias` to a file in the server's
    /// directory and returns its path.
    pub fn write_config(&self, alias: &str) -> PathBuf {
        let path = self.dir.path().join(format!("ssh_config.{alias}"));
        fs::write(&path, self.config_block(alias)).expect("ssh_config");
        path
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        // Stopped by its own process id; connections it forked end as their
        // clients close.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_listening(port: u16, child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = stderr.read_to_string(&mut err);
            }
            eprintln!("sshd exited: {err}");
            return false;
        }
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
            // The banner proves it is our sshd and not a port taken meanwhile.
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut line = String::new();
            if BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("SSH-2.0-") {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Sets a path's permission bits.
pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Every process id in /proc with its /proc directory.
fn processes() -> impl Iterator<Item = (u32, PathBuf)> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_string_lossy().parse().ok()?, e.path())))
}

/// Processes whose command line contains `needle`, as `(pid, command line)`.
pub fn processes_matching(needle: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for (pid, dir) in processes() {
        let Ok(raw) = fs::read(dir.join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmdline.contains(needle) && pid != std::process::id() {
            found.push((pid, cmdline));
        }
    }
    found
}

/// Waits up to `timeout` for `check` to hold, polling.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The process ids whose parent is `parent`.
pub fn children_of(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for (pid, dir) in processes() {
        let Ok(stat) = fs::read_to_string(dir.join("stat")) else {
            continue;
        };
        // The command name may hold spaces and parentheses: the fields we
        // want come after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let ppid = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) {
            found.push(pid);
        }
    }
    found
}

/// `parent`'s descendants, children first.
pub fn descendants_of(parent: u32) -> Vec<u32> {
    let mut all = Vec::new();
    let mut frontier = vec![parent];
    while let Some(p) = frontier.pop() {
        for child in children_of(p) {
            all.push(child);
            frontier.push(child);
        }
    }
    all
}

/// Sends `signal` to `pid` (errors ignored: it may be gone already).
pub fn signal(pid: u32, signal: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
}

/// Whether process `pid` exists (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// A throwaway Unix user with a `/bin/sh` login shell, removed (with its home
/// and any process left running as it) when dropped. Needs root.
pub struct TestUser {
    /// The login name.
    pub name: String,
    /// The home directory.
    pub home: PathBuf,
}

impl TestUser {
    /// Creates a user named `mqt<tag><pid><n>`; `None` (with a message) when
    /// not root or `useradd` is missing.
    pub fn create(tag: &str) -> Option<TestUser> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        if !is_root() {
            return skip("creating Unix users needs root");
        }
        if Command::new("useradd").arg("--help").output().is_err() {
            return skip("no useradd");
        }
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("mqt{}{}x{}", tag, std::process::id() % 100_000, n);
        let out = Command::new("useradd")
            .args(["--create-home", "--shell", "/bin/sh", "--user-group", &name])
            .output()
            .expect("useradd runs");
        assert!(
            out.status.success(),
            "useradd {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // useradd leaves the password "!" (locked), and sshd without PAM
        // refuses locked accounts even for keys; "*" is "no password" instead.
        sh("usermod", &["-p", "*", &name]);
        let home = PathBuf::from(
            sh("getent", &["passwd", &name])
                .trim()
                .split(':')
                .nth(5)
                .expect("home field"),
        );
        Some(TestUser { name, home })
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("pkill")
            .args(["-KILL", "-u", &self.name])
            .status();
        std::thread::sleep(Duration::from_millis(50));
        let _ = Command::new("userdel")
            .args(["--remove", "--force", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// Writes `text` to `path` by renaming a file of its own over it: a reader
/// (an `mq` of another test thread) never sees it half written.
fn write_atomically(path: &Path, text: &str) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let tmp = path.with_extension(format!("tmp{}.{n}", std::process::id()));
    fs::write(&tmp, text).expect("write");
    fs::rename(&tmp, path).expect("rename");
}

/// `cargo ARGS` (the cargo running the tests, offline) in the current
/// directory; its stdout. Panics when it fails.
pub fn cargo(args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut all = vec![args[0], "--offline"];
    all.extend(&args[1..]);
    sh(&cargo, &all)
}

/// `script` run with `sh` as `user` through `su` (stdin from /dev/null).
pub fn su(user: &str, script: &str) -> Command {
    let mut cmd = Command::new("su");
    cmd.args(["-s", "/bin/sh", "-c", script, user])
        .stdin(Stdio::null());
    cmd
}

/// A lab host for lock tests: an sshd, a lock directory laid out as on a lab
/// host (`BASE/VERSION` = 5, writable by every user, no sticky bit so that a
/// forced release can remove another user's lock) and throwaway users who
/// can log in with the test key.
pub struct LabHost {
    /// The server.
    pub server: SshServer,
    /// The lab's directory (BASE is `base` inside it).
    pub root: TempDir,
    /// The lock directory.
    pub base: PathBuf,
    /// The users, in creation order.
    pub users: Vec<TestUser>,
}

impl LabHost {
    /// Starts a lab host with `users` throwaway users; `None` (with a message)
    /// when sshd is missing or users cannot be made.
    pub fn start(users: usize) -> Option<LabHost> {
        let users: Vec<TestUser> = (0..users)
            .map(|_| TestUser::create("lab"))
            .collect::<Option<_>>()?;
        let server = SshServer::start()?;
        for user in &users {
            server.authorize_user(&user.name);
        }
        let root = tempfile::Builder::new()
            .prefix("mq-lab-")
            .tempdir()
            .expect("lab dir");
        set_mode(root.path(), 0o755);
        let base = root.path().join("base");
        fs::create_dir(&base).expect("base");
        set_mode(&base, 0o777);
        fs::write(base.join("VERSION"), "5\n").expect("VERSION");
        Some(LabHost {
            server,
            root,
            base,
            users,
        })
    }

    /// BASE as a string.
    pub fn base_str(&self) -> &str {
        self.base.to_str().expect("utf-8 path")
    }

    /// An ssh_config file that reaches this host as `lab`, logging in as `user`.
    pub fn config_for(&self, user: &str) -> PathBuf {
        let path = self.root.path().join(format!("ssh_config.{user}"));
        write_atomically(&path, &self.server.config_block_for("lab", user));
        path
    }

    /// [`LabHost::config_for`] through `port` (a [`DelayProxy`] in front of
    /// the host's sshd).
    pub fn config_via(&self, user: &str, port: u16) -> PathBuf {
        let path = self.root.path().join(format!("ssh_config.{user}.{port}"));
        write_atomically(&path, &self.server.config_block_via("lab", user, port));
        path
    }

    /// The owner of `BASE/system.lock`, if it exists.
    pub fn lock_owner(&self, system: &str) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(self.base.join(format!("{system}.lock"))).ok()?;
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(meta.uid()))
            .ok()
            .flatten()
            .map(|u| u.name)
    }

    /// Runs `script` with `sh` as `user` on this machine (an "old client"
    /// performing PROTOCOL.md's shell lines), through `su`.
    pub fn sh_as(&self, user: &str, script: &str) -> std::process::Output {
        su(user, script).output().expect("su runs")
    }
}

/// The emulated board of the test lab: a `reboot` program as PROTOCOL.md
/// describes the host's (`[-L] [-b DTB] [--bitstream BIT] -l LOG -c TEXT -t
/// SECONDS -e TEXT -k KERNEL [-u ROOTSERVER] [-a -i]`, or `--shutdown`).
///
/// It is mq_core::testing's board program (`mq-core/src/sh/test_board.sh`,
/// whose header lists its directives), here without a `console` file: the
/// uploaded images are the console script, kernel first, matched as fixed
/// strings. Each machine's directory records `last-args` (NUL-separated),
/// `pid`, `hup` (hung up) and `powered-off`.
pub const EMULATED_REBOOT: &str = include_str!("../../mq-core/src/sh/test_board.sh");

impl LabHost {
    /// Installs the emulated board as `TFTPBOOT/MACHINE/reboot` for each
    /// machine; returns TFTPBOOT.
    pub fn install_boards(&self, machines: &[&str]) -> PathBuf {
        let tftpboot = self.root.path().join("tftpboot");
        for machine in machines {
            let dir = tftpboot.join(machine);
            fs::create_dir_all(&dir).expect("board dir");
            set_mode(&tftpboot, 0o755);
            set_mode(&dir, 0o777);
            let reboot = dir.join("reboot");
            fs::write(&reboot, EMULATED_REBOOT).expect("reboot");
            set_mode(&reboot, 0o755);
        }
        tftpboot
    }

    /// The arguments the emulated board `machine` was last started with.
    pub fn last_args(&self, machine: &str) -> Vec<String> {
        let raw = fs::read(
            self.root
                .path()
                .join("tftpboot")
                .join(machine)
                .join("last-args"),
        )
        .unwrap_or_default();
        let mut args: Vec<String> = raw
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        // Every argument ends in a NUL: the last piece is empty.
        args.pop();
        args
    }

    /// Files under `dir` owned by `user` (left-behind temporary files).
    pub fn files_of(dir: &Path, user: &str) -> Vec<PathBuf> {
        use std::os::unix::fs::MetadataExt;
        let Ok(Some(u)) = nix::unistd::User::from_name(user) else {
            return Vec::new();
        };
        fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.metadata().is_ok_and(|m| m.uid() == u.uid.as_raw()))
            .map(|e| e.path())
            .collect()
    }

    /// The lock and key files in a BASE directory (none once every lock is
    /// released; what mq keeps beside them, `queue/` and `health/`, stays).
    pub fn lock_files(base: &Path) -> Vec<PathBuf> {
        fs::read_dir(base)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "lock" || x == "key"))
            .collect()
    }

    /// Whether `file` exists in `machine`'s board directory.
    pub fn board_file(&self, machine: &str, file: &str) -> bool {
        self.root
            .path()
            .join("tftpboot")
            .join(machine)
            .join(file)
            .exists()
    }
}

/// Whether procmail's `lockfile` is installed (says SKIPPED when not).
pub fn lockfile_installed() -> bool {
    let ok = Command::new("sh")
        .args(["-c", "command -v lockfile"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok || skip::<()>("no lockfile (install procmail)").is_some()
}

impl LabHost {
    /// Points an `mq` command at this lab as `user`, with `home` as HOME and
    /// nothing of the caller's own configuration (agent, MQ_* variables).
    pub fn configure(&self, cmd: &mut Command, user: &str, home: &Path) {
        cmd.env("HOME", home)
            .env("MQ_HOST", "lab")
            .env("MQ_BASE", self.base_str())
            .env("MQ_TFTPBOOT", self.root.path().join("tftpboot"))
            .env("MQ_SSH_CONFIG", self.config_for(user))
            .env_remove("MQ_INVENTORY")
            .env_remove("MQ_TRANSPORT")
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null());
    }
}

/// Checks a script mq sends to a host as the shells that run it read it:
/// `dash -n`, `bash -n` and `shellcheck -s sh` (no findings at all). Returns
/// what each tool said, empty when all is well; skips (fails under CI) when a
/// tool is missing.
pub fn check_sh_script(name: &str, text: &str) -> Option<Vec<String>> {
    let mut problems = Vec::new();
    for (tool, args) in [
        ("dash", &["-n"][..]),
        ("bash", &["-n"][..]),
        ("shellcheck", &["-s", "sh", "-"][..]),
    ] {
        let child = Command::new(tool)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return skip(&format!("{tool} is not installed (Debian package {tool})"));
            }
            Err(e) => panic!("cannot run {tool}: {e}"),
        };
        let mut stdin = child.stdin.take().expect("stdin");
        std::io::Write::write_all(&mut stdin, text.as_bytes()).expect("script to stdin");
        drop(stdin);
        let out = child.wait_with_output().expect("tool ends");
        if !out.status.success() {
            problems.push(format!(
                "{tool} on {name}:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Some(problems)
}

/// What a finished command said.
#[derive(Debug)]
pub struct Run {
    /// Its exit status (-1 when a signal ended it).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Runs `cmd` to its end.
    pub fn of(cmd: &mut Command) -> Run {
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// `(status, stdout, stderr)` of `cmd`, run to its end.
pub fn output(mut cmd: Command) -> (i32, String, String) {
    let run = Run::of(&mut cmd);
    (run.code, run.stdout, run.stderr)
}

/// Whether QEMU's x86 emulator is installed; says the skip when it is not
/// (a failure under CI).
pub fn qemu_installed() -> bool {
    let ok = Command::new("sh")
        .args(["-c", "command -v qemu-system-x86_64"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip::<()>("no qemu-system-x86_64 (install qemu-system-x86)");
    }
    ok
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_emulated_board_passes_dash_bash_and_shellcheck() {
        let Some(problems) = super::check_sh_script("emulated_reboot.sh", super::EMULATED_REBOOT)
        else {
            return;
        };
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
