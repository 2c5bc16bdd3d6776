//! Byte streams for libssh2 that are not a direct TCP connection.
//!
//! libssh2 wants a socket. For ProxyJump we hand it one end of a Unix socket
//! pair and pump bytes between the other end and a `direct-tcpip` channel of
//! the jump host's session, on a thread of our own. For ProxyCommand the
//! other end becomes the command's stdin and stdout.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;

use nix::poll::PollFlags;

use super::conn::Conn;
use crate::{Result, TransportError};

const CHUNK: usize = 64 * 1024;

/// A tunnel thread: its join handle (the thread ends when either side closes).
pub(crate) struct Tunnel {
    _thread: JoinHandle<()>,
}

/// Opens a `direct-tcpip` channel from `jump` to `host:port` and returns the
/// socket end a session for the target can use.
pub(crate) fn through_jump(jump: Arc<Conn>, host: &str, port: u16) -> Result<(UnixStream, Tunnel)> {
    let channel = jump
        .retry(&format!("opening a tunnel to {host}:{port}"), || {
            jump.session.channel_direct_tcpip(host, port, None)
        })
        .map_err(|e| match e {
            TransportError::Ssh { detail, .. } => TransportError::Connect {
                endpoint: format!("{host}:{port} via {}", jump.endpoint),
                source: io::Error::new(io::ErrorKind::ConnectionRefused, detail),
            },
            other => other,
        })?;
    let (ours, theirs) =
        UnixStream::pair().map_err(|e| TransportError::io("creating a socket pair", e))?;
    ours.set_nonblocking(true)
        .map_err(|e| TransportError::io("socket pair", e))?;
    let thread = std::thread::Builder::new()
        .name("mq-ssh-jump".into())
        .spawn(move || {
            let _ = pump(&jump, channel, ours);
        })
        .map_err(|e| TransportError::io("starting the tunnel thread", e))?;
    Ok((theirs, Tunnel { _thread: thread }))
}

/// Moves bytes both ways until either side closes.
fn pump(jump: &Conn, mut channel: ssh2::Channel, mut local: UnixStream) -> Result<()> {
    let mut up: Vec<u8> = Vec::with_capacity(CHUNK); // target session -> jump channel
    let mut down: Vec<u8> = Vec::with_capacity(CHUNK); // jump channel -> target session
    let mut buf = vec![0u8; CHUNK];
    let mut local_open = true;
    let mut remote_open = true;
    while local_open || !up.is_empty() {
        let mut progress = false;
        if local_open && up.len() < CHUNK {
            match local.read(&mut buf) {
                Ok(0) => local_open = false,
                Ok(n) => {
                    up.extend_from_slice(&buf[..n]);
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => local_open = false,
            }
        }
        if !up.is_empty() {
            match channel.write(&up) {
                Ok(n) => {
                    up.drain(..n);
                    progress |= n > 0;
                }
                Err(e) => {
                    if let Some(err) = jump.classify_io("tunnel write", e) {
                        return Err(err);
                    }
                }
            }
        }
        if remote_open && down.len() < CHUNK {
            match channel.read(&mut buf) {
                Ok(0) if channel.eof() => remote_open = false,
                Ok(0) => {}
                Ok(n) => {
                    down.extend_from_slice(&buf[..n]);
                    progress = true;
                }
                Err(e) => {
                    if let Some(err) = jump.classify_io("tunnel read", e) {
                        return Err(err);
                    }
                }
            }
        }
        if !down.is_empty() {
            match local.write(&down) {
                Ok(n) => {
                    down.drain(..n);
                    progress |= n > 0;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return Ok(()),
            }
        }
        if !remote_open && down.is_empty() {
            // The far side is finished: let the target session see EOF.
            let _ = local.shutdown(std::net::Shutdown::Write);
            return Ok(());
        }
        if !progress {
            let mut local_flags = PollFlags::empty();
            if local_open && up.len() < CHUNK {
                local_flags |= PollFlags::POLLIN;
            }
            if !down.is_empty() {
                local_flags |= PollFlags::POLLOUT;
            }
            let mut ssh_flags = PollFlags::POLLIN;
            if !up.is_empty() {
                ssh_flags |= PollFlags::POLLOUT;
            }
            jump.poll_with(&[(local.as_raw_fd(), local_flags)], ssh_flags, None)?;
        }
    }
    let _ = channel.close();
    Ok(())
}

/// A running ProxyCommand; killed when dropped.
pub(crate) struct ProxyCommand {
    child: Child,
}

impl Drop for ProxyCommand {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `command` with `sh -c`, its stdin and stdout joined to the returned
/// socket; its stderr is ours, so the user sees what the proxy says.
pub(crate) fn proxy_command(command: &str) -> Result<(UnixStream, ProxyCommand)> {
    let (ours, theirs) =
        UnixStream::pair().map_err(|e| TransportError::io("creating a socket pair", e))?;
    let stdin = theirs
        .try_clone()
        .map_err(|e| TransportError::io("socket pair", e))?;
    let child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(stdin)))
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| TransportError::Connect {
            endpoint: format!("ProxyCommand {command}"),
            source: e,
        })?;
    Ok((ours, ProxyCommand { child }))
}
