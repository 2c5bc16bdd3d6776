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
        })
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

/// Hands the configured algorithm lists to libssh2 (see
/// [`method_preferences`]).
fn apply_algorithms(
    session: &Session,
    config: &HostConfig,
    entries: &[known_hosts::Entry],
) -> Result<()> {
    for (_, method, list) in method_preferences(session, config, entries)? {
        // libssh2 keeps its previous preference when it refuses one, which
        // can only happen for names it listed as supported itself.
        let _ = session.method_pref(method, &list.join(","));
    }
    Ok(())
}

/// What libssh2 will offer for each algorithm list of `config` (what `mq
/// config --ssh` shows), without libssh2's protocol markers.
pub fn offered_algorithms(config: &HostConfig) -> Result<Vec<(AlgorithmKind, Vec<String>)>> {
    let session = Session::new().map_err(|e| TransportError::Ssh {
        context: "creating a session".into(),
        detail: e.message().to_string(),
    })?;
    let mut offered: Vec<(AlgorithmKind, Vec<String>)> = Vec::new();
    for (kind, _, mut list) in method_preferences(&session, config, &[])? {
        list.retain(|m| !is_protocol_marker(m));
        if !offered.iter().any(|(k, _)| *k == kind) {
            offered.push((kind, list));
        }
    }
    Ok(offered)
}

fn is_protocol_marker(name: &str) -> bool {
    name.starts_with("ext-info-") || name.starts_with("kex-strict-")
}

/// The configured algorithm lists, in the configuration's order, keeping
/// what libssh2 supports, for each of libssh2's method types; host key types
/// recorded in known_hosts go first (as OpenSSH does), so the server shows a
/// key mq can check. A list libssh2 cannot meet at all is an error naming
/// its line.
fn method_preferences(
    session: &Session,
    config: &HostConfig,
    entries: &[known_hosts::Entry],
) -> Result<Vec<(AlgorithmKind, MethodType, Vec<String>)>> {
    let methods: [(AlgorithmKind, &[MethodType]); 5] = [
        (AlgorithmKind::Kex, &[MethodType::Kex]),
        (AlgorithmKind::HostKeys, &[MethodType::HostKey]),
        (
            AlgorithmKind::Ciphers,
            &[MethodType::CryptCs, MethodType::CryptSc],
        ),
        (AlgorithmKind::Macs, &[MethodType::MacCs, MethodType::MacSc]),
        (AlgorithmKind::PubkeyAccepted, &[MethodType::SignAlgo]),
    ];
    let mut preferences = Vec::new();
    for (kind, types) in methods {
        let wanted = config.algorithm_list(kind);
        for &method in types {
            let supported = session.supported_algs(method).unwrap_or_default();
            if supported.is_empty() {
                continue;
            }
            let mut usable = algs::usable(wanted, &supported);
            if usable.is_empty() {
                return Err(unmet_algorithms(config, kind, &supported));
            }
            match kind {
                AlgorithmKind::HostKeys => {
                    // mq checks plain keys against known_hosts; a certificate
                    // would be a key it has no record of.
                    usable.retain(|m| !m.ends_with("-cert-v01@openssh.com"));
                    let known = known_hosts::preferred_methods(entries);
                    usable.sort_by_key(|m| !known.contains(&m.as_str()));
                }
                AlgorithmKind::Kex => {
                    // libssh2's protocol markers (ext-info-c, strict key
                    // exchange against Terrapin) are not algorithms anyone
                    // configures: keep them.
                    usable.extend(
                        supported
                            .iter()
                            .filter(|m| is_protocol_marker(m))
                            .map(|m| m.to_string()),
                    );
                }
                _ => {}
            }
            preferences.push((kind, method, usable));
        }
    }
    Ok(preferences)
}

fn unmet_algorithms(
    config: &HostConfig,
    kind: AlgorithmKind,
    supported: &[&str],
) -> TransportError {
    let (file, line, text) = match config.algorithm_origin(kind) {
        Some(o) => (o.file.clone(), o.line, o.text.clone()),
        None => (
            "ssh configuration".to_string(),
            0,
            format!(
                "{} {}",
                kind.keyword(),
                config.algorithm_list(kind).join(",")
            ),
        ),
    };
    TransportError::Config {
        file,
        line,
        message: format!(
            "none of these algorithms is supported by libssh2: {text} (libssh2 has: {}); \
             --transport openssh uses the system ssh client",
            supported.join(",")
        ),
    }
}

/// Checks the key the server presented against known_hosts (and
/// KnownHostsCommand, RevokedHostKeys), recording an unknown one where
/// StrictHostKeyChecking allows.
fn check_host_key(
    session: &Session,
    options: &SshOptions,
    config: &HostConfig,
    endpoint: &str,
    lookup: &str,
    mut entries: Vec<known_hosts::Entry>,
) -> Result<()> {
    let (key, _) = session
        .host_key()
        .ok_or_else(|| TransportError::Handshake {
            endpoint: endpoint.to_string(),
            detail: "the server presented no host key".into(),
        })?;
    let key = key.to_vec();
    let key_type = known_hosts::key_type(&key).unwrap_or_else(|| "unknown".into());
    let fingerprint = known_hosts::fingerprint(&key);
    if let Some(command) = &config.known_hosts_command {
        entries.extend(known_hosts_command(options, config, command, lookup, &key)?);
    }
    for file in &config.revoked_host_keys {
        if let Some(line) = known_hosts::revoked_in(file, &key) {
            return Err(TransportError::HostKeyRevoked {
                host: lookup.to_string(),
                fingerprint,
                known_hosts: file.clone(),
                line,
            });
        }
    }
    let user_file = config
        .user_known_hosts
        .first()
        .cloned()
        .unwrap_or_else(|| options.home.join(".ssh/known_hosts"));
    match known_hosts::verify(&entries, &key) {
        Verdict::Known => Ok(()),
        Verdict::Revoked(entry) => Err(TransportError::HostKeyRevoked {
            host: lookup.to_string(),
            fingerprint,
            known_hosts: entry.file,
            line: entry.line,
        }),
        Verdict::Changed(entry) => Err(TransportError::HostKeyMismatch {
            host: lookup.to_string(),
            key_type,
            fingerprint,
            known_hosts: entry.file,
            line: entry.line,
        }),
        Verdict::Unknown => match config.strict_host_key_checking {
            StrictHostKeyChecking::Yes | StrictHostKeyChecking::Ask => {
                Err(TransportError::UnknownHostKey {
                    host: lookup.to_string(),
                    key_type,
                    fingerprint,
                    known_hosts: user_file,
                    policy: config.strict_host_key_checking.name().to_string(),
                })
            }
            StrictHostKeyChecking::AcceptNew | StrictHostKeyChecking::No => {
                known_hosts::record(&user_file, lookup, &key, config.hash_known_hosts)
                    .map_err(TransportError::local_file(&user_file))
            }
        },
    }
}

/// Runs KnownHostsCommand as OpenSSH does (split into words, no shell,
/// tokens expanded in each) and reads its output as known_hosts lines.
fn known_hosts_command(
    options: &SshOptions,
    config: &HostConfig,
    command: &str,
    lookup: &str,
    key: &[u8],
) -> Result<Vec<known_hosts::Entry>> {
    let user = config
        .user
        .clone()
        .unwrap_or_else(|| options.local_user.clone());
    let tokens = config::command_tokens(config, &options.context(), &user)
        .with('H', lookup)
        .with('I', "HOSTNAME")
        .with('K', &base64::engine::general_purpose::STANDARD.encode(key))
        .with('t', &known_hosts::key_type(key).unwrap_or_default())
        .with('f', &known_hosts::fingerprint(key));
    let words: Vec<String> = config::split_words(command)
        .unwrap_or_default()
        .iter()
        .map(|w| tokens.expand(w))
        .collect();
    let Some((program, args)) = words.split_first() else {
        return Ok(Vec::new());
    };
    let output = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| TransportError::io(format!("running KnownHostsCommand {program}"), e))?;
    if !output.status.success() {
        // OpenSSH goes on with the files alone when the command fails.
        return Ok(Vec::new());
    }
    let name = PathBuf::from(format!("KnownHostsCommand {program}"));
    Ok(known_hosts::entries_in(
        &String::from_utf8_lossy(&output.stdout),
        lookup,
        &name,
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

/// ssh-agent identities first, then the configured key files (OpenSSH's
/// default ones when none is configured), each only if PubkeyAuthentication
/// is on and PubkeyAcceptedAlgorithms accepts its type. When none is
/// accepted, the error says what was tried and what the configuration asks
/// for that mq did not try (GSSAPI, certificates, tokens...).
fn authenticate(
    session: &Session,
    options: &SshOptions,
    config: &HostConfig,
    user: &str,
) -> Result<()> {
    let mut tried = Vec::new();
    let mut untried = config.untried_authentication();
    if config.pubkey_authentication {
        if try_agent(session, options, config, user, &mut tried) {
            return Ok(());
        }
        let files = try_key_files(session, config, user, &mut tried);
        match files {
            KeyFiles::Accepted => return Ok(()),
            KeyFiles::Encrypted(path) => return Err(TransportError::EncryptedKey { path }),
            KeyFiles::Refused => {}
        }
        for key in config
            .identity_files
            .iter()
            .filter(|k| inspect_key(k) == Some(KeyFile::SecurityKey))
        {
            untried.push(format!(
                "{}: security-key identity (libssh2 has no security-key support)",
                key.display()
            ));
        }
    }
    Err(TransportError::AuthFailed {
        user: user.to_string(),
        host: config.hostname.clone(),
        tried,
        untried,
    })
}

/// Whether PubkeyAcceptedAlgorithms lets a key of `key_type` be offered
/// (an RSA key under any of its signature algorithms).
fn key_type_accepted(config: &HostConfig, key_type: &str) -> bool {
    let accepted = config.algorithm_list(AlgorithmKind::PubkeyAccepted);
    accepted.is_empty()
        || accepted.iter().any(|a| match key_type {
            "ssh-rsa" => matches!(a.as_str(), "rsa-sha2-512" | "rsa-sha2-256" | "ssh-rsa"),
            other => a == other,
        })
}

/// Offers the agent's identities (only the configured ones under
/// IdentitiesOnly); true when one was accepted.
fn try_agent(
    session: &Session,
    options: &SshOptions,
    config: &HostConfig,
    user: &str,
    tried: &mut Vec<String>,
) -> bool {
    let agent_path = match config.identity_agent.as_deref() {
        Some(none) if none.eq_ignore_ascii_case("none") => None,
        Some("SSH_AUTH_SOCK") | None => options.agent_socket.clone(),
        Some(path) => Some(PathBuf::from(path)),
    };
    let Some(path) = agent_path else {
        return false;
    };
    let Ok(mut agent) = session.agent() else {
        return false;
    };
    let usable = agent.set_identity_path(&path).is_ok()
        && agent.connect().is_ok()
        && agent.list_identities().is_ok();
    if !usable {
        return false;
    }
    let wanted: Vec<Vec<u8>> = config
        .identity_files
        .iter()
        .filter_map(|k| public_blob(&k.with_extension("pub")))
        .collect();
    let mut accepted = false;
    for identity in agent.identities().unwrap_or_default() {
        if config.identities_only && !wanted.iter().any(|w| w == identity.blob()) {
            continue;
        }
        let key_type = known_hosts::key_type(identity.blob()).unwrap_or_default();
        if !key_type_accepted(config, &key_type) {
            continue;
        }
        tried.push(format!("agent key '{}'", identity.comment()));
        if agent.userauth(user, &identity).is_ok() && session.authenticated() {
            accepted = true;
            break;
        }
    }
    let _ = agent.disconnect();
    accepted
}

/// What offering the key files came to.
enum KeyFiles {
    Accepted,
    /// None was accepted; this one needs a passphrase mq does not ask for.
    Encrypted(PathBuf),
    Refused,
}

fn try_key_files(
    session: &Session,
    config: &HostConfig,
    user: &str,
    tried: &mut Vec<String>,
) -> KeyFiles {
    let mut encrypted = None;
    for key in &config.identity_files {
        match inspect_key(key) {
            Some(KeyFile::Plain) => {}
            Some(KeyFile::Encrypted) => {
                encrypted.get_or_insert_with(|| key.clone());
                continue;
            }
            Some(KeyFile::SecurityKey) | None => continue,
        }
        let public = key.with_extension("pub");
        let public = public.exists().then_some(public);
        let key_type = public
            .as_deref()
            .and_then(public_blob)
            .and_then(|blob| known_hosts::key_type(&blob));
        if key_type.is_some_and(|t| !key_type_accepted(config, &t)) {
            continue;
        }
        tried.push(key.display().to_string());
        if session
            .userauth_pubkey_file(user, public.as_deref(), key, None)
            .is_ok()
            && session.authenticated()
        {
            return KeyFiles::Accepted;
        }
    }
    encrypted.map_or(KeyFiles::Refused, KeyFiles::Encrypted)
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
                    if self.channel.eof() {
                        return Ok(ReadOutcome::Eof);
                    }
                }
            }
            let recheck = Instant::now() + RECHECK;
            let until = deadline.map_or(recheck, |d| d.min(recheck));
            if !self.conn.wait(Some(until))? && deadline.is_some_and(|d| Instant::now() >= d) {
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
                    self.conn.wait(Some(Instant::now() + RECHECK))?;
                }
            }
        }
        Ok(())
    }

    fn hangup(&mut self) -> Result<()> {
        self.hang_up_within(HANGUP_LIMIT)
    }

    fn wait(&mut self) -> Result<ExitStatus> {
        let conn = Arc::clone(&self.conn);
        let deadline = Instant::now() + Duration::from_secs(10);
        let hung_up = self.closed;
        // The output ends when the command exits (or, hung up, is killed).
        match self.drain_to_eof(deadline) {
            Err(e) if !hung_up => return Err(e),
            _ => {}
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
        // Hang the remote side up now rather than when the connection ends,
        // but never wait long on a connection that may be gone.
        let _ = self.hang_up_within(Duration::from_secs(2));
    }
}

/// How long a wait on a quiet socket lasts before libssh2 is asked again:
/// it may hold (an EOF, data of another stream) what the socket no longer
/// signals.
pub(crate) const RECHECK: Duration = Duration::from_millis(100);

/// How long a hangup waits for the remote side to end.
const HANGUP_LIMIT: Duration = Duration::from_secs(10);

impl SshPty {
    /// Reads and drops the output until the remote end's EOF (its command
    /// ended) or `deadline`; an error when the connection failed on the way.
    fn drain_to_eof(&mut self, deadline: Instant) -> Result<()> {
        let mut scratch = [0u8; 4096];
        while !self.channel.eof() {
            match self.channel.read(&mut scratch) {
                Ok(0) if self.channel.eof() => break,
                Ok(_) => continue,
                Err(e) => {
                    if let Some(error) = self.conn.classify_io("finishing the console", e) {
                        return Err(error);
                    }
                }
            }
            let until = deadline.min(Instant::now() + RECHECK);
            if !self.conn.wait(Some(until))? && Instant::now() >= deadline {
                break;
            }
        }
        Ok(())
    }

    /// Hangs the remote side up as the terminal's user would: ^C (the line
    /// discipline sends SIGINT to the foreground job, as `ssh -t` passes a
    /// user's ^C; sshd does not hang a pty up on a channel close while its
    /// process lives), then waits up to `limit` for the remote end to finish
    /// (its output is drained and dropped), then closes the channel.
    fn hang_up_within(&mut self, limit: Duration) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        let deadline = Instant::now() + limit;
        // Best effort: a full window or a dead connection only means the
        // deadline decides.
        let _ = self.channel.write(b"\x03");
        let _ = self.drain_to_eof(deadline);
        self.closed = true;
        loop {
            match self.channel.close() {
                Ok(()) => return Ok(()),
                Err(e) => {
                    if let Some(error) = self.conn.classify("closing the console", e) {
                        return Err(error);
                    }
                }
            }
            if !self.conn.wait(Some(deadline))? {
                return Ok(());
            }
        }
    }
}
