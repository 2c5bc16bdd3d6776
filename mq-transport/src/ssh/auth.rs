//! Authentication: the agent's identities, then the key files, as the
//! configuration allows; and what was not tried, for the error.

use super::*;

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
pub(super) fn authenticate(
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
