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
