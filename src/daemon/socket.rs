//! UNIX-socket plumbing for daemon mode: the listening socket the Apache parent keeps open
//! across restarts, the Apache child's connect with its timeout, and [`Conn`], a framed
//! connection that buffers writes and receives the files a daemon passes (SCM_RIGHTS).
//! A connection carries many requests, one after another: [`Conn::is_idle`] says an exchange
//! ended cleanly, [`Conn::is_alive`] whether the peer still holds a kept connection open.

use std::cell::Cell;
use std::collections::VecDeque;
use std::io::{self, IoSlice, IoSliceMut, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::socket::{self, ControlMessage, ControlMessageOwned, MsgFlags, UnixAddr};
use nix::sys::stat::{Mode, umask};

use super::protocol::{self, FRAME_HEADER, ProtocolError};

/// Why a framed read or write failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnError {
    /// The peer closed the connection between frames.
    #[error("the connection was closed")]
    Closed,
    /// The peer closed the connection in the middle of a frame.
    #[error("the connection was closed in the middle of a message")]
    Truncated,
    /// Nothing arrived in time.
    #[error("timed out")]
    TimedOut,
    /// The peer sent something the protocol does not allow.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// Any other I/O error.
    #[error("{0}")]
    Io(io::Error),
}

impl From<io::Error> for ConnError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ConnError::TimedOut,
            _ => ConnError::Io(e),
        }
    }
}

/// Creates the listening socket of a daemon group at `path`: readable and writable only by
/// `owner` (Apache's `User`, when Apache starts as root), non-blocking, close-on-exec.
pub fn listen(path: &Path, backlog: u32, owner: Option<(u32, u32)>) -> io::Result<UnixListener> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // The file is created 0600 from the start: no moment where another user could connect.
    let old = umask(Mode::from_bits_truncate(0o177));
    let listener = UnixListener::bind(path);
    umask(old);
    let listener = listener?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    }
    set_backlog(&listener, backlog)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Sets the listen queue's length (again, when a restart changes `listen-backlog`).
pub fn set_backlog(listener: &UnixListener, backlog: u32) -> io::Result<()> {
    let backlog = socket::Backlog::new(backlog.min(i32::MAX as u32) as i32).map_err(io::Error::from)?;
    socket::listen(listener, backlog).map_err(io::Error::from)
}

/// Why an Apache child could not connect to a daemon group.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Every try failed until `connect-timeout`; the last reason.
    #[error("no connection within the connect-timeout of {timeout:?}: {last}")]
    TimedOut {
        /// The timeout.
        timeout: Duration,
        /// The last failure.
        last: io::Error,
    },
}

/// Connects to `path`, retrying while the listen queue is full or the socket is not there yet
/// (the parent is still starting the group), until `timeout`.
pub fn connect(path: &Path, timeout: Duration) -> Result<UnixStream, ConnectError> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        let last = match try_connect(path) {
            Ok(stream) => return Ok(stream),
            Err(e) => e,
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(ConnectError::TimedOut { timeout, last });
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

fn try_connect(path: &Path) -> io::Result<UnixStream> {
    let fd = socket::socket(
        socket::AddressFamily::Unix,
        socket::SockType::Stream,
        socket::SockFlag::SOCK_CLOEXEC | socket::SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    let addr = UnixAddr::new(path)?;
    // Non-blocking, so a full listen queue answers EAGAIN instead of blocking the thread.
    match socket::connect(fd.as_raw_fd(), &addr) {
        Ok(()) => {}
        Err(Errno::EINPROGRESS) => {
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
            poll(&mut fds, 1000u16)?;
            socket::getsockopt(&fd, socket::sockopt::SocketError)
                .map_err(io::Error::from)
                .and_then(|e| if e == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(e)) })?;
        }
        Err(e) => return Err(e.into()),
    }
    let stream = UnixStream::from(fd);
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// Sets both directions' timeouts of a connection.
pub fn set_timeouts(stream: &UnixStream, timeout: Duration) -> io::Result<()> {
    let timeout = Some(timeout.max(Duration::from_millis(1)));
    stream.set_read_timeout(timeout)?;
    stream.set_write_timeout(timeout)
}

/// Most files a peer may have passed and not yet claimed; more are closed on arrival.
const MAX_PENDING_FILES: usize = 4;

/// Room for the control message of one receive: the header and [`MAX_PENDING_FILES`]
/// descriptors (40 bytes on 64-bit Linux; a unit test checks it against `CMSG_SPACE`). On the
/// stack, aligned for the header: a heap buffer for every receive cost two allocator calls.
#[repr(C, align(8))]
struct ControlSpace([u8; 48]);

/// The read buffer a connection starts with; `read_frame` grows it to whatever a frame needs.
const FIRST_READ_BUFFER: usize = 16 * 1024;
/// The write buffer a connection starts with.
const FIRST_WRITE_BUFFER: usize = 16 * 1024;
/// The most buffered bytes of an incomplete frame moved to the front of the read buffer.
const MOVED_PARTIAL_FRAME: usize = 4 * 1024;
/// Read buffers grown past this (large body frames) are not kept for the thread's next connection.
const KEPT_READ_BUFFER: usize = 256 * 1024;

thread_local! {
    /// The read buffer of this thread's last connection (closed, or parked idle by a daemon):
    /// zeroing a fresh buffer for every connection cost as much as the rest of a small request.
    static SPARE_READ_BUFFER: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
    /// The same for the write buffer.
    static SPARE_WRITE_BUFFER: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

fn take_read_buffer() -> Vec<u8> {
    let spare = SPARE_READ_BUFFER.try_with(Cell::take).unwrap_or_default();
    if spare.len() >= FIRST_READ_BUFFER { spare } else { vec![0; FIRST_READ_BUFFER] }
}

fn take_write_buffer() -> Vec<u8> {
    let mut spare = SPARE_WRITE_BUFFER.try_with(Cell::take).unwrap_or_default();
    spare.clear();
    spare.reserve(FIRST_WRITE_BUFFER);
    spare
}

/// Keeps a connection's buffers for the thread's next one (large ones are freed).
fn keep_buffers(read: Vec<u8>, write: Vec<u8>) {
    // The thread may be exiting (its locals gone): then the buffers are simply freed.
    if !read.is_empty() && read.len() <= KEPT_READ_BUFFER {
        let _ = SPARE_READ_BUFFER.try_with(|spare| spare.set(read));
    }
    if write.capacity() > 0 && write.capacity() <= KEPT_READ_BUFFER {
        let _ = SPARE_WRITE_BUFFER.try_with(|spare| spare.set(write));
    }
}

/// Whether a failed send or read proves the peer closed the connection without reading what
/// was sent (its socket went away with our bytes unread, or before they were written).
pub fn never_read(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe)
}

/// A framed connection: reads whole frames, buffers small writes until [`Conn::flush`].
pub struct Conn {
    stream: UnixStream,
    rbuf: Vec<u8>,
    start: usize,
    end: usize,
    files: VecDeque<OwnedFd>,
    wbuf: Vec<u8>,
    /// The socket's own read timeout (SO_RCVTIMEO), to know when a shorter deadline needs poll.
    read_timeout: Option<Duration>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        keep_buffers(std::mem::take(&mut self.rbuf), std::mem::take(&mut self.wbuf));
    }
}

impl Conn {
    /// Wraps a connected stream whose timeouts are already set.
    pub fn new(stream: UnixStream) -> Self {
        let read_timeout = stream.read_timeout().ok().flatten();
        Conn {
            stream,
            rbuf: take_read_buffer(),
            start: 0,
            end: 0,
            files: VecDeque::new(),
            wbuf: take_write_buffer(),
            read_timeout,
        }
    }

    /// Wraps a connected stream, setting both directions' timeouts (once for the connection's
    /// life: it may carry many requests).
    pub fn with_timeout(stream: UnixStream, timeout: Duration) -> io::Result<Self> {
        set_timeouts(&stream, timeout)?;
        let mut conn = Conn::new(stream);
        conn.read_timeout = Some(timeout.max(Duration::from_millis(1)));
        Ok(conn)
    }

    /// The timeout set by [`Conn::with_timeout`] or [`Conn::set_timeout`].
    pub fn timeout(&self) -> Option<Duration> {
        self.read_timeout
    }

    /// Changes both directions' timeouts.
    pub fn set_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        set_timeouts(&self.stream, timeout)?;
        self.read_timeout = Some(timeout.max(Duration::from_millis(1)));
        Ok(())
    }

    /// Whether the last exchange ended cleanly: nothing buffered either way, no file unclaimed.
    /// Only such a connection may carry another request.
    pub fn is_idle(&self) -> bool {
        self.start == self.end && self.files.is_empty() && self.wbuf.is_empty()
    }

    /// Whether the peer still holds this idle connection open, without waiting: a kept
    /// connection whose peer closed it reads as end-of-file (or an error); one with bytes
    /// waiting is out of step with the protocol. Either is no good for another request.
    pub fn is_alive(&self) -> bool {
        let mut byte = [0u8; 1];
        let peeked = socket::recv(self.stream.as_raw_fd(), &mut byte, MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT);
        matches!(peeked, Err(Errno::EAGAIN))
    }

    /// Hands the buffers back to the thread while the connection waits idle (a daemon parks many
    /// connections; the next [`Conn::read_frame`] takes buffers again).
    pub fn release_buffers(&mut self) {
        if self.is_idle() {
            (self.start, self.end) = (0, 0);
            keep_buffers(std::mem::take(&mut self.rbuf), std::mem::take(&mut self.wbuf));
        }
    }

    /// The underlying socket.
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// Reads the next whole frame; its payload is valid until the next read. `deadline` bounds
    /// the wait when it is sooner than the socket's own timeout.
    pub fn read_frame(&mut self, deadline: Option<Instant>) -> Result<(u8, &[u8]), ConnError> {
        if self.rbuf.is_empty() {
            self.rbuf = take_read_buffer();
        }
        loop {
            let buffered = &self.rbuf[self.start..self.end];
            if let Some((kind, _, used)) = protocol::split_frame(buffered)? {
                let payload = self.start + FRAME_HEADER..self.start + used;
                self.start += used;
                return Ok((kind, &self.rbuf[payload]));
            }
            let needed = protocol::needed(buffered);
            if self.start == self.end {
                (self.start, self.end) = (0, 0);
            } else if self.start + needed > self.rbuf.len()
                && (self.end - self.start <= MOVED_PARTIAL_FRAME || self.start >= self.rbuf.len() / 2)
            {
                // A partial frame that would not fit where it is moves to the front when it is
                // small, or when more than half the buffer is spent (so a stream of frames keeps
                // the buffer within twice a frame); otherwise the buffer grows (moving a large
                // partial body chunk after every response head cost a copy of it).
                self.rbuf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.rbuf.len() < self.start + needed {
                self.rbuf.resize(self.start + needed, 0);
            }
            self.wait_readable(deadline)?;
            let n = self.receive()?;
            if n == 0 {
                return Err(if self.end == 0 { ConnError::Closed } else { ConnError::Truncated });
            }
            self.end += n;
        }
    }

    fn wait_readable(&self, deadline: Option<Instant>) -> Result<(), ConnError> {
        let Some(deadline) = deadline else { return Ok(()) };
        let left = deadline.saturating_duration_since(Instant::now());
        if self.read_timeout.is_some_and(|t| t <= left) {
            return Ok(());
        }
        let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.stream.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) => Err(ConnError::TimedOut),
            Ok(_) => Ok(()),
            Err(Errno::EINTR) => Ok(()),
            Err(e) => Err(ConnError::Io(e.into())),
        }
    }

    /// One recvmsg into the read buffer, keeping any files passed with the bytes.
    fn receive(&mut self) -> Result<usize, ConnError> {
        let mut space = ControlSpace([0; 48]);
        loop {
            let mut iov = [IoSliceMut::new(&mut self.rbuf[self.end..])];
            let msg = match socket::recvmsg::<()>(
                self.stream.as_raw_fd(),
                &mut iov,
                Some(&mut space.0),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(msg) => msg,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(io::Error::from(e).into()),
            };
            let n = msg.bytes;
            for cmsg in msg.cmsgs().map_err(io::Error::from)? {
                if let ControlMessageOwned::ScmRights(fds) = cmsg {
                    for fd in fds {
                        // SAFETY: the kernel just installed `fd` in this process for us; nothing
                        // else owns it.
                        let file = unsafe { OwnedFd::from_raw_fd(fd) };
                        if self.files.len() < MAX_PENDING_FILES {
                            self.files.push_back(file);
                        }
                    }
                }
            }
            return Ok(n);
        }
    }

    /// The oldest file the peer passed and nobody claimed yet.
    pub fn take_file(&mut self) -> Option<OwnedFd> {
        self.files.pop_front()
    }

    /// The write buffer, to encode frames into; sent by [`Conn::flush`].
    pub fn out(&mut self) -> &mut Vec<u8> {
        if self.wbuf.capacity() == 0 {
            self.wbuf = take_write_buffer();
        }
        &mut self.wbuf
    }

    /// Sends everything buffered.
    pub fn flush(&mut self) -> io::Result<()> {
        if !self.wbuf.is_empty() {
            let result = self.stream.write_all(&self.wbuf);
            self.wbuf.clear();
            result?;
        }
        Ok(())
    }

    /// Sends a body frame: small ones go to the buffer, large ones straight out after it.
    pub fn send_body(&mut self, to_daemon: bool, data: &[u8]) -> io::Result<()> {
        let header = protocol::body_header(to_daemon, data.len());
        if self.wbuf.len() + data.len() <= 16 * 1024 {
            self.wbuf.extend_from_slice(&header);
            self.wbuf.extend_from_slice(data);
            return Ok(());
        }
        self.wbuf.extend_from_slice(&header);
        let buffered = std::mem::take(&mut self.wbuf);
        let result = write_all_vectored(&mut self.stream, &buffered, data);
        self.wbuf = buffered;
        self.wbuf.clear();
        result
    }

    /// Sends the buffer with `file` attached to its bytes (the last frame in it is the one the
    /// file belongs to).
    pub fn flush_with_file(&mut self, file: BorrowedFd<'_>) -> io::Result<()> {
        let fds = [file.as_raw_fd()];
        let cmsgs = [ControlMessage::ScmRights(&fds)];
        let mut sent = loop {
            let iov = [IoSlice::new(&self.wbuf)];
            match socket::sendmsg::<()>(self.stream.as_raw_fd(), &iov, &cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
                Ok(n) => break n,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    self.wbuf.clear();
                    return Err(e.into());
                }
            }
        };
        // The file went with the first byte; the rest of the buffer follows normally.
        if sent < self.wbuf.len() {
            let result = self.stream.write_all(&self.wbuf[sent..]);
            sent = self.wbuf.len();
            result?;
        }
        debug_assert_eq!(sent, self.wbuf.len());
        self.wbuf.clear();
        Ok(())
    }
}

fn write_all_vectored(stream: &mut UnixStream, mut a: &[u8], mut b: &[u8]) -> io::Result<()> {
    while !a.is_empty() || !b.is_empty() {
        let n = match stream.write_vectored(&[IoSlice::new(a), IoSlice::new(b)]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n < a.len() {
            a = &a[n..];
        } else {
            b = &b[n - a.len()..];
            a = &[];
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::protocol::{ToApache, ToDaemon};

    #[test]
    fn control_space_holds_every_pending_file() {
        let needed = nix::cmsg_space!([std::os::fd::RawFd; MAX_PENDING_FILES]).len();
        assert!(needed <= std::mem::size_of::<ControlSpace>(), "CMSG_SPACE is {needed}");
    }

    #[test]
    fn frames_and_files_cross_a_socket_pair() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut receiver = Conn::new(b);
        // The sender runs on its own thread: a body larger than the socket buffer blocks until read.
        let t = std::thread::spawn(move || {
            let mut sender = Conn::new(a);
            let file = tempfile::tempfile().unwrap();
            ToApache::Head { status: 200, headers: protocol::pairs(&[]) }.encode(sender.out());
            sender.send_body(false, b"small").unwrap();
            ToApache::File { offset: 1, len: 2 }.encode(sender.out());
            sender.flush_with_file(file.as_fd()).unwrap();
            let big = vec![7u8; 300_000];
            sender.send_body(false, &big).unwrap();
            ToApache::End { outcome: 0 }.encode(sender.out());
            sender.flush().unwrap();
        });

        let mut seen = Vec::new();
        loop {
            let (kind, payload) = receiver.read_frame(None).unwrap();
            let msg = format!("{:?}", ToApache::decode(kind, payload).unwrap());
            let done = msg.starts_with("End");
            if msg.starts_with("Body") {
                seen.push(format!("Body {}", payload.len()));
            } else {
                seen.push(msg);
            }
            if done {
                break;
            }
        }
        assert_eq!(seen[0], "Head { status: 200, headers: [] }");
        assert_eq!(seen[1], "Body 5");
        assert_eq!(seen[2], "File { offset: 1, len: 2 }");
        assert_eq!(seen[3], "Body 300000");
        assert!(receiver.take_file().is_some(), "the file arrives with its frame");
        assert!(receiver.take_file().is_none());
        t.join().unwrap();
        assert!(matches!(receiver.read_frame(None), Err(ConnError::Closed)));
    }

    #[test]
    fn a_stream_of_body_frames_keeps_the_read_buffer_within_twice_a_frame() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut receiver = Conn::new(b);
        let bound = receiver.rbuf.len().max(2 * (64 * 1024 + FRAME_HEADER) + FIRST_READ_BUFFER);
        let t = std::thread::spawn(move || {
            let mut sender = Conn::new(a);
            ToApache::Head { status: 200, headers: protocol::pairs(&[]) }.encode(sender.out());
            let chunk = vec![1u8; 64 * 1024];
            for _ in 0..200 {
                sender.send_body(false, &chunk).unwrap();
            }
            ToApache::End { outcome: 0 }.encode(sender.out());
            sender.flush().unwrap();
        });
        let mut bodies = 0;
        loop {
            let (kind, payload) = receiver.read_frame(None).unwrap();
            match ToApache::decode(kind, payload).unwrap() {
                ToApache::Body(data) => {
                    assert_eq!(data.len(), 64 * 1024);
                    bodies += 1;
                }
                ToApache::End { .. } => break,
                _ => {}
            }
            assert!(receiver.rbuf.len() <= bound, "the read buffer grew to {}", receiver.rbuf.len());
        }
        assert_eq!(bodies, 200);
        t.join().unwrap();
    }

    #[test]
    fn a_cut_frame_and_a_deadline_are_reported() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut receiver = Conn::new(b);
        assert!(matches!(
            receiver.read_frame(Some(Instant::now() + Duration::from_millis(20))),
            Err(ConnError::TimedOut)
        ));
        let mut buf = Vec::new();
        ToDaemon::BodyChunk(b"abcdef").encode(&mut buf);
        a.write_all(&buf[..buf.len() - 2]).unwrap();
        drop(a);
        assert!(matches!(receiver.read_frame(None), Err(ConnError::Truncated)));
    }

    #[test]
    fn listening_sockets_are_private_and_reachable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.sock");
        std::fs::write(&path, "stale").unwrap();
        let listener = listen(&path, 5, None).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600);
        let client = connect(&path, Duration::from_secs(5)).unwrap();
        let mut server = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(1)),
                Err(e) => panic!("{e}"),
            }
        };
        drop(client);
        let mut buf = [0u8; 1];
        assert_eq!(io::Read::read(&mut server, &mut buf).unwrap(), 0);
        let missing = dir.path().join("missing.sock");
        assert!(connect(&missing, Duration::from_millis(30)).is_err());
    }
}
