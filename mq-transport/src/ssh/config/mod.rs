//! The OpenSSH client configuration (`ssh_config(5)`) as it applies to one host.
//!
//! The rule: mq connects wherever `ssh -F FILE HOST true` connects with the
//! same files, to the same place, as the same user, with host keys checked at
//! least as strictly. So the configuration is resolved in two ways that end
//! in the same [`Settings`] (keyword → values, as `ssh -G` prints them):
//!
//! * [`Resolver::Openssh`] (the default wherever an `ssh` client is on PATH):
//!   `ssh -G [-F FILE] [-l USER] [-p PORT] HOST` prints the configuration
//!   OpenSSH itself would use, after every `Host`/`Match` block (`exec`
//!   included), canonicalization, `Include` and tokens. mq applies it.
//! * [`Resolver::BuiltIn`] (where no `ssh` client exists): mq's own parser
//!   ([`parse`]), written to agree with `ssh -G` field by field; it evaluates
//!   `Match exec` (through `sh -c`, as OpenSSH does), `Match canonical` and
//!   `final` (a second pass), `CanonicalizeHostname`, `IgnoreUnknown`, and
//!   OpenSSH's algorithm list arithmetic.
//!
//! Then [`HostConfig`] is built from the settings the same way for both:
//! tokens (`%h %p %r %n %u %l %L %i %d %k %j %C`), `~` and `${VAR}` are
//! expanded where OpenSSH expands them, and every directive that was written
//! is sorted into what mq follows, what it skips (preferences libssh2 cannot
//! follow: GSSAPI, agent forwarding, ControlMaster...: listed with their file
//! and line, never a refusal) and what it refuses (what would change where
//! it connects, as whom, or how strictly the host key is checked).

pub mod algorithms;
pub mod parse;
mod tokens;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use self::algorithms::AlgorithmKind;
pub(crate) use self::parse::wildcard;
use self::tokens::TokenSource;
pub(crate) use self::tokens::Tokens;
use crate::{Result, TransportError};

/// OpenSSH's `StrictHostKeyChecking`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrictHostKeyChecking {
    /// Unknown hosts are refused.
    Yes,
    /// Unknown hosts are recorded and accepted; changed keys are refused.
    AcceptNew,
    /// Unknown hosts are recorded and accepted; changed keys are still refused
    /// (mq never connects to a host whose key changed).
    No,
    /// OpenSSH would ask; mq never prompts, so this is [`StrictHostKeyChecking::Yes`].
    Ask,
}

impl StrictHostKeyChecking {
    /// The policy's name as written in ssh_config.
    pub fn name(self) -> &'static str {
        match self {
            StrictHostKeyChecking::Yes => "yes",
            StrictHostKeyChecking::AcceptNew => "accept-new",
            StrictHostKeyChecking::No => "no",
            StrictHostKeyChecking::Ask => "ask",
        }
    }

    fn parse(value: &str) -> Option<StrictHostKeyChecking> {
        Some(match value.to_ascii_lowercase().as_str() {
            "yes" | "true" => StrictHostKeyChecking::Yes,
            "accept-new" => StrictHostKeyChecking::AcceptNew,
            "no" | "off" | "false" => StrictHostKeyChecking::No,
            "ask" => StrictHostKeyChecking::Ask,
            _ => return None,
        })
    }
}

/// OpenSSH's `AddressFamily`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressFamily {
    /// IPv4 or IPv6.
    Any,
    /// IPv4 only.
    Inet,
    /// IPv6 only.
    Inet6,
}

/// One hop of a ProxyJump list: `[user@]host[:port]` or `ssh://[user@]host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jump {
    /// The user, if given.
    pub user: Option<String>,
    /// The host (itself looked up in the configuration).
    pub host: String,
    /// The port, if given.
    pub port: Option<u16>,
}

impl Jump {
    /// Parses one hop.
    pub fn parse(text: &str) -> Option<Jump> {
        let text = text.strip_prefix("ssh://").unwrap_or(text);
        let (user, rest) = match text.rsplit_once('@') {
            Some((user, rest)) => (Some(user.to_string()), rest),
            None => (None, text),
        };
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let (host, after) = inner.split_once(']')?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p.parse().ok()?),
                None if after.is_empty() => None,
                None => return None,
            };
            (host.to_string(), port)
        } else {
            match rest.split_once(':') {
                Some((host, port)) => (host.to_string(), Some(port.parse().ok()?)),
                None => (rest.to_string(), None),
            }
        };
        if host.is_empty() || user.as_deref() == Some("") {
            return None;
        }
        Some(Jump { user, host, port })
    }
}

/// Where a directive was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file.
    pub file: String,
    /// The line.
    pub line: usize,
    /// The directive as written (`GSSAPIAuthentication yes`).
    pub text: String,
}

/// A directive mq skipped or refused, with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The file (`ssh -G` when no line could be found for it).
    pub file: String,
    /// The line (0 when unknown).
    pub line: usize,
    /// The directive as written (`GSSAPIAuthentication yes`).
    pub text: String,
    /// The keyword, lower case (`gssapiauthentication`).
    pub keyword: String,
    /// Why it is listed.
    pub why: &'static str,
}

impl std::fmt::Display for Directive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {} ({})", self.file, self.text, self.why)
        } else {
            write!(
                f,
                "{}:{}: {} ({})",
                self.file, self.line, self.text, self.why
            )
        }
    }
}

/// Resolved settings: keyword (lower case) → values, as `ssh -G` prints them
/// (one value a line; IdentityFile, CertificateFile, SendEnv and SetEnv may
/// have several).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    map: BTreeMap<String, Vec<String>>,
}

impl Settings {
    /// The first value of `keyword`.
    pub fn get(&self, keyword: &str) -> Option<&str> {
        self.map
            .get(keyword)
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    /// Every value of `keyword`.
    pub fn all(&self, keyword: &str) -> &[String] {
        self.map.get(keyword).map_or(&[], Vec::as_slice)
    }

    /// Appends a value.
    pub fn push(&mut self, keyword: &str, value: impl Into<String>) {
        self.map
            .entry(keyword.to_ascii_lowercase())
            .or_default()
            .push(value.into());
    }

    /// Sets the only value.
    pub fn set(&mut self, keyword: &str, value: impl Into<String>) {
        self.map
            .insert(keyword.to_ascii_lowercase(), vec![value.into()]);
    }

    /// Whether `keyword` has a value.
    pub fn has(&self, keyword: &str) -> bool {
        self.map.contains_key(keyword)
    }

    /// Parses `ssh -G`'s output.
    pub fn from_ssh_g(text: &str) -> Settings {
        let mut settings = Settings::default();
        for line in text.lines() {
            let (keyword, value) = line.split_once(' ').unwrap_or((line, ""));
            if !keyword.is_empty() {
                settings.push(keyword, value.trim());
            }
        }
        settings
    }
}

/// How the configuration is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolver {
    /// `ssh -G`, with this `ssh` program.
    Openssh(PathBuf),
    /// mq's own parser.
    BuiltIn,
}

impl Resolver {
    /// `ssh -G` if an `ssh` client is on PATH, else the built-in parser.
    pub fn detect() -> Resolver {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|dir| dir.join("ssh"))
            .find(|candidate| is_executable(candidate))
            .map_or(Resolver::BuiltIn, Resolver::Openssh)
    }

    /// How it is named in `mq config --ssh`.
    pub fn describe(&self) -> String {
        match self {
            Resolver::Openssh(ssh) => format!("{} -G", ssh.display()),
            Resolver::BuiltIn => "mq's built-in ssh_config parser (no ssh client on PATH)".into(),
        }
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Which configuration files are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigFiles {
    /// OpenSSH's own: `~/.ssh/config`, then `/etc/ssh/ssh_config`.
    Default,
    /// Only this file, as `ssh -F FILE`.
    Only(PathBuf),
}

/// The system-wide file OpenSSH reads after the user's.
pub const SYSTEM_CONFIG: &str = "/etc/ssh/ssh_config";

impl ConfigFiles {
    /// The files in order, each with whether it is the system file (an
    /// `Include` of a relative path is under `~/.ssh` in a user file and
    /// under `/etc/ssh` in the system one).
    pub fn paths(&self, home: &Path) -> Vec<(PathBuf, bool)> {
        match self {
            ConfigFiles::Default => vec![
                (home.join(".ssh/config"), false),
                (PathBuf::from(SYSTEM_CONFIG), true),
            ],
            ConfigFiles::Only(file) => vec![(file.clone(), false)],
        }
    }

    /// How they are named to the user.
    pub fn describe(&self) -> String {
        match self {
            ConfigFiles::Default => format!("~/.ssh/config, {SYSTEM_CONFIG}"),
            ConfigFiles::Only(file) => file.display().to_string(),
        }
    }
}

/// What the resolution needs to know about this side.
#[derive(Debug, Clone)]
pub struct Context {
    /// The local user's home directory, for `~` and `%d`.
    pub home: PathBuf,
    /// The local user's name (`%u`).
    pub local_user: String,
    /// The local user's id (`%i`).
    pub uid: u32,
    /// This machine's host name (`%l`; `%L` is its first label).
    pub local_host: String,
}

impl Context {
    /// This process's user and machine, with the passwd home directory as
    /// OpenSSH uses it (not `$HOME`; `$HOME` only when passwd has no entry).
    pub fn current() -> Context {
        let uid = nix::unistd::getuid();
        let entry = nix::unistd::User::from_uid(uid).ok().flatten();
        let home = entry
            .as_ref()
            .map(|u| u.dir.clone())
            .or_else(|| std::env::var_os("HOME").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/"));
        let local_user = entry
            .map(|u| u.name)
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "root".into());
        let local_host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into());
        Context {
            home,
            local_user,
            uid: uid.as_raw(),
            local_host,
        }
    }
}

/// What to resolve: a host, with the user and port a destination gave
/// (`user@host:port`: these win over the files, as on ssh's command line).
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The host as given (a `Host` alias or a name).
    pub host: &'a str,
    /// `-l USER`.
    pub user: Option<&'a str>,
    /// `-p PORT`.
    pub port: Option<u16>,
    /// The files.
    pub files: &'a ConfigFiles,
}

/// Everything the configuration says about connecting to one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// The name asked for (the `Host` alias).
    pub alias: String,
    /// The name or address to connect to.
    pub hostname: String,
    /// The login user (the local user when the configuration sets none, as
    /// OpenSSH does; `None` only for a configuration made by hand).
    pub user: Option<String>,
    /// The port.
    pub port: u16,
    /// IdentityFile entries (OpenSSH's defaults when none is set), expanded.
    pub identity_files: Vec<PathBuf>,
    /// CertificateFile entries, expanded (libssh2 cannot present them).
    pub certificate_files: Vec<PathBuf>,
    /// IdentitiesOnly: offer only the configured identities.
    pub identities_only: bool,
    /// IdentityAgent: `None` for the default (SSH_AUTH_SOCK), `Some("none")` for no agent.
    pub identity_agent: Option<String>,
    /// PubkeyAuthentication: `false` offers no key at all.
    pub pubkey_authentication: bool,
    /// ProxyJump hops, in order (empty: none).
    pub proxy_jump: Vec<Jump>,
    /// ProxyCommand, `%` tokens expanded (`None`: none).
    pub proxy_command: Option<String>,
    /// UserKnownHostsFile list.
    pub user_known_hosts: Vec<PathBuf>,
    /// GlobalKnownHostsFile list.
    pub global_known_hosts: Vec<PathBuf>,
    /// KnownHostsCommand, tokens not yet expanded (they need the key).
    pub known_hosts_command: Option<String>,
    /// RevokedHostKeys files (plain public keys).
    pub revoked_host_keys: Vec<PathBuf>,
    /// HostKeyAlias: the name looked up in known_hosts instead of the host name.
    pub host_key_alias: Option<String>,
    /// StrictHostKeyChecking.
    pub strict_host_key_checking: StrictHostKeyChecking,
    /// HashKnownHosts: new known_hosts entries are written hashed.
    pub hash_known_hosts: bool,
    /// ServerAliveInterval (`None`: mq's default, see [`crate::ssh`]).
    pub server_alive_interval: Option<Duration>,
    /// ServerAliveCountMax.
    pub server_alive_count_max: u32,
    /// ConnectTimeout.
    pub connect_timeout: Option<Duration>,
    /// Compression.
    pub compression: bool,
    /// AddressFamily.
    pub address_family: AddressFamily,
    /// The algorithm lists (OpenSSH's order), by kind.
    pub algorithms: Vec<(AlgorithmKind, Vec<String>)>,
    /// Where each algorithm list was set, if it was.
    pub algorithm_origins: Vec<(AlgorithmKind, Origin)>,
    /// Directives that would change the connection and cannot be honoured.
    pub refused: Vec<Directive>,
    /// Directives that were written but are not followed (preferences).
    pub skipped: Vec<Directive>,
    /// How the configuration was resolved ([`Resolver::describe`]).
    pub resolved_by: String,
}

impl HostConfig {
    /// The list of `kind`.
    pub fn algorithm_list(&self, kind: AlgorithmKind) -> &[String] {
        self.algorithms
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(&[], |(_, list)| list.as_slice())
    }

    /// Where the list of `kind` was set, as `file:line: text`.
    pub fn algorithm_origin(&self, kind: AlgorithmKind) -> Option<&Origin> {
        self.algorithm_origins
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, o)| o)
    }

    /// The skipped directives that are ways to authenticate mq did not try,
    /// for the authentication error.
    pub fn untried_authentication(&self) -> Vec<String> {
        self.skipped
            .iter()
            .filter(|d| AUTH_KEYWORDS.contains(&d.keyword.as_str()))
            .map(|d| d.to_string())
            .collect()
    }
}

const AUTH_KEYWORDS: &[&str] = &[
    "gssapiauthentication",
    "certificatefile",
    "pkcs11provider",
    "securitykeyprovider",
    "hostbasedauthentication",
    "pubkeyauthentication",
];

/// Resolves the configuration for a request.
pub fn resolve(request: &Request<'_>, ctx: &Context, resolver: &Resolver) -> Result<HostConfig> {
    match resolver {
        Resolver::Openssh(ssh) => {
            let settings = ssh_g(ssh, request)?;
            // Where each directive was written, for what mq lists: mq's own
            // reading of the same files, with `Match exec` taken as matching
            // rather than run a second time.
            let origins = parse::origins(request, ctx).unwrap_or_default();
            build(request.host, &settings, &origins, &[], ctx, resolver)
        }
        Resolver::BuiltIn => {
            let parsed = parse::resolve(request, ctx, true)?;
            build(
                request.host,
                &parsed.settings,
                &parsed.origins,
                &parsed.refused,
                ctx,
                resolver,
            )
        }
    }
}

/// Runs `ssh -G` for the request.
fn ssh_g(ssh: &Path, request: &Request<'_>) -> Result<Settings> {
    let mut command = Command::new(ssh);
    command.arg("-G");
    if let ConfigFiles::Only(file) = request.files {
        command.arg("-F").arg(file);
    }
    if let Some(user) = request.user {
        command.arg("-l").arg(user);
    }
    if let Some(port) = request.port {
        command.arg("-p").arg(port.to_string());
    }
    // `--` ends the options: a host named like an option is a host.
    command.arg("--").arg(request.host);
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| TransportError::io(format!("running {} -G", ssh.display()), e))?;
    if !output.status.success() {
        return Err(ssh_g_error(&String::from_utf8_lossy(&output.stderr)));
    }
    Ok(Settings::from_ssh_g(&String::from_utf8_lossy(
        &output.stdout,
    )))
}

/// OpenSSH's refusal (`FILE line N: MESSAGE`), with its file and line.
fn ssh_g_error(stderr: &str) -> TransportError {
    let relevant: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("Pseudo-terminal") && !l.trim().is_empty())
        .collect();
    for line in &relevant {
        if let Some((file, rest)) = line.split_once(" line ") {
            if let Some((number, message)) = rest.split_once(": ") {
                if let Ok(number) = number.parse() {
                    return TransportError::Config {
                        file: file.to_string(),
                        line: number,
                        message: format!("{message} (ssh -G refuses this configuration)"),
                    };
                }
            }
        }
    }
    TransportError::Config {
        file: "ssh -G".into(),
        line: 0,
        message: relevant.join("; "),
    }
}

/// Turns resolved settings into what the transport applies.
pub(crate) fn build(
    alias: &str,
    s: &Settings,
    origins: &BTreeMap<String, Origin>,
    refused: &[Directive],
    ctx: &Context,
    resolver: &Resolver,
) -> Result<HostConfig> {
    let read = Reader { s, origins };
    let hostname = s
        .get("hostname")
        .map(str::to_string)
        .unwrap_or_else(|| alias.to_ascii_lowercase());
    let port = match s.get("port") {
        None => 22,
        Some(p) => p.parse().map_err(|_| read.bad("port", "bad port"))?,
    };
    let remote_user = s
        .get("user")
        .map_or_else(|| ctx.local_user.clone(), str::to_string);
    let host_key_alias = read.text("hostkeyalias");
    let jump_text = s.get("proxyjump").filter(|j| !is_none(j));
    let tokens = Tokens::new(&TokenSource {
        alias,
        hostname: &hostname,
        port,
        remote_user: &remote_user,
        host_key_alias: host_key_alias.as_deref(),
        jump: jump_text,
        context: ctx,
    });
    let paths = Paths {
        read: &read,
        tokens: &tokens,
        home: &ctx.home,
    };
    let (skipped, mut refused_now) = sort_directives(s, origins);
    refused_now.extend(refused.iter().cloned());
    let revoked_host_keys = paths.optional("revokedhostkeys")?;
    refused_now.extend(binary_revocation_lists(&read, &revoked_host_keys));

    Ok(HostConfig {
        alias: alias.to_string(),
        user: Some(remote_user.clone()),
        port,
        identity_files: identity_files(&paths, &ctx.home)?,
        certificate_files: paths.all("certificatefile", s.all("certificatefile"))?,
        identities_only: read.flag("identitiesonly", false)?,
        identity_agent: identity_agent(&read, &paths)?,
        pubkey_authentication: read.flag("pubkeyauthentication", true).unwrap_or(true),
        proxy_jump: proxy_jump(&read, jump_text)?,
        proxy_command: proxy_command(s, alias, &hostname, port, &remote_user),
        user_known_hosts: paths.or_default(
            "userknownhostsfile",
            "~/.ssh/known_hosts ~/.ssh/known_hosts2",
        )?,
        global_known_hosts: paths.or_default(
            "globalknownhostsfile",
            "/etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2",
        )?,
        known_hosts_command: read.text("knownhostscommand"),
        revoked_host_keys,
        host_key_alias,
        strict_host_key_checking: strict_checking(&read, s)?,
        hash_known_hosts: read.flag("hashknownhosts", false)?,
        server_alive_interval: read.seconds("serveraliveinterval")?,
        server_alive_count_max: alive_count_max(&read)?,
        connect_timeout: read.seconds("connecttimeout")?,
        compression: read.flag("compression", false)?,
        address_family: read.address_family()?,
        algorithms: read.algorithms(),
        algorithm_origins: read.algorithm_origins(),
        refused: refused_now,
        skipped,
        resolved_by: resolver.describe(),
        hostname,
    })
}

/// StrictHostKeyChecking (OpenSSH's default: ask).
fn strict_checking(read: &Reader<'_>, s: &Settings) -> Result<StrictHostKeyChecking> {
    match s.get("stricthostkeychecking") {
        None => Ok(StrictHostKeyChecking::Ask),
        Some(v) => StrictHostKeyChecking::parse(v)
            .ok_or_else(|| read.bad("stricthostkeychecking", "bad StrictHostKeyChecking")),
    }
}

/// ServerAliveCountMax: 3 unless set, at least 1.
fn alive_count_max(read: &Reader<'_>) -> Result<u32> {
    Ok(read
        .number("serveralivecountmax")?
        .unwrap_or(3)
        .clamp(1, u32::MAX as u64) as u32)
}

fn is_none(value: &str) -> bool {
    value.eq_ignore_ascii_case("none")
}

/// Typed reads of resolved settings; a value that does not parse is an error naming its file and line.
struct Reader<'a> {
    s: &'a Settings,
    origins: &'a BTreeMap<String, Origin>,
}

impl Reader<'_> {
    fn bad(&self, keyword: &str, what: &str) -> TransportError {
        let origin = self.origins.get(keyword);
        TransportError::Config {
            file: origin.map_or_else(|| "ssh configuration".into(), |o| o.file.clone()),
            line: origin.map_or(0, |o| o.line),
            message: format!("{what}: {keyword} {}", self.s.get(keyword).unwrap_or("")),
        }
    }

    /// A value other than `none`.
    fn text(&self, keyword: &str) -> Option<String> {
        self.s
            .get(keyword)
            .filter(|v| !is_none(v))
            .map(str::to_string)
    }

    fn flag(&self, keyword: &str, default: bool) -> Result<bool> {
        match self.s.get(keyword).map(str::to_ascii_lowercase) {
            None => Ok(default),
            Some(v) if matches!(v.as_str(), "yes" | "true") => Ok(true),
            Some(v) if matches!(v.as_str(), "no" | "false") => Ok(false),
            Some(_) => Err(self.bad(keyword, "expected yes or no")),
        }
    }

    fn number(&self, keyword: &str) -> Result<Option<u64>> {
        match self.s.get(keyword) {
            None => Ok(None),
            Some(v) if is_none(v) => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| self.bad(keyword, "expected a number")),
        }
    }

    /// A number of seconds where 0 means "not set".
    fn seconds(&self, keyword: &str) -> Result<Option<Duration>> {
        Ok(self
            .number(keyword)?
            .filter(|&n| n > 0)
            .map(Duration::from_secs))
    }

    fn address_family(&self) -> Result<AddressFamily> {
        match self
            .s
            .get("addressfamily")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("any") => Ok(AddressFamily::Any),
            Some("inet") => Ok(AddressFamily::Inet),
            Some("inet6") => Ok(AddressFamily::Inet6),
            Some(_) => Err(self.bad("addressfamily", "expected any, inet or inet6")),
        }
    }

    /// The keyword setting an algorithm list, or its older name where the list has one.
    fn algorithm_keyword(&self, kind: AlgorithmKind) -> &'static str {
        match kind {
            AlgorithmKind::PubkeyAccepted
                if !self.s.has(kind.keyword()) && self.s.has("pubkeyacceptedkeytypes") =>
            {
                "pubkeyacceptedkeytypes"
            }
            _ => kind.keyword(),
        }
    }

    /// Each algorithm list: configured, or OpenSSH's default.
    fn algorithms(&self) -> Vec<(AlgorithmKind, Vec<String>)> {
        AlgorithmKind::ALL
            .into_iter()
            .map(|kind| {
                let list = self
                    .s
                    .get(self.algorithm_keyword(kind))
                    .unwrap_or(kind.default_list());
                (kind, list.split(',').map(str::to_string).collect())
            })
            .collect()
    }

    /// Where each configured algorithm list came from.
    fn algorithm_origins(&self) -> Vec<(AlgorithmKind, Origin)> {
        AlgorithmKind::ALL
            .into_iter()
            .filter_map(|kind| {
                let origin = self.origins.get(self.algorithm_keyword(kind))?;
                Some((kind, origin.clone()))
            })
            .collect()
    }
}

/// Path-valued settings, with `~` and `%` tokens expanded.
struct Paths<'a> {
    read: &'a Reader<'a>,
    tokens: &'a Tokens,
    home: &'a Path,
}

impl Paths<'_> {
    fn one(&self, keyword: &str, value: &str) -> Result<PathBuf> {
        self.tokens
            .path(value, self.home)
            .map_err(|why| self.read.bad(keyword, &why))
    }

    /// Every path in `values` (each may list several), `none` dropped.
    fn all(&self, keyword: &str, values: &[String]) -> Result<Vec<PathBuf>> {
        values
            .iter()
            .flat_map(|v| v.split_whitespace())
            .filter(|v| !is_none(v))
            .map(|v| self.one(keyword, v))
            .collect()
    }

    fn or_default(&self, keyword: &str, default: &str) -> Result<Vec<PathBuf>> {
        let list = self.read.s.get(keyword).unwrap_or(default);
        self.all(keyword, &[list.to_string()])
    }

    fn optional(&self, keyword: &str) -> Result<Vec<PathBuf>> {
        self.or_default(keyword, "none")
    }
}

fn identity_files(paths: &Paths, home: &Path) -> Result<Vec<PathBuf>> {
    if paths.read.s.has("identityfile") {
        return paths.all("identityfile", paths.read.s.all("identityfile"));
    }
    Ok(DEFAULT_IDENTITIES
        .iter()
        .map(|name| home.join(".ssh").join(name))
        .collect())
}

/// `IdentityAgent`: `none` and `SSH_AUTH_SOCK` as written, `$VAR` from the environment, else a path.
fn identity_agent(read: &Reader, paths: &Paths) -> Result<Option<String>> {
    Ok(match read.s.get("identityagent") {
        None => None,
        Some(a) if is_none(a) || a == "SSH_AUTH_SOCK" => Some(a.to_string()),
        Some(a) => Some(match a.strip_prefix('$') {
            Some(var) => std::env::var(var.trim_matches(['{', '}'])).unwrap_or_default(),
            None => paths.one("identityagent", a)?.display().to_string(),
        }),
    })
}

fn proxy_jump(read: &Reader, jump_text: Option<&str>) -> Result<Vec<Jump>> {
    let Some(list) = jump_text else {
        return Ok(Vec::new());
    };
    list.split(',')
        .map(|hop| {
            Jump::parse(hop.trim())
                .ok_or_else(|| read.bad("proxyjump", &format!("bad ProxyJump hop '{hop}'")))
        })
        .collect()
}

/// `ProxyCommand`, which takes %h %n %p %r (and %%) only.
fn proxy_command(
    s: &Settings,
    alias: &str,
    hostname: &str,
    port: u16,
    remote_user: &str,
) -> Option<String> {
    let port = port.to_string();
    let tokens = Tokens::from_pairs(&[
        ('h', hostname),
        ('n', alias),
        ('p', &port),
        ('r', remote_user),
    ]);
    s.get("proxycommand")
        .filter(|c| !is_none(c))
        .map(|c| tokens.expand(c))
}

/// A binary KRL among the revoked-key files is refused: mq reads only plain revoked keys.
fn binary_revocation_lists(read: &Reader, files: &[PathBuf]) -> Vec<Directive> {
    files
        .iter()
        .filter(|file| std::fs::read(file).is_ok_and(|bytes| bytes.starts_with(b"SSHKRL\n")))
        .map(|_| {
            directive(
                "revokedhostkeys",
                read.origins,
                read.s,
                "a binary key revocation list; mq reads only revoked public keys",
            )
        })
        .collect()
}

/// OpenSSH's default identities, in the order it tries them.
pub const DEFAULT_IDENTITIES: &[&str] = &[
    "id_rsa",
    "id_ecdsa",
    "id_ecdsa_sk",
    "id_ed25519",
    "id_ed25519_sk",
    "id_xmss",
    "id_dsa",
];

fn directive(
    keyword: &str,
    origins: &BTreeMap<String, Origin>,
    s: &Settings,
    why: &'static str,
) -> Directive {
    match origins.get(keyword) {
        Some(o) => Directive {
            file: o.file.clone(),
            line: o.line,
            text: o.text.clone(),
            keyword: keyword.to_string(),
            why,
        },
        None => Directive {
            file: "ssh -G".into(),
            line: 0,
            text: format!("{keyword} {}", s.get(keyword).unwrap_or("")),
            keyword: keyword.to_string(),
            why,
        },
    }
}

/// Directives mq applies itself, or that cannot matter to it: never listed.
const FOLLOWED: &[&str] = &[
    "host",
    "match",
    "include",
    "hostname",
    "user",
    "port",
    "identityfile",
    "identitiesonly",
    "identityagent",
    "proxyjump",
    "proxycommand",
    "userknownhostsfile",
    "globalknownhostsfile",
    "knownhostscommand",
    "revokedhostkeys",
    "hostkeyalias",
    "stricthostkeychecking",
    "hashknownhosts",
    "serveraliveinterval",
    "serveralivecountmax",
    "connecttimeout",
    "compression",
    "addressfamily",
    "ciphers",
    "macs",
    "kexalgorithms",
    "hostkeyalgorithms",
    "pubkeyacceptedalgorithms",
    "pubkeyacceptedkeytypes",
    "batchmode",
    "canonicalizehostname",
    "canonicaldomains",
    "canonicalizemaxdots",
    "canonicalizefallbacklocal",
    "ignoreunknown",
    "tag",
    // mq never prompts, so these have nothing to say to it.
    "passwordauthentication",
    "kbdinteractiveauthentication",
    "challengeresponseauthentication",
    "numberofpasswordprompts",
    "preferredauthentications",
    "fingerprinthash",
];

/// Why a written directive is not followed, if it is not, and whether that
/// refuses the connection. `None`: the value asks for nothing mq skips.
fn not_followed(keyword: &str, value: &str) -> Option<(&'static str, bool)> {
    let v = value.to_ascii_lowercase();
    let off = matches!(v.as_str(), "no" | "false" | "none" | "");
    let skip = |why| Some((why, false));
    match keyword {
        "gssapiauthentication" | "gssapidelegatecredentials" | "gssapikeyexchange" => {
            (!off).then_some(("libssh2 has no GSSAPI", false))
        }
        "pubkeyauthentication" => off.then_some(("no key is offered", false)),
        "certificatefile" => skip("libssh2 cannot present certificates; the plain key is offered"),
        "pkcs11provider" => (!off).then_some(("libssh2 has no PKCS#11 tokens", false)),
        "securitykeyprovider" => {
            (v != "internal").then_some(("libssh2 has no security-key support", false))
        }
        "hostbasedauthentication" => {
            (!off).then_some(("libssh2 does not do host-based authentication here", false))
        }
        "proxyusefdpass" => (!off).then_some((
            "mq cannot take a connected descriptor from the proxy command",
            true,
        )),
        "forwardagent" => (!off).then_some(("mq forwards no agent", false)),
        "forwardx11" | "forwardx11trusted" => (!off).then_some(("mq forwards no X11", false)),
        "localforward" | "remoteforward" | "dynamicforward" => skip("mq opens no forwardings"),
        "sendenv" | "setenv" => skip("mq sends no environment variables"),
        "controlmaster" | "controlpath" | "controlpersist" => {
            (!off).then_some(("mq holds its own one connection", false))
        }
        "addkeystoagent" => (!off).then_some(("mq adds no keys to the agent", false)),
        "updatehostkeys" => (!off).then_some(("mq records no extra host keys", false)),
        "visualhostkey" => (!off).then_some(("mq draws no host key art", false)),
        "checkhostip" => (!off).then_some(("mq checks the host key by name only", false)),
        "verifyhostkeydns" => (!off).then_some(("mq trusts known_hosts, not DNS", false)),
        "nohostauthenticationforlocalhost" => {
            (!off).then_some(("mq checks localhost's key like any other", false))
        }
        "tcpkeepalive" => off.then_some(("mq keeps its own TCP timeout", false)),
        "usekeychain" => skip("macOS only"),
        _ => skip("not applied by mq's SSH transport"),
    }
}

/// Sorts every written directive (those with an origin) into skipped and
/// refused, by the value the resolution settled on.
fn sort_directives(
    s: &Settings,
    origins: &BTreeMap<String, Origin>,
) -> (Vec<Directive>, Vec<Directive>) {
    let mut skipped = Vec::new();
    let mut refused = Vec::new();
    for (keyword, origin) in origins {
        if FOLLOWED.contains(&keyword.as_str()) {
            continue;
        }
        // The value in force (ssh -G's, or the parser's first value); the
        // written line when ssh -G does not print the keyword.
        let value = s.get(keyword).map(str::to_string).unwrap_or_else(|| {
            origin
                .text
                .split_once(|c: char| c.is_whitespace() || c == '=')
                .map_or(String::new(), |(_, v)| {
                    v.trim().trim_start_matches('=').trim().to_string()
                })
        });
        if let Some((why, refuse)) = not_followed(keyword, &value) {
            let d = directive(keyword, origins, s, why);
            if refuse {
                refused.push(d);
            } else {
                skipped.push(d);
            }
        }
    }
    skipped.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    refused.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    (skipped, refused)
}

/// The `%` tokens of a resolved configuration, for commands run at
/// connection time (KnownHostsCommand).
pub(crate) fn command_tokens(config: &HostConfig, ctx: &Context, user: &str) -> Tokens {
    let jump: Vec<String> = config.proxy_jump.iter().map(|j| j.host.clone()).collect();
    let jump = jump.join(",");
    Tokens::new(&TokenSource {
        alias: &config.alias,
        hostname: &config.hostname,
        port: config.port,
        remote_user: user,
        host_key_alias: config.host_key_alias.as_deref(),
        jump: (!jump.is_empty()).then_some(jump.as_str()),
        context: ctx,
    })
}

/// Splits a command line into words as OpenSSH's `argv_split` does
/// (whitespace separates, double quotes group); `None` for an unbalanced quote.
pub(crate) fn split_words(text: &str) -> Option<Vec<String>> {
    parse::split_args(text)
}
