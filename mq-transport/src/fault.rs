//! A transport that fails on purpose, wrapped around any other: fail the Nth
//! operation, cut the connection after N bytes, add latency. For the
//! reliability tests of everything built on a transport.
//!
//! Once cut, every operation fails with [`TransportError::Injected`], which
//! [`TransportError::is_connection_lost`] reports as a lost connection, until
//! [`FaultTransport::heal`] (a reconnect, as far as the caller can tell).
//!
//! ```
//! use mq_transport::fault::FaultTransport;
//! use mq_transport::{LocalTransport, Transport};
//!
//! let host = FaultTransport::new(LocalTransport::new());
//! host.fail_operation(2);
//! assert!(host.run("true").is_ok());
//! assert!(host.run("true").unwrap_err().is_connection_lost());
//! assert!(host.run("true").is_ok(), "only the 2nd operation fails");
//! ```

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::{
    ExitStatus, Output, PtyProcess, PtySize, ReadOutcome, Result, Transport, TransportError,
};

#[derive(Default)]
struct Faults {
    operations: AtomicUsize,
    fail_at: AtomicUsize,
    bytes: AtomicU64,
    cut_after: AtomicU64,
    cut: AtomicBool,
    latency_ms: AtomicU64,
}

impl Faults {
    /// Counts an operation; fails it if it is the chosen one or the line is cut.
    fn begin(&self, what: &str) -> Result<()> {
        let latency = self.latency_ms.load(Ordering::SeqCst);
        if latency > 0 {
            std::thread::sleep(Duration::from_millis(latency));
        }
        let n = self.operations.fetch_add(1, Ordering::SeqCst) + 1;
        if self.cut.load(Ordering::SeqCst) {
            return Err(TransportError::Injected(format!("connection cut ({what})")));
        }
        if self.fail_at.load(Ordering::SeqCst) == n {
            return Err(TransportError::Injected(format!(
                "operation {n} failed ({what})"
            )));
        }
        Ok(())
    }

    /// Counts bytes moved; returns how many of `n` may pass before the cut.
    fn pass(&self, n: u64) -> u64 {
        let limit = self.cut_after.load(Ordering::SeqCst);
        let before = self.bytes.fetch_add(n, Ordering::SeqCst);
        if limit == 0 {
            return n;
        }
        if before + n >= limit {
            self.cut.store(true, Ordering::SeqCst);
            return limit.saturating_sub(before);
        }
        n
    }

    fn check(&self, what: &str) -> Result<()> {
        if self.cut.load(Ordering::SeqCst) {
            Err(TransportError::Injected(format!("connection cut ({what})")))
        } else {
            Ok(())
        }
    }
}

/// Wraps a transport with injectable faults.
pub struct FaultTransport<T> {
    inner: T,
    faults: Arc<Faults>,
}

impl<T: Transport> FaultTransport<T> {
    /// Wraps `inner`; no faults until one is set.
    pub fn new(inner: T) -> FaultTransport<T> {
        FaultTransport {
            inner,
            faults: Arc::new(Faults::default()),
        }
    }

    /// Fails the `n`th operation from now on (1-based: the next is 1).
    pub fn fail_operation(&self, n: usize) {
        let done = self.faults.operations.load(Ordering::SeqCst);
        self.faults.fail_at.store(done + n, Ordering::SeqCst);
    }

    /// Cuts the connection once `n` more bytes have moved (command output,
    /// console output, file contents, either way).
    pub fn cut_after_bytes(&self, n: u64) {
        let done = self.faults.bytes.load(Ordering::SeqCst);
        self.faults
            .cut_after
            .store(done + n.max(1), Ordering::SeqCst);
    }

    /// Cuts the connection now.
    pub fn cut(&self) {
        self.faults.cut.store(true, Ordering::SeqCst);
    }

    /// Restores the connection and clears every fault.
    pub fn heal(&self) {
        self.faults.cut.store(false, Ordering::SeqCst);
        self.faults.cut_after.store(0, Ordering::SeqCst);
        self.faults.fail_at.store(0, Ordering::SeqCst);
    }

    /// Delays every operation by `latency`.
    pub fn set_latency(&self, latency: Duration) {
        self.faults
            .latency_ms
            .store(latency.as_millis() as u64, Ordering::SeqCst);
    }

    /// How many operations have been attempted.
    pub fn operations(&self) -> usize {
        self.faults.operations.load(Ordering::SeqCst)
    }

    /// The wrapped transport.
    pub fn inner(&self) -> &T {
        &self.inner
    }
}

impl<T: Transport> Transport for FaultTransport<T> {
    fn run(&self, command: &str) -> Result<Output> {
        self.faults.begin("run")?;
        let out = self.inner.run(command)?;
        let size = (out.stdout.len() + out.stderr.len()) as u64;
        if self.faults.pass(size) < size {
            return Err(TransportError::Injected(
                "connection cut (run output)".into(),
            ));
        }
        Ok(out)
    }

    fn spawn_pty(&self, command: &str, size: PtySize) -> Result<Box<dyn PtyProcess>> {
        self.faults.begin("pty")?;
        let inner = self.inner.spawn_pty(command, size)?;
        Ok(Box::new(FaultPty {
            inner,
            faults: Arc::clone(&self.faults),
        }))
    }

    fn upload(
        &self,
        local: &Path,
        remote: &str,
        progress: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<()> {
        self.faults.begin("upload")?;
        let faults = Arc::clone(&self.faults);
        let mut last = 0;
        let mut cut = false;
        self.inner.upload(local, remote, &mut |done, total| {
            cut |= faults.pass(done - last) < done - last;
            last = done;
            progress(done, total)
        })?;
        if cut {
            return Err(TransportError::Injected("connection cut (upload)".into()));
        }
        Ok(())
    }

    fn download(
        &self,
        remote: &str,
        local: &Path,
        progress: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<()> {
        self.faults.begin("download")?;
        let faults = Arc::clone(&self.faults);
        let mut last = 0;
        let mut cut = false;
        self.inner.download(remote, local, &mut |done, total| {
            cut |= faults.pass(done.saturating_sub(last)) < done.saturating_sub(last);
            last = done;
            progress(done, total)
        })?;
        if cut {
            return Err(TransportError::Injected("connection cut (download)".into()));
        }
        Ok(())
    }

    fn user(&self) -> &str {
        self.inner.user()
    }

    fn describe(&self) -> String {
        format!("{} (fault-injecting)", self.inner.describe())
    }
}

/// A pty whose bytes count towards the cut; once cut, it is hung up.
struct FaultPty {
    inner: Box<dyn PtyProcess>,
    faults: Arc<Faults>,
}

impl PtyProcess for FaultPty {
    fn read(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> Result<ReadOutcome> {
        if let Err(e) = self.faults.check("console") {
            let _ = self.inner.hangup();
            return Err(e);
        }
        match self.inner.read(buf, timeout)? {
            ReadOutcome::Data(n) => {
                let allowed = self.faults.pass(n as u64) as usize;
                if allowed == 0 {
                    let _ = self.inner.hangup();
                    return Err(TransportError::Injected("connection cut (console)".into()));
                }
                Ok(ReadOutcome::Data(allowed.min(n)))
            }
            other => Ok(other),
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<()> {
        self.faults.check("console input")?;
        self.inner.write(data)
    }

    fn hangup(&mut self) -> Result<()> {
        self.inner.hangup()
    }

    fn cut(&mut self) -> Result<()> {
        self.inner.cut()
    }

    fn wait(&mut self) -> Result<ExitStatus> {
        self.faults.check("console")?;
        self.inner.wait()
    }
}
