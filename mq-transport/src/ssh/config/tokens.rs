//! ssh_config(5)'s TOKENS and environment variables: `%h`, `%C`, `${HOME}`...
//!
//! Each directive takes its own subset of tokens in OpenSSH; mq expands the
//! ones a directive defines and leaves an unknown `%x` as written (OpenSSH
//! refuses the configuration there, and `ssh -G` has refused it before mq
//! sees it).

use std::path::{Path, PathBuf};

use sha1::{Digest, Sha1};

/// The values the `%` tokens stand for, for one connection.
#[derive(Debug, Clone)]
pub(crate) struct Tokens {
    pairs: Vec<(char, String)>,
}

/// What a connection's tokens are made from.
pub(crate) struct TokenSource<'a> {
    /// `%n`: the name as given on the command line.
    pub alias: &'a str,
    /// `%h`: the host name after HostName and canonicalization.
    pub hostname: &'a str,
    /// `%p`.
    pub port: u16,
    /// `%r`: the remote user.
    pub remote_user: &'a str,
    /// `%k`: HostKeyAlias, if set.
    pub host_key_alias: Option<&'a str>,
    /// `%j`: the ProxyJump setting, if any.
    pub jump: Option<&'a str>,
    /// The local side (`%u %l %L %i %d`).
    pub context: &'a super::Context,
}

impl Tokens {
    /// The tokens for a connection.
    pub(crate) fn new(s: &TokenSource<'_>) -> Tokens {
        let local_host = s.context.local_host.as_str();
        let short = local_host.split('.').next().unwrap_or(local_host);
        let port = s.port.to_string();
        // OpenSSH 9.2's %C: the SHA-1 of %l%h%p%r, in hex.
        let mut hasher = Sha1::new();
        hasher.update(format!("{local_host}{}{port}{}", s.hostname, s.remote_user));
        let connection: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Tokens {
            pairs: vec![
                ('h', s.hostname.to_string()),
                ('p', port),
                ('r', s.remote_user.to_string()),
                ('n', s.alias.to_string()),
                ('u', s.context.local_user.clone()),
                ('l', local_host.to_string()),
                ('L', short.to_string()),
                ('i', s.context.uid.to_string()),
                ('d', s.context.home.display().to_string()),
                ('k', s.host_key_alias.unwrap_or(s.alias).to_string()),
                ('j', s.jump.unwrap_or("").to_string()),
                ('C', connection),
            ],
        }
    }

    /// Tokens from explicit pairs (for `%h`-only expansions and tests).
    pub(crate) fn from_pairs(pairs: &[(char, &str)]) -> Tokens {
        Tokens {
            pairs: pairs.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        }
    }

    /// Adds or replaces a token.
    pub(crate) fn with(mut self, key: char, value: &str) -> Tokens {
        self.pairs.retain(|(k, _)| *k != key);
        self.pairs.push((key, value.to_string()));
        self
    }

    /// Replaces `%x` for every token this set has (and `%%`), once: a value
    /// that itself holds `%` is not expanded again.
    pub(crate) fn expand(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('%') => out.push('%'),
                Some(t) => match self.pairs.iter().find(|(k, _)| *k == t) {
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

    /// A path as OpenSSH expands IdentityFile, UserKnownHostsFile and the
    /// like: `~`, then `${VAR}`, then the `%` tokens.
    pub(crate) fn path(&self, text: &str, home: &Path) -> Result<PathBuf, String> {
        let text = expand_env(text)?;
        Ok(expand_tilde(&self.expand(&text), home))
    }
}

/// Replaces `${NAME}` with the environment variable; an unset one is an error,
/// as in OpenSSH.
pub(crate) fn expand_env(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated ${{ in '{text}'"))?;
        let name = &after[..end];
        let value = std::env::var(name)
            .map_err(|_| format!("environment variable ${{{name}}} is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> super::super::Context {
        super::super::Context {
            home: PathBuf::from("/home/me"),
            local_user: "me".into(),
            uid: 1000,
            local_host: "box.example.org".into(),
        }
    }

    #[test]
    fn every_token_once() {
        let ctx = context();
        let t = Tokens::new(&TokenSource {
            alias: "lab",
            hostname: "10.0.0.1",
            port: 2222,
            remote_user: "alice",
            host_key_alias: None,
            jump: Some("gw"),
            context: &ctx,
        });
        assert_eq!(
            t.expand("%h %p %r %n %u %l %L %i %d %k %j %%h %x"),
            "10.0.0.1 2222 alice lab me box.example.org box 1000 /home/me lab gw %h %x"
        );
        // %C as OpenSSH 9.2 computes it: sha1("box.example.org10.0.0.12222alice").
        let mut h = Sha1::new();
        h.update("box.example.org10.0.0.12222alice");
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(t.expand("%C"), hex);
        // A value holding % is not expanded again.
        let t = Tokens::from_pairs(&[('h', "%r"), ('r', "x")]);
        assert_eq!(t.expand("%h/%r"), "%r/x");
    }

    #[test]
    fn paths_take_tilde_env_and_tokens() {
        std::env::set_var("MQ_TOKENS_TEST", "v");
        let t = Tokens::from_pairs(&[('r', "alice"), ('h', "lab")]);
        assert_eq!(
            t.path("~/.ssh/%r@%h-${MQ_TOKENS_TEST}", Path::new("/home/me"))
                .unwrap(),
            PathBuf::from("/home/me/.ssh/alice@lab-v")
        );
        assert!(t
            .path("${MQ_TOKENS_SURELY_UNSET}/k", Path::new("/"))
            .unwrap_err()
            .contains("MQ_TOKENS_SURELY_UNSET"));
        assert_eq!(expand_tilde("~", Path::new("/h")), PathBuf::from("/h"));
        assert_eq!(expand_tilde("~x/y", Path::new("/h")), PathBuf::from("~x/y"));
    }
}
