//! `-r`: a board held for a person until they say so.

use super::*;

/// A reservation lasts until a line (Enter) or the end of `input`, or a cancel.
pub(crate) fn wait_for_enter(
    input: Option<Box<dyn Read + Send>>,
    cancel: &Cancel,
) -> Result<(), JobError> {
    let Some(input) = input else {
        return Ok(());
    };
    let chunks: Receiver<Vec<u8>> = mq_console::spawn_reader(input);
    loop {
        if cancel.is_cancelled() {
            return Err(JobError::Interrupted);
        }
        match chunks.recv_timeout(Duration::from_millis(100)) {
            Ok(chunk) if chunk.contains(&b'\n') => return Ok(()),
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}

impl MachineQueue {
    /// `-r`: the board is the user's until the input says so, then off.
    pub(crate) fn reserve(
        &self,
        job: &mut Job<'_>,
        reboot: &str,
        input: Option<Box<dyn Read + Send>>,
    ) -> Result<JobReport, JobError> {
        let system = &job.system.name;
        (job.events)(JobEvent::Reserved { system });
        wait_for_enter(input, job.cancel)?;
        (job.events)(JobEvent::PoweringOff { system });
        let out = self
            .transport()
            .run(&format!("{} --shutdown", quote(reboot)))?;
        if !out.status.success() {
            let text = format!("powering off {system} failed: {}", out.stderr_text().trim());
            (job.events)(JobEvent::Warning(&text));
        }
        Ok(empty_report(system, None))
    }
}
