//! A wait in line, shown as it goes: on a terminal one line redrawn in place
//! (who holds the board, since when, the place in line and an estimate),
//! elsewhere a line when something changes.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mq_core::{Place, WaitEvent};

/// The wait's progress on stderr.
pub struct WaitDisplay {
    state: Arc<Mutex<DisplayState>>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

pub(crate) struct DisplayState {
    system: String,
    holder: Option<(String, String)>,
    /// Place in the line of mq waiters, once known, and when it was heard.
    place: Option<(Place, Instant)>,
    started: Instant,
    done: bool,
    drawn: bool,
}

impl DisplayState {
    /// "3rd in line for haswell3 (held by alice for 12 min, key CI-123);
    /// about 8 min; waited 40s", or without a place the holder and since.
    fn line(&self) -> String {
        let waited = elapsed(self.started.elapsed().as_secs());
        if let Some((p, heard)) = &self.place {
            let later = heard.elapsed();
            let mut text = format!("Waiting: {} in line for {}", ordinal(p.place), p.system);
            if let (Some(owner), Some(held)) = (&p.holder, p.held_for) {
                text += &format!(" (held by {owner} for {}", minutes(held + later));
                match p.holder_key.as_deref() {
                    Some("0") | None => {}
                    Some(key) => text += &format!(", key {key}"),
                }
                text.push(')');
            }
            if let Some(estimate) = p.estimate {
                text += &format!("; {}", about(estimate.saturating_sub(later)));
            }
            return format!("{text}; waited {waited}");
        }
        match &self.holder {
            Some((owner, since)) => format!(
                "Waiting for {}: held by {owner} since {}; waited {waited}",
                self.system,
                short_time(since),
            ),
            None => format!("Waiting for {}; waited {waited}", self.system),
        }
    }
}

/// A hold's length: "40 s", "12 min", "2 h 05 min".
pub(crate) fn minutes(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..7200 => format!("{} min", s / 60),
        _ => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
    }
}

/// An estimate, said as one: "about 8 min", or once it has run out "any
/// moment (past the estimate)".
pub(crate) fn about(d: Duration) -> String {
    match d.as_secs() {
        0 => "any moment (past the estimate)".to_string(),
        s @ 1..90 => format!("about {} min", s.div_ceil(60)),
        s => format!("about {}", minutes(Duration::from_secs(s + 30))),
    }
}

/// 1st, 2nd, 3rd, 4th, ... 11th, 12th, 13th, 21st.
pub(crate) fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// `2026-11-28 06:00:58.010732932 +0000` without the fraction of a second.
pub(crate) fn short_time(since: &str) -> String {
    let mut words: Vec<&str> = since.split(' ').collect();
    if let Some(time) = words.get_mut(1) {
        *time = time.split('.').next().unwrap_or(time);
    }
    words.join(" ")
}

pub(crate) fn elapsed(seconds: u64) -> String {
    if seconds < 60 {
        format!("{seconds}s")
    } else if seconds < 3600 {
        format!("{}m{:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{}h{:02}m", seconds / 3600, seconds % 3600 / 60)
    }
}

impl WaitDisplay {
    /// Starts showing a wait for `system`.
    pub fn start(system: &str) -> WaitDisplay {
        let state = Arc::new(Mutex::new(DisplayState {
            system: system.to_string(),
            holder: None,
            place: None,
            started: Instant::now(),
            done: false,
            drawn: false,
        }));
        let ticker = std::io::stderr().is_terminal().then(|| {
            let state = Arc::clone(&state);
            std::thread::spawn(move || loop {
                std::thread::sleep(Duration::from_millis(500));
                let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
                if s.done {
                    return;
                }
                // Only once someone else is seen holding it (or ahead in
                // line): a free board is taken at once and needs no
                // progress line.
                if s.holder.is_some() || s.place.is_some() {
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r\x1b[K{}", mq_core::inert(&s.line()));
                    let _ = err.flush();
                    s.drawn = true;
                }
            })
        });
        WaitDisplay { state, ticker }
    }

    /// A wait event.
    pub fn event(&self, event: WaitEvent) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            WaitEvent::Holder { owner, since } => s.holder = Some((owner, since)),
            WaitEvent::Place(place) => s.place = Some((place, Instant::now())),
        }
        if self.ticker.is_none() {
            eprintln!("{}", mq_core::inert(&s.line()));
        }
    }

    /// Ends the display, clearing the progress line.
    pub fn finish(mut self) {
        let drawn = {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            s.done = true;
            s.drawn
        };
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
        if drawn {
            eprint!("\r\x1b[K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_reads_well() {
        assert_eq!(elapsed(5), "5s");
        assert_eq!(elapsed(125), "2m05s");
        assert_eq!(elapsed(7322), "2h02m");
        let o: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 101].map(ordinal).to_vec();
        assert_eq!(
            o,
            ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st"]
        );
        assert_eq!(
            short_time("2026-11-28 06:00:58.010732932 +0000"),
            "2026-11-28 06:00:58 +0000"
        );
        let m = |s| minutes(Duration::from_secs(s));
        assert_eq!([m(40), m(725), m(7500)], ["40 s", "12 min", "2 h 05 min"]);
        let a = |s| about(Duration::from_secs(s));
        assert_eq!(a(0), "any moment (past the estimate)");
        assert_eq!(
            [a(1), a(60), a(61), a(480)],
            ["about 1 min", "about 1 min", "about 2 min", "about 8 min"]
        );
    }

    #[test]
    fn the_wait_line_says_place_holder_and_estimate() {
        let mut s = DisplayState {
            system: "haswell3".into(),
            holder: Some(("alice".into(), "2026-11-28 06:00:58.01 +0000".into())),
            place: None,
            started: Instant::now(),
            done: false,
            drawn: false,
        };
        assert_eq!(
            s.line(),
            "Waiting for haswell3: held by alice since 2026-11-28 06:00:58 +0000; waited 0s"
        );
        s.place = Some((
            Place {
                place: 3,
                system: "haswell3".into(),
                estimate: Some(Duration::from_secs(480)),
                held_for: Some(Duration::from_secs(725)),
                holder: Some("alice".into()),
                holder_key: Some("CI-123".into()),
            },
            Instant::now(),
        ));
        assert_eq!(
            s.line(),
            "Waiting: 3rd in line for haswell3 (held by alice for 12 min, key CI-123); about 8 min; waited 0s"
        );
    }
}
