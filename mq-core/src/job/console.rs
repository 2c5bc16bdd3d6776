//! A run's console: the pty that streams it, the end mark that splits it
//! from the host's report, and the `-l` log written as it comes.

use super::*;

/// After the run, the runner's own log (complete even where the console
/// lost bytes) replaces what mq wrote live, written through the path the
/// user named as `scp` would: the same file truncated and rewritten, never a
/// new file renamed over it. A device, FIFO or socket keeps what it was
/// given live (rewriting it would repeat the console).
pub(crate) fn replace_with_runner_log(
    host: &dyn Transport,
    log_remote: &str,
    path: &Path,
    file: &mut std::fs::File,
    events: &mut dyn FnMut(JobEvent<'_>),
) -> Result<(), JobError> {
    let fetched = match host.run(&format!("cat {}", quote(log_remote))) {
        Ok(out) if out.status.success() => out.stdout,
        Ok(out) => {
            let text = format!(
                "kept the console as seen: the runner's log could not be read: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            events(JobEvent::Warning(&text));
            return Ok(());
        }
        Err(e) if e.is_connection_lost() => return Err(e.into()),
        Err(e) => {
            let text =
                format!("kept the console as seen: the runner's log could not be fetched: {e}");
            events(JobEvent::Warning(&text));
            return Ok(());
        }
    };
    replace_log(path, file, &fetched)
}

/// The `-l` file becomes the runner's log (when there is one, and the file
/// is a regular file: not a terminal or a pipe the user gave).
pub(crate) fn replace_log(
    path: &Path,
    file: &mut std::fs::File,
    log: &[u8],
) -> Result<(), JobError> {
    use std::io::Write;
    ReplaceLog {
        file: Some(file),
        started: false,
    }
    .write_all(log)
    .map_err(|e| JobError::Log {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// A pty process as a console source; remembers a transport error.
pub(crate) struct PtyConsole<'a> {
    pub(crate) process: &'a mut dyn PtyProcess,
    pub(crate) error: Option<TransportError>,
    /// Splits the console from the host's finish, when there is one.
    pub(crate) scanner: Option<finish::MarkScanner>,
    /// Console bytes taken from the process, not yet read.
    pub(crate) ready: Vec<u8>,
    pub(crate) ended: bool,
}

impl<'a> PtyConsole<'a> {
    /// A console over `process`, split at `end_mark`; `first` is console
    /// already read from it.
    pub(crate) fn new(
        process: &'a mut dyn PtyProcess,
        end_mark: Option<Vec<u8>>,
        first: &[u8],
    ) -> PtyConsole<'a> {
        let mut scanner = end_mark.map(finish::MarkScanner::new);
        let ready = match scanner.as_mut() {
            Some(scanner) => scanner.take(first),
            None => first.to_vec(),
        };
        PtyConsole {
            process,
            error: None,
            scanner,
            ready,
            ended: false,
        }
    }

    /// The bytes after the host's end mark, once the console reached it.
    pub(crate) fn finished_on_host(&mut self) -> Option<Vec<u8>> {
        self.scanner.as_mut()?.after.take()
    }

    fn at_mark(&self) -> bool {
        self.scanner.as_ref().is_some_and(|s| s.after.is_some())
    }
}

impl ConsoleSource for PtyConsole<'_> {
    fn read(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<SourceRead> {
        loop {
            if !self.ready.is_empty() {
                let n = buf.len().min(self.ready.len());
                buf[..n].copy_from_slice(&self.ready[..n]);
                self.ready.drain(..n);
                return Ok(SourceRead::Data(n));
            }
            if self.ended || self.at_mark() {
                return Ok(SourceRead::Eof);
            }
            match self.process.read(buf, timeout) {
                Ok(ReadOutcome::Data(n)) => match self.scanner.as_mut() {
                    Some(scanner) => {
                        self.ready = scanner.take(&buf[..n]);
                        if self.ready.is_empty() && !self.at_mark() {
                            return Ok(SourceRead::TimedOut);
                        }
                    }
                    None => return Ok(SourceRead::Data(n)),
                },
                Ok(ReadOutcome::Eof) => {
                    self.ended = true;
                    if let Some(scanner) = self.scanner.as_mut() {
                        self.ready = scanner.flush();
                    }
                }
                Ok(ReadOutcome::TimedOut) => return Ok(SourceRead::TimedOut),
                Err(e) => {
                    let io = io::Error::other(e.to_string());
                    self.error = Some(e);
                    return Err(io);
                }
            }
        }
    }

    fn send(&mut self, data: &[u8]) -> io::Result<()> {
        self.process.write(data).map_err(|e| {
            let io = io::Error::other(e.to_string());
            self.error = Some(e);
            io
        })
    }
}

/// What the host's finish reported, and the finish script's own status.
pub(crate) struct HostFinish {
    /// `None` when the report was cut short (the connection went).
    pub(crate) report: Option<finish::Report>,
    pub(crate) status: mq_transport::ExitStatus,
    /// Writing the runner's log to the `-l` file failed.
    pub(crate) log_error: Option<io::Error>,
}

impl HostFinish {
    pub(crate) fn runner_status(&self) -> i32 {
        self.report
            .as_ref()
            .map_or(self.status.shell_code(), |r| r.runner_status)
    }
}

/// Reads the host's finish to its end: the report after the end mark, and
/// the script's exit status. The runner's log in it goes to `log` as it
/// comes.
pub(crate) fn read_host_finish(
    process: &mut dyn PtyProcess,
    after: Vec<u8>,
    log: &mut dyn io::Write,
    cancel: &Cancel,
) -> Result<HostFinish, JobError> {
    let mut reader = finish::ReportReader::new(log);
    reader.feed(&after);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        if cancel.is_cancelled() {
            process
                .hangup()
                .map_err(|e| transport_or_interrupt(cancel, e))?;
            return Err(JobError::Interrupted);
        }
        match process
            .read(&mut buf, Some(Duration::from_millis(100)))
            .map_err(|e| transport_or_interrupt(cancel, e))?
        {
            ReadOutcome::Data(n) => reader.feed(&buf[..n]),
            ReadOutcome::TimedOut => {}
            ReadOutcome::Eof => break,
        }
    }
    let status = process
        .wait()
        .map_err(|e| transport_or_interrupt(cancel, e))?;
    let log_error = reader.sink_error.take();
    Ok(HostFinish {
        report: reader.finish(),
        status,
        log_error,
    })
}

/// The `-l` file, replaced by the runner's log as the host sends it (what
/// the console wrote there meanwhile was a first draft). A file that is
/// not regular (a FIFO, a terminal) keeps the console and gets no more.
pub(crate) struct ReplaceLog<'f> {
    pub(crate) file: Option<&'f mut std::fs::File>,
    pub(crate) started: bool,
}

impl io::Write for ReplaceLog<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        use std::io::Seek;
        let Some(file) = self.file.as_mut() else {
            return Ok(buf.len());
        };
        if !self.started {
            self.started = true;
            if !file.metadata().is_ok_and(|m| m.is_file()) {
                self.file = None;
                return Ok(buf.len());
            }
            file.set_len(0)?;
            file.rewind()?;
        }
        file.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |f| f.flush())
    }
}

/// Console bytes to the event callback.
pub(crate) struct EventSink<'a>(pub(crate) &'a mut dyn FnMut(JobEvent));

impl io::Write for EventSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (self.0)(JobEvent::Console(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The `-l` file, created before the board is touched.
pub(crate) fn open_local_log(spec: &JobSpec) -> Result<Option<std::fs::File>, JobError> {
    let Some(path) = &spec.log else {
        return Ok(None);
    };
    std::fs::File::create(path)
        .map(Some)
        .map_err(|e| JobError::Log {
            path: path.clone(),
            message: e.to_string(),
        })
}

/// How the console is watched: mq's own deadline, keep-alive input, interrupts.
pub(crate) fn session_options(
    spec: &JobSpec,
    input: Option<Box<dyn Read + Send>>,
    cancel: &Cancel,
) -> SessionOptions {
    SessionOptions {
        // The runner enforces -t; this only guards against a runner that
        // never ends.
        timeout: spec
            .timeout
            .map(|t| Duration::from_secs(t) + CLIENT_DEADLINE_MARGIN),
        until_closed: true,
        keep_alive: spec
            .keep_alive
            .then_some(input)
            .flatten()
            .map(|i| KeepAlive {
                input: mq_console::spawn_reader(i),
                detach: Some(0x1d),
            }),
        interrupt: Some(cancel.flag()),
        ..SessionOptions::default()
    }
}

/// An interrupt is an interrupt on every transport: with the system ssh
/// client, the signal may reach ssh too and end its connection before mq
/// hangs the console up.
pub(crate) fn transport_or_interrupt(cancel: &Cancel, e: TransportError) -> JobError {
    if cancel.is_cancelled() {
        JobError::Interrupted
    } else {
        JobError::Transport(e)
    }
}

impl MachineQueue {
    /// Runs the invocation on a pty and watches its console until the
    /// runner ends (or mq's own deadline, or an interrupt); then the log.
    /// Where the host finished the job, what it reported comes back too.
    pub(crate) fn console(
        &self,
        job: &mut Job<'_>,
        run: Console<'_>,
        matcher: mq_console::Matcher,
        input: Option<Box<dyn Read + Send>>,
    ) -> Result<(JobReport, Option<HostFinish>), JobError> {
        let spec = job.spec;
        let cancel = job.cancel;
        let dir = run.dir;
        let mut local_log = open_local_log(spec)?;
        let upload_started = Instant::now();
        let mut process = run.process;
        let first = receive::send(process.as_mut(), run.first, run.uploads, cancel, job.events)?;
        let upload = upload_started.elapsed();
        let started = Instant::now();
        let mut session = Session::new(matcher, session_options(spec, input, cancel))
            .tee(EventSink(&mut *job.events));
        if let Some(file) = local_log.as_mut() {
            session = session.tee(file);
        }
        let mut console = PtyConsole::new(process.as_mut(), Some(run.end_mark), &first);
        let report = session.run(&mut console);
        if let Some(e) = console.error.take() {
            return Err(transport_or_interrupt(cancel, e));
        }
        let report = report.map_err(|e| JobError::Console(e.to_string()))?;
        let after = console.finished_on_host();
        let (ending, host) = match after {
            Some(after) => {
                let mut log = ReplaceLog {
                    file: local_log.as_mut(),
                    started: false,
                };
                let host = read_host_finish(process.as_mut(), after, &mut log, cancel)?;
                if let (Some(path), Some(e)) = (&spec.log, &host.log_error) {
                    return Err(JobError::Log {
                        path: path.clone(),
                        message: e.to_string(),
                    });
                }
                let ending = Ending {
                    interrupted: false,
                    status: host.runner_status(),
                    run: started.elapsed(),
                };
                (ending, Some(host))
            }
            None => {
                let ending = self.end_from_client(job, process.as_mut(), &report, started)?;
                if let (false, Some(path), Some(file)) =
                    (ending.interrupted, &spec.log, local_log.as_mut())
                {
                    let log_remote = format!("{dir}/log");
                    replace_with_runner_log(self.transport(), &log_remote, path, file, job.events)?;
                }
                (ending, None)
            }
        };
        let finish = started.elapsed() - ending.run;
        let mut report = run_report(job, report, &ending, finish);
        report.upload = upload;
        Ok((report, host))
    }

    /// The console ended without the host's finish (mq's deadline, an
    /// interrupt, a detach, a runner script of old): the board is stopped if
    /// it may still run, and the shell's status is the runner's.
    pub(crate) fn end_from_client(
        &self,
        job: &Job<'_>,
        process: &mut dyn PtyProcess,
        report: &mq_console::Report,
        started: Instant,
    ) -> Result<Ending, JobError> {
        let cancel = job.cancel;
        // An interrupt after the completion text (a keep-alive console, or
        // a runner still powering off) stops the board all the same.
        let finished = !matches!(
            report.outcome,
            Outcome::Interrupted | Outcome::Timeout { .. }
        ) && !report.detached
            && !cancel.is_cancelled();
        if !finished {
            process
                .hangup()
                .map_err(|e| transport_or_interrupt(cancel, e))?;
        }
        let status = process
            .wait()
            .map_err(|e| transport_or_interrupt(cancel, e))?;
        // Once the board ran, an interrupt still gives a report (bytes,
        // markers, times), with the interrupted outcome and status 130.
        let interrupted = (matches!(report.outcome, Outcome::Interrupted) || cancel.is_cancelled())
            && !report.detached;
        Ok(Ending {
            interrupted,
            status: status.shell_code(),
            run: started.elapsed(),
        })
    }
}
