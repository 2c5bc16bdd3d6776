//! The images go to the host through the console's own terminal, before the
//! runner starts: no channel of their own, so no round trips of their own.
//! The invocation puts its terminal in raw mode (no echo, no line editing,
//! no signals from bytes), says so, reads each image with GNU `head -c` (it
//! reads exactly what it is asked for), checks each size, restores the
//! terminal and reports; only then does the runner start.

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use mq_transport::{fill, PtyProcess, ReadOutcome, TransportError};

use super::{transport_or_interrupt, Cancel, JobError, JobEvent};

const RECEIVE: &str = include_str!("../sh/receive.sh");
/// Printed once the terminal is raw: the images may come.
const READY_MARK: &str = "MQ-READY";
/// Printed with 1 (every image stored, at its size) or 0.
const RECEIVED_MARK: &str = "MQ-RECEIVED ";

/// One image to send.
pub(crate) struct Upload {
    pub(crate) local: PathBuf,
    /// Its name in the run's directory.
    pub(crate) name: String,
    pub(crate) size: u64,
}

/// The receiving lines of the invocation.
pub(crate) fn script(uploads: &[Upload]) -> String {
    let receive: Vec<String> = uploads
        .iter()
        .map(|u| {
            let (remote, n) = (super::in_run_dir(&u.name), u.size);
            format!("head -c {n} > {remote} && [ \"$(wc -c < {remote})\" -eq {n} ] || mq_ok=0")
        })
        .collect();
    fill(
        RECEIVE.trim_end(),
        &[
            ("ready_mark", READY_MARK),
            ("received_mark", RECEIVED_MARK.trim_end()),
            ("receive", &receive.join("\n")),
        ],
    )
}

/// Sends the images once the host is ready for them; returns the console
/// bytes that came after the host's receipt.
pub(crate) fn send(
    process: &mut dyn PtyProcess,
    first: Vec<u8>,
    uploads: &[Upload],
    cancel: &Cancel,
    events: &mut dyn FnMut(JobEvent),
) -> Result<Vec<u8>, JobError> {
    let (_, rest) = read_line_starting(process, first, READY_MARK, cancel)?;
    if !rest.is_empty() {
        return Err(JobError::Host(format!(
            "the host wrote while receiving the images: {}",
            String::from_utf8_lossy(&rest)
        )));
    }
    let mut buf = vec![0u8; 64 * 1024];
    for upload in uploads {
        let local_error = TransportError::local_file(&upload.local);
        let mut file = File::open(&upload.local).map_err(local_error)?;
        let mut done = 0u64;
        events(JobEvent::Uploading {
            file: &upload.local,
            done,
            total: upload.size,
        });
        while done < upload.size {
            if cancel.is_cancelled() {
                // Raw: a ^C would be data. The host's shell dies of the
                // hangup before the runner starts.
                let _ = process.cut();
                return Err(JobError::Interrupted);
            }
            let want = buf.len().min((upload.size - done) as usize);
            let n = file.read(&mut buf[..want]).map_err(local_error)?;
            if n == 0 {
                return Err(JobError::Check(format!(
                    "{} shrank while it was being sent",
                    upload.local.display()
                )));
            }
            process
                .write(&buf[..n])
                .map_err(|e| transport_or_interrupt(cancel, e))?;
            done += n as u64;
            events(JobEvent::Uploading {
                file: &upload.local,
                done,
                total: upload.size,
            });
        }
    }
    let (line, rest) = read_line_starting(process, Vec::new(), RECEIVED_MARK, cancel)?;
    if line.trim_end() != format!("{RECEIVED_MARK}1") {
        return Err(JobError::Host(
            "the host could not store the images (is its disk full? is its head not GNU's?)".into(),
        ));
    }
    Ok(rest)
}

/// Reads until a line starting with `mark`; returns that line and the bytes
/// after it. Lines before it (a shell's complaint) say why when it never comes.
fn read_line_starting(
    process: &mut dyn PtyProcess,
    mut seen: Vec<u8>,
    mark: &str,
    cancel: &Cancel,
) -> Result<(String, Vec<u8>), JobError> {
    let mut buf = vec![0u8; 4096];
    loop {
        let mut start = 0;
        while let Some(end) = seen[start..].iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&seen[start..start + end])
                .trim_end_matches('\r')
                .to_string();
            if line.starts_with(mark) {
                return Ok((line, seen[start + end + 1..].to_vec()));
            }
            start += end + 1;
        }
        if cancel.is_cancelled() {
            let _ = process.hangup();
            return Err(JobError::Interrupted);
        }
        match process
            .read(&mut buf, Some(Duration::from_millis(100)))
            .map_err(|e| transport_or_interrupt(cancel, e))?
        {
            ReadOutcome::Data(n) => seen.extend_from_slice(&buf[..n]),
            ReadOutcome::TimedOut => {}
            ReadOutcome::Eof => {
                return Err(JobError::Host(format!(
                    "the host ended the run before it received the images: {}",
                    String::from_utf8_lossy(&seen).trim()
                )))
            }
        }
    }
}
