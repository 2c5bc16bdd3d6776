//! [`SshTransport`]: one SSH connection over libssh2, every step a channel on it.
//!
//! What the connection does is read from the user's OpenSSH client
//! configuration, resolved by `ssh -G` where an `ssh` client exists and by
//! mq's own parser otherwise ([`config`] says what is followed, evaluated,
//! skipped and refused). All of it is applied here: the jump chain (all
//! in-process) or proxy command, AddressFamily, the algorithm lists (through
//! libssh2's method preferences), host keys (known_hosts files,
//! KnownHostsCommand, RevokedHostKeys, HashKnownHosts when recording), and
//! authentication (agent, then key files, under IdentitiesOnly,
//! PubkeyAuthentication and PubkeyAcceptedAlgorithms).
//!
//! Decisions where OpenSSH would ask or has no setting:
//! * StrictHostKeyChecking `ask` (the default) is `yes`: mq never prompts.
//!   `no` records and accepts an unknown host but, like every setting,
//!   refuses a changed key.
//! * ServerAliveInterval defaults to 15 s (OpenSSH: off, or 300 s in batch
//!   mode, which then applies), ServerAliveCountMax to 3: a lab host that
//!   vanishes is reported after about 45 s instead of never. ConnectTimeout
//!   defaults to 30 s.

mod auth;
pub mod config;
mod conn;
mod hostkey;
pub mod known_hosts;
mod pty;
mod tunnel;

use self::auth::authenticate;
pub use self::hostkey::offered_algorithms;
use self::hostkey::{apply_algorithms, check_host_key};
use self::pty::SshPty;
pub(crate) use self::pty::RECHECK;

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use ssh2::{MethodType, Session};

use self::config::algorithms::{self as algs, AlgorithmKind};
use self::config::{
    AddressFamily, ConfigFiles, Context, HostConfig, Jump, Request, Resolver, StrictHostKeyChecking,
};
use self::conn::Conn;
use self::known_hosts::Verdict;
use crate::{
    quote, ExitStatus, Output, PtyProcess, PtySize, ReadOutcome, Result, Transport, TransportError,
};

/// Keepalive interval when the configuration sets none.
pub const DEFAULT_ALIVE_INTERVAL: Duration = Duration::from_secs(15);
/// Connect timeout when the configuration sets none.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How many jump hosts may be nested through their own ProxyJump settings.
const MAX_JUMP_DEPTH: usize = 8;

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct SshOptions {
    /// `host`, `user@host` or `user@host:port`; `host` is looked up in the
    /// configuration as a `Host` alias.
    pub destination: String,
    /// Which configuration files are read (OpenSSH's own by default).
    pub config_files: ConfigFiles,
    /// The local home directory, for `~` and the default key files (as
    /// OpenSSH: the passwd entry's, not `$HOME`).
    pub home: PathBuf,
    /// The local user name (the login name when the configuration sets none).
    pub local_user: String,
    /// The ssh-agent socket (`SSH_AUTH_SOCK`), if any.
    pub agent_socket: Option<PathBuf>,
    /// How the configuration is resolved: `ssh -G` where an `ssh` client is
    /// on PATH, else mq's own parser.
    pub resolver: Resolver,
}

impl SshOptions {
    /// Options for `destination` with this process's user, `SSH_AUTH_SOCK`,
    /// and OpenSSH's configuration files.
    pub fn new(destination: &str) -> SshOptions {
        let context = Context::current();
        SshOptions {
            destination: destination.to_string(),
            config_files: ConfigFiles::Default,
            agent_socket: std::env::var_os("SSH_AUTH_SOCK")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
            home: context.home,
            local_user: context.local_user,
            resolver: Resolver::detect(),
        }
    }

    /// Reads only `file`, as `ssh -F file` does.
    pub fn config_file(mut self, file: impl Into<PathBuf>) -> SshOptions {
        self.config_files = ConfigFiles::Only(file.into());
        self
    }

    /// Uses `socket` as the ssh-agent (or no agent with `None`).
    pub fn agent(mut self, socket: Option<PathBuf>) -> SshOptions {
        self.agent_socket = socket;
        self
    }

    /// Resolves the configuration with `resolver`.
    pub fn resolver(mut self, resolver: Resolver) -> SshOptions {
        self.resolver = resolver;
        self
    }

    fn context(&self) -> Context {
        Context {
            home: self.home.clone(),
            local_user: self.local_user.clone(),
            ..Context::current()
        }
    }

    /// How mq will reach the destination: its configuration, resolved as
    /// for connecting (what `mq config --ssh` shows).
    pub fn host_config(&self) -> Result<HostConfig> {
        let jump = Jump::parse(&self.destination).ok_or_else(|| TransportError::Config {
            file: "destination".into(),
            line: 0,
            message: format!("'{}' is not [user@]host[:port]", self.destination),
        })?;
        self.resolve(&jump)
    }

    /// The configuration for a host (a jump host, say), with `user@` and
    /// `:port` given for it taking precedence, as on ssh's command line.
    pub fn resolve(&self, target: &Jump) -> Result<HostConfig> {
        let request = Request {
            host: &target.host,
            user: target.user.as_deref(),
            port: target.port,
            files: &self.config_files,
        };
        let mut config = config::resolve(&request, &self.context(), &self.resolver)?;
        if let Some(user) = &target.user {
            config.user = Some(user.clone());
        }
        if let Some(port) = target.port {
            config.port = port;
        }
        Ok(config)
    }
}

/// Commands on the lab host over one SSH connection.
pub struct SshTransport {
    conn: Arc<Conn>,
    user: String,
    description: String,
    notes: Vec<String>,
    /// The host's ConnectTimeout (or mq's default).
    connect_timeout: Duration,
    /// With [`SshTransport::bound_replies`]: how long a command may go
    /// without a byte of answer.
    reply_limit: Option<Duration>,
}

impl std::fmt::Debug for SshTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshTransport")
            .field("endpoint", &self.description)
            .finish()
    }
}

impl SshTransport {
    /// Connects to `options.destination` (the host itself, or through its
    /// jump hosts or proxy command), verifies its key and authenticates.
    pub fn connect(options: &SshOptions) -> Result<SshTransport> {
        let config = options.host_config()?;
        let notes = config.skipped.iter().map(|d| d.to_string()).collect();
        let user = config
            .user
            .clone()
            .unwrap_or_else(|| options.local_user.clone());
        let description = format!("{user}@{}:{}", config.hostname, config.port);
        let conn = connect_host(options, &config, 0)?;
        Ok(SshTransport {
            conn: Arc::new(conn),
            user,
            description,
            notes,
            connect_timeout: config.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            reply_limit: None,
        })
    }

    /// For quick reads only (a whole-lab status, say): a command
    /// ([`Transport::run`]) that goes a whole ConnectTimeout without a byte
    /// of answer is given up, and the connection with it (reported as
    /// lost): a host that took the connection and then hung (a stuck login
    /// shell, a full disk) is reported like one that never answered,
    /// instead of holding the caller for ever. Keepalives cannot tell:
    /// sshd answers them while the shell hangs.
    pub fn bound_replies(mut self) -> SshTransport {
        self.reply_limit = Some(self.connect_timeout);
        self
    }

    /// Directives of the configuration that were written but are not
    /// followed (preferences libssh2 cannot follow: see [`config`]), one
    /// line each with file and line.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
}

fn connect_host(options: &SshOptions, config: &HostConfig, depth: usize) -> Result<Conn> {
    if !config.refused.is_empty() {
        return Err(TransportError::Unsupported {
            host: config.alias.clone(),
            directives: config.refused.iter().map(|d| d.to_string()).collect(),
        });
    }
    let timeout = config.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let alive = config
        .server_alive_interval
        .unwrap_or(DEFAULT_ALIVE_INTERVAL);
    let mut keep: Vec<Box<dyn std::any::Any + Send + Sync>> = Vec::new();

    let (stream, fd): (Box<dyn AsRawFdSend>, RawFd) = if let Some(command) = &config.proxy_command {
        let (socket, child) = tunnel::proxy_command(command)?;
        keep.push(Box::new(child));
        let fd = socket.as_raw_fd();
        (Box::new(socket), fd)
    } else if let Some((last, hops)) = config.proxy_jump.split_last() {
        if depth >= MAX_JUMP_DEPTH {
            return Err(TransportError::Config {
                file: "ssh configuration".into(),
                line: 0,
                message: format!("ProxyJump nests deeper than {MAX_JUMP_DEPTH} hosts (a loop?)"),
            });
        }
        // The first hop is connected as any host (its own settings apply);
        // each later hop, then the target, is reached through the one before.
        let mut previous: Option<Arc<Conn>> = None;
        for hop in hops.iter().chain(std::iter::once(last)) {
            // A hop's own `Host` settings, with its `user@` and `:port` on top.
            let hop_config = options.resolve(hop)?;
            let conn = match previous.take() {
                None => connect_host(options, &hop_config, depth + 1)?,
                Some(via) => {
                    let (socket, tunnel) =
                        tunnel::through_jump(via, &hop_config.hostname, hop_config.port)?;
                    let fd = socket.as_raw_fd();
                    establish(
                        options,
                        &hop_config,
                        Box::new(socket),
                        fd,
                        vec![Box::new(tunnel)],
                    )?
                }
            };
            previous = Some(Arc::new(conn));
        }
        let via = previous.expect("at least one hop");
        let (socket, tunnel) = tunnel::through_jump(via, &config.hostname, config.port)?;
        keep.push(Box::new(tunnel));
        let fd = socket.as_raw_fd();
        (Box::new(socket), fd)
    } else {
        let stream = tcp_connect(config, timeout)?;
        // A peer that vanishes without a word fails the socket after the
        // same span that keepalives allow, instead of TCP's 15 minutes.
        let sock = socket2::SockRef::from(&stream);
        let _ = sock.set_tcp_user_timeout(Some(alive * config.server_alive_count_max));
        let _ = sock.set_nodelay(true);
        let fd = stream.as_raw_fd();
        (Box::new(stream), fd)
    };
    establish(options, config, stream, fd, keep)
}

/// A socket libssh2 can use, owned by its session.
trait AsRawFdSend: AsRawFd + Send {}
impl<T: AsRawFd + Send> AsRawFdSend for T {}

/// Lets a boxed socket be handed to libssh2 (which wants `AsRawFd + 'static`).
struct BoxedSocket(Box<dyn AsRawFdSend>);
impl AsRawFd for BoxedSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

fn tcp_connect(config: &HostConfig, timeout: Duration) -> Result<TcpStream> {
    let (host, port) = (config.hostname.as_str(), config.port);
    let endpoint = format!("{host}:{port}");
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|source| TransportError::Connect {
            endpoint: endpoint.clone(),
            source,
        })?;
    let mut last = std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "no address of the AddressFamily configured",
    );
    let family_ok = |addr: &std::net::SocketAddr| match config.address_family {
        AddressFamily::Any => true,
        AddressFamily::Inet => addr.is_ipv4(),
        AddressFamily::Inet6 => addr.is_ipv6(),
    };
    for addr in addrs.filter(family_ok) {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(TransportError::Connect {
        endpoint,
        source: last,
    })
}

/// Handshake, host key check and authentication over `stream`.
fn establish(
    options: &SshOptions,
    config: &HostConfig,
    stream: Box<dyn AsRawFdSend>,
    fd: RawFd,
    keep: Vec<Box<dyn std::any::Any + Send + Sync>>,
) -> Result<Conn> {
    let endpoint = format!("{}:{}", config.hostname, config.port);
    let ssh_error = |context: &str| {
        let context = format!("{context} ({endpoint})");
        move |e: ssh2::Error| TransportError::Ssh {
            context,
            detail: e.message().to_string(),
        }
    };
    let mut session = Session::new().map_err(ssh_error("creating a session"))?;
    session.set_tcp_stream(BoxedSocket(stream));
    let timeout = config.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    session.set_timeout(timeout.as_millis().min(u32::MAX as u128) as u32);
    if config.compression {
        session.set_compress(true);
    }

    // A HostKeyAlias is the known_hosts name as it stands, whatever the
    // port (OpenSSH's get_hostfile_hostname_ipaddr): one file serves both.
    let lookup = match &config.host_key_alias {
        Some(alias) => alias.clone(),
        None => known_hosts::host_entry_name(&config.hostname, config.port),
    };
    let files: Vec<PathBuf> = config
        .user_known_hosts
        .iter()
        .chain(&config.global_known_hosts)
        .cloned()
        .collect();
    let entries = known_hosts::entries_for(&files, &lookup);
    apply_algorithms(&session, config, &entries)?;

    session.handshake().map_err(|e| TransportError::Handshake {
        endpoint: endpoint.clone(),
        detail: e.message().to_string(),
    })?;
    check_host_key(&session, options, config, &endpoint, &lookup, entries)?;

    let user = config
        .user
        .clone()
        .unwrap_or_else(|| options.local_user.clone());
    authenticate(&session, options, config, &user)?;
    let alive = config
        .server_alive_interval
        .unwrap_or(DEFAULT_ALIVE_INTERVAL);
    Ok(Conn::new(
        session,
        fd,
        format!("{user}@{endpoint}"),
        alive,
        config.server_alive_count_max,
        keep,
    ))
}

impl SshTransport {
    fn open(&self, command: &str, pty: Option<PtySize>) -> Result<ssh2::Channel> {
        let conn = &self.conn;
        let mut channel = conn.retry("opening a channel", || conn.session.channel_session())?;
        if let Some(size) = pty {
            conn.retry("requesting a pty", || {
                channel.request_pty(
                    "xterm",
                    None,
                    Some((size.cols.into(), size.rows.into(), 0, 0)),
                )
            })?;
        }
        conn.retry("starting the command", || channel.exec(command))?;
        Ok(channel)
    }

    /// Reads stdout and stderr until both end, handing stdout to `out`;
    /// with `limit`, gives up after that long without a byte.
    fn drain(
        &self,
        channel: &mut ssh2::Channel,
        out: &mut dyn FnMut(&[u8]) -> Result<()>,
        err: &mut Vec<u8>,
        limit: Option<Duration>,
    ) -> Result<()> {
        let conn = &self.conn;
        let mut buf = vec![0u8; 256 * 1024];
        let (mut out_done, mut err_done) = (false, false);
        let mut heard = Instant::now();
        while !(out_done && err_done) {
            if let Some(limit) = limit.filter(|&l| heard.elapsed() >= l) {
                return Err(conn.lost(format!(
                    "no answer to a command within {} s (ConnectTimeout): the host took the \
                     connection and then hung",
                    limit.as_secs()
                )));
            }
            let mut progress = false;
            if !out_done {
                match channel.read(&mut buf) {
                    Ok(0) => out_done = channel.eof(),
                    Ok(n) => {
                        out(&buf[..n])?;
                        progress = true;
                    }
                    Err(e) => {
                        if let Some(error) = conn.classify_io("reading output", e) {
                            return Err(error);
                        }
                        // Would block: the EOF may have been taken in by
                        // libssh2 meanwhile, with nothing more to come.
                        out_done = channel.eof();
                    }
                }
            }
            if !err_done {
                match channel.stderr().read(&mut buf) {
                    Ok(0) => err_done = channel.eof(),
                    Ok(n) => {
                        err.extend_from_slice(&buf[..n]);
                        progress = true;
                    }
                    Err(e) => {
                        if let Some(error) = conn.classify_io("reading errors", e) {
                            return Err(error);
                        }
                        err_done = channel.eof();
                    }
                }
            }
            let finished = out_done && err_done;
            if progress {
                heard = Instant::now();
            }
            if !progress && !finished {
                // Bounded: what libssh2 already holds is read again soon even
                // if the socket stays quiet (no wakeup is ever lost).
                conn.wait(Some(Instant::now() + RECHECK))?;
            }
        }
        Ok(())
    }

    fn finish(&self, channel: &mut ssh2::Channel) -> Result<ExitStatus> {
        let conn = &self.conn;
        conn.retry("closing the channel", || channel.close())?;
        conn.retry("closing the channel", || channel.wait_close())?;
        exit_status(channel)
    }

    /// Writes all of `data` to the channel, draining its stderr meanwhile.
    fn write_all(
        &self,
        channel: &mut ssh2::Channel,
        mut data: &[u8],
        err: &mut Vec<u8>,
    ) -> Result<()> {
        let conn = &self.conn;
        let mut scratch = [0u8; 4096];
        while !data.is_empty() {
            match channel.write(data) {
                Ok(n) => data = &data[n..],
                Err(e) => {
                    if let Some(error) = conn.classify_io("sending data", e) {
                        return Err(error);
                    }
                    if let Ok(n) = channel.stderr().read(&mut scratch) {
                        err.extend_from_slice(&scratch[..n]);
                    }
                    // That read may have taken in the window adjust the
                    // write waits for: ask again soon, whatever the socket.
                    conn.wait(Some(Instant::now() + RECHECK))?;
                }
            }
        }
        Ok(())
    }
}

fn exit_status(channel: &ssh2::Channel) -> Result<ExitStatus> {
    if let Ok(signal) = channel.exit_signal() {
        if let Some(name) = signal.exit_signal {
            return Ok(ExitStatus::Signal(name));
        }
    }
    channel
        .exit_status()
        .map(ExitStatus::Code)
        .map_err(|e| TransportError::Ssh {
            context: "reading the exit status".into(),
            detail: e.message().to_string(),
        })
}

impl Transport for SshTransport {
    fn run(&self, command: &str) -> Result<Output> {
        let mut channel = self.open(command, None)?;
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        self.drain(
            &mut channel,
            &mut |chunk| {
                stdout.extend_from_slice(chunk);
                Ok(())
            },
            &mut stderr,
            self.reply_limit,
        )?;
        let status = self.finish(&mut channel)?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    fn spawn_pty(&self, command: &str, size: PtySize) -> Result<Box<dyn PtyProcess>> {
        let channel = self.open(command, Some(size))?;
        Ok(Box::new(SshPty {
            conn: Arc::clone(&self.conn),
            channel,
            closed: false,
        }))
    }

    fn upload(
        &self,
        local: &Path,
        remote: &str,
        progress: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<()> {
        let local_error = TransportError::local_file(local);
        let mut file = File::open(local).map_err(local_error)?;
        let total = file.metadata().map_err(local_error)?.len();
        let mut channel = self.open(&upload_command(remote), None)?;
        let mut stderr = Vec::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut done = 0u64;
        let mut go_on = progress(0, total);
        while go_on {
            let n = file.read(&mut buf).map_err(local_error)?;
            if n == 0 {
                break;
            }
            self.write_all(&mut channel, &buf[..n], &mut stderr)?;
            done += n as u64;
            go_on = progress(done, total.max(done));
        }
        if !go_on {
            // Closing the channel ends the remote `cat` (and its partial file).
            let _ = self.conn.retry("cancelling the upload", || channel.close());
            return Err(TransportError::cancelled("upload to", remote));
        }
        self.conn
            .retry("ending the upload", || channel.send_eof())?;
        self.drain(&mut channel, &mut |_| Ok(()), &mut stderr, None)?;
        let status = self.finish(&mut channel)?;
        copy_result("upload to", remote, self.describe(), &status, &stderr)
    }

    fn download(
        &self,
        remote: &str,
        local: &Path,
        progress: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<()> {
        let local_error = TransportError::local_file(local);
        let mut file = File::create(local).map_err(local_error)?;
        let mut channel = self.open(&download_command(remote), None)?;
        let mut stderr = Vec::new();
        let mut sink = SizedDownload::new(&mut file, progress);
        let drained = self.drain(
            &mut channel,
            &mut |chunk| {
                if sink.feed(chunk) {
                    Ok(())
                } else {
                    Err(TransportError::cancelled("download of", remote))
                }
            },
            &mut stderr,
            None,
        );
        if let Err(e) = drained {
            if matches!(e, TransportError::Cancelled { .. }) {
                let _ = self
                    .conn
                    .retry("cancelling the download", || channel.close());
                let _ = std::fs::remove_file(local);
            }
            return Err(e);
        }
        let write_error = sink.error.take();
        let status = self.finish(&mut channel)?;
        if let Some(e) = write_error {
            return Err(local_error(e));
        }
        if !status.success() {
            let _ = std::fs::remove_file(local);
        }
        copy_result("download of", remote, self.describe(), &status, &stderr)?;
        file.flush().map_err(local_error)?;
        Ok(())
    }

    fn user(&self) -> &str {
        &self.user
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

/// The remote command of an upload: the bytes arrive on its stdin.
pub(crate) fn upload_command(remote: &str) -> String {
    format!("cat > {}", quote(remote))
}

/// The remote command of a download: the size first, on a line of its own
/// (for the progress total), then the bytes.
pub(crate) fn download_command(remote: &str) -> String {
    let q = quote(remote);
    format!("wc -c < {q} && exec cat {q}")
}

/// Consumes the output of [`download_command`] into a file.
pub(crate) struct SizedDownload<'a> {
    file: &'a mut dyn Write,
    progress: &'a mut dyn FnMut(u64, u64) -> bool,
    header: Vec<u8>,
    total: Option<u64>,
    done: u64,
    /// The first local write error; the rest of the stream is still drained.
    pub(crate) error: Option<std::io::Error>,
}

impl<'a> SizedDownload<'a> {
    pub(crate) fn new(
        file: &'a mut dyn Write,
        progress: &'a mut dyn FnMut(u64, u64) -> bool,
    ) -> Self {
        SizedDownload {
            file,
            progress,
            header: Vec::new(),
            total: None,
            done: 0,
            error: None,
        }
    }

    /// Takes a chunk; `false` when the progress callback asks to stop.
    pub(crate) fn feed(&mut self, mut chunk: &[u8]) -> bool {
        if self.total.is_none() {
            let Some(newline) = chunk.iter().position(|&b| b == b'\n') else {
                self.header.extend_from_slice(chunk);
                return true;
            };
            self.header.extend_from_slice(&chunk[..newline]);
            chunk = &chunk[newline + 1..];
            let size = String::from_utf8_lossy(&self.header)
                .trim()
                .parse()
                .unwrap_or(0);
            self.total = Some(size);
            if !(self.progress)(0, size) {
                return false;
            }
        }
        if self.error.is_none() {
            if let Err(e) = self.file.write_all(chunk) {
                self.error = Some(e);
            }
        }
        self.done += chunk.len() as u64;
        (self.progress)(self.done, self.total.unwrap_or(0).max(self.done))
    }
}

/// A file copy's verdict from the remote command's status: the remote
/// side's complaint (or its exit status when it said nothing) on failure.
pub(crate) fn copy_result(
    operation: &'static str,
    remote: &str,
    endpoint: String,
    status: &ExitStatus,
    stderr: &[u8],
) -> Result<()> {
    if status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(stderr).trim().to_string();
    Err(TransportError::RemoteFile {
        operation,
        path: remote.to_string(),
        endpoint,
        detail: if text.is_empty() {
            status.to_string()
        } else {
            text
        },
    })
}
