//! What a run does on the host once its lock is held, known before the
//! lock is asked for: the temporary directory, the uploads, the invocation
//! of the board's `reboot`, the host's guard and finish.

use super::*;

impl MachineQueue {
    /// PROTOCOL.md's `TFTPBOOT/MACHINE/reboot` of `system`.
    pub(crate) fn reboot_program(&self, system: &System) -> String {
        format!(
            "{}/{}/reboot",
            self.config().tftpboot.value.trim_end_matches('/'),
            system.machine
        )
    }

    /// The run's temporary directory on the host: made while acquiring (its
    /// lines are `said`), or with -n (no acquire) in a round trip of its own.
    pub(crate) fn temp_dir(&self, said: Option<Vec<String>>) -> Result<String, JobError> {
        let said = match said {
            Some(said) => said,
            None => {
                let out = self.transport().run(&format!("{} 2>&1", make_temp_dir()))?;
                out.stdout_text().lines().map(str::to_string).collect()
            }
        };
        said.iter()
            .find_map(|l| l.strip_prefix(TEMP_DIR_MARK))
            .filter(|d| d.starts_with('/'))
            .map(str::to_string)
            .ok_or_else(|| {
                JobError::Host(format!(
                    "cannot make a temporary directory on the host: {}",
                    said.join("; ")
                ))
            })
    }

    /// The images (then the DTB and the bitstream) and their names in the
    /// run's directory; they travel through the console's terminal ([`receive`]).
    pub(crate) fn uploads(&self, spec: &JobSpec) -> Result<Vec<receive::Upload>, JobError> {
        spec.files
            .iter()
            .chain(&spec.dtb)
            .chain(&spec.bitstream)
            .enumerate()
            .map(|(i, local)| {
                let size = std::fs::metadata(local)
                    .map_err(TransportError::local_file(local))?
                    .len();
                Ok(receive::Upload {
                    local: local.clone(),
                    name: format!("img{i}"),
                    size,
                })
            })
            .collect()
    }

    /// The run's commands for a session of their own (the directory made
    /// beforehand). An exec request carries a command of at most about 32
    /// KiB (OpenSSH's packet limit); a longer one (a huge -c) goes up as a
    /// script into `dir`, and the pty runs that.
    pub(crate) fn invocation(&self, plan: &Plan, dir: &str) -> Result<String, JobError> {
        let cmd = format!("mq_d={}\n{}", quote(dir), plan.script);
        if cmd.len() <= MAX_INLINE_COMMAND {
            return Ok(cmd);
        }
        let script = format!("{dir}/invocation");
        upload_text(self.transport().as_ref(), &cmd, &script)?;
        Ok(format!("exec sh {}", quote(&script)))
    }

    /// Everything a run does on the host once its lock is held, known before
    /// the lock is asked for (so that it can ride on the acquire's session):
    /// receive the images, PROTOCOL.md's invocation of the board's `reboot`
    /// (every value quoted), the host's finish. `None` for a reservation.
    pub(crate) fn plan(&self, spec: &JobSpec, system: &System) -> Result<Option<Plan>, JobError> {
        if spec.reservation {
            return Ok(None);
        }
        let uploads = self.uploads(spec)?;
        let names: Vec<String> = uploads.iter().map(|u| in_run_dir(&u.name)).collect();
        let log = in_run_dir("log");
        let finish = self.finish(spec, system, &log)?;
        let script = fill(
            INVOCATION.trim_end(),
            &[
                ("receive", &receive::script(&uploads)),
                ("guard", &finish.guard),
                (
                    "reboot",
                    &reboot_command(spec, &self.reboot_program(system), &log, &names),
                ),
                ("finish", &finish.script),
            ],
        );
        Ok(Some(Plan {
            uploads,
            end_mark: finish.mark,
            script,
        }))
    }

    /// The lines that let the host finish the job (see [`finish`]): the
    /// directory removed and, unless `-n`, the lock released.
    pub(crate) fn finish(
        &self,
        spec: &JobSpec,
        system: &System,
        log: &str,
    ) -> Result<finish::Finish, JobError> {
        // The board's health is counted by the finish, under its lock,
        // before the release (not by the guard: a client that went away
        // says nothing about the board).
        let health = health::update_script(
            &system.name,
            log,
            &spec.key,
            spec.completion.as_deref(),
            spec.error.as_deref(),
        );
        let remove = remove_temp_dir("\"$mq_d\"");
        let cleanup = if spec.reuse_held_lock {
            finish::Cleanup::RemoveOnly(remove)
        } else {
            let script = self
                .locks()
                .release_script(&system.name, &spec.key, false, &remove)
                .map_err(QueueError::Lock)?;
            finish::Cleanup::Release(script)
        };
        Ok(finish::Finish::new(
            &quote(&self.reboot_program(system)),
            log,
            spec.log.is_some(),
            &self.locks().script_head(),
            &health,
            &cleanup,
        ))
    }
}
