//! OpenSSH `known_hosts` files: look-up (plain and hashed names, patterns,
//! `[host]:port`, `@revoked`), fingerprints, and recording a new host.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::config::wildcard;

/// The name a host has in known_hosts: `host`, or `[host]:port` off port 22.
pub fn host_entry_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// OpenSSH's `SHA256:...` fingerprint of a key blob.
pub fn fingerprint(key: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(key)))
}

/// The key type named inside a key blob (its first SSH string).
pub fn key_type(key: &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(key.get(..4)?.try_into().ok()?) as usize;
    let name = key.get(4..4 + len)?;
    String::from_utf8(name.to_vec()).ok()
}

/// One key recorded for a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The file.
    pub file: PathBuf,
    /// Its line.
    pub line: usize,
    /// The key type (`ssh-ed25519`, ...).
    pub key_type: String,
    /// The key blob.
    pub key: Vec<u8>,
    /// Marked `@revoked`.
    pub revoked: bool,
}

/// What the files say about a presented key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The key is recorded for the host.
    Known,
    /// The key is recorded as revoked.
    Revoked(Entry),
    /// The host has keys of this type recorded, none of them this one.
    Changed(Entry),
    /// Nothing recorded for the host with this key type.
    Unknown,
}

/// Every (non-CA) key the files record for `name`.
pub fn entries_for(files: &[PathBuf], name: &str) -> Vec<Entry> {
    let mut found = Vec::new();
    for file in files {
        if let Ok(text) = std::fs::read_to_string(file) {
            found.extend(entries_in(&text, name, file));
        }
    }
    found
}

/// Every (non-CA) key that known_hosts text (a file's, or what
/// KnownHostsCommand printed, named `source`) records for `name`.
pub fn entries_in(text: &str, name: &str, source: &Path) -> Vec<Entry> {
    text.lines()
        .enumerate()
        .filter_map(|(i, raw)| parse_line(raw, name, source, i + 1))
        .collect()
}

/// The line of a RevokedHostKeys file (public keys, one a line) that revokes
/// `key`, if one does.
pub fn revoked_in(file: &Path, key: &[u8]) -> Option<usize> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines()
        .position(|line| {
            line.split_whitespace()
                .nth(1)
                .and_then(|b64| STANDARD.decode(b64).ok())
                .is_some_and(|blob| blob == key)
        })
        .map(|i| i + 1)
}

fn parse_line(raw: &str, name: &str, file: &Path, line: usize) -> Option<Entry> {
    let raw = raw.trim();
    if raw.is_empty() || raw.starts_with('#') {
        return None;
    }
    let mut fields = raw.split_whitespace();
    let mut first = fields.next()?;
    let mut revoked = false;
    if first.starts_with('@') {
        match first {
            "@revoked" => revoked = true,
            // Certificate authorities vouch for certificates, which libssh2
            // does not present; such lines say nothing about plain keys.
            _ => return None,
        }
        first = fields.next()?;
    }
    let key_type = fields.next()?.to_string();
    let key = STANDARD.decode(fields.next()?).ok()?;
    if !revoked && !host_matches(first, name) {
        return None;
    }
    Some(Entry {
        file: file.to_path_buf(),
        line,
        key_type,
        key,
        revoked,
    })
}

/// Whether a known_hosts host field (`a,b,!c`, wildcards, or one hashed
/// `|1|salt|hash` name) covers `name`.
fn host_matches(field: &str, name: &str) -> bool {
    if let Some(hashed) = field.strip_prefix("|1|") {
        let Some((salt, hash)) = hashed.split_once('|') else {
            return false;
        };
        let (Ok(salt), Ok(hash)) = (STANDARD.decode(salt), STANDARD.decode(hash)) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(&salt) else {
            return false;
        };
        mac.update(name.as_bytes());
        return mac.verify_slice(&hash).is_ok();
    }
    let mut matched = false;
    for pattern in field.split(',') {
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

/// Judges the presented `key` against the recorded entries.
pub fn verify(entries: &[Entry], key: &[u8]) -> Verdict {
    if let Some(revoked) = entries.iter().find(|e| e.revoked && e.key == key) {
        return Verdict::Revoked(revoked.clone());
    }
    let presented_type = key_type(key).unwrap_or_default();
    let mut same_type = None;
    for entry in entries.iter().filter(|e| !e.revoked) {
        if entry.key == key {
            return Verdict::Known;
        }
        if entry.key_type == presented_type && same_type.is_none() {
            same_type = Some(entry.clone());
        }
    }
    match same_type {
        Some(entry) => Verdict::Changed(entry),
        None => Verdict::Unknown,
    }
}

/// libssh2's host key method names for the key types recorded, most
/// preferred first; handing these to the key exchange makes the server show
/// a key we can check (as OpenSSH does) instead of one we have no record of.
pub fn preferred_methods(entries: &[Entry]) -> Vec<&'static str> {
    let mut methods: Vec<&'static str> = Vec::new();
    for entry in entries.iter().filter(|e| !e.revoked) {
        let for_type: &[&'static str] = match entry.key_type.as_str() {
            "ssh-ed25519" => &["ssh-ed25519"],
            "ecdsa-sha2-nistp256" => &["ecdsa-sha2-nistp256"],
            "ecdsa-sha2-nistp384" => &["ecdsa-sha2-nistp384"],
            "ecdsa-sha2-nistp521" => &["ecdsa-sha2-nistp521"],
            "ssh-rsa" => &["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
            _ => &[],
        };
        for m in for_type {
            if !methods.contains(m) {
                methods.push(m);
            }
        }
    }
    methods
}

/// Appends an entry for `name` to `file` (creating it and its directory),
/// with the name hashed as OpenSSH's HashKnownHosts does when `hash` is set.
pub fn record(file: &Path, name: &str, key: &[u8], hash: bool) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let key_type = key_type(key).unwrap_or_else(|| "unknown".into());
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    // Start on a line of our own even if the file lacks a final newline.
    let needs_newline = std::fs::read(file)
        .map(|t| !t.is_empty() && !t.ends_with(b"\n"))
        .unwrap_or(false);
    if needs_newline {
        f.write_all(b"\n")?;
    }
    let name = if hash {
        hash_name(name)?
    } else {
        name.to_string()
    };
    writeln!(f, "{name} {key_type} {}", STANDARD.encode(key))
}

/// `|1|salt|HMAC-SHA1(salt, name)` with a fresh 20-byte salt.
fn hash_name(name: &str) -> std::io::Result<String> {
    use std::io::Read;
    let mut salt = [0u8; 20];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut salt)?;
    let mut mac = Hmac::<Sha1>::new_from_slice(&salt).expect("HMAC takes any key length");
    mac.update(name.as_bytes());
    Ok(format!(
        "|1|{}|{}",
        STANDARD.encode(salt),
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(kind: &str, body: &[u8]) -> Vec<u8> {
        let mut b = (kind.len() as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind.as_bytes());
        b.extend_from_slice(body);
        b
    }

    fn hashed(name: &str, salt: &[u8]) -> String {
        let mut mac = Hmac::<Sha1>::new_from_slice(salt).unwrap();
        mac.update(name.as_bytes());
        format!(
            "|1|{}|{}",
            STANDARD.encode(salt),
            STANDARD.encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn plain_hashed_and_pattern_entries() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kh");
        let ed = blob("ssh-ed25519", b"key-a");
        let ec = blob("ecdsa-sha2-nistp256", b"key-b");
        let other = blob("ssh-ed25519", b"key-c");
        std::fs::write(
            &file,
            format!(
                "# comment\n\
                 [lab]:2222 ssh-ed25519 {}\n\
                 {} ecdsa-sha2-nistp256 {}\n\
                 *.example,!bad.example ssh-ed25519 {}\n\
                 @cert-authority * ssh-ed25519 {}\n\
                 garbage\n",
                STANDARD.encode(&ed),
                hashed("lab", b"0123456789abcdef0123"),
                STANDARD.encode(&ec),
                STANDARD.encode(&other),
                STANDARD.encode(&other),
            ),
        )
        .unwrap();
        let files = [file.clone()];
        let lab2222 = entries_for(&files, &host_entry_name("lab", 2222));
        assert_eq!(lab2222.len(), 1);
        assert_eq!(verify(&lab2222, &ed), Verdict::Known);

        let lab22 = entries_for(&files, &host_entry_name("lab", 22));
        assert_eq!(lab22.len(), 1, "hashed entry found");
        assert_eq!(verify(&lab22, &ec), Verdict::Known);
        assert_eq!(
            verify(&lab22, &ed),
            Verdict::Unknown,
            "other type: unknown, not changed"
        );
        match verify(&lab22, &blob("ecdsa-sha2-nistp256", b"evil")) {
            Verdict::Changed(e) => assert_eq!(e.line, 3),
            v => panic!("{v:?}"),
        }
        assert_eq!(preferred_methods(&lab22), ["ecdsa-sha2-nistp256"]);

        assert_eq!(entries_for(&files, "good.example").len(), 1);
        assert!(entries_for(&files, "bad.example").is_empty());
        assert!(entries_for(&files, "nowhere").is_empty());
    }

    #[test]
    fn revoked_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kh");
        let key = blob("ssh-ed25519", b"k");
        std::fs::write(
            &file,
            format!(
                "lab ssh-ed25519 {0}\n@revoked * ssh-ed25519 {0}\n",
                STANDARD.encode(&key)
            ),
        )
        .unwrap();
        let entries = entries_for(&[file], "lab");
        assert!(matches!(verify(&entries, &key), Verdict::Revoked(e) if e.line == 2));
    }

    #[test]
    fn record_appends_a_findable_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/known_hosts");
        let key = blob("ssh-ed25519", b"new");
        record(&file, "[127.0.0.1]:2200", &key, false).unwrap();
        record(&file, "other", &blob("ssh-ed25519", b"x"), false).unwrap();
        let entries = entries_for(std::slice::from_ref(&file), "[127.0.0.1]:2200");
        assert_eq!(verify(&entries, &key), Verdict::Known);

        // HashKnownHosts: the name is not in the file, yet it is found.
        let hashed_key = blob("ssh-ed25519", b"hashed");
        record(&file, "secret.lab", &hashed_key, true).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains("secret.lab"));
        assert!(text.lines().last().unwrap().starts_with("|1|"));
        let entries = entries_for(std::slice::from_ref(&file), "secret.lab");
        assert_eq!(verify(&entries, &hashed_key), Verdict::Known);
    }

    #[test]
    fn command_output_and_revoked_key_files() {
        let key = blob("ssh-ed25519", b"k");
        let text = format!("lab ssh-ed25519 {}\n", STANDARD.encode(&key));
        let entries = entries_in(&text, "lab", Path::new("cmd"));
        assert_eq!(verify(&entries, &key), Verdict::Known);
        let dir = tempfile::tempdir().unwrap();
        let revoked = dir.path().join("revoked");
        std::fs::write(
            &revoked,
            format!(
                "ssh-ed25519 {} a\nssh-ed25519 {} b\n",
                STANDARD.encode(blob("ssh-ed25519", b"x")),
                STANDARD.encode(&key)
            ),
        )
        .unwrap();
        assert_eq!(revoked_in(&revoked, &key), Some(2));
        assert_eq!(revoked_in(&revoked, &blob("ssh-ed25519", b"y")), None);
    }

    #[test]
    fn fingerprint_is_openssh_style() {
        // sha256("") in unpadded base64.
        assert_eq!(
            fingerprint(b""),
            "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"
        );
        assert_eq!(
            key_type(&blob("ssh-rsa", b"..")).as_deref(),
            Some("ssh-rsa")
        );
    }
}
