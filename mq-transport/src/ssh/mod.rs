//! [`SshTransport`]: one SSH connection over libssh2, every step a channel on it.
//!
//! What the connection does is read from the user's OpenSSH client
//! configuration ([`config`]): HostName, User, Port, IdentityFile,
//! IdentitiesOnly, IdentityAgent, ProxyJump (any number of hops, all
//! in-process), ProxyCommand, UserKnownHostsFile, GlobalKnownHostsFile,
//! HostKeyAlias, StrictHostKeyChecking, ServerAliveInterval,
//! ServerAliveCountMax, ConnectTimeout, Compression. Directives that would
//! change the connection and cannot be honoured (GSSAPI, PKCS#11 and
//! security-key providers, `Match exec`) refuse the connection with their file
//! and line; see [`config`] for the full list.
//!
//! Decisions where OpenSSH would ask or has no setting:
//! * StrictHostKeyChecking `ask` (the default) is `yes`: mq never prompts.
//!   `no` records and accepts an unknown host but, like every setting,
//!   refuses a changed key.
//! * ServerAliveInterval defaults to 15 s (OpenSSH: off), ServerAliveCountMax
//!   to 3: a lab host that vanishes is reported after about 45 s instead of
//!   never. ConnectTimeout defaults to 30 s.

pub mod config;
mod conn;
pub mod known_hosts;
mod tunnel;

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use ssh2::{MethodType, Session};

use self::config::{Context, HostConfig, Jump, StrictHostKeyChecking};
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
    /// Configuration files, read in order (first value wins). Default: the
    /// user's `~/.ssh/config`, then `/etc/ssh/ssh_config`.
    pub config_files: Vec<PathBuf>,
    /// The local home directory, for `~` and the default key files.
    pub home: PathBuf,
    /// The local user name (the login name when the configuration sets none).
    pub local_user: String,
    /// The ssh-agent socket (`SSH_AUTH_SOCK`), if any.
    pub agent_socket: Option<PathBuf>,
}

impl SshOptions {
    /// Options for `destination` with this process's environment: `HOME`,
    /// `SSH_AUTH_SOCK`, the user name, and the default configuration files.
    pub fn new(destination: &str) -> SshOptions {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/"));
        let local_user = nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .map(|u| u.name)
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "root".into());
        SshOptions {
            destination: destination.to_string(),
            config_files: vec![
                home.join(".ssh/config"),
                PathBuf::from("/etc/ssh/ssh_config"),
            ],
            agent_socket: std::env::var_os("SSH_AUTH_SOCK")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
            home,
            local_user,
        }
    }

    /// Reads only `file`, as `ssh -F file` does.
    pub fn config_file(mut self, file: impl Into<PathBuf>) -> SshOptions {
        self.config_files = vec![file.into()];
        self
    }

    /// Uses `socket` as the ssh-agent (or no agent with `None`).
    pub fn agent(mut self, socket: Option<PathBuf>) -> SshOptions {
        self.agent_socket = socket;
        self
    }

    fn context(&self) -> Context {
        Context {
            home: self.home.clone(),
            local_user: self.local_user.clone(),
        }
    }

    /// The configuration for `destination`, with `user@` and `:port` from the
    /// destination taking precedence, as on ssh's command line.
    fn resolve(&self, destination: &str) -> Result<HostConfig> {
        let jump = Jump::parse(destination).ok_or_else(|| TransportError::Config {
            file: "destination".into(),
            line: 0,
            message: format!("'{destination}' is not [user@]host[:port]"),
        })?;
        let mut config = config::resolve(&jump.host, &self.config_files, &self.context())?;
        if let Some(user) = jump.user {
            config.user = Some(user);
        }
        if let Some(port) = jump.port {
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
        let config = options.resolve(&options.destination)?;
        let notes = config.ignored.iter().map(|d| d.to_string()).collect();
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
        })
    }

    /// Directives of the configuration that were read but not applied (not
    /// fatal: see the module docs), one line each with file and line.
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
            let hop_config = jump_config(options, hop)?;
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
        let stream = tcp_connect(&config.hostname, config.port, timeout)?;
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

/// The configuration of a jump host: its own `Host` settings, with the hop's
/// `user@` and `:port` on top.
fn jump_config(options: &SshOptions, hop: &Jump) -> Result<HostConfig> {
    let mut config = config::resolve(&hop.host, &options.config_files, &options.context())?;
    if let Some(user) = &hop.user {
        config.user = Some(user.clone());
    }
    if let Some(port) = hop.port {
        config.port = port;
    }
    Ok(config)
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

fn tcp_connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream> {
    let endpoint = format!("{host}:{port}");
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|source| TransportError::Connect {
            endpoint: endpoint.clone(),
            source,
        })?;
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
    for addr in addrs {
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

    let lookup = known_hosts::host_entry_name(
        config.host_key_alias.as_deref().unwrap_or(&config.hostname),
        config.port,
    );
    let files: Vec<PathBuf> = config
        .user_known_hosts
        .iter()
        .chain(&config.global_known_hosts)
        .cloned()
        .collect();
    let entries = known_hosts::entries_for(&files, &lookup);
    let preferred = known_hosts::preferred_methods(&entries);
    if !preferred.is_empty() {
        let supported = session
            .supported_algs(MethodType::HostKey)
            .unwrap_or_default();
        let mut order: Vec<&str> = preferred
            .iter()
            .copied()
            .filter(|m| supported.contains(m))
            .collect();
        let rest: Vec<&str> = supported
            .iter()
            .copied()
            .filter(|m| !order.contains(m))
            .collect();
        order.extend(rest);
        if !order.is_empty() {
            let _ = session.method_pref(MethodType::HostKey, &order.join(","));
        }
    }

    session.handshake().map_err(|e| TransportError::Handshake {
        endpoint: endpoint.clone(),
        detail: e.message().to_string(),
    })?;

    let (key, _) = session
        .host_key()
        .ok_or_else(|| TransportError::Handshake {
            endpoint: endpoint.clone(),
            detail: "the server presented no host key".into(),
        })?;
    let key = key.to_vec();
    let key_type = known_hosts::key_type(&key).unwrap_or_else(|| "unknown".into());
    let fingerprint = known_hosts::fingerprint(&key);
    let user_file = config
        .user_known_hosts
        .first()
        .cloned()
        .unwrap_or_else(|| options.home.join(".ssh/known_hosts"));
    match known_hosts::verify(&entries, &key) {
        Verdict::Known => {}
        Verdict::Revoked(entry) => {
            return Err(TransportError::HostKeyRevoked {
                host: lookup,
                fingerprint,
                known_hosts: entry.file,
                line: entry.line,
            })
        }
        Verdict::Changed(entry) => {
            return Err(TransportError::HostKeyMismatch {
                host: lookup,
                key_type,
                fingerprint,
                known_hosts: entry.file,
                line: entry.line,
            })
        }
        Verdict::Unknown => match config.strict_host_key_checking {
            StrictHostKeyChecking::Yes | StrictHostKeyChecking::Ask => {
                return Err(TransportError::UnknownHostKey {
                    host: lookup,
                    key_type,
                    fingerprint,
                    known_hosts: user_file,
                    policy: config.strict_host_key_checking.name().to_string(),
                })
            }
            StrictHostKeyChecking::AcceptNew | StrictHostKeyChecking::No => {
                known_hosts::record(&user_file, &lookup, &key).map_err(|source| {
                    TransportError::LocalFile {
                        path: user_file.clone(),
                        source,
                    }
                })?;
            }
        },
    }

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

/// What a private key file holds, as far as choosing to offer it goes.
#[derive(Debug, PartialEq, Eq)]
enum KeyFile {
    Plain,
    Encrypted,
    SecurityKey,
}

fn inspect_key(path: &Path) -> Option<KeyFile> {
    let text = std::fs::read_to_string(path).ok()?;
    if text.contains("ENCRYPTED") {
        return Some(KeyFile::Encrypted);
    }
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    if body.is_empty() {
        return Some(KeyFile::Plain);
    }
    let blob = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    let rest = blob.strip_prefix(b"openssh-key-v1\0")?;
    let mut fields = SshStrings(rest);
    let cipher = fields.next()?;
    if cipher != b"none" {
        return Some(KeyFile::Encrypted);
    }
    let _kdf = fields.next()?;
    let _kdf_options = fields.next()?;
    let _count = fields.u32()?;
    let public = fields.next()?;
    match known_hosts::key_type(public) {
        Some(t) if t.starts_with("sk-") => Some(KeyFile::SecurityKey),
        _ => Some(KeyFile::Plain),
    }
}

/// Reads SSH wire-format strings off a buffer.
struct SshStrings<'a>(&'a [u8]);

impl<'a> SshStrings<'a> {
    fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.0.split_at_checked(4)?;
        self.0 = rest;
        Some(u32::from_be_bytes(head.try_into().ok()?))
    }

    fn next(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        let (s, rest) = self.0.split_at_checked(len)?;
        self.0 = rest;
        Some(s)
    }
}

/// ssh-agent identities first, then the configured key files (or the default
/// ones when none is configured).
fn authenticate(
    session: &Session,
    options: &SshOptions,
    config: &HostConfig,
    user: &str,
) -> Result<()> {
    let mut tried = Vec::new();
    let key_files: Vec<PathBuf> = if config.identity_files.is_empty() {
        ["id_ed25519", "id_ecdsa", "id_rsa"]
            .iter()
            .map(|name| options.home.join(".ssh").join(name))
            .collect()
    } else {
        config.identity_files.clone()
    };

    let agent_path = match config.identity_agent.as_deref() {
        Some(none) if none.eq_ignore_ascii_case("none") => None,
        Some("SSH_AUTH_SOCK") | None => options.agent_socket.clone(),
        Some(path) => Some(PathBuf::from(path)),
    };
    if let Some(path) = agent_path {
        if let Ok(mut agent) = session.agent() {
            let usable = agent.set_identity_path(&path).is_ok()
                && agent.connect().is_ok()
                && agent.list_identities().is_ok();
            if usable {
                let wanted: Vec<Vec<u8>> = key_files
                    .iter()
                    .filter_map(|k| public_blob(&k.with_extension("pub")))
                    .collect();
                for identity in agent.identities().unwrap_or_default() {
                    if config.identities_only && !wanted.iter().any(|w| w == identity.blob()) {
                        continue;
                    }
                    tried.push(format!("agent key '{}'", identity.comment()));
                    if agent.userauth(user, &identity).is_ok() && session.authenticated() {
                        let _ = agent.disconnect();
                        return Ok(());
                    }
                }
                let _ = agent.disconnect();
            }
        }
    }

    let mut encrypted = None;
    let mut security_keys = Vec::new();
    for key in &key_files {
        let Some(kind) = inspect_key(key) else {
            continue;
        };
        match kind {
            KeyFile::Encrypted => {
                encrypted.get_or_insert_with(|| key.clone());
                continue;
            }
            KeyFile::SecurityKey => {
                security_keys.push(format!(
                    "{}: security-key identity (not supported by libssh2)",
                    key.display()
                ));
                continue;
            }
            KeyFile::Plain => {}
        }
        let public = key.with_extension("pub");
        let public = public.exists().then_some(public);
        tried.push(key.display().to_string());
        if session
            .userauth_pubkey_file(user, public.as_deref(), key, None)
            .is_ok()
            && session.authenticated()
        {
            return Ok(());
        }
    }
    if let Some(path) = encrypted {
        return Err(TransportError::EncryptedKey { path });
    }
    if !security_keys.is_empty() {
        return Err(TransportError::Unsupported {
            host: config.alias.clone(),
            directives: security_keys,
        });
    }
    Err(TransportError::AuthFailed {
        user: user.to_string(),
        host: config.hostname.clone(),
        tried,
    })
}

/// The key blob of an OpenSSH public key file.
fn public_blob(path: &Path) -> Option<Vec<u8>> {
    let text = std::fs::read_to_string(path).ok()?;
    let b64 = text.split_whitespace().nth(1)?;
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
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

    /// Reads stdout and stderr until both end, handing stdout to `out`.
    fn drain(
        &self,
        channel: &mut ssh2::Channel,
        out: &mut dyn FnMut(&[u8]) -> Result<()>,
        err: &mut Vec<u8>,
    ) -> Result<()> {
        let conn = &self.conn;
        let mut buf = vec![0u8; 256 * 1024];
        let (mut out_done, mut err_done) = (false, false);
        while !(out_done && err_done) {
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
                    }
                }
            }
            let finished = out_done && err_done;
            if !progress && !finished {
                conn.wait(None)?;
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
                    conn.wait(None)?;
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
        self.drain(&mut channel, &mut |_| Ok(()), &mut stderr)?;
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

/// A command on a remote pseudo-terminal.
struct SshPty {
    conn: Arc<Conn>,
    channel: ssh2::Channel,
    closed: bool,
}

impl PtyProcess for SshPty {
    fn read(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> Result<ReadOutcome> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            match self.channel.read(buf) {
                Ok(0) if self.channel.eof() => return Ok(ReadOutcome::Eof),
                Ok(0) => {}
                Ok(n) => return Ok(ReadOutcome::Data(n)),
                Err(e) => {
                    if let Some(error) = self.conn.classify_io("reading the console", e) {
                        return Err(error);
                    }
                }
            }
            if !self.conn.wait(deadline)? {
                return Ok(ReadOutcome::TimedOut);
            }
        }
    }

    fn write(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            match self.channel.write(data) {
                Ok(n) => data = &data[n..],
                Err(e) => {
                    if let Some(error) = self.conn.classify_io("writing to the console", e) {
                        return Err(error);
                    }
                    self.conn.wait(None)?;
                }
            }
        }
        Ok(())
    }

    fn hangup(&mut self) -> Result<()> {
        if !self.closed {
            self.closed = true;
            // Closing the channel makes sshd close the pty: SIGHUP remotely.
            let conn = &self.conn;
            let channel = &mut self.channel;
            conn.retry("closing the console", || channel.close())?;
        }
        Ok(())
    }

    fn wait(&mut self) -> Result<ExitStatus> {
        let conn = Arc::clone(&self.conn);
        let deadline = Instant::now() + Duration::from_secs(10);
        let hung_up = self.closed;
        // The output ends when the command exits (or, hung up, is killed).
        let mut scratch = [0u8; 4096];
        while !self.channel.eof() {
            match self.channel.read(&mut scratch) {
                Ok(0) if self.channel.eof() => break,
                Ok(_) => continue,
                Err(e) => {
                    if let Some(error) = conn.classify_io("finishing the console", e) {
                        if hung_up {
                            break;
                        }
                        return Err(error);
                    }
                }
            }
            if !conn.wait(Some(deadline))? {
                break;
            }
        }
        if !self.closed {
            self.closed = true;
            let channel = &mut self.channel;
            conn.retry("closing the console", || channel.close())?;
        }
        if self.channel.eof() {
            loop {
                match self.channel.wait_close() {
                    Ok(()) => break,
                    Err(e) => {
                        if conn.classify("closing the console", e).is_some() {
                            break;
                        }
                    }
                }
                if !conn.wait(Some(deadline))? {
                    break;
                }
            }
        }
        match exit_status(&self.channel) {
            // libssh2 reports 0 when no status came; a hung-up command that
            // sent none was killed by the hangup.
            Ok(ExitStatus::Code(0)) | Err(_) if hung_up => Ok(ExitStatus::Signal("HUP".into())),
            other => other,
        }
    }
}

impl Drop for SshPty {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        // Hang the remote side up now rather than when the connection ends,
        // but never wait long on a connection that may be gone.
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match self.channel.close() {
                Ok(()) => return,
                Err(e) => {
                    if self.conn.classify("", e).is_some() {
                        return;
                    }
                }
            }
            if !matches!(self.conn.wait(Some(deadline)), Ok(true)) {
                return;
            }
        }
    }
}
