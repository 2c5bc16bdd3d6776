//! Console matcher throughput and completion latency.
//!
//! `cargo bench -p mq-console` prints:
//! * MB/s of the matcher with 20 patterns over 100 MB of console text in
//!   which nothing matches until the very end (target >= 200 MB/s);
//! * the time from the completion text arriving on a source to the session
//!   returning (target <= 5 ms), median and worst of 50 runs.
//!
//! The floor for throughput is memchr over the same bytes (a pass that does
//! nothing but look for line ends), measured in the same run.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use mq_console::{markers, MatcherBuilder, Outcome, ReaderSource, Session, SessionOptions};

fn console_text(size: usize) -> Vec<u8> {
    let lines = [
        "Starting test 1: SCHED0000\r\n",
        "\x1b[32mTest SCHED0000 passed\x1b[0m\r\n",
        "seL4: vspace 0x0000000040000000 mapped\r\n",
        "[    0.123456] virtio_blk virtio1: [vda] 2097152 512-byte logical blocks\r\n",
        "Running test BENCH0001 (Measure the overhead of a tight spin loop), iteration 17\r\n",
        "ELF-loader: image 'sel4test-driver' at 0x50000000..0x5010c000\r\n",
        "progress: 42%\r",
        "  <testcase classname=\"sel4test\" name=\"SCHED0005\"/>\r\n",
    ];
    let mut out = Vec::with_capacity(size + 256);
    let mut i = 0;
    while out.len() < size {
        out.extend_from_slice(lines[i % lines.len()].as_bytes());
        i += 1;
    }
    out.extend_from_slice(b"All is well in the universe\r\n");
    out
}

fn matcher() -> mq_console::Matcher {
    // 20 patterns: completion, error texts and seL4's markers.
    let mut b = MatcherBuilder::new()
        .completion("All is well in the universe")
        .error("Test \\S+ FAILED")
        .error("Kernel exception")
        .markers(&markers::sel4_pairs());
    let n = 3 + markers::SEL4.len();
    for i in n..20 {
        b = b.marker(&format!("custom marker {i}"), "custom");
    }
    b.build().unwrap()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let text = console_text(100 << 20);
    let mb = text.len() as f64 / 1e6;

    let t = Instant::now();
    let mut lines = 0usize;
    for chunk in text.chunks(64 * 1024) {
        lines += memchr::memchr_iter(b'\n', chunk).count();
    }
    let floor = t.elapsed();
    assert!(lines > 0);

    let mut best = Duration::MAX;
    for _ in 0..3 {
        let mut m = matcher();
        let t = Instant::now();
        let mut found = 0;
        for chunk in text.chunks(4096) {
            found += m.feed(chunk).len();
        }
        best = best.min(t.elapsed());
        assert_eq!(found, 1, "only the completion at the very end");
    }
    println!(
        "matcher, 20 patterns, {:.0} MB in 4 KiB chunks: {:.0} MB/s (target >= 200); floor memchr {:.0} MB/s",
        mb,
        mb / best.as_secs_f64(),
        mb / floor.as_secs_f64()
    );

    let mut latencies = Vec::new();
    for _ in 0..50 {
        let (mut board, console) = UnixStream::pair().unwrap();
        let writer = std::thread::spawn(move || {
            board
                .write_all(b"booting...\r\nELF-loader started\r\n")
                .unwrap();
            std::thread::sleep(Duration::from_millis(20));
            let sent = Instant::now();
            board.write_all(b"All is well in the universe\r\n").unwrap();
            std::thread::sleep(Duration::from_millis(50));
            drop(board);
            sent
        });
        let mut source = ReaderSource::new(console);
        let report = Session::new(matcher(), SessionOptions::default())
            .run(&mut source)
            .unwrap();
        let returned = Instant::now();
        assert!(matches!(report.outcome, Outcome::Completed { .. }));
        let sent = writer.join().unwrap();
        latencies.push(returned - sent);
    }
    latencies.sort();
    println!(
        "completion text -> session returns: median {:.3} ms, worst {:.3} ms (target <= 5 ms)",
        latencies[latencies.len() / 2].as_secs_f64() * 1000.0,
        latencies.last().unwrap().as_secs_f64() * 1000.0
    );
}
