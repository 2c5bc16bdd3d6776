//! [`TraceTransport`]: every command sent to a lab host and its raw reply,
//! appended to a file (`MQ_TRACE=FILE` in mq): what a person debugging a
//! lab reads to see exactly what mq asked and what the host said.
//!
//! Each entry starts with a line `--- mq-trace TIME KIND HOST`, then the
//! command as sent, then `--- reply ...` and the reply's bytes as they came
//! (a pty's output as it is read, what was typed to it as `--- typed`).

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{ExitStatus, Output, PtyProcess, PtySize, ReadOutcome, Result, Transport};

/// A transport that writes what goes through `inner` to a trace file.
pub struct TraceTransport<T> {
    inner: T,
    file: Arc<Mutex<File>>,
}

impl<T: Transport> TraceTransport<T> {
    /// Traces `inner` to `path` (appended to; made 0600: replies hold other
    /// users' keys and names).
    pub fn new(inner: T, path: &Path) -> std::io::Result<TraceTransport<T>> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        Ok(TraceTransport {
            inner,
            file: Arc::new(Mutex::new(file)),
        })
    }

    fn entry(&self, kind: &str, command: &str) {
        write_to(
            &self.file,
            format!(
                "--- mq-trace {} {kind} {}\n{command}\n",
                now(),
                self.inner.describe()
            )
            .as_bytes(),
        );
    }
}

impl<T: Transport> TraceTransport<T> {
    /// A copy: what from where to where, and how it ended.
    fn copy(&self, kind: &str, what: &str, f: impl FnOnce() -> Result<()>) -> Result<()> {
        self.entry(kind, what);
        let result = f();
        write_to(&self.file, format!("--- reply {result:?}\n").as_bytes());
        result
    }
}

/// Seconds since the epoch, to the millisecond.
fn now() -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    format!("{}.{:03}", t.as_secs(), t.subsec_millis())
}

fn write_to(file: &Mutex<File>, bytes: &[u8]) {
    let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
    let _ = file.write_all(bytes);
}

impl<T: Transport> Transport for TraceTransport<T> {
    fn run(&self, command: &str) -> Result<Output> {
        self.entry("run", command);
        let result = self.inner.run(command);
        let mut reply = Vec::new();
        match &result {
            Ok(out) => {
                reply.extend(
                    format!(
                        "--- reply {} ({} bytes out, {} bytes err)\n",
                        out.status,
                        out.stdout.len(),
                        out.stderr.len()
                    )
                    .as_bytes(),
                );
                reply.extend(&out.stdout);
                reply.extend(b"\n--- stderr\n");
                reply.extend(&out.stderr);
                reply.push(b'\n');
            }
            Err(e) => reply.extend(format!("--- failed: {e}\n").as_bytes()),
        }
        write_to(&self.file, &reply);
        result
    }

    fn spawn_pty(&self, command: &str, size: PtySize) -> Result<Box<dyn PtyProcess>> {
        self.entry("pty", command);
        match self.inner.spawn_pty(command, size) {
            Ok(inner) => {
                write_to(&self.file, b"--- reply (the terminal's bytes as read)\n");
                Ok(Box::new(TracedPty {
                    inner,
                    file: Arc::clone(&self.file),
                }))
            }
            Err(e) => {
                write_to(&self.file, format!("--- failed: {e}\n").as_bytes());
                Err(e)
            }
        }
    }

    fn upload(
        &self,
        local: &Path,
        remote: &str,
        progress: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<()> {
        let what = format!("{} -> {remote}", local.display());
        self.copy("upload", &what, || {
            self.inner.upload(local, remote, progress)
        })
    }

    fn download(
        &self,
        remote: &str,
        local: &Path,
        progress: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<()> {
        let what = format!("{remote} -> {}", local.display());
        self.copy("download", &what, || {
            self.inner.download(remote, local, progress)
        })
    }

    fn user(&self) -> &str {
        self.inner.user()
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// A pty whose bytes both ways go to the trace too.
struct TracedPty {
    inner: Box<dyn PtyProcess>,
    file: Arc<Mutex<File>>,
}

impl PtyProcess for TracedPty {
    fn read(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> Result<ReadOutcome> {
        let outcome = self.inner.read(buf, timeout)?;
        if let ReadOutcome::Data(n) = outcome {
            write_to(&self.file, &buf[..n]);
        }
        Ok(outcome)
    }

    fn write(&mut self, data: &[u8]) -> Result<()> {
        let mut typed = b"\n--- typed\n".to_vec();
        typed.extend(data);
        typed.extend(b"\n--- reply continues\n");
        write_to(&self.file, &typed);
        self.inner.write(data)
    }

    fn hangup(&mut self) -> Result<()> {
        write_to(&self.file, b"\n--- hangup\n");
        self.inner.hangup()
    }

    fn cut(&mut self) -> Result<()> {
        self.inner.cut()
    }

    fn wait(&mut self) -> Result<ExitStatus> {
        let status = self.inner.wait();
        write_to(&self.file, format!("\n--- ended {status:?}\n").as_bytes());
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalTransport;

    #[test]
    fn commands_and_raw_replies_are_in_the_trace() {
        let dir = tempfile_dir();
        let path = dir.join("trace");
        let t = TraceTransport::new(LocalTransport::new(), &path).unwrap();
        let out = t.run("printf 'a\\001b'; echo oops >&2; exit 3").unwrap();
        assert_eq!(out.stdout, b"a\x01b");
        let mut pty = t.spawn_pty("echo hello", PtySize::default()).unwrap();
        let mut buf = [0u8; 256];
        while !matches!(pty.read(&mut buf, None).unwrap(), ReadOutcome::Eof) {}
        pty.wait().unwrap();
        let trace = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&trace);
        assert!(text.contains(" run "), "{text}");
        assert!(
            text.contains("printf 'a\\001b'; echo oops >&2; exit 3\n"),
            "{text}"
        );
        assert!(trace.windows(3).any(|w| w == b"a\x01b"), "raw bytes kept");
        assert!(text.contains("oops"), "{text}");
        assert!(text.contains(" pty ") && text.contains("hello"), "{text}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("mq-trace-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
