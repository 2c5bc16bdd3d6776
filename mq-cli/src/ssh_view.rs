//! `mq config --ssh`: how mq will reach the lab host, as `ssh -G` shows it,
//! and every directive mq skips or refuses with its file, line and why.

use mq_core::ssh::config::algorithms::AlgorithmKind;
use mq_core::ssh::config::{Directive, HostConfig, Jump};
use mq_core::ssh::{
    offered_algorithms, SshOptions, DEFAULT_ALIVE_INTERVAL, DEFAULT_CONNECT_TIMEOUT,
};
use mq_core::{Config, TransportKind};
use serde::Serialize;

use crate::{emit, emit_json, Failure};
use mq_core::exit;

/// One hop on the way to the lab host.
#[derive(Debug, Serialize)]
struct Hop {
    name: String,
    hostname: String,
    port: u16,
    user: String,
}

/// What `--json` prints.
#[derive(Debug, Serialize)]
struct SshView {
    host: String,
    transport: &'static str,
    config_files: String,
    resolved_by: String,
    hostname: String,
    port: u16,
    user: String,
    jump_hosts: Vec<Hop>,
    proxy_command: Option<String>,
    identity_files: Vec<Identity>,
    identities_only: bool,
    agent: String,
    pubkey_authentication: bool,
    known_hosts: Vec<String>,
    known_hosts_command: Option<String>,
    host_key_alias: Option<String>,
    strict_host_key_checking: &'static str,
    keepalive_seconds: u64,
    keepalive_count_max: u32,
    connect_timeout_seconds: u64,
    algorithms: Vec<Algorithms>,
    skipped: Vec<Listed>,
    refused: Vec<Listed>,
}

#[derive(Debug, Serialize)]
struct Identity {
    path: String,
    present: bool,
}

#[derive(Debug, Serialize)]
struct Algorithms {
    keyword: &'static str,
    configured: Vec<String>,
    offered: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Listed {
    file: String,
    line: usize,
    directive: String,
    why: &'static str,
}

impl From<&Directive> for Listed {
    fn from(d: &Directive) -> Listed {
        Listed {
            file: d.file.clone(),
            line: d.line,
            directive: d.text.clone(),
            why: d.why,
        }
    }
}

/// Prints how mq reaches the configured lab host.
pub fn show(config: &Config, json: bool) -> Result<(), Failure> {
    let options = mq_core::queue::ssh_options(config);
    let fail = |e: mq_core::TransportError| {
        Failure::new(
            format!("mq: the SSH configuration for {}: {e}", config.host.value),
            exit::USAGE,
        )
    };
    let host = options.host_config().map_err(fail)?;
    let jumps = host
        .proxy_jump
        .iter()
        .map(|hop| hop_view(&options, hop))
        .collect::<Result<Vec<_>, _>>()
        .map_err(fail)?;
    let offered = offered_algorithms(&host).map_err(fail)?;
    let view = build(config, &options, &host, jumps, offered);
    if json {
        return emit_json(&view);
    }
    emit(&render(&view))
}

fn hop_view(options: &SshOptions, hop: &Jump) -> Result<Hop, mq_core::TransportError> {
    let c = options.resolve(hop)?;
    Ok(Hop {
        name: hop.host.clone(),
        hostname: c.hostname,
        port: c.port,
        user: c.user.unwrap_or_else(|| options.local_user.clone()),
    })
}

fn build(
    config: &Config,
    options: &SshOptions,
    host: &HostConfig,
    jump_hosts: Vec<Hop>,
    offered: Vec<(AlgorithmKind, Vec<String>)>,
) -> SshView {
    let agent = match host.identity_agent.as_deref() {
        Some(none) if none.eq_ignore_ascii_case("none") => "none".to_string(),
        Some("SSH_AUTH_SOCK") | None => match &options.agent_socket {
            Some(path) => format!("SSH_AUTH_SOCK ({})", path.display()),
            None => "SSH_AUTH_SOCK (not set: no agent)".to_string(),
        },
        Some(path) => path.to_string(),
    };
    SshView {
        host: config.host.value.clone(),
        transport: config.transport.value.name(),
        config_files: options.config_files.describe(),
        resolved_by: host.resolved_by.clone(),
        hostname: host.hostname.clone(),
        port: host.port,
        user: host
            .user
            .clone()
            .unwrap_or_else(|| options.local_user.clone()),
        jump_hosts,
        proxy_command: host.proxy_command.clone(),
        identity_files: host
            .identity_files
            .iter()
            .map(|p| Identity {
                path: p.display().to_string(),
                present: p.exists(),
            })
            .collect(),
        identities_only: host.identities_only,
        agent,
        pubkey_authentication: host.pubkey_authentication,
        known_hosts: host
            .user_known_hosts
            .iter()
            .chain(&host.global_known_hosts)
            .map(|p| p.display().to_string())
            .collect(),
        known_hosts_command: host.known_hosts_command.clone(),
        host_key_alias: host.host_key_alias.clone(),
        strict_host_key_checking: host.strict_host_key_checking.name(),
        keepalive_seconds: host
            .server_alive_interval
            .unwrap_or(DEFAULT_ALIVE_INTERVAL)
            .as_secs(),
        keepalive_count_max: host.server_alive_count_max,
        connect_timeout_seconds: host
            .connect_timeout
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT)
            .as_secs(),
        algorithms: offered
            .into_iter()
            .map(|(kind, offered)| Algorithms {
                keyword: kind.keyword(),
                configured: host.algorithm_list(kind).to_vec(),
                offered,
            })
            .collect(),
        skipped: host.skipped.iter().map(Listed::from).collect(),
        refused: host.refused.iter().map(Listed::from).collect(),
    }
}

fn render(v: &SshView) -> String {
    let mut out = format!(
        "How mq reaches the lab host '{}' (transport {}):\n",
        v.host, v.transport
    );
    if v.transport != TransportKind::Ssh.name() {
        out.push_str(&format!(
            "  (the {} transport does not use what follows; with --transport ssh it would)\n",
            v.transport
        ));
    }
    for (name, value) in rows(v) {
        out.push_str(&format!("  {name:<17} {value}\n"));
    }
    for (title, list) in [("skipped", &v.skipped), ("REFUSED", &v.refused)] {
        if list.is_empty() {
            continue;
        }
        out.push_str(&format!("{title}:\n"));
        for d in list {
            let place = if d.line == 0 {
                d.file.clone()
            } else {
                format!("{}:{}", d.file, d.line)
            };
            out.push_str(&format!("  {place}: {} ({})\n", d.directive, d.why));
        }
    }
    out
}

/// The table's rows, name and value.
fn rows(v: &SshView) -> Vec<(&str, String)> {
    let mut rows = vec![
        (
            "configuration",
            format!("{} (resolved by {})", v.config_files, v.resolved_by),
        ),
        (
            "connects to",
            format!("{}@{}:{}", v.user, v.hostname, v.port),
        ),
        ("jump hosts", jump_hosts(v)),
        (
            "proxy command",
            v.proxy_command.clone().unwrap_or_else(|| "none".into()),
        ),
        ("agent", v.agent.clone()),
        ("identity files", identity_files(v)),
        ("known hosts", v.known_hosts.join(", ")),
    ];
    if let Some(command) = &v.known_hosts_command {
        rows.push(("known hosts cmd", command.clone()));
    }
    if let Some(alias) = &v.host_key_alias {
        rows.push(("host key alias", alias.clone()));
    }
    let unknown_hosts = match v.strict_host_key_checking {
        "yes" | "ask" => "unknown hosts refused: mq never prompts",
        _ => "unknown hosts recorded; a changed key is always refused",
    };
    rows.push((
        "host keys",
        format!(
            "StrictHostKeyChecking {} ({unknown_hosts})",
            v.strict_host_key_checking
        ),
    ));
    rows.push((
        "keepalive",
        format!(
            "every {} s, {} unanswered = lost",
            v.keepalive_seconds, v.keepalive_count_max
        ),
    ));
    rows.push((
        "connect timeout",
        format!("{} s", v.connect_timeout_seconds),
    ));
    for a in &v.algorithms {
        rows.push((a.keyword, a.offered.join(",")));
    }
    rows
}

fn jump_hosts(v: &SshView) -> String {
    if v.jump_hosts.is_empty() {
        return "none".into();
    }
    let jumps: Vec<String> = v
        .jump_hosts
        .iter()
        .map(|h| format!("{} ({}@{}:{})", h.name, h.user, h.hostname, h.port))
        .collect();
    jumps.join(" -> ")
}

/// The identity files present, and why none may be offered.
fn identity_files(v: &SshView) -> String {
    let present: Vec<&str> = v
        .identity_files
        .iter()
        .filter(|i| i.present)
        .map(|i| i.path.as_str())
        .collect();
    let mut text = if present.is_empty() {
        "none present".to_string()
    } else {
        present.join(", ")
    };
    if v.identities_only {
        text.push_str(" (IdentitiesOnly)");
    }
    if !v.pubkey_authentication {
        text.push_str(" (PubkeyAuthentication no: none offered)");
    }
    text
}
