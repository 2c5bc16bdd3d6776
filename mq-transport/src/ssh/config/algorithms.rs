//! Algorithm lists: OpenSSH's `+`, `-` and `^` arithmetic on its defaults,
//! and what is left of a list once libssh2's own support is taken into
//! account.

use super::parse::pattern_match;

/// The five lists ssh_config(5) lets a user choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlgorithmKind {
    /// `Ciphers`.
    Ciphers,
    /// `MACs`.
    Macs,
    /// `KexAlgorithms`.
    Kex,
    /// `HostKeyAlgorithms`.
    HostKeys,
    /// `PubkeyAcceptedAlgorithms` (formerly `PubkeyAcceptedKeyTypes`).
    PubkeyAccepted,
}

impl AlgorithmKind {
    /// All five, in ssh -G's order.
    pub const ALL: [AlgorithmKind; 5] = [
        AlgorithmKind::Ciphers,
        AlgorithmKind::Macs,
        AlgorithmKind::Kex,
        AlgorithmKind::HostKeys,
        AlgorithmKind::PubkeyAccepted,
    ];

    /// The keyword as `ssh -G` prints it.
    pub fn keyword(self) -> &'static str {
        match self {
            AlgorithmKind::Ciphers => "ciphers",
            AlgorithmKind::Macs => "macs",
            AlgorithmKind::Kex => "kexalgorithms",
            AlgorithmKind::HostKeys => "hostkeyalgorithms",
            AlgorithmKind::PubkeyAccepted => "pubkeyacceptedalgorithms",
        }
    }

    /// OpenSSH 9.2's default list (what the built-in parser starts from when
    /// the `ssh` client is not there to say).
    pub fn default_list(self) -> &'static str {
        const KEYS: &str =
            "ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,\
ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,\
sk-ssh-ed25519-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,\
rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519,\
ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,\
sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256";
        match self {
            AlgorithmKind::Ciphers => {
                "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,\
aes128-gcm@openssh.com,aes256-gcm@openssh.com"
            }
            AlgorithmKind::Macs => {
                "umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,\
hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64@openssh.com,\
umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1"
            }
            AlgorithmKind::Kex => {
                "sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,curve25519-sha256,\
curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,\
diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,\
diffie-hellman-group18-sha512,diffie-hellman-group14-sha256"
            }
            AlgorithmKind::HostKeys | AlgorithmKind::PubkeyAccepted => KEYS,
        }
    }

    /// Every name OpenSSH knows for this list, beyond its defaults (what a
    /// `+` or a pattern may bring in).
    fn extra_names(self) -> &'static [&'static str] {
        match self {
            AlgorithmKind::Ciphers => &["aes128-cbc", "aes192-cbc", "aes256-cbc", "3des-cbc"],
            AlgorithmKind::Macs => &["hmac-md5", "hmac-sha1-96", "hmac-md5-96"],
            AlgorithmKind::Kex => &[
                "diffie-hellman-group14-sha1",
                "diffie-hellman-group1-sha1",
                "diffie-hellman-group-exchange-sha1",
            ],
            AlgorithmKind::HostKeys | AlgorithmKind::PubkeyAccepted => {
                &["ssh-rsa", "ssh-dss", "ssh-rsa-cert-v01@openssh.com"]
            }
        }
    }
}

/// Applies one configured value (`list`, `+list`, `-list` or `^list`, each
/// entry possibly a pattern) to OpenSSH's default list, as OpenSSH does.
pub fn assemble(kind: AlgorithmKind, value: &str) -> Vec<String> {
    let defaults: Vec<&str> = kind.default_list().split(',').collect();
    let all: Vec<&str> = defaults
        .iter()
        .copied()
        .chain(kind.extra_names().iter().copied())
        .collect();
    let expand = |list: &str| -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for item in list.split(',').filter(|s| !s.is_empty()) {
            let matched: Vec<&str> = if item.contains(['*', '?']) {
                all.iter()
                    .copied()
                    .filter(|n| pattern_match(item, n))
                    .collect()
            } else {
                vec![item]
            };
            for name in matched {
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_string());
                }
            }
        }
        names
    };
    let owned = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    if let Some(added) = value.strip_prefix('+') {
        let mut list = owned(&defaults);
        for name in expand(added) {
            if !list.contains(&name) {
                list.push(name);
            }
        }
        list
    } else if let Some(removed) = value.strip_prefix('-') {
        let patterns: Vec<&str> = removed.split(',').collect();
        defaults
            .iter()
            .filter(|n| !patterns.iter().any(|p| pattern_match(p, n)))
            .map(|n| n.to_string())
            .collect()
    } else if let Some(first) = value.strip_prefix('^') {
        let mut list = expand(first);
        for name in defaults {
            if !list.iter().any(|n| n == name) {
                list.push(name.to_string());
            }
        }
        list
    } else {
        expand(value)
    }
}

/// The entries of `wanted` libssh2 supports, in `wanted`'s order.
pub fn usable(wanted: &[String], supported: &[&str]) -> Vec<String> {
    wanted
        .iter()
        .filter(|name| supported.contains(&name.as_str()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_arithmetic_as_openssh() {
        let plus = assemble(AlgorithmKind::PubkeyAccepted, "+ssh-rsa");
        assert_eq!(plus.last().map(String::as_str), Some("ssh-rsa"));
        assert_eq!(
            plus.len(),
            AlgorithmKind::PubkeyAccepted
                .default_list()
                .split(',')
                .count()
                + 1
        );
        // Adding what is there already changes nothing.
        assert_eq!(
            assemble(AlgorithmKind::Kex, "+curve25519-sha256"),
            assemble(AlgorithmKind::Kex, "+")
        );

        let minus = assemble(AlgorithmKind::Ciphers, "-chacha20*,aes1*-gcm@openssh.com");
        assert_eq!(
            minus,
            [
                "aes128-ctr",
                "aes192-ctr",
                "aes256-ctr",
                "aes256-gcm@openssh.com"
            ]
        );

        let first = assemble(AlgorithmKind::Macs, "^hmac-sha2-512,hmac-sha1");
        assert_eq!(first[..2], ["hmac-sha2-512", "hmac-sha1"]);
        assert_eq!(first.iter().filter(|m| *m == "hmac-sha1").count(), 1);

        assert_eq!(
            assemble(AlgorithmKind::Kex, "curve25519-sha256,ecdh-sha2-*"),
            [
                "curve25519-sha256",
                "ecdh-sha2-nistp256",
                "ecdh-sha2-nistp384",
                "ecdh-sha2-nistp521"
            ]
        );
    }

    #[test]
    fn usable_keeps_the_configured_order() {
        let wanted = assemble(
            AlgorithmKind::Ciphers,
            "aes256-ctr,chacha20-poly1305@openssh.com,aes128-ctr",
        );
        assert_eq!(
            usable(&wanted, &["aes128-ctr", "aes256-ctr", "3des-cbc"]),
            ["aes256-ctr", "aes128-ctr"]
        );
    }
}
