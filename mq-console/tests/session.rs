//! The console engine: chunking, escapes, timeouts, keep-alive, memory.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use mq_console::markers::{self, Diagnosis};
use mq_console::{
    ConsoleSource, KeepAlive, Match, MatcherBuilder, Outcome, ReaderSource, Session,
    SessionOptions, SourceRead,
};
use proptest::prelude::*;

fn matcher() -> mq_console::Matcher {
    MatcherBuilder::new()
        .completion("All is well in the universe")
        .error(r"Test \S+ FAILED")
        .markers(&markers::sel4_pairs())
        .build()
        .unwrap()
}

/// A scripted console: chunks separated by pauses, then silence or EOF.
struct Scripted {
    steps: VecDeque<Step>,
    sent: Vec<u8>,
    echo: bool,
    stall_forever: bool,
}

enum Step {
    Data(Vec<u8>),
    Pause(Duration),
}

impl Scripted {
    fn new(steps: Vec<Step>) -> Scripted {
        Scripted {
            steps: steps.into(),
            sent: Vec::new(),
            echo: false,
            stall_forever: false,
        }
    }
}

impl ConsoleSource for Scripted {
    fn read(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<SourceRead> {
        if self.echo && !self.sent.is_empty() {
            let n = buf.len().min(self.sent.len());
            buf[..n].copy_from_slice(&self.sent[..n]);
            self.sent.drain(..n);
            return Ok(SourceRead::Data(n));
        }
        match self.steps.pop_front() {
            Some(Step::Data(d)) => {
                buf[..d.len()].copy_from_slice(&d);
                Ok(SourceRead::Data(d.len()))
            }
            Some(Step::Pause(p)) => {
                let t = timeout.unwrap_or(p).min(p);
                std::thread::sleep(t);
                if t < p {
                    self.steps.push_front(Step::Pause(p - t));
                }
                Ok(SourceRead::TimedOut)
            }
            None if self.stall_forever => {
                std::thread::sleep(timeout.unwrap_or(Duration::from_millis(50)));
                Ok(SourceRead::TimedOut)
            }
            None => Ok(SourceRead::Eof),
        }
    }

    fn send(&mut self, data: &[u8]) -> io::Result<()> {
        self.sent.extend_from_slice(data);
        Ok(())
    }

    fn status(&mut self) -> Option<i32> {
        Some(7)
    }
}

fn data(text: &[u8]) -> Step {
    Step::Data(text.to_vec())
}

fn key(m: &Match) -> (String, usize, u64, u64, u64) {
    (m.text.clone(), m.pattern, m.start, m.end, m.line_number)
}

fn all_matches(chunks: &[&[u8]]) -> Vec<(String, usize, u64, u64, u64)> {
    let mut m = matcher();
    let mut found: Vec<_> = chunks.iter().flat_map(|c| m.feed(c)).collect();
    found.extend(m.finish());
    found.iter().map(key).collect()
}

fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"All is well in the universe".to_vec()),
        Just(b"Test SCHED0001 FAILED".to_vec()),
        Just(b"ELF-loader started".to_vec()),
        Just(b"Booting all finished, dropped to user space".to_vec()),
        Just(b"se\x1b[32mL4 failed assertion".to_vec()),
        Just(b"\x1b[0m".to_vec()),
        Just(b"\x1b]0;title\x07".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"KERNEL DATA ABORT!".to_vec()),
        "[ -~]{0,20}".prop_map(|s| s.into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..8),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_split_gives_the_same_matches(
        parts in proptest::collection::vec(fragment(), 1..40),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let stream: Vec<u8> = parts.concat();
        let whole = all_matches(&[&stream]);
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        points.sort();
        points.dedup();
        let mut chunks = Vec::new();
        let mut at = 0;
        for p in points {
            chunks.push(&stream[at..p]);
            at = p;
        }
        chunks.push(&stream[at..]);
        prop_assert_eq!(&all_matches(&chunks), &whole);
        // Byte by byte, the worst case.
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        prop_assert_eq!(&all_matches(&bytes), &whole);
    }
}

#[test]
fn colour_codes_inside_a_marker_and_crlf() {
    let mut source = Scripted::new(vec![
        data(b"U-Boot 2023.04\r\n"),
        data(b"\x1b[1mse\x1b[32mL4\x1b[37m failed assertion 'x'\r\n"),
        data(b"All is well in the universe\r\n"),
    ]);
    let report = Session::new(matcher(), SessionOptions::default())
        .run(&mut source)
        .unwrap();
    let labels: Vec<_> = report.markers.iter().map(|m| m.line.clone()).collect();
    assert_eq!(labels, ["U-Boot 2023.04", "seL4 failed assertion 'x'"]);
    assert!(
        matches!(report.outcome, Outcome::Completed { ref matched } if matched.line_number == 3)
    );
}

#[test]
fn error_text_stops_with_its_code() {
    let mut source = Scripted::new(vec![
        data(b"Test SCHED0002 FAILED\n"),
        data(b"All is well in the universe\n"),
    ]);
    let report = Session::new(matcher(), SessionOptions::default())
        .run(&mut source)
        .unwrap();
    assert!(
        matches!(report.outcome, Outcome::ErrorText { ref matched } if matched.text == "Test SCHED0002 FAILED")
    );
    assert_eq!(report.outcome.exit_code(), 3);
    assert_eq!(report.outcome.ci_marker(), None);
}

#[test]
fn source_closing_without_a_verdict() {
    let mut source = Scripted::new(vec![data(b"just some output\n")]);
    let report = Session::new(matcher(), SessionOptions::default())
        .run(&mut source)
        .unwrap();
    assert_eq!(report.outcome, Outcome::SourceClosed { status: Some(7) });
    assert_eq!(report.outcome.exit_code(), 5);
}

#[test]
fn timeout_is_accurate_and_diagnosed() {
    let mut source = Scripted::new(vec![
        data(b"ELF-loader started\r\n"),
        data(b"Booting all finished, dropped to user space\r\n"),
        data(b"waiting for something"),
    ]);
    source.stall_forever = true;
    let options = SessionOptions {
        timeout: Some(Duration::from_millis(600)),
        ..SessionOptions::default()
    };
    let started = Instant::now();
    let report = Session::new(matcher(), options).run(&mut source).unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_millis(700),
        "{took:?}"
    );
    match &report.outcome {
        Outcome::Timeout {
            saw_output,
            boot,
            last_line,
            diagnosis,
        } => {
            assert!(*saw_output && !*boot);
            assert_eq!(last_line.as_deref(), Some("waiting for something"));
            assert_eq!(diagnosis, &Diagnosis::BootedThenHung);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(report.outcome.ci_marker(), Some("[[Timeout]]"));
    assert_eq!(report.outcome.exit_code(), 4);
}

#[test]
fn boot_timeout_when_nothing_arrives() {
    let mut source = Scripted::new(vec![]);
    source.stall_forever = true;
    let options = SessionOptions {
        timeout: Some(Duration::from_secs(30)),
        boot_timeout: Some(Duration::from_millis(300)),
        ..SessionOptions::default()
    };
    let started = Instant::now();
    let report = Session::new(matcher(), options).run(&mut source).unwrap();
    assert!(started.elapsed() < Duration::from_millis(400));
    assert!(matches!(
        report.outcome,
        Outcome::Timeout {
            saw_output: false,
            boot: true,
            diagnosis: Diagnosis::NoOutput,
            ..
        }
    ));
    assert_eq!(report.outcome.ci_marker(), Some("[[Boot timeout]]"));

    // Output before the boot timeout: only the overall timeout applies.
    let mut source = Scripted::new(vec![data(b"U-Boot 2021.01\n")]);
    source.stall_forever = true;
    let options = SessionOptions {
        timeout: Some(Duration::from_millis(500)),
        boot_timeout: Some(Duration::from_millis(200)),
        ..SessionOptions::default()
    };
    let report = Session::new(matcher(), options).run(&mut source).unwrap();
    assert!(report.elapsed >= Duration::from_millis(500));
    assert!(matches!(
        report.outcome,
        Outcome::Timeout {
            boot: false,
            diagnosis: Diagnosis::NeverBooted(Some(_)),
            ..
        }
    ));
}

#[test]
fn every_byte_reaches_every_sink_unaltered_even_when_interrupted() {
    let stream = b"\x1b[31mred\x1b[0m\r\nprogress 1%\rprogress 2%\r\n\xff\xfe binary\n".to_vec();
    let stop = Arc::new(AtomicBool::new(false));
    let mut source = Scripted::new(vec![
        Step::Data(stream.clone()),
        Step::Pause(Duration::from_secs(10)),
    ]);
    let flag = Arc::clone(&stop);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        flag.store(true, Ordering::SeqCst);
    });
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let options = SessionOptions {
        interrupt: Some(stop),
        ..SessionOptions::default()
    };
    let report = Session::new(matcher(), options)
        .tee(&mut a)
        .tee(&mut b)
        .run(&mut source)
        .unwrap();
    assert_eq!(report.outcome, Outcome::Interrupted);
    assert_eq!(report.outcome.exit_code(), 130);
    assert_eq!(a, stream);
    assert_eq!(b, stream);
}

#[test]
fn keep_alive_passes_bytes_both_ways_until_detach() {
    let mut source = Scripted::new(vec![data(b"All is well in the universe\r\n")]);
    source.echo = true;
    source.stall_forever = true;
    let (tx, rx) = mpsc::channel();
    tx.send(b"ls\r".to_vec()).unwrap();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        tx.send(b"exit\r\x1d ignored".to_vec()).unwrap();
    });
    let mut seen = Vec::new();
    let options = SessionOptions {
        keep_alive: Some(KeepAlive {
            input: rx,
            detach: Some(0x1d),
        }),
        ..SessionOptions::default()
    };
    let report = Session::new(matcher(), options)
        .tee(&mut seen)
        .run(&mut source)
        .unwrap();
    sender.join().unwrap();
    assert!(matches!(report.outcome, Outcome::Completed { .. }));
    assert!(report.detached);
    let seen = String::from_utf8(seen).unwrap();
    // Typed input reaches the console from the start, and after completion
    // the console stays connected until the detach byte.
    assert!(seen.contains("ls\r"), "{seen:?}");
    assert!(seen.contains("All is well in the universe\r\n"), "{seen:?}");
    assert!(!seen.contains("ignored"));
}

#[test]
fn until_closed_reads_on_after_the_verdict() {
    let mut source = Scripted::new(vec![
        data(b"All is well in the universe\n"),
        data(b"powering off\n"),
        data(b"Test X FAILED\n"),
    ]);
    let mut seen = Vec::new();
    let options = SessionOptions {
        until_closed: true,
        ..SessionOptions::default()
    };
    let report = Session::new(matcher(), options)
        .tee(&mut seen)
        .run(&mut source)
        .unwrap();
    assert!(
        matches!(report.outcome, Outcome::Completed { .. }),
        "the first verdict stands"
    );
    assert!(seen.ends_with(b"Test X FAILED\n"));
}

#[test]
fn keep_alive_ends_when_the_console_closes() {
    let mut source = Scripted::new(vec![
        data(b"All is well in the universe\n"),
        data(b"after\n"),
    ]);
    let (_tx, rx) = mpsc::channel();
    let mut seen = Vec::new();
    let options = SessionOptions {
        keep_alive: Some(KeepAlive {
            input: rx,
            detach: Some(0x1d),
        }),
        ..SessionOptions::default()
    };
    let report = Session::new(matcher(), options)
        .tee(&mut seen)
        .run(&mut source)
        .unwrap();
    assert!(!report.detached);
    assert!(seen.ends_with(b"after\n"));
}

#[test]
fn a_100_mb_stream_without_a_match_runs_in_bounded_memory() {
    let mut m = matcher();
    let block: Vec<u8> = (0..2000)
        .flat_map(|i| {
            format!("[{i:5}] Running test SCHED{i:04} \x1b[32mok\x1b[0m\r\n").into_bytes()
        })
        .collect();
    let mut fed = 0usize;
    let mut peak = 0;
    let mut found = 0;
    while fed < 100 << 20 {
        for chunk in block.chunks(4096) {
            found += m.feed(chunk).len();
        }
        fed += block.len();
        peak = peak.max(m.buffered());
    }
    assert_eq!(found, 0);
    assert!(peak < 4096, "held {peak} bytes");
    // One endless line: bounded by the line cap.
    let mut m = matcher();
    let junk = vec![b'z'; 1 << 20];
    for _ in 0..100 {
        m.feed(&junk);
    }
    assert!(
        m.buffered() < 4 * mq_console::matcher::MAX_LINE,
        "{}",
        m.buffered()
    );
}

#[test]
fn reader_source_reads_any_read() {
    let text = b"x\nAll is well in the universe\n".to_vec();
    let mut source = ReaderSource::new(io::Cursor::new(text));
    let report = Session::new(matcher(), SessionOptions::default())
        .run(&mut source)
        .unwrap();
    assert!(matches!(report.outcome, Outcome::Completed { .. }));
}
