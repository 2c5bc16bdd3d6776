//! Known console markers of seL4-style output, and what they say about a run
//! that timed out.
//!
//! [`SEL4`] is a set a caller can pass to [`crate::MatcherBuilder::markers`]
//! as it is, extend, or replace with its own.

/// What a marker tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// The board got this far in booting (later stages have higher numbers).
    Boot(u8),
    /// Something crashed.
    Fault,
    /// The lab's console or runner said something about itself.
    Infrastructure,
}

/// A known marker: a regular expression, its label, its class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// The pattern (a regular expression).
    pub pattern: &'static str,
    /// The label reported with a match.
    pub label: &'static str,
    /// What it tells.
    pub class: Class,
}

/// The labels of the boot stage a timed-out run reached, for messages.
pub const USER_SPACE: &str = "dropped to user space";

/// Markers for seL4 on boards: boot loader, ELF loader, kernel, user space,
/// kernel faults, and the lab console's own messages (PROTOCOL.md).
pub const SEL4: &[Marker] = &[
    Marker {
        pattern: r"U-Boot \d{4}",
        label: "u-boot started",
        class: Class::Boot(1),
    },
    Marker {
        pattern: r"Starting kernel \.\.\.",
        label: "boot loader started the image",
        class: Class::Boot(2),
    },
    Marker {
        pattern: r"ELF-loader started",
        label: "elf-loader started",
        class: Class::Boot(3),
    },
    Marker {
        pattern: r"Jumping to kernel-image entry point",
        label: "kernel entered",
        class: Class::Boot(4),
    },
    Marker {
        pattern: r"Bootstrapping kernel",
        label: "kernel bootstrapping",
        class: Class::Boot(5),
    },
    Marker {
        pattern: r"Booting all finished, dropped to user space",
        label: USER_SPACE,
        class: Class::Boot(6),
    },
    Marker {
        pattern: r"seL4 failed assertion",
        label: "kernel assertion failed",
        class: Class::Fault,
    },
    Marker {
        pattern: r"seL4 called fail",
        label: "kernel called fail",
        class: Class::Fault,
    },
    Marker {
        pattern: r"KERNEL DATA ABORT!",
        label: "kernel data abort",
        class: Class::Fault,
    },
    Marker {
        pattern: r"KERNEL PREFETCH ABORT!",
        label: "kernel prefetch abort",
        class: Class::Fault,
    },
    Marker {
        pattern: r"[Hh]alting\.\.\.",
        label: "kernel halted",
        class: Class::Fault,
    },
    Marker {
        pattern: r"Caught cap fault",
        label: "cap fault",
        class: Class::Fault,
    },
    Marker {
        pattern: r"vm fault on (data|code)",
        label: "vm fault",
        class: Class::Fault,
    },
    Marker {
        pattern: r"Kernel panic - not syncing",
        label: "linux kernel panic",
        class: Class::Fault,
    },
    Marker {
        pattern: r"console is down",
        label: "console is down",
        class: Class::Infrastructure,
    },
    Marker {
        pattern: r"\[-- Console server shutting down --\]",
        label: "console server shutting down",
        class: Class::Infrastructure,
    },
    Marker {
        pattern: r"\[\[Timeout\]\]",
        label: "[[Timeout]]",
        class: Class::Infrastructure,
    },
    Marker {
        pattern: r"\[\[Boot timeout\]\]",
        label: "[[Boot timeout]]",
        class: Class::Infrastructure,
    },
    // mq's board runner and host finish: the board may still be on.
    Marker {
        pattern: r"\[\[Power off failed\]\]",
        label: "[[Power off failed]]",
        class: Class::Infrastructure,
    },
];

/// The class of a label of [`SEL4`] (`None` for labels of other sets).
pub fn class_of(label: &str) -> Option<Class> {
    SEL4.iter().find(|m| m.label == label).map(|m| m.class)
}

/// [`SEL4`] as `(pattern, label)` pairs, for [`crate::MatcherBuilder::markers`].
pub fn sel4_pairs() -> Vec<(&'static str, &'static str)> {
    SEL4.iter().map(|m| (m.pattern, m.label)).collect()
}

/// What a run that timed out looks like, from its output and markers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "diagnosis", content = "detail", rename_all = "kebab-case")]
pub enum Diagnosis {
    /// Not one byte came from the console: power, boot loader or console.
    NoOutput,
    /// The console talked but the kernel never reached user space; the
    /// furthest boot stage seen, if any.
    NeverBooted(Option<String>),
    /// User space was reached, then nothing more that mattered: a hang.
    BootedThenHung,
    /// A fault marker was seen (the first one's label).
    Fault(String),
    /// The lab's console reported a problem of its own.
    Console(String),
}

impl Diagnosis {
    /// Diagnoses from whether there was output and the marker labels seen
    /// (in order).
    pub fn from_markers<'a>(
        saw_output: bool,
        labels: impl IntoIterator<Item = &'a str>,
    ) -> Diagnosis {
        if !saw_output {
            return Diagnosis::NoOutput;
        }
        let mut furthest: Option<(u8, &str)> = None;
        for label in labels {
            match class_of(label) {
                Some(Class::Fault) => return Diagnosis::Fault(label.to_string()),
                Some(Class::Infrastructure) if label == "console is down" => {
                    return Diagnosis::Console(label.to_string())
                }
                Some(Class::Boot(stage)) if furthest.is_none_or(|(s, _)| stage > s) => {
                    furthest = Some((stage, label));
                }
                _ => {}
            }
        }
        match furthest {
            Some((_, USER_SPACE)) => Diagnosis::BootedThenHung,
            other => Diagnosis::NeverBooted(other.map(|(_, l)| l.to_string())),
        }
    }
}

impl std::fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Diagnosis::NoOutput => f.write_str(
                "no output at all: the board never booted (power, boot loader or console?)",
            ),
            Diagnosis::NeverBooted(None) => {
                f.write_str("output, but no sign of the kernel: the board never booted")
            }
            Diagnosis::NeverBooted(Some(stage)) => {
                write!(f, "the board never reached user space (last: {stage})")
            }
            Diagnosis::BootedThenHung => f.write_str("booted to user space, then hung"),
            Diagnosis::Fault(label) => write!(f, "crashed: {label}"),
            Diagnosis::Console(label) => write!(f, "console problem: {label}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles_and_labels_are_unique() {
        let builder = crate::MatcherBuilder::new().markers(&sel4_pairs());
        assert!(builder.build().is_ok());
        let mut labels: Vec<_> = SEL4.iter().map(|m| m.label).collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), SEL4.len());
    }

    #[test]
    fn timeouts_are_told_apart() {
        assert_eq!(Diagnosis::from_markers(false, []), Diagnosis::NoOutput);
        assert_eq!(
            Diagnosis::from_markers(true, []),
            Diagnosis::NeverBooted(None)
        );
        assert_eq!(
            Diagnosis::from_markers(true, ["u-boot started", "elf-loader started"]),
            Diagnosis::NeverBooted(Some("elf-loader started".into()))
        );
        assert_eq!(
            Diagnosis::from_markers(true, ["elf-loader started", USER_SPACE]),
            Diagnosis::BootedThenHung
        );
        assert_eq!(
            Diagnosis::from_markers(true, [USER_SPACE, "kernel data abort"]),
            Diagnosis::Fault("kernel data abort".into())
        );
    }
}
