//! A TCP relay on 127.0.0.1 that holds every chunk a fixed time in each
//! direction: a lab host "in another building" for benchmarks and tests,
//! with no kernel features (no `tc netem`, no root).
//!
//! It also counts how often the direction of traffic changes on each
//! connection: a request and its answer are two changes, so half the count
//! is the number of round trips the client waited for (an upper bound: two
//! messages that cross count too).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The relay; stops accepting when dropped (connections it relays end with
/// their endpoints).
pub struct DelayProxy {
    /// The port clients connect to.
    pub port: u16,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
}

#[derive(Default)]
struct Stats {
    connections: AtomicUsize,
    /// Direction changes over all connections.
    turns: AtomicUsize,
}

/// Which way the last chunk went on one connection.
#[derive(Default)]
struct Turns {
    last: Mutex<Option<bool>>,
}

impl DelayProxy {
    /// Relays 127.0.0.1:`port` to `target_port`, each chunk held `one_way`.
    pub fn start(target_port: u16, one_way: Duration) -> DelayProxy {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("a free port");
        let port = listener.local_addr().expect("local addr").port();
        listener.set_nonblocking(true).expect("non-blocking accept");
        let stats = Arc::new(Stats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (Arc::clone(&stats), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        s.connections.fetch_add(1, Ordering::SeqCst);
                        let _ = client.set_nonblocking(false);
                        if let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)) {
                            relay(client, server, one_way, Arc::clone(&s));
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        DelayProxy { port, stats, stop }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.stats.connections.load(Ordering::SeqCst)
    }

    /// Direction changes so far, over all connections (see the module docs).
    pub fn turns(&self) -> usize {
        self.stats.turns.load(Ordering::SeqCst)
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Two pumps, one per direction, sharing the connection's turn tracker.
fn relay(client: TcpStream, server: TcpStream, delay: Duration, stats: Arc<Stats>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let turns = Arc::new(Turns::default());
    for (from, to, upstream) in [
        (client.try_clone(), server.try_clone(), true),
        (server.try_clone(), client.try_clone(), false),
    ] {
        let (Ok(from), Ok(to)) = (from, to) else {
            return;
        };
        let (stats, turns) = (Arc::clone(&stats), Arc::clone(&turns));
        std::thread::spawn(move || pump(from, to, delay, upstream, &stats, &turns));
    }
}

/// Reads chunks as they come; a second thread writes each once it has been
/// held `delay`, so a stream of chunks is delayed, not slowed down.
fn pump(
    mut from: TcpStream,
    to: TcpStream,
    delay: Duration,
    upstream: bool,
    stats: &Stats,
    turns: &Turns,
) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let writer = std::thread::spawn(move || {
        let mut to = to;
        for (due, chunk) in rx {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                {
                    let mut last = turns.last.lock().unwrap_or_else(|p| p.into_inner());
                    if *last != Some(upstream) {
                        if last.is_some() {
                            stats.turns.fetch_add(1, Ordering::SeqCst);
                        }
                        *last = Some(upstream);
                    }
                }
                if tx
                    .send((Instant::now() + delay, buf[..n].to_vec()))
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.join();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_way_is_held_and_turns_are_counted() {
        let echo = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let echo_port = echo.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut s, _) = echo.accept().unwrap();
            let mut buf = [0u8; 16];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 || s.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
        let proxy = DelayProxy::start(echo_port, Duration::from_millis(30));
        let mut c = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
        let started = Instant::now();
        for _ in 0..3 {
            c.write_all(b"ping").unwrap();
            let mut buf = [0u8; 4];
            c.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"ping");
        }
        let took = started.elapsed();
        // Three round trips of 2 x 30 ms each.
        assert!(took >= Duration::from_millis(180), "{took:?}");
        assert!(took < Duration::from_millis(600), "{took:?}");
        assert_eq!(proxy.connections(), 1);
        // ping, pong, ping, pong, ping, pong: five changes of direction.
        assert_eq!(proxy.turns(), 5);
    }
}
