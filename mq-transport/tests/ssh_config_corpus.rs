//! The SSH configurations people actually have, each tried three ways
//! against the tests' own sshd: OpenSSH itself (`ssh -F FILE HOST whoami`,
//! the oracle), mq with `ssh -G` resolving the file, and mq's built-in parser
//! (as on a machine with no ssh client). mq must connect exactly when ssh
//! does, as the same user; and the two resolvers must agree field by field.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mq_testkit::{free_port, SshServer};
use mq_transport::ssh::config::{HostConfig, Resolver};
use mq_transport::{SshOptions, SshTransport, Transport};

/// Debian 12's and Ubuntu's stock /etc/ssh/ssh_config, as openssh-client
/// installs it (its directives; the comments that surround them elided).
const DEBIAN_STOCK: &str = "\
# This is the ssh client system-wide configuration file.  See
# ssh_config(5) for more information.

Include /etc/ssh/ssh_config.d/*.conf

Host *
#   ForwardAgent no
#   PasswordAuthentication yes
    SendEnv LANG LC_*
    HashKnownHosts yes
    GSSAPIAuthentication yes
";

/// Fedora/RHEL's /etc/ssh/ssh_config.d/50-redhat.conf (directives).
const REDHAT_50: &str = "\
# The options here are in the \"Match final block\" to be applied as the last
# options and could be potentially overwritten by the user configuration
Match final all
\t# Follow system-wide Crypto Policy, if defined:
\tInclude CRYPTO_POLICY

\tGSSAPIAuthentication yes

\tForwardX11Trusted yes

\tSendEnv LANG LC_CTYPE LC_NUMERIC LC_TIME LC_COLLATE LC_MONETARY LC_MESSAGES
\tSendEnv LC_PAPER LC_NAME LC_ADDRESS LC_TELEPHONE LC_MEASUREMENT
\tSendEnv LC_IDENTIFICATION LC_ALL LANGUAGE
\tSendEnv XMODIFIERS
";

/// Fedora's DEFAULT crypto policy for the OpenSSH client (the lists that
/// matter here).
const CRYPTO_POLICY: &str = "\
Ciphers aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes256-ctr,aes128-gcm@openssh.com,aes128-ctr
MACs hmac-sha2-256-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha2-256,hmac-sha1,umac-128@openssh.com,hmac-sha2-512
KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group14-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512
PubkeyAcceptedAlgorithms ecdsa-sha2-nistp256,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521,ecdsa-sha2-nistp521-cert-v01@openssh.com,ssh-ed25519,ssh-ed25519-cert-v01@openssh.com,rsa-sha2-256,rsa-sha2-256-cert-v01@openssh.com,rsa-sha2-512,rsa-sha2-512-cert-v01@openssh.com
HostKeyAlgorithms ecdsa-sha2-nistp256,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521,ecdsa-sha2-nistp521-cert-v01@openssh.com,ssh-ed25519,ssh-ed25519-cert-v01@openssh.com,rsa-sha2-256,rsa-sha2-256-cert-v01@openssh.com,rsa-sha2-512,rsa-sha2-512-cert-v01@openssh.com
RequiredRSASize 2048
";

struct Corpus {
    server: SshServer,
    dir: tempfile::TempDir,
    ssh: PathBuf,
}

impl Corpus {
    fn start() -> Option<Corpus> {
        let server = SshServer::start()?;
        let Resolver::Openssh(ssh) = Resolver::detect() else {
            return mq_testkit::skip("no ssh client on PATH (install openssh-client)");
        };
        Some(Corpus {
            server,
            dir: tempfile::tempdir().unwrap(),
            ssh,
        })
    }

    /// The lines of the test server's block, without its `Host` line.
    fn lab_lines(&self) -> String {
        let block = self.server.config_block("lab");
        block.split_once('\n').unwrap().1.to_string()
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&path, text).unwrap();
        path
    }

    /// OpenSSH's verdict: the remote user it logged in as, or `None`.
    fn oracle(&self, config: &Path, alias: &str) -> Option<String> {
        let out = Command::new(&self.ssh)
            .arg("-F")
            .arg(config)
            .args(["-o", "BatchMode=yes", alias, "whoami"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn options(&self, config: &Path, alias: &str, resolver: Resolver) -> SshOptions {
        // The real home directory: `ssh -G` expands `~` with it too.
        SshOptions::new(alias)
            .config_file(config)
            .agent(None)
            .resolver(resolver)
    }

    /// mq's verdict with `resolver`: the remote user, or the error.
    fn mq(&self, config: &Path, alias: &str, resolver: Resolver) -> Result<String, String> {
        let t = SshTransport::connect(&self.options(config, alias, resolver))
            .map_err(|e| e.to_string())?;
        let out = t.run("whoami").map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn resolved(
        &self,
        config: &Path,
        alias: &str,
        resolver: Resolver,
    ) -> Result<HostConfig, String> {
        let mut c = self
            .options(config, alias, resolver)
            .host_config()
            .map_err(|e| e.to_string())?;
        c.resolved_by.clear();
        Ok(c)
    }

    /// Asserts mq connects exactly when ssh does, as the same user, with
    /// both resolvers, and that they agree field by field. Returns the
    /// configuration as `ssh -G` resolved it.
    fn check(
        &self,
        case: &str,
        config: &Path,
        alias: &str,
        expect_connect: bool,
    ) -> Option<HostConfig> {
        let ssh = self.oracle(config, alias);
        assert_eq!(
            ssh.is_some(),
            expect_connect,
            "{case}: ssh -F {} {alias}",
            config.display()
        );
        let by_g = self.mq(config, alias, Resolver::Openssh(self.ssh.clone()));
        let built_in = self.mq(config, alias, Resolver::BuiltIn);
        match &ssh {
            Some(user) => {
                assert_eq!(
                    by_g.as_ref(),
                    Ok(user),
                    "{case}: mq (ssh -G) connects as ssh does"
                );
                assert_eq!(
                    built_in.as_ref(),
                    Ok(user),
                    "{case}: mq (built-in) connects as ssh does"
                );
            }
            None => {
                assert!(by_g.is_err(), "{case}: ssh refused, mq (ssh -G) connected");
                assert!(
                    built_in.is_err(),
                    "{case}: ssh refused, mq (built-in) connected"
                );
            }
        }
        let g = self.resolved(config, alias, Resolver::Openssh(self.ssh.clone()));
        let b = self.resolved(config, alias, Resolver::BuiltIn);
        match (&g, &b) {
            (Ok(g), Ok(b)) => assert_eq!(g, b, "{case}: the built-in parser agrees with ssh -G"),
            (Err(_), Err(_)) => {}
            _ => panic!("{case}: one resolver refused the file: ssh -G {g:?}, built-in {b:?}"),
        }
        g.ok()
    }
}

#[test]
fn distribution_stock_files() {
    let Some(c) = Corpus::start() else { return };
    // Debian/Ubuntu: the user's block, then the stock file.
    let config = c.write(
        "debian",
        &format!("Host lab\n{}\n{DEBIAN_STOCK}", c.lab_lines()),
    );
    let g = c.check("debian", &config, "lab", true).unwrap();
    let skipped: Vec<String> = g.skipped.iter().map(|d| d.to_string()).collect();
    assert!(
        skipped
            .iter()
            .any(|d| d.ends_with("GSSAPIAuthentication yes (libssh2 has no GSSAPI)")),
        "{skipped:?}"
    );
    assert!(g.hash_known_hosts, "HashKnownHosts is followed");

    // Fedora/RHEL: Include of ssh_config.d with its Match final block and
    // the crypto policy's algorithm lists.
    let policy = c.write("crypto-policies/openssh.config", CRYPTO_POLICY);
    let dropin = c.dir.path().join("ssh_config.d");
    c.write(
        "ssh_config.d/50-redhat.conf",
        &REDHAT_50.replace("CRYPTO_POLICY", policy.to_str().unwrap()),
    );
    let config = c.write(
        "fedora",
        &format!(
            "Include {}/*.conf\nHost lab\n{}",
            dropin.display(),
            c.lab_lines()
        ),
    );
    let g = c.check("fedora", &config, "lab", true).unwrap();
    assert_eq!(
        g.algorithm_list(mq_transport::ssh::config::algorithms::AlgorithmKind::Ciphers)[0],
        "aes256-gcm@openssh.com",
        "the crypto policy's ciphers are in force"
    );
    // Red Hat's block without any GSSAPI line still connects.
    c.write(
        "ssh_config.d/50-redhat.conf",
        "Match final all\n\tForwardX11Trusted yes\n",
    );
    c.check("fedora, Match final all alone", &config, "lab", true);
}

#[test]
fn a_macos_user_file() {
    let Some(c) = Corpus::start() else { return };
    let config = c.write(
        "macos",
        &format!(
            "IgnoreUnknown UseKeychain\nHost lab\n{}Host *\n  UseKeychain yes\n  AddKeysToAgent yes\n  IdentityFile ~/.ssh/id_ed25519\n",
            c.lab_lines()
        ),
    );
    c.check("macos", &config, "lab", true);
    // IgnoreUnknown only covers what comes after it: both refuse.
    let config = c.write(
        "macos-late",
        &format!(
            "Host lab\n{}  UseKeychain yes\nIgnoreUnknown UseKeychain\n",
            c.lab_lines()
        ),
    );
    c.check("macos, IgnoreUnknown too late", &config, "lab", false);
}

#[test]
fn the_machine_queue_readme_block_through_a_jump_host() {
    let Some(c) = Corpus::start() else { return };
    let Some(jump) = SshServer::start() else {
        return;
    };
    let control = c.dir.path().join("cm");
    fs::create_dir(&control).unwrap();
    let config = c.write(
        "readme",
        &format!(
            "Host lab\n{}  ProxyJump login\n  ControlMaster auto\n  ControlPersist 300\n  \
             ControlPath {}/%u@%h:%p-%r\n  ServerAliveInterval 60\n  TCPKeepAlive yes\n{}",
            c.lab_lines(),
            control.display(),
            jump.config_block("login")
        ),
    );
    let g = c.check("readme", &config, "lab", true).unwrap();
    assert_eq!(g.proxy_jump.len(), 1);
    assert_eq!(
        g.server_alive_interval,
        Some(std::time::Duration::from_secs(60))
    );
    // Stop the ControlMaster the oracle left behind (ControlPersist 300).
    let _ = Command::new(&c.ssh)
        .arg("-F")
        .arg(&config)
        .args(["-O", "exit", "lab"])
        .stderr(Stdio::null())
        .status();
}

#[test]
fn a_corporate_file() {
    let Some(c) = Corpus::start() else { return };
    let s = &c.server;
    let user = &s.user;
    // IdentityFile ~/.ssh/%r@%h, with the tests' own directory for ~.
    let keys = c.dir.path().join("keys");
    fs::create_dir(&keys).unwrap();
    let key = keys.join(format!("{user}@127.0.0.1"));
    fs::copy(&s.user_key, &key).unwrap();
    fs::copy(s.user_key.with_extension("pub"), key.with_extension("pub")).unwrap();
    let marker = c.dir.path().join("exec-ran");
    let config = c.write(
        "corporate",
        &format!(
            "CanonicalizeHostname yes\nCanonicalDomains corp.example\nCanonicalizeMaxDots 0\n\
             Match host *.corp exec \"touch {marker}\"\n  Port 1\n\
             Host lab\n  HostName 127.0.0.1\n  Port {port}\n  IdentitiesOnly yes\n  IdentityAgent none\n  \
             UserKnownHostsFile {kh}\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  BatchMode yes\n\
             Match originalhost lab exec \"test %n = lab && test %h = 127.0.0.1\"\n  User {user}\n\
             Host *\n  User nobody\n  IdentityFile {keys}/%r@%h\n  PubkeyAcceptedAlgorithms +ssh-rsa\n  \
             KexAlgorithms curve25519-sha256\n",
            marker = marker.display(),
            port = s.port,
            kh = s.known_hosts.display(),
            keys = keys.display(),
        ),
    );
    let g = c.check("corporate", &config, "lab", true).unwrap();
    assert_eq!(
        g.user.as_deref(),
        Some(user.as_str()),
        "Match exec chose the user"
    );
    assert_eq!(g.identity_files, [key]);
    assert!(
        !marker.exists(),
        "an exec after a failed host criterion never runs"
    );
}

#[test]
fn where_openssh_refuses_mq_refuses() {
    let Some(c) = Corpus::start() else { return };
    let closed = free_port();
    let fallback = format!("Host *\n  HostName 127.0.0.1\n  Port {closed}\n");
    // Host patterns are case-sensitive, and a comma is part of a pattern:
    // the lab block does not apply, the closed port does.
    for (case, host_line) in [("case", "Host LAB"), ("comma", "Host other,lab")] {
        let config = c.write(case, &format!("{host_line}\n{}{fallback}", c.lab_lines()));
        c.check(case, &config, "lab", false);
    }
    // The same blocks do apply to the names they spell.
    let config = c.write(
        "case-exact",
        &format!("Host LAB\n{}{fallback}", c.lab_lines()),
    );
    c.check("case, exact", &config, "LAB", true);

    // No key offered.
    let config = c.write(
        "nopubkey",
        &format!("Host lab\n{}  PubkeyAuthentication no\n", c.lab_lines()),
    );
    c.check("PubkeyAuthentication no", &config, "lab", false);

    // Host keys from KnownHostsCommand count, and only the right one.
    let kh = c.server.known_hosts.display().to_string();
    let lines = c.lab_lines().replace(&kh, "/dev/null");
    let config = c.write(
        "khcommand",
        &format!("Host lab\n{lines}  KnownHostsCommand /bin/cat {kh}\n"),
    );
    c.check("KnownHostsCommand", &config, "lab", true);
    let other = c.write(
        "other_known_hosts",
        &format!(
            "[127.0.0.1]:{} {}\n",
            c.server.port,
            mq_testkit::keygen(&c.dir.path().join("other_key"))
        ),
    );
    let config = c.write(
        "khcommand-wrong",
        &format!(
            "Host lab\n{lines}  KnownHostsCommand /bin/cat {}\n",
            other.display()
        ),
    );
    c.check("KnownHostsCommand, wrong key", &config, "lab", false);
}

#[test]
fn lines_mq_used_to_refuse_though_openssh_connects() {
    let Some(c) = Corpus::start() else { return };
    let config = c.write(
        "refused-before",
        &format!(
            "Host lab\n{}  IdentityFile ${{HOME}}/.ssh/mq-test-%C-%l-%L-%i-%k\n\
             Host *\n  SecurityKeyProvider internal\n\
             Match exec \"true\" host *.corp.example.com\n  Port 1\n\
             Match canonical all\n  ForwardAgent yes\n\
             Match final all\n  ForwardX11 no\n",
            c.lab_lines()
        ),
    );
    let g = c.check("refused before", &config, "lab", true).unwrap();
    let home = std::env::var("HOME").unwrap();
    assert!(
        g.identity_files
            .iter()
            .any(|p| p.starts_with(&home) && !p.to_string_lossy().contains('%')),
        "tokens and ${{HOME}} expanded: {:?}",
        g.identity_files
    );
}
