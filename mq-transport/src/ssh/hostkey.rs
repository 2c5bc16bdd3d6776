//! What the server must show before mq talks to it: the algorithm lists
//! handed to libssh2, and the host key checked against known_hosts,
//! KnownHostsCommand and RevokedHostKeys.

use super::*;

/// Hands the configured algorithm lists to libssh2 (see
/// [`method_preferences`]).
pub(super) fn apply_algorithms(
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
pub(super) fn check_host_key(
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
