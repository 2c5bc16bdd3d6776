//! The OpenSSH client configuration (`ssh_config(5)`) as it applies to one host.
//!
//! A small parser of our own: the `ssh2-config` crate types only some of the
//! directives mq needs (not ProxyCommand, UserKnownHostsFile or
//! StrictHostKeyChecking), and mq must report directives it cannot honour
//! with their file and line, which needs the parser's positions.
//!
//! Semantics follow OpenSSH: files are read in order (the user's, then the
//! system's), the first value obtained for a directive wins (IdentityFile
//! accumulates), `Host` patterns take `*`, `?`, `!` and several patterns,
//! `Match` takes `all`, `host`, `originalhost`, `user`, `localuser`, `Include`
//! takes globs. `Match exec` and friends cannot be evaluated and are reported.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// A directive mq did not apply, with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The file.
    pub file: String,
    /// The line.
    pub line: usize,
    /// The directive as written (`GSSAPIAuthentication yes`).
    pub text: String,
    /// Why it is listed.
    pub why: &'static str,
}

impl std::fmt::Display for Directive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {} ({})",
            self.file, self.line, self.text, self.why
        )
    }
}

/// Everything the configuration says about connecting to one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// The name asked for (the `Host` alias).
    pub alias: String,
    /// The name or address to connect to.
    pub hostname: String,
    /// The login user (`None`: the local user).
    pub user: Option<String>,
    /// The port.
    pub port: u16,
    /// IdentityFile entries, `~` and `%` tokens expanded.
    pub identity_files: Vec<PathBuf>,
    /// IdentitiesOnly: offer only the configured identities.
    pub identities_only: bool,
    /// IdentityAgent: `None` for the default (SSH_AUTH_SOCK), `Some("none")` for no agent.
    pub identity_agent: Option<String>,
    /// ProxyJump hops, in order (empty: none).
    pub proxy_jump: Vec<Jump>,
    /// ProxyCommand, `%` tokens expanded (`None`: none).
    pub proxy_command: Option<String>,
    /// UserKnownHostsFile list.
    pub user_known_hosts: Vec<PathBuf>,
    /// GlobalKnownHostsFile list.
    pub global_known_hosts: Vec<PathBuf>,
    /// HostKeyAlias: the name looked up in known_hosts instead of the host name.
    pub host_key_alias: Option<String>,
    /// StrictHostKeyChecking.
    pub strict_host_key_checking: StrictHostKeyChecking,
    /// ServerAliveInterval (`None`: mq's default, see [`crate::ssh`]).
    pub server_alive_interval: Option<Duration>,
    /// ServerAliveCountMax.
    pub server_alive_count_max: u32,
    /// ConnectTimeout.
    pub connect_timeout: Option<Duration>,
    /// Compression.
    pub compression: bool,
    /// Directives that would change the connection and cannot be honoured.
    pub refused: Vec<Directive>,
    /// Directives that were read but have no effect here.
    pub ignored: Vec<Directive>,
}

/// What the parser needs to know about this side.
#[derive(Debug, Clone)]
pub struct Context {
    /// The local user's home directory, for `~`.
    pub home: PathBuf,
    /// The local user's name.
    pub local_user: String,
}

struct Line {
    file: String,
    number: usize,
    keyword: String,
    args: Vec<String>,
    raw: String,
}

/// The values being gathered; `None` until the first directive sets it.
#[derive(Default)]
struct Gathered {
    hostname: Option<String>,
    user: Option<String>,
    port: Option<u16>,
    identity_files: Vec<String>,
    identities_only: Option<bool>,
    identity_agent: Option<String>,
    proxy_jump: Option<String>,
    proxy_command: Option<String>,
    user_known_hosts: Option<Vec<String>>,
    global_known_hosts: Option<Vec<String>>,
    host_key_alias: Option<String>,
    strict: Option<StrictHostKeyChecking>,
    alive_interval: Option<u64>,
    alive_count: Option<u32>,
    connect_timeout: Option<u64>,
    compression: Option<bool>,
    refused: Vec<Directive>,
    ignored: Vec<Directive>,
    seen: HashSet<String>,
}

/// Resolves the configuration for `alias` from `files` (missing files are
/// skipped, as OpenSSH does).
pub fn resolve(alias: &str, files: &[PathBuf], ctx: &Context) -> Result<HostConfig> {
    let mut g = Gathered::default();
    for file in files {
        let mut depth = 0;
        apply_file(file, alias, ctx, &mut g, &mut depth)?;
    }
    finish(alias, g, ctx)
}

/// Resolves from configuration text (for tests and embedders).
pub fn resolve_text(alias: &str, text: &str, name: &str, ctx: &Context) -> Result<HostConfig> {
    let mut g = Gathered::default();
    let lines = parse_lines(text, name)?;
    let mut depth = 0;
    apply_lines(&lines, alias, ctx, &mut g, &mut depth, &mut true)?;
    finish(alias, g, ctx)
}

fn apply_file(
    path: &Path,
    alias: &str,
    ctx: &Context,
    g: &mut Gathered,
    depth: &mut usize,
) -> Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(TransportError::Config {
                file: path.display().to_string(),
                line: 0,
                message: format!("cannot read: {e}"),
            })
        }
    };
    let lines = parse_lines(&text, &path.display().to_string())?;
    apply_lines(&lines, alias, ctx, g, depth, &mut true)
}

fn parse_lines(text: &str, name: &str) -> Result<Vec<Line>> {
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (keyword, rest) = split_keyword(trimmed);
        let args = split_args(rest).ok_or_else(|| TransportError::Config {
            file: name.to_string(),
            line: i + 1,
            message: "unbalanced quotes".into(),
        })?;
        lines.push(Line {
            file: name.to_string(),
            number: i + 1,
            keyword: keyword.to_ascii_lowercase(),
            args,
            raw: trimmed.to_string(),
        });
    }
    Ok(lines)
}

/// `Keyword value`, `Keyword=value` or `Keyword = value`.
fn split_keyword(line: &str) -> (&str, &str) {
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let (keyword, rest) = line.split_at(end);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim_start();
    (keyword, rest)
}

/// Whitespace-separated arguments; double quotes group.
fn split_args(text: &str) -> Option<Vec<String>> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    args.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            c => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if quoted {
        return None;
    }
    if in_word {
        args.push(current);
    }
    Some(args)
}

/// Whether `name` matches an ssh_config pattern list (`a,b` or separate
/// arguments; `!` negates and wins).
fn matches_patterns<'a>(patterns: impl IntoIterator<Item = &'a str>, name: &str) -> bool {
    let mut matched = false;
    for pattern in patterns.into_iter().flat_map(|p| p.split(',')) {
        if let Some(negated) = pattern.strip_prefix('!') {
            if wildcard(negated, name) {
                return false;
            }
        } else if wildcard(pattern, name) {
            matched = true;
        }
    }
    matched
}

/// `*` and `?` wildcard matching, case-insensitive as OpenSSH does for hosts.
pub(crate) fn wildcard(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let n: Vec<char> = name.to_lowercase().chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

fn apply_lines(
    lines: &[Line],
    alias: &str,
    ctx: &Context,
    g: &mut Gathered,
    depth: &mut usize,
    active: &mut bool,
) -> Result<()> {
    for line in lines {
        match line.keyword.as_str() {
            "host" => {
                *active = matches_patterns(line.args.iter().map(String::as_str), alias);
            }
            "match" => {
                *active = evaluate_match(line, alias, ctx, g)?;
            }
            "include" if *active => {
                *depth += 1;
                if *depth > 16 {
                    return Err(config_error(line, "Include nested too deeply"));
                }
                for pattern in &line.args {
                    for path in expand_include(pattern, ctx) {
                        let text = match std::fs::read_to_string(&path) {
                            Ok(text) => text,
                            Err(_) => continue,
                        };
                        let included = parse_lines(&text, &path.display().to_string())?;
                        // An included file's Host lines do not end the
                        // enclosing block's condition for lines after Include.
                        let mut inner_active = true;
                        apply_lines(&included, alias, ctx, g, depth, &mut inner_active)?;
                    }
                }
                *depth -= 1;
            }
            _ if *active => apply_directive(line, g)?,
            _ => {}
        }
    }
    Ok(())
}

fn config_error(line: &Line, message: &str) -> TransportError {
    TransportError::Config {
        file: line.file.clone(),
        line: line.number,
        message: format!("{message}: {}", line.raw),
    }
}

fn evaluate_match(line: &Line, alias: &str, ctx: &Context, g: &mut Gathered) -> Result<bool> {
    let mut args = line.args.iter();
    let mut result = true;
    while let Some(criterion) = args.next() {
        let lower = criterion.to_ascii_lowercase();
        let (negate, name) = match lower.strip_prefix('!') {
            Some(rest) => (true, rest.to_string()),
            None => (false, lower),
        };
        let outcome = match name.as_str() {
            "all" => true,
            "host" | "originalhost" | "user" | "localuser" => {
                let Some(value) = args.next() else {
                    return Err(config_error(line, "Match criterion needs an argument"));
                };
                let subject = match name.as_str() {
                    "host" => g.hostname.clone().unwrap_or_else(|| alias.to_string()),
                    "originalhost" => alias.to_string(),
                    "user" => g.user.clone().unwrap_or_else(|| ctx.local_user.clone()),
                    _ => ctx.local_user.clone(),
                };
                matches_patterns([value.as_str()], &subject)
            }
            "exec" | "canonical" | "final" | "tagged" | "address" | "localaddress"
            | "localport" | "rdomain" | "version" | "sessiontype" | "command" => {
                if result {
                    // Earlier criteria did not rule the block out: whether it
                    // applies depends on something mq cannot evaluate.
                    g.refused.push(Directive {
                        file: line.file.clone(),
                        line: line.number,
                        text: line.raw.clone(),
                        why: "Match criterion mq cannot evaluate",
                    });
                }
                return Ok(false);
            }
            _ => return Err(config_error(line, "unknown Match criterion")),
        };
        result &= outcome != negate;
    }
    Ok(result)
}

fn expand_include(pattern: &str, ctx: &Context) -> Vec<PathBuf> {
    let expanded = expand_tilde(pattern, &ctx.home);
    let path = if expanded.is_absolute() {
        expanded
    } else {
        ctx.home.join(".ssh").join(expanded)
    };
    let Some(file_pattern) = path.file_name().map(|f| f.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    if !file_pattern.contains(['*', '?']) {
        return vec![path];
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| wildcard(&file_pattern, &e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

/// `~` or `~/...` to the home directory.
pub(crate) fn expand_tilde(path: &str, home: &Path) -> PathBuf {
    if path == "~" {
        home.to_path_buf()
    } else if let Some(rest) = path.strip_prefix("~/") {
        home.join(rest)
    } else {
        PathBuf::from(path)
    }
}

fn parse_bool(line: &Line) -> Result<bool> {
    match line.args.first().map(|a| a.to_ascii_lowercase()).as_deref() {
        Some("yes" | "true") => Ok(true),
        Some("no" | "false") => Ok(false),
        _ => Err(config_error(line, "expected yes or no")),
    }
}

fn parse_seconds(line: &Line) -> Result<u64> {
    line.args
        .first()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| config_error(line, "expected a number of seconds"))
}

fn first_arg(line: &Line) -> Result<String> {
    line.args
        .first()
        .cloned()
        .ok_or_else(|| config_error(line, "missing argument"))
}

fn apply_directive(line: &Line, g: &mut Gathered) -> Result<()> {
    let k = line.keyword.as_str();
    // First obtained value wins, except for the lists that accumulate.
    let first_time = k == "identityfile" || g.seen.insert(k.to_string());
    if !first_time {
        return Ok(());
    }
    let note = |why: &'static str| Directive {
        file: line.file.clone(),
        line: line.number,
        text: line.raw.clone(),
        why,
    };
    match k {
        "hostname" => g.hostname = Some(first_arg(line)?),
        "user" => g.user = Some(first_arg(line)?),
        "port" => {
            g.port = Some(
                first_arg(line)?
                    .parse()
                    .map_err(|_| config_error(line, "bad port"))?,
            )
        }
        "identityfile" => g.identity_files.push(first_arg(line)?),
        "identitiesonly" => g.identities_only = Some(parse_bool(line)?),
        "identityagent" => g.identity_agent = Some(first_arg(line)?),
        "proxyjump" => g.proxy_jump = Some(first_arg(line)?),
        "proxycommand" => g.proxy_command = Some(line.args.join(" ")),
        "userknownhostsfile" => g.user_known_hosts = Some(line.args.clone()),
        "globalknownhostsfile" => g.global_known_hosts = Some(line.args.clone()),
        "hostkeyalias" => g.host_key_alias = Some(first_arg(line)?),
        "stricthostkeychecking" => {
            g.strict = Some(match first_arg(line)?.to_ascii_lowercase().as_str() {
                "yes" | "true" => StrictHostKeyChecking::Yes,
                "accept-new" => StrictHostKeyChecking::AcceptNew,
                "no" | "off" | "false" => StrictHostKeyChecking::No,
                "ask" => StrictHostKeyChecking::Ask,
                _ => return Err(config_error(line, "bad StrictHostKeyChecking")),
            })
        }
        "serveraliveinterval" => g.alive_interval = Some(parse_seconds(line)?),
        "serveralivecountmax" => g.alive_count = Some(parse_seconds(line)? as u32),
        "connecttimeout" => g.connect_timeout = Some(parse_seconds(line)?),
        "compression" => g.compression = Some(parse_bool(line)?),
        "gssapiauthentication" | "gssapikeyexchange" | "gssapidelegatecredentials" => {
            if parse_bool(line)? {
                g.refused.push(note("GSSAPI is not supported by libssh2"));
            }
        }
        "pkcs11provider" | "securitykeyprovider" => {
            if !first_arg(line)?.eq_ignore_ascii_case("none") {
                g.refused
                    .push(note("hardware-token keys are not supported by libssh2"));
            }
        }
        "canonicalizehostname" => {
            if !first_arg(line)?.eq_ignore_ascii_case("no") {
                g.refused
                    .push(note("host name canonicalization is not supported"));
            }
        }
        "proxyusefdpass" => {
            if parse_bool(line)? {
                g.refused.push(note("ProxyUseFdpass is not supported"));
            }
        }
        "tunnel" | "tunneldevice" => {
            if !first_arg(line)?.eq_ignore_ascii_case("no") {
                g.refused.push(note("tunnel devices are not supported"));
            }
        }
        "certificatefile" => g.ignored.push(note(
            "certificates are not used by libssh2; plain keys are tried",
        )),
        "ciphers"
        | "macs"
        | "kexalgorithms"
        | "hostkeyalgorithms"
        | "pubkeyacceptedalgorithms"
        | "pubkeyacceptedkeytypes" => g
            .ignored
            .push(note("libssh2's own algorithm preferences are used")),
        "addressfamily" | "bindaddress" | "bindinterface" | "ipqos" | "rekeylimit" => {
            g.ignored.push(note("not applied by mq's SSH transport"))
        }
        // Irrelevant to mq's one-connection, non-interactive use: connection
        // sharing (mq holds one connection itself), forwarding, terminal and
        // logging options, and authentication knobs whose default is what mq does.
        "controlmaster"
        | "controlpath"
        | "controlpersist"
        | "forwardagent"
        | "forwardx11"
        | "forwardx11trusted"
        | "localforward"
        | "remoteforward"
        | "dynamicforward"
        | "loglevel"
        | "sendenv"
        | "setenv"
        | "requesttty"
        | "remotecommand"
        | "batchmode"
        | "tcpkeepalive"
        | "hashknownhosts"
        | "updatehostkeys"
        | "visualhostkey"
        | "addkeystoagent"
        | "preferredauthentications"
        | "pubkeyauthentication"
        | "passwordauthentication"
        | "kbdinteractiveauthentication"
        | "challengeresponseauthentication"
        | "checkhostip"
        | "escapechar"
        | "exitonforwardfailure"
        | "permitlocalcommand"
        | "localcommand"
        | "usekeychain"
        | "ignoreunknown"
        | "connectionattempts"
        | "numberofpasswordprompts"
        | "forkafterauthentication"
        | "stdinnull"
        | "sessiontype"
        | "xauthlocation"
        | "enableescapecommandline"
        | "verifyhostkeydns"
        | "nohostauthenticationforlocalhost"
        | "hostbasedauthentication"
        | "clearallforwardings"
        | "streamlocalbindunlink"
        | "streamlocalbindmask"
        | "gatewayports"
        | "fingerprinthash"
        | "revokedhostkeys"
        | "canonicaldomains"
        | "canonicalizefallbacklocal"
        | "canonicalizemaxdots"
        | "canonicalizepermittedcnames"
        | "serverkeybits"
        | "tag"
        | "obscurekeystroketiming"
        | "knownhostscommand"
        | "identityagentforward"
        | "channeltimeout"
        | "requiredrsasize"
        | "protocol"
        | "useprivilegedport"
        | "logverbose"
        | "syslogfacility"
        | "casignaturealgorithms"
        | "hostbasedacceptedalgorithms"
        | "persourcepenalties"
        | "warnweakcrypto" => {}
        _ => g.ignored.push(note("unknown directive")),
    }
    Ok(())
}

/// Expands `%h %p %r %u %n %d %%` in `text`.
pub(crate) fn expand_tokens(text: &str, tokens: &[(char, &str)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(t) => match tokens.iter().find(|(k, _)| *k == t) {
                Some((_, v)) => out.push_str(v),
                None => {
                    out.push('%');
                    out.push(t);
                }
            },
            None => out.push('%'),
        }
    }
    out
}

fn finish(alias: &str, g: Gathered, ctx: &Context) -> Result<HostConfig> {
    let hostname_raw = g.hostname.unwrap_or_else(|| alias.to_string());
    let hostname = expand_tokens(&hostname_raw, &[('h', alias)]);
    let port = g.port.unwrap_or(22);
    let user = g.user;
    let remote_user = user.clone().unwrap_or_else(|| ctx.local_user.clone());
    let port_s = port.to_string();
    let home_s = ctx.home.display().to_string();
    let tokens: Vec<(char, &str)> = vec![
        ('h', hostname.as_str()),
        ('p', port_s.as_str()),
        ('r', remote_user.as_str()),
        ('u', ctx.local_user.as_str()),
        ('n', alias),
        ('d', home_s.as_str()),
    ];
    let path = |p: &str| expand_tilde(&expand_tokens(p, &tokens), &ctx.home);
    let proxy_jump = match g.proxy_jump.as_deref() {
        None => Vec::new(),
        Some(none) if none.eq_ignore_ascii_case("none") => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|hop| {
                Jump::parse(hop.trim()).ok_or_else(|| TransportError::Config {
                    file: "ssh configuration".into(),
                    line: 0,
                    message: format!("bad ProxyJump hop '{hop}' for {alias}"),
                })
            })
            .collect::<Result<_>>()?,
    };
    let proxy_command = g
        .proxy_command
        .filter(|c| !c.eq_ignore_ascii_case("none"))
        .map(|c| expand_tokens(&c, &tokens));
    let known = |list: Option<Vec<String>>, default: &[&str]| -> Vec<PathBuf> {
        match list {
            Some(list) => list
                .iter()
                .filter(|p| !p.eq_ignore_ascii_case("none"))
                .map(|p| path(p))
                .collect(),
            None => default.iter().map(|p| path(p)).collect(),
        }
    };
    Ok(HostConfig {
        alias: alias.to_string(),
        user,
        port,
        identity_files: g.identity_files.iter().map(|p| path(p)).collect(),
        identities_only: g.identities_only.unwrap_or(false),
        identity_agent: g.identity_agent.map(|a| {
            if a.eq_ignore_ascii_case("none") || a == "SSH_AUTH_SOCK" {
                a
            } else {
                path(&a).display().to_string()
            }
        }),
        proxy_jump,
        proxy_command,
        user_known_hosts: known(
            g.user_known_hosts,
            &["~/.ssh/known_hosts", "~/.ssh/known_hosts2"],
        ),
        global_known_hosts: known(
            g.global_known_hosts,
            &["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"],
        ),
        host_key_alias: g.host_key_alias,
        strict_host_key_checking: g.strict.unwrap_or(StrictHostKeyChecking::Ask),
        server_alive_interval: g.alive_interval.filter(|&s| s > 0).map(Duration::from_secs),
        server_alive_count_max: g.alive_count.unwrap_or(3).max(1),
        connect_timeout: g
            .connect_timeout
            .filter(|&s| s > 0)
            .map(Duration::from_secs),
        compression: g.compression.unwrap_or(false),
        refused: g.refused,
        ignored: g.ignored,
        hostname,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context {
            home: PathBuf::from("/home/me"),
            local_user: "me".into(),
        }
    }

    fn resolve_for(alias: &str, text: &str) -> HostConfig {
        resolve_text(alias, text, "cfg", &ctx()).unwrap()
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("*", "anything"));
        assert!(wildcard("lab?", "lab1"));
        assert!(!wildcard("lab?", "lab12"));
        assert!(wildcard("*.cse.unsw.edu.au", "tftp.keg.cse.unsw.edu.au"));
        assert!(wildcard("T*P", "tftp"));
        assert!(!wildcard("a*b", "ac"));
    }

    #[test]
    fn first_value_wins_and_identity_files_accumulate() {
        let c = resolve_for(
            "lab",
            "Host lab\n  HostName 10.0.0.1\n  User alice\n  IdentityFile ~/.ssh/lab_%r\n\
             Host *\n  User nobody\n  Port 2222\n  IdentityFile %d/.ssh/other\n",
        );
        assert_eq!(c.hostname, "10.0.0.1");
        assert_eq!(c.user.as_deref(), Some("alice"));
        assert_eq!(c.port, 2222);
        assert_eq!(
            c.identity_files,
            [
                PathBuf::from("/home/me/.ssh/lab_alice"),
                PathBuf::from("/home/me/.ssh/other")
            ]
        );
    }

    #[test]
    fn negated_and_multiple_patterns() {
        let text = "Host *.lab !bad.lab, other\n  User labuser\n";
        assert_eq!(
            resolve_for("good.lab", text).user.as_deref(),
            Some("labuser")
        );
        assert_eq!(resolve_for("bad.lab", text).user, None);
        assert_eq!(resolve_for("other", text).user.as_deref(), Some("labuser"));
        assert_eq!(resolve_for("elsewhere", text).user, None);
    }

    #[test]
    fn equals_sign_quotes_and_case() {
        let c = resolve_for(
            "x",
            "HOST x\n  hostname=\"my host\"\n  PORT = 23\n  stricthostkeychecking accept-new\n",
        );
        assert_eq!(c.hostname, "my host");
        assert_eq!(c.port, 23);
        assert_eq!(c.strict_host_key_checking, StrictHostKeyChecking::AcceptNew);
    }

    #[test]
    fn proxy_jump_forms() {
        let c = resolve_for(
            "t",
            "Host t\n  ProxyJump alice@jump1:2200,[::1]:22,ssh://bob@j3\n",
        );
        assert_eq!(
            c.proxy_jump,
            [
                Jump {
                    user: Some("alice".into()),
                    host: "jump1".into(),
                    port: Some(2200)
                },
                Jump {
                    user: None,
                    host: "::1".into(),
                    port: Some(22)
                },
                Jump {
                    user: Some("bob".into()),
                    host: "j3".into(),
                    port: None
                },
            ]
        );
        assert!(resolve_for("t", "ProxyJump none\n").proxy_jump.is_empty());
        assert!(resolve_text("t", "ProxyJump a:notaport\n", "cfg", &ctx()).is_err());
    }

    #[test]
    fn proxy_command_tokens() {
        let c = resolve_for(
            "t",
            "Host t\n  HostName real\n  Port 2022\n  User u\n  ProxyCommand nc %h %p # %r %%\n",
        );
        assert_eq!(c.proxy_command.as_deref(), Some("nc real 2022 # u %"));
    }

    #[test]
    fn known_hosts_and_timeouts() {
        let c = resolve_for(
            "t",
            "UserKnownHostsFile ~/kh1 /abs/kh2\nGlobalKnownHostsFile none\nServerAliveInterval 5\nServerAliveCountMax 2\nConnectTimeout 7\n",
        );
        assert_eq!(
            c.user_known_hosts,
            [PathBuf::from("/home/me/kh1"), PathBuf::from("/abs/kh2")]
        );
        assert!(c.global_known_hosts.is_empty());
        assert_eq!(c.server_alive_interval, Some(Duration::from_secs(5)));
        assert_eq!(c.server_alive_count_max, 2);
        assert_eq!(c.connect_timeout, Some(Duration::from_secs(7)));
        let d = resolve_for("t", "");
        assert_eq!(
            d.user_known_hosts[0],
            PathBuf::from("/home/me/.ssh/known_hosts")
        );
        assert_eq!(d.strict_host_key_checking, StrictHostKeyChecking::Ask);
        assert_eq!(d.port, 22);
    }

    #[test]
    fn match_blocks() {
        let text = "Match host *.lab user alice\n  Port 1\nMatch originalhost short\n  HostName short.lab\nMatch all\n  Port 3\n";
        assert_eq!(resolve_for("short", text).hostname, "short.lab");
        assert_eq!(resolve_for("short", text).port, 3);
        let text = "Host x\n  User alice\nMatch host x user alice\n  Port 1\n";
        assert_eq!(resolve_for("x", text).port, 1);
        let text = "Match !host x\n  Port 9\n";
        assert_eq!(resolve_for("x", text).port, 22);
        assert_eq!(resolve_for("y", text).port, 9);
    }

    #[test]
    fn what_cannot_be_honoured_is_reported_with_its_line() {
        let c = resolve_for(
            "t",
            "Host t\n  GSSAPIAuthentication yes\n  Ciphers aes128-ctr\n  ControlMaster auto\n  Frobnicate 1\nMatch exec \"true\"\n  Port 1\nMatch host other exec \"true\"\n  Port 2\n",
        );
        let refused: Vec<String> = c.refused.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            refused,
            [
                "cfg:2: GSSAPIAuthentication yes (GSSAPI is not supported by libssh2)",
                "cfg:6: Match exec \"true\" (Match criterion mq cannot evaluate)",
            ]
        );
        assert_eq!(c.port, 22, "a Match exec block is not applied");
        let ignored: Vec<usize> = c.ignored.iter().map(|d| d.line).collect();
        assert_eq!(ignored, [3, 5], "ControlMaster is irrelevant, not reported");
        // GSSAPI switched off is fine.
        assert!(resolve_for("t", "GSSAPIAuthentication no\n")
            .refused
            .is_empty());
    }

    #[test]
    fn include_with_glob() {
        let dir = tempfile::tempdir().unwrap();
        let ssh = dir.path().join(".ssh");
        std::fs::create_dir_all(ssh.join("config.d")).unwrap();
        std::fs::write(
            ssh.join("config.d/10-lab"),
            "Host lab\n  HostName lab.example\n",
        )
        .unwrap();
        std::fs::write(ssh.join("config.d/20-all"), "Host *\n  User fromglob\n").unwrap();
        std::fs::write(
            ssh.join("config"),
            "Include config.d/*\nHost lab\n  Port 2200\n",
        )
        .unwrap();
        let ctx = Context {
            home: dir.path().to_path_buf(),
            local_user: "me".into(),
        };
        let c = resolve("lab", &[ssh.join("config")], &ctx).unwrap();
        assert_eq!(c.hostname, "lab.example");
        assert_eq!(c.user.as_deref(), Some("fromglob"));
        assert_eq!(c.port, 2200);
    }

    #[test]
    fn bad_values_name_their_line() {
        let err = resolve_text("t", "Host t\n  Port many\n", "cfg", &ctx()).unwrap_err();
        assert_eq!(err.to_string(), "cfg:2: bad port: Port many");
        let err = resolve_text("t", "User \"open\n", "cfg", &ctx()).unwrap_err();
        assert!(err.to_string().starts_with("cfg:1: unbalanced quotes"));
    }
}
