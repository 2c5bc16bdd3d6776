//! mq's own reading of ssh_config files, for machines with no `ssh` client
//! (and to find the file and line of what `ssh -G` resolved).
//!
//! It follows OpenSSH 9's `readconf.c`: files in order (the user's, then the
//! system's), the first value obtained for a directive wins (IdentityFile,
//! CertificateFile, SendEnv and SetEnv accumulate); `Host` patterns are
//! matched case-sensitively against the name as given, one pattern an
//! argument (a comma is part of the pattern); `Match` takes `all`,
//! `canonical`, `final`, `exec` (run through `$SHELL -c` with its tokens,
//! only when the earlier criteria on the line matched), `host`,
//! `originalhost`, `user`, `localuser` and `tagged`; an unknown keyword is
//! an error unless an earlier `IgnoreUnknown` names it. After the first pass
//! the host name is canonicalized when `CanonicalizeHostname` asks, and the
//! files are read a second time (where `Match canonical`/`final` hold) when
//! canonicalization is on or a `Match final` was seen.

use std::collections::BTreeMap;
use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::algorithms::{self, AlgorithmKind};
use super::tokens::{expand_env, expand_tilde, TokenSource, Tokens};
use super::{Context, Directive, Origin, Request, Settings};
use crate::{Result, TransportError};

/// What the parser settled on.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub settings: Settings,
    pub origins: BTreeMap<String, Origin>,
    pub refused: Vec<Directive>,
}

struct Line {
    file: String,
    number: usize,
    keyword: String,
    args: Vec<String>,
    /// Everything after the keyword, quotes kept (ProxyCommand's value).
    rest: String,
    raw: String,
}

/// One reading of the files.
struct Pass<'a> {
    request: &'a Request<'a>,
    ctx: &'a Context,
    /// The name `Host` lines match.
    host: String,
    /// Whether this is the pass after canonicalization (`Match canonical`,
    /// `Match final` hold).
    final_pass: bool,
    /// Whether `Match exec` commands run (off when only looking for lines).
    run_exec: bool,
    /// Set when a `Match final` is seen.
    want_final: bool,
    depth: usize,
}

/// Resolves the request from its files.
pub(crate) fn resolve(request: &Request<'_>, ctx: &Context, run_exec: bool) -> Result<Parsed> {
    let mut parsed = Parsed::default();
    // The command line's user and port come first, as ssh's -l and -p.
    if let Some(user) = request.user {
        parsed.settings.set("user", user);
    }
    if let Some(port) = request.port {
        parsed.settings.set("port", port.to_string());
    }
    let files: Vec<(PathBuf, bool, Vec<Line>)> = request
        .files
        .paths(&ctx.home)
        .into_iter()
        .map(|(path, system)| Ok((path.clone(), system, read_lines(&path)?)))
        .collect::<Result<_>>()?;
    let mut pass = Pass {
        request,
        ctx,
        host: request.host.to_string(),
        final_pass: false,
        run_exec,
        want_final: false,
        depth: 0,
    };
    for (_, system, lines) in &files {
        pass.apply(lines, *system, &mut parsed, &mut true)?;
    }

    let host = canonical_host(request, &parsed.settings)?;
    let canonicalize = parsed
        .settings
        .get("canonicalizehostname")
        .is_some_and(|v| !matches!(v.to_ascii_lowercase().as_str(), "no" | "false"));
    if canonicalize || pass.want_final {
        pass.host = host.clone();
        pass.final_pass = true;
        parsed.settings.set("hostname", host.clone());
        for (_, system, lines) in &files {
            pass.apply(lines, *system, &mut parsed, &mut true)?;
        }
    }
    parsed.settings.set("hostname", host);
    // OpenSSH: "in batch mode, ServerAliveInterval defaults to 300 seconds".
    let batch = parsed
        .settings
        .get("batchmode")
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "yes" | "true"));
    if batch && !parsed.settings.has("serveraliveinterval") {
        parsed.settings.set("serveraliveinterval", "300");
    }
    Ok(parsed)
}

/// Where each directive in force was written: the same reading with `Match
/// exec` taken as matching instead of run.
pub(crate) fn origins(request: &Request<'_>, ctx: &Context) -> Result<BTreeMap<String, Origin>> {
    resolve(request, ctx, false).map(|p| p.origins)
}

/// The host name after HostName (`%h` expanded), lower-cased unless it is an
/// address, and canonicalized as `CanonicalizeHostname` asks.
fn canonical_host(request: &Request<'_>, s: &Settings) -> Result<String> {
    let mut host = match s.get("hostname") {
        Some(h) => Tokens::from_pairs(&[('h', request.host)]).expand(h),
        None => request.host.to_string(),
    };
    let is_address = host.parse::<std::net::IpAddr>().is_ok();
    if is_address {
        return Ok(host);
    }
    host = host.to_ascii_lowercase();
    let mode = s
        .get("canonicalizehostname")
        .unwrap_or("no")
        .to_ascii_lowercase();
    let direct = ["proxycommand", "proxyjump"]
        .iter()
        .all(|k| s.get(k).is_none_or(|v| v.eq_ignore_ascii_case("none")));
    let wanted = match mode.as_str() {
        "always" => true,
        "yes" | "true" => direct,
        _ => false,
    };
    if !wanted {
        return Ok(host);
    }
    if let Some(anchored) = host.strip_suffix('.') {
        return Ok(anchored.to_string());
    }
    let max_dots: usize = s
        .get("canonicalizemaxdots")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    if host.matches('.').count() > max_dots {
        return Ok(host);
    }
    let port: u16 = s.get("port").and_then(|p| p.parse().ok()).unwrap_or(22);
    for domain in s.get("canonicaldomains").unwrap_or("").split_whitespace() {
        if domain.eq_ignore_ascii_case("none") {
            break;
        }
        let candidate = format!("{host}.{domain}");
        if (format!("{candidate}."), port).to_socket_addrs().is_ok() {
            return Ok(candidate);
        }
    }
    let fallback = s
        .get("canonicalizefallbacklocal")
        .is_none_or(|v| !matches!(v.to_ascii_lowercase().as_str(), "no" | "false"));
    if fallback {
        Ok(host)
    } else {
        Err(TransportError::Config {
            file: "ssh configuration".into(),
            line: 0,
            message: format!(
                "could not canonicalize host \"{host}\" in CanonicalDomains, and CanonicalizeFallbackLocal is no"
            ),
        })
    }
}

fn read_lines(path: &Path) -> Result<Vec<Line>> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_lines(&text, &path.display().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(TransportError::Config {
            file: path.display().to_string(),
            line: 0,
            message: format!("cannot read: {e}"),
        }),
    }
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
            rest: rest.to_string(),
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
pub(crate) fn split_args(text: &str) -> Option<Vec<String>> {
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

/// OpenSSH's `match_pattern`: `*` and `?`, case-sensitive.
pub(crate) fn pattern_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
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

/// [`pattern_match`] without regard to case (known_hosts names, `Match
/// host` lists).
pub(crate) fn wildcard(pattern: &str, name: &str) -> bool {
    pattern_match(&pattern.to_lowercase(), &name.to_lowercase())
}

/// A `Host` line: any pattern matches and no negated one does.
fn host_line_matches(patterns: &[String], host: &str) -> bool {
    let mut matched = false;
    for pattern in patterns {
        match pattern.strip_prefix('!') {
            Some(negated) if pattern_match(negated, host) => return false,
            Some(_) => {}
            None => matched |= pattern_match(pattern, host),
        }
    }
    matched
}

/// A `Match` criterion's comma-separated pattern list (`!` negates and wins).
fn pattern_list_matches(list: &str, subject: &str, fold_case: bool) -> bool {
    let fold = |s: &str| {
        if fold_case {
            s.to_lowercase()
        } else {
            s.to_string()
        }
    };
    let subject = fold(subject);
    let mut matched = false;
    for pattern in list.split(',') {
        match pattern.strip_prefix('!') {
            Some(negated) if pattern_match(&fold(negated), &subject) => return false,
            Some(_) => {}
            None => matched |= pattern_match(&fold(pattern), &subject),
        }
    }
    matched
}

fn config_error(line: &Line, message: &str) -> TransportError {
    TransportError::Config {
        file: line.file.clone(),
        line: line.number,
        message: format!("{message}: {}", line.raw),
    }
}

impl Pass<'_> {
    fn apply(
        &mut self,
        lines: &[Line],
        system: bool,
        out: &mut Parsed,
        active: &mut bool,
    ) -> Result<()> {
        for line in lines {
            match line.keyword.as_str() {
                "host" => *active = host_line_matches(&line.args, &self.host),
                "match" => *active = self.evaluate_match(line, out)?,
                "include" => self.include(line, system, out, *active)?,
                keyword if !is_keyword(keyword) => {
                    let ignored = out
                        .settings
                        .get("ignoreunknown")
                        .is_some_and(|list| list.split(',').any(|p| wildcard(p, keyword)));
                    if !ignored {
                        return Err(config_error(line, "Bad configuration option"));
                    }
                }
                _ if *active => apply_directive(line, out)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn include(&mut self, line: &Line, system: bool, out: &mut Parsed, active: bool) -> Result<()> {
        if !active {
            // OpenSSH reads it without applying anything; neither does mq.
            return Ok(());
        }
        self.depth += 1;
        if self.depth > 16 {
            return Err(config_error(line, "Include nested too deeply"));
        }
        for pattern in &line.args {
            let pattern = expand_env(pattern).map_err(|why| config_error(line, &why))?;
            for path in expand_include(&pattern, system, &self.ctx.home) {
                let included = read_lines(&path)?;
                // An included file's Host lines do not end the enclosing
                // block's condition for the lines after Include.
                self.apply(&included, system, out, &mut true)?;
            }
        }
        self.depth -= 1;
        Ok(())
    }

    /// OpenSSH's `match_cfg_line`: every criterion must hold; `exec` runs
    /// only while the earlier ones hold.
    fn evaluate_match(&mut self, line: &Line, out: &mut Parsed) -> Result<bool> {
        let mut args = line.args.iter();
        let mut result = true;
        while let Some(criterion) = args.next() {
            let lower = criterion.to_ascii_lowercase();
            let (negate, name) = match lower.strip_prefix('!') {
                Some(rest) => (true, rest.to_string()),
                None => (false, lower),
            };
            let holds = match name.as_str() {
                "all" => true,
                "canonical" => self.final_pass,
                "final" => {
                    self.want_final = true;
                    self.final_pass
                }
                _ => {
                    let Some(value) = args.next() else {
                        return Err(config_error(line, "Match criterion needs an argument"));
                    };
                    match name.as_str() {
                        "host" => pattern_list_matches(value, &self.match_host(out), true),
                        "originalhost" => pattern_list_matches(value, self.request.host, true),
                        "user" => pattern_list_matches(value, &self.remote_user(out), false),
                        "localuser" => pattern_list_matches(value, &self.ctx.local_user, false),
                        "tagged" => {
                            let tag = out.settings.get("tag").unwrap_or("");
                            pattern_list_matches(value, tag, false)
                        }
                        "exec" => {
                            if !result {
                                // Not run: an earlier criterion already failed.
                                continue;
                            }
                            self.exec(value, out)
                        }
                        "localnetwork" | "version" | "sessiontype" | "command" => {
                            if result {
                                out.refused.push(Directive {
                                    file: line.file.clone(),
                                    line: line.number,
                                    text: line.raw.clone(),
                                    keyword: "match".into(),
                                    why: "Match criterion mq's built-in parser cannot evaluate",
                                });
                            }
                            return Ok(false);
                        }
                        _ => return Err(config_error(line, "Unsupported Match attribute")),
                    }
                }
            };
            if holds == negate {
                result = false;
            }
        }
        Ok(result)
    }

    fn match_host(&self, out: &Parsed) -> String {
        match out.settings.get("hostname") {
            Some(h) if !self.final_pass => {
                Tokens::from_pairs(&[('h', self.request.host)]).expand(h)
            }
            Some(h) => h.to_string(),
            None => self.request.host.to_string(),
        }
    }

    fn remote_user(&self, out: &Parsed) -> String {
        out.settings
            .get("user")
            .map_or_else(|| self.ctx.local_user.clone(), str::to_string)
    }

    /// Runs a `Match exec` command as OpenSSH does: `$SHELL -c`, standard
    /// input and output on /dev/null, true when it exits 0.
    fn exec(&self, command: &str, out: &Parsed) -> bool {
        if !self.run_exec {
            return true;
        }
        let hostname = self.match_host(out);
        let user = self.remote_user(out);
        let port: u16 = out
            .settings
            .get("port")
            .and_then(|p| p.parse().ok())
            .unwrap_or(22);
        let tokens = Tokens::new(&TokenSource {
            alias: self.request.host,
            hostname: &hostname,
            port,
            remote_user: &user,
            host_key_alias: out.settings.get("hostkeyalias"),
            jump: out.settings.get("proxyjump"),
            context: self.ctx,
        });
        let shell = std::env::var("SHELL")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "/bin/sh".into());
        Command::new(shell)
            .arg("-c")
            .arg(tokens.expand(command))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

fn expand_include(pattern: &str, system: bool, home: &Path) -> Vec<PathBuf> {
    let expanded = expand_tilde(pattern, home);
    let path = if expanded.is_absolute() {
        expanded
    } else if system {
        Path::new("/etc/ssh").join(expanded)
    } else {
        home.join(".ssh").join(expanded)
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
        .filter(|e| pattern_match(&file_pattern, &e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

/// Keywords that take several lines, each adding to the list.
const ACCUMULATE: &[&str] = &[
    "identityfile",
    "certificatefile",
    "sendenv",
    "setenv",
    "localforward",
    "remoteforward",
    "dynamicforward",
];

fn apply_directive(line: &Line, out: &mut Parsed) -> Result<()> {
    let k = line.keyword.as_str();
    let k = if k == "pubkeyacceptedkeytypes" {
        "pubkeyacceptedalgorithms"
    } else {
        k
    };
    let accumulates = ACCUMULATE.contains(&k);
    if !accumulates && out.settings.has(k) {
        return Ok(());
    }
    out.origins.entry(k.to_string()).or_insert_with(|| Origin {
        file: line.file.clone(),
        line: line.number,
        text: line.raw.clone(),
    });
    let first = || {
        line.args
            .first()
            .cloned()
            .ok_or_else(|| config_error(line, "missing argument"))
    };
    match k {
        "port" => {
            let port = first()?;
            port.parse::<u16>()
                .map_err(|_| config_error(line, "bad port"))?;
            out.settings.set(k, port);
        }
        "stricthostkeychecking" => {
            let value = first()?;
            if super::StrictHostKeyChecking::parse(&value).is_none() {
                return Err(config_error(line, "bad StrictHostKeyChecking"));
            }
            out.settings.set(k, value);
        }
        "proxycommand" | "knownhostscommand" | "localcommand" | "remotecommand" => {
            out.settings.set(k, line.rest.clone())
        }
        "ciphers" | "macs" | "kexalgorithms" | "hostkeyalgorithms" | "pubkeyacceptedalgorithms" => {
            let kind = AlgorithmKind::ALL
                .into_iter()
                .find(|kind| kind.keyword() == k)
                .expect("an algorithm keyword");
            let list = algorithms::assemble(kind, &first()?);
            if list.is_empty() {
                return Err(config_error(line, "no algorithm in the list is known"));
            }
            out.settings.set(k, list.join(","));
        }
        "ignoreunknown" => out.settings.set(k, line.args.join(",")),
        _ if accumulates => {
            // OpenSSH registers a file or name once, however often it is
            // written (the second pass reads the same lines again).
            for arg in &line.args {
                if !out.settings.all(k).contains(arg) {
                    out.settings.push(k, arg.clone());
                }
            }
        }
        _ => out.settings.set(k, line.args.join(" ")),
    }
    Ok(())
}

/// Whether OpenSSH's client knows the keyword (including the deprecated and
/// unsupported ones it accepts silently, and Debian's GSSAPI additions).
fn is_keyword(keyword: &str) -> bool {
    KEYWORDS.binary_search(&keyword).is_ok()
}

/// OpenSSH 9's client keywords, lower case, sorted.
const KEYWORDS: &[&str] = &[
    "addkeystoagent",
    "addressfamily",
    "afstokenpassing",
    "batchmode",
    "bindaddress",
    "bindinterface",
    "canonicaldomains",
    "canonicalizefallbacklocal",
    "canonicalizehostname",
    "canonicalizemaxdots",
    "canonicalizepermittedcnames",
    "casignaturealgorithms",
    "certificatefile",
    "challengeresponseauthentication",
    "channeltimeout",
    "checkhostip",
    "cipher",
    "ciphers",
    "clearallforwardings",
    "compression",
    "compressionlevel",
    "connectionattempts",
    "connecttimeout",
    "controlmaster",
    "controlpath",
    "controlpersist",
    "dsaauthentication",
    "dynamicforward",
    "enableescapecommandline",
    "enablesshkeysign",
    "escapechar",
    "exitonforwardfailure",
    "fallbacktorsh",
    "fingerprinthash",
    "forkafterauthentication",
    "forwardagent",
    "forwardx11",
    "forwardx11timeout",
    "forwardx11trusted",
    "gatewayports",
    "globalknownhostsfile",
    "globalknownhostsfile2",
    "gssapiauthentication",
    "gssapiclientidentity",
    "gssapidelegatecredentials",
    "gssapikexalgorithms",
    "gssapikeyexchange",
    "gssapirenewalforcesrekey",
    "gssapiserveridentity",
    "gssapitrustdns",
    "hashknownhosts",
    "host",
    "hostbasedacceptedalgorithms",
    "hostbasedauthentication",
    "hostbasedkeytypes",
    "hostkeyalgorithms",
    "hostkeyalias",
    "hostname",
    "identitiesonly",
    "identityagent",
    "identityfile",
    "identityfile2",
    "ignoreunknown",
    "include",
    "ipqos",
    "kbdinteractiveauthentication",
    "kbdinteractivedevices",
    "kerberosauthentication",
    "kerberostgtpassing",
    "kexalgorithms",
    "knownhostscommand",
    "localcommand",
    "localforward",
    "loglevel",
    "logverbose",
    "macs",
    "match",
    "nohostauthenticationforlocalhost",
    "numberofpasswordprompts",
    "obscurekeystroketiming",
    "passwordauthentication",
    "permitlocalcommand",
    "permitremoteopen",
    "pkcs11provider",
    "port",
    "preferredauthentications",
    "protocol",
    "proxycommand",
    "proxyjump",
    "proxyusefdpass",
    "pubkeyacceptedalgorithms",
    "pubkeyacceptedkeytypes",
    "pubkeyauthentication",
    "rekeylimit",
    "remotecommand",
    "remoteforward",
    "requesttty",
    "requiredrsasize",
    "revokedhostkeys",
    "rhostsauthentication",
    "rhostsrsaauthentication",
    "rsaauthentication",
    "securitykeyprovider",
    "sendenv",
    "serveralivecountmax",
    "serveraliveinterval",
    "sessiontype",
    "setenv",
    "smartcarddevice",
    "stdinnull",
    "streamlocalbindmask",
    "streamlocalbindunlink",
    "stricthostkeychecking",
    "syslogfacility",
    "tag",
    "tcpkeepalive",
    "tunnel",
    "tunneldevice",
    "updatehostkeys",
    "useblacklistedkeys",
    "usedns",
    "useprivilegedport",
    "user",
    "userknownhostsfile",
    "userknownhostsfile2",
    "useroaming",
    "usersh",
    "verifyhostkeydns",
    "visualhostkey",
    "xauthlocation",
];

#[cfg(test)]
mod tests {
    use super::super::{build, ConfigFiles, HostConfig, Jump, Resolver, StrictHostKeyChecking};
    use super::*;
    use std::time::Duration;

    fn ctx() -> Context {
        Context {
            home: PathBuf::from("/home/me"),
            local_user: "me".into(),
            uid: 1000,
            local_host: "box".into(),
        }
    }

    /// Resolves `alias` from `text` written to a temporary file.
    fn try_resolve(alias: &str, text: &str) -> Result<(HostConfig, String)> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cfg");
        std::fs::write(&file, text).unwrap();
        let files = ConfigFiles::Only(file.clone());
        let request = Request {
            host: alias,
            user: None,
            port: None,
            files: &files,
        };
        let parsed = resolve(&request, &ctx(), true)?;
        let config = build(
            alias,
            &parsed.settings,
            &parsed.origins,
            &parsed.refused,
            &ctx(),
            &Resolver::BuiltIn,
        )?;
        Ok((config, file.display().to_string()))
    }

    fn resolve_for(alias: &str, text: &str) -> HostConfig {
        try_resolve(alias, text).unwrap().0
    }

    #[test]
    fn wildcards() {
        assert!(pattern_match("*", "anything"));
        assert!(pattern_match("lab?", "lab1"));
        assert!(!pattern_match("lab?", "lab12"));
        assert!(pattern_match(
            "*.cse.unsw.edu.au",
            "tftp.keg.cse.unsw.edu.au"
        ));
        assert!(
            !pattern_match("T*P", "tftp"),
            "Host patterns are case-sensitive"
        );
        assert!(wildcard("T*P", "tftp"), "known_hosts names are not");
        assert!(!pattern_match("a*b", "ac"));
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
    fn host_lines_as_openssh_reads_them() {
        let text = "Host *.lab !bad.lab other\n  User labuser\n";
        assert_eq!(
            resolve_for("good.lab", text).user.as_deref(),
            Some("labuser")
        );
        assert_eq!(resolve_for("bad.lab", text).user.as_deref(), Some("me"));
        assert_eq!(resolve_for("other", text).user.as_deref(), Some("labuser"));
        assert_eq!(resolve_for("elsewhere", text).user.as_deref(), Some("me"));
        // A comma is part of the pattern, and case counts.
        assert_eq!(resolve_for("a", "Host a,b\n  Port 7\n").port, 22);
        assert_eq!(resolve_for("lab", "Host LAB\n  Port 7\n").port, 22);
        assert_eq!(resolve_for("LAB", "Host LAB\n  Port 7\n").port, 7);
        // The host name is lower-cased after matching.
        assert_eq!(resolve_for("LAB", "").hostname, "lab");
    }

    #[test]
    fn equals_sign_quotes_and_keyword_case() {
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
        assert!(try_resolve("t", "ProxyJump a:notaport\n").is_err());
    }

    #[test]
    fn proxy_command_tokens_and_quotes() {
        let c = resolve_for(
            "t",
            "Host t\n  HostName real\n  Port 2022\n  User u\n  ProxyCommand nc \"%h\" %p # %r %% %C\n",
        );
        assert_eq!(
            c.proxy_command.as_deref(),
            Some("nc \"real\" 2022 # u % %C")
        );
        assert_eq!(resolve_for("t", "ProxyCommand none\n").proxy_command, None);
    }

    #[test]
    fn known_hosts_and_timeouts() {
        let c = resolve_for(
            "t",
            "UserKnownHostsFile ~/kh1 /abs/%k\nGlobalKnownHostsFile none\nServerAliveInterval 5\nServerAliveCountMax 2\nConnectTimeout 7\n",
        );
        assert_eq!(
            c.user_known_hosts,
            [PathBuf::from("/home/me/kh1"), PathBuf::from("/abs/t")]
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
        assert_eq!(d.identity_files[0], PathBuf::from("/home/me/.ssh/id_rsa"));
    }

    #[test]
    fn match_blocks_in_order() {
        let text = "Match host *.lab user alice\n  Port 1\nMatch originalhost short\n  HostName short.lab\nMatch all\n  Port 3\n";
        assert_eq!(resolve_for("short", text).hostname, "short.lab");
        assert_eq!(resolve_for("short", text).port, 3);
        let text = "Host x\n  User alice\nMatch host x user alice\n  Port 1\n";
        assert_eq!(resolve_for("x", text).port, 1);
        let text = "Match !host x\n  Port 9\n";
        assert_eq!(resolve_for("x", text).port, 22);
        assert_eq!(resolve_for("y", text).port, 9);
        // Match host takes a comma list.
        assert_eq!(resolve_for("b", "Match host a,b\n  Port 4\n").port, 4);
    }

    #[test]
    fn match_exec_runs_only_when_the_earlier_criteria_hold() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let text = format!(
            "Match host other exec \"touch {m}\"\n  Port 1\nMatch exec \"test %h = lab && test %n = lab\"\n  Port 2\n",
            m = marker.display()
        );
        assert_eq!(resolve_for("lab", &text).port, 2);
        assert!(
            !marker.exists(),
            "exec after a failed host criterion is not run"
        );
        let text = "Match exec false\n  Port 1\nMatch !exec false\n  Port 5\n";
        assert_eq!(resolve_for("lab", text).port, 5);
    }

    #[test]
    fn final_and_canonical_pass() {
        // Match final applies in the second pass, where Host lines see the
        // host name (as ssh -G does).
        let text = "Host lab\n  HostName 127.0.0.1\nMatch final host 127.0.0.1\n  User finaluser\nHost 127.0.0.1\n  Port 2000\n";
        let c = resolve_for("lab", text);
        assert_eq!(c.user.as_deref(), Some("finaluser"));
        assert_eq!(c.port, 2000);
        let c = resolve_for(
            "lab",
            "Host lab\n  HostName 127.0.0.1\nHost 127.0.0.1\n  Port 2000\n",
        );
        assert_eq!(c.port, 22, "no second pass without Match final");
        let text = "CanonicalizeHostname yes\nHost lab\n  HostName Lab.Example\nMatch canonical\n  User canon\nHost lab.example\n  Port 2001\n";
        let c = resolve_for("lab", text);
        assert_eq!(
            (c.hostname.as_str(), c.user.as_deref(), c.port),
            ("lab.example", Some("canon"), 2001)
        );
    }

    #[test]
    fn unknown_keywords_and_ignore_unknown() {
        let err = try_resolve("t", "Host t\n  Frobnicate 1\n").unwrap_err();
        assert!(
            err.to_string().contains(":2: Bad configuration option"),
            "{err}"
        );
        // Unknown even in a block for another host.
        assert!(try_resolve("t", "Host other\n  Frobnicate 1\n").is_err());
        // IgnoreUnknown only covers what comes after it.
        assert!(try_resolve("t", "UseKeychain yes\nIgnoreUnknown UseKeychain\n").is_err());
        let c = resolve_for("t", "IgnoreUnknown UseKeychain,Other\nUseKeychain yes\n");
        assert!(c.skipped.is_empty());
    }

    #[test]
    fn preferences_are_skipped_requirements_refused() {
        let (c, file) = try_resolve(
            "t",
            "Host t\n  GSSAPIAuthentication yes\n  ForwardAgent yes\n  ControlMaster auto\n  ProxyUseFdpass yes\n  Ciphers aes128-ctr\n",
        )
        .unwrap();
        let skipped: Vec<String> = c.skipped.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            skipped,
            [
                format!("{file}:2: GSSAPIAuthentication yes (libssh2 has no GSSAPI)"),
                format!("{file}:3: ForwardAgent yes (mq forwards no agent)"),
                format!("{file}:4: ControlMaster auto (mq holds its own one connection)"),
            ]
        );
        assert_eq!(c.refused.len(), 1);
        assert_eq!(c.refused[0].line, 5);
        assert_eq!(
            c.algorithm_list(AlgorithmKind::Ciphers),
            ["aes128-ctr".to_string()]
        );
        assert_eq!(c.untried_authentication().len(), 1);
        // Switched off, nothing is listed.
        assert!(resolve_for("t", "GSSAPIAuthentication no\n")
            .skipped
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
            ..ctx()
        };
        let files = ConfigFiles::Only(ssh.join("config"));
        let request = Request {
            host: "lab",
            user: None,
            port: None,
            files: &files,
        };
        let p = resolve(&request, &ctx, true).unwrap();
        assert_eq!(p.settings.get("hostname"), Some("lab.example"));
        assert_eq!(p.settings.get("user"), Some("fromglob"));
        assert_eq!(p.settings.get("port"), Some("2200"));
    }

    #[test]
    fn bad_values_name_their_line() {
        let err = try_resolve("t", "Host t\n  Port many\n").unwrap_err();
        assert!(
            err.to_string().ends_with(":2: bad port: Port many"),
            "{err}"
        );
        let err = try_resolve("t", "User \"open\n").unwrap_err();
        assert!(err.to_string().contains(":1: unbalanced quotes"), "{err}");
    }

    #[test]
    fn keywords_are_sorted_for_lookup() {
        assert!(KEYWORDS.windows(2).all(|w| w[0] < w[1]));
        assert!(
            !is_keyword("usekeychain"),
            "macOS only: needs IgnoreUnknown"
        );
    }
}
