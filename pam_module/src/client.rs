//! A blocking client for wardend's socket with one deadline over connect, send
//! and receive, so a stuck daemon can never hang sshd or sudo. It talks only to
//! a daemon running as root: a socket in a user-writable place could otherwise
//! be answered by anyone, and the code prompt would hand them what is typed.
//!
//! One connection serves a PAM handle's calls (preauth, then authfail or
//! authsucc, then account): a login pays for one connect, not three. It is
//! kept only after a clean exchange, so it never holds a late answer.

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    connect, getsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, UnixAddr,
};
use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};
use warden_proto::{
    decode_response, encode_request, read_frame, write_frame, RequestBody, ResponseBody,
};

#[derive(Debug)]
pub enum ClientError {
    /// The daemon is not there (no socket, refused).
    Unreachable(String),
    /// It did not answer within the deadline.
    Timeout,
    /// It answered something we could not read.
    Protocol(String),
    /// The socket is served by someone other than root.
    Impostor { path: String, uid: u32 },
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Unreachable(e) => write!(f, "wardend unreachable: {e}"),
            ClientError::Timeout => write!(f, "wardend did not answer in time"),
            ClientError::Protocol(e) => write!(f, "wardend answered badly: {e}"),
            ClientError::Impostor { path, uid } => write!(
                f,
                "{path} is served by uid {uid}, not root: nothing was sent to it; check who can write its directory"
            ),
        }
    }
}

/// The daemon as the flow sees it.
pub trait Daemon {
    fn call(&self, request: RequestBody) -> Result<ResponseBody, ClientError>;
    /// Sends a request that is never answered (`Passed`).
    fn send(&self, request: RequestBody) -> Result<(), ClientError>;
}

pub struct SocketClient<'a> {
    pub path: &'a Path,
    /// Tried first when the module runs as root, as in sshd, sudo, su and
    /// login: only root can reach it, so local users' floods of `path` never
    /// delay them.
    pub root_path: &'a Path,
    pub timeout: Duration,
    /// The connection of an earlier call on this handle, and the one to keep
    /// for the next.
    pub kept: RefCell<Option<UnixStream>>,
}

impl SocketClient<'_> {
    /// Sends, and reads the answer when one is expected, over the kept
    /// connection if it is still open and over a fresh one otherwise. wardend
    /// closes a connection only between requests, never with one read and
    /// unanswered: a kept connection found closed mid-exchange is one it
    /// closed just as we wrote, before reading, and the request goes once
    /// more on a fresh connection, within the same deadline.
    fn exchange(
        &self,
        request: RequestBody,
        answer: bool,
    ) -> Result<Option<ResponseBody>, ClientError> {
        let deadline = Instant::now() + self.timeout;
        let body = encode_request(request).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let kept = self.kept.take().filter(still_open);
        if let Some(stream) = kept {
            match once(stream, &body, answer, deadline) {
                Ok((stream, reply)) => {
                    self.kept.replace(Some(stream));
                    return Ok(reply);
                }
                Err(Failed::Closed) => {}
                Err(Failed::Other(e)) => return Err(e),
            }
        }
        match once(self.open(deadline)?, &body, answer, deadline) {
            Ok((stream, reply)) => {
                self.kept.replace(Some(stream));
                Ok(reply)
            }
            Err(Failed::Closed) => Err(ClientError::Protocol(
                "wardend closed the connection without an answer".into(),
            )),
            Err(Failed::Other(e)) => Err(e),
        }
    }

    fn open(&self, deadline: Instant) -> Result<UnixStream, ClientError> {
        if nix::unistd::geteuid().is_root() {
            match connect_by(self.root_path, deadline) {
                Ok(s) => return Ok(s),
                // No root socket (an older daemon, or not there yet under
                // socket activation): the public one decides.
                Err(ClientError::Unreachable(_)) => {}
                Err(e) => return Err(e),
            }
        }
        connect_by(self.path, deadline)
    }
}

impl Daemon for SocketClient<'_> {
    fn call(&self, request: RequestBody) -> Result<ResponseBody, ClientError> {
        self.exchange(request, true)?
            .ok_or_else(|| ClientError::Protocol("no answer read".into()))
    }

    fn send(&self, request: RequestBody) -> Result<(), ClientError> {
        self.exchange(request, false).map(|_| ())
    }
}

enum Failed {
    /// The peer had closed the connection before answering.
    Closed,
    Other(ClientError),
}

/// One request on one connection; the connection back when it is in step.
fn once(
    stream: UnixStream,
    body: &[u8],
    answer: bool,
    deadline: Instant,
) -> Result<(UnixStream, Option<ResponseBody>), Failed> {
    let mut stream = Deadlined { stream, deadline };
    write_frame(&mut stream, body).map_err(|e| failed(e, deadline))?;
    if !answer {
        return Ok((stream.stream, None));
    }
    let reply = read_frame(&mut stream).map_err(|e| failed(e, deadline))?;
    let reply =
        decode_response(&reply).map_err(|(_, e)| Failed::Other(ClientError::Protocol(e)))?;
    Ok((stream.stream, Some(reply)))
}

fn failed(e: warden_proto::FrameError, deadline: Instant) -> Failed {
    if Instant::now() >= deadline {
        return Failed::Other(ClientError::Timeout);
    }
    match &e {
        warden_proto::FrameError::Closed => Failed::Closed,
        warden_proto::FrameError::Io(io)
            if matches!(
                io.kind(),
                io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::UnexpectedEof
            ) =>
        {
            Failed::Closed
        }
        _ => Failed::Other(ClientError::Protocol(e.to_string())),
    }
}

/// Whether a kept connection can carry a request: nothing may be waiting on
/// it, neither an end of file (wardend closed it while idle) nor bytes (which
/// would be an answer to no question).
fn still_open(stream: &UnixStream) -> bool {
    let mut fds = [PollFd::new(stream.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(0))
}

fn remaining(deadline: Instant) -> Result<Duration, ClientError> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or(ClientError::Timeout)
}

/// A non-blocking, close-on-exec connect, retried while the listen backlog is
/// full, until the deadline.
fn connect_by(path: &Path, deadline: Instant) -> Result<UnixStream, ClientError> {
    let addr = UnixAddr::new(path).map_err(|e| ClientError::Unreachable(e.to_string()))?;
    let fd: OwnedFd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(|e| ClientError::Unreachable(e.to_string()))?;
    loop {
        match connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr) {
            Ok(()) => break,
            Err(Errno::EINTR) => continue,
            // A full backlog: wait a little and try again.
            Err(Errno::EAGAIN) => {
                let wait = remaining(deadline)?.min(Duration::from_millis(5));
                std::thread::sleep(wait);
            }
            Err(Errno::EINPROGRESS) => {
                let ms = remaining(deadline)?.as_millis().min(u128::from(u16::MAX)) as u16;
                let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
                match poll(&mut fds, PollTimeout::from(ms)) {
                    Ok(0) => return Err(ClientError::Timeout),
                    Ok(_) => break,
                    Err(e) => return Err(ClientError::Unreachable(e.to_string())),
                }
            }
            Err(e) => return Err(ClientError::Unreachable(format!("{}: {e}", path.display()))),
        }
    }
    // Before a byte is sent: who listens there? A connected socket reports
    // the credentials of the process that called listen().
    let cred = getsockopt(&fd, sockopt::PeerCredentials)
        .map_err(|e| ClientError::Unreachable(format!("{}: {e}", path.display())))?;
    if cred.uid() != 0 {
        return Err(ClientError::Impostor {
            path: path.display().to_string(),
            uid: cred.uid(),
        });
    }
    let stream = UnixStream::from(fd);
    stream
        .set_nonblocking(false)
        .map_err(|e| ClientError::Unreachable(e.to_string()))?;
    Ok(stream)
}

/// Sets the time left before every read and write, so that many short reads
/// cannot stretch the call past its deadline.
struct Deadlined {
    stream: UnixStream,
    deadline: Instant,
}

impl Deadlined {
    fn left(&self) -> io::Result<Duration> {
        remaining(self.deadline).map_err(|_| io::Error::from(io::ErrorKind::TimedOut))
    }
}

impl Read for Deadlined {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

impl Write for Deadlined {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.stream.set_write_timeout(Some(left))?;
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}
