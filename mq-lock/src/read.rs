//! Reading locks: one system's, many at once, every lock (dumpall), the
//! line of waiters.

use crate::*;

/// Parses the NUL-separated records of the scripts.
pub(crate) fn parse_records(body: &[u8]) -> Vec<(String, Holder)> {
    let fields: Vec<String> = body
        .split(|&b| b == 0)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    fields
        .chunks_exact(5)
        .map(|r| {
            (
                r[0].clone(),
                Holder {
                    owner: r[1].clone(),
                    since: r[2].clone(),
                    timeout: r[3].trim().parse().ok().filter(|&n| n > 0),
                    timeout_text: r[3].clone(),
                    key: r[4].clone(),
                },
            )
        })
        .collect()
}

impl<T: Transport> LockClient<T> {
    pub(crate) fn records(&self, systems: &[&str]) -> Result<Vec<(String, Holder)>, LockError> {
        for s in systems {
            check_system(s)?;
        }
        let (status, body, stderr) = self.run(
            "reading locks",
            &script::records(&self.base, self.known().as_deref(), systems),
        )?;
        if !status.success() {
            return Err(self.remote("reading locks", stderr.trim()));
        }
        Ok(parse_records(&body))
    }

    /// The state of `system`'s lock.
    pub fn info(&self, system: &str) -> Result<LockState, LockError> {
        Ok(self
            .records(&[system])?
            .into_iter()
            .next()
            .map_or(LockState::Free, |(_, h)| LockState::Held(h)))
    }

    /// The live waits in `systems`' lines, each line in the order of
    /// service (one round trip).
    pub fn line(&self, systems: &[&str]) -> Result<Vec<Ticket>, LockError> {
        for s in systems {
            check_system(s)?;
        }
        let (_, body, _) = self.run(
            "reading the line",
            &script::line(&self.base, self.known().as_deref(), systems),
        )?;
        Ok(parse_line(&String::from_utf8_lossy(&body)))
    }

    /// The states of several locks, in one round trip.
    pub fn info_many(&self, systems: &[&str]) -> Result<Vec<(String, LockState)>, LockError> {
        let held = self.records(systems)?;
        Ok(systems
            .iter()
            .map(|s| {
                let state = held
                    .iter()
                    .find(|(name, _)| name == s)
                    .map_or(LockState::Free, |(_, h)| LockState::Held(h.clone()));
                (s.to_string(), state)
            })
            .collect())
    }

    /// Every lock file in BASE, as `(system, holder)`, sorted by system. The
    /// caller filters out names that are not systems (PROTOCOL.md's dumpall).
    pub fn dump_all(&self) -> Result<Vec<(String, Holder)>, LockError> {
        let (status, body, stderr) = self.run(
            "listing locks",
            &script::dump_all(&self.base, self.known().as_deref()),
        )?;
        if !status.success() {
            return Err(self.remote(
                "listing locks",
                format!("cannot read {}: {}", self.base, stderr.trim()),
            ));
        }
        let mut all = parse_records(&body);
        all.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(all)
    }
}
