//! The OSC server's UDP socket: a receive buffer sized for bursts (`SO_RCVBUF`), reads of
//! many datagrams per system call (`recvmmsg`) and, on Linux, the kernel's count of
//! datagrams it dropped because that buffer was full.
//!
//! The count comes from `SO_RXQ_OVFL`: with it set, every datagram carries (as `recvmsg`
//! ancillary data) the socket's drop counter as of its arrival. We chose it over reading the
//! `drops` column of `/proc/net/udp` for the socket's inode because it is exact for this
//! socket, needs no file parsing or polling, works the same for IPv4 and IPv6 and inside any
//! network namespace, and arrives with the data at no extra system call. Its one limit:
//! drops after the last datagram received are reported with the next one.
//!
//! **A socket per proven client (Linux).** A flood fills the server socket's receive buffer
//! and the kernel then drops datagrams whoever sent them, a proven client's among them.
//! So the server socket is bound with `SO_REUSEPORT`, and a client that proved its address
//! gets a socket of its own bound to the same address and port and `connect`ed to it
//! ([`OscSocket::private`]): Linux delivers a datagram to the socket whose bound and
//! connected addresses match it best, so that client's datagrams wait in a buffer no one
//! else can fill, and replies leave from the same port. Before binding, the port is probed
//! without `SO_REUSEPORT`, so a port already in use is still refused.

use std::io;
use std::net::{SocketAddr, UdpSocket};

/// A bound UDP socket that reports the kernel's drops with each datagram where it can.
pub(crate) struct OscSocket {
    socket: UdpSocket,
    /// Receive buffer the kernel granted, in bytes (None where it cannot be read).
    pub(crate) recv_buffer_bytes: Option<usize>,
}

/// One datagram received.
pub(crate) struct Datagram {
    /// Its length in the buffer.
    pub(crate) len: usize,
    /// Where it came from.
    pub(crate) from: SocketAddr,
    /// The kernel's count of datagrams dropped on this socket so far (wrapping u32), when
    /// it reported one.
    pub(crate) kernel_drops: Option<u32>,
}

/// Datagrams read by one [`OscSocket::recv_batch`] call at most.
pub(crate) const BATCH: usize = 32;

/// Buffers for [`OscSocket::recv_batch`]: [`BATCH`] datagrams of up to `max_bytes` each
/// (2 MiB for the largest UDP datagrams), allocated once.
pub(crate) struct Batch {
    buffers: Vec<Vec<u8>>,
    /// The datagrams of the last call, in order: the `i`-th is in [`Batch::data`]`(i)`.
    pub(crate) datagrams: Vec<Datagram>,
}

impl Batch {
    pub(crate) fn new(max_bytes: usize) -> Batch {
        Batch {
            buffers: vec![vec![0u8; max_bytes]; BATCH],
            datagrams: Vec::with_capacity(BATCH),
        }
    }

    /// The bytes of the `i`-th datagram of the last call.
    pub(crate) fn data(&self, i: usize) -> &[u8] {
        &self.buffers[i][..self.datagrams[i].len]
    }
}

impl OscSocket {
    /// Binds `addr` and asks for a receive buffer of `recv_buffer_bytes`.
    pub(crate) fn bind(addr: SocketAddr, recv_buffer_bytes: usize) -> io::Result<OscSocket> {
        let socket = bind_shared(addr)?;
        let recv_buffer_bytes = set_recv_buffer(&socket, recv_buffer_bytes);
        // where the counter cannot be enabled, datagrams carry none and no drop is counted
        enable_drop_counter(&socket);
        Ok(OscSocket {
            socket,
            recv_buffer_bytes,
        })
    }

    /// The socket itself (timeouts, address, sending).
    pub(crate) fn udp(&self) -> &UdpSocket {
        &self.socket
    }

    /// A socket of `peer`'s own: bound to this socket's address and port and connected to
    /// `peer`, non-blocking, reporting its kernel drops. Linux only (elsewhere
    /// `Unsupported`: the peer's datagrams keep arriving on this socket).
    pub(crate) fn private(&self, peer: SocketAddr) -> io::Result<UdpSocket> {
        #[cfg(target_os = "linux")]
        {
            let socket = bind_reuse_port(self.socket.local_addr()?)?;
            socket.connect(peer)?;
            socket.set_nonblocking(true)?;
            enable_drop_counter(&socket);
            Ok(socket)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = peer;
            Err(io::ErrorKind::Unsupported.into())
        }
    }
}

/// Takes every datagram waiting on `socket`, up to [`BATCH`], in one system call
/// (`recvmmsg` on Linux; one datagram elsewhere), without waiting (the socket's read
/// timeout applies elsewhere). Reading in batches is what lets one thread keep up with a
/// flood: the system call, not the datagram, is most of the cost of a datagram dropped
/// unread.
pub(crate) fn recv_batch(socket: &UdpSocket, batch: &mut Batch) -> io::Result<()> {
    batch.datagrams.clear();
    #[cfg(target_os = "linux")]
    {
        recv_many(socket, batch)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let (len, from) = socket.recv_from(&mut batch.buffers[0])?;
        batch.datagrams.push(Datagram {
            len,
            from,
            kernel_drops: None,
        });
        Ok(())
    }
}

/// Waits until one of `sockets` has a datagram, at most `timeout`; which ones do (all of
/// them where waiting on several is not supported: the first is then read with its
/// timeout).
pub(crate) fn wait_readable(sockets: &[&UdpSocket], timeout: std::time::Duration) -> Vec<bool> {
    #[cfg(target_os = "linux")]
    {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let mut fds: Vec<PollFd> = sockets
            .iter()
            .map(|s| PollFd::new(s.as_fd(), PollFlags::POLLIN))
            .collect();
        let ms = timeout.as_millis().min(u16::MAX as u128) as u16;
        if poll(&mut fds, PollTimeout::from(ms)).is_err() {
            return vec![false; sockets.len()];
        }
        fds.iter()
            .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()))
            .collect()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = timeout;
        vec![true; sockets.len()]
    }
}

/// The server's socket: on Linux bound with `SO_REUSEPORT` (so proven clients' sockets can
/// share its port) after a probe without it (so a port in use is refused as before).
fn bind_shared(addr: SocketAddr) -> io::Result<UdpSocket> {
    #[cfg(target_os = "linux")]
    {
        if addr.port() != 0 {
            drop(UdpSocket::bind(addr)?); // in use by anyone: refused here
        }
        let socket = bind_reuse_port(addr)?;
        socket.set_nonblocking(true)?;
        Ok(socket)
    }
    #[cfg(not(target_os = "linux"))]
    {
        UdpSocket::bind(addr)
    }
}

#[cfg(target_os = "linux")]
fn bind_reuse_port(addr: SocketAddr) -> io::Result<UdpSocket> {
    use nix::sys::socket::{
        bind, setsockopt, socket, sockopt::ReusePort, AddressFamily, SockFlag, SockType,
        SockaddrStorage,
    };
    use std::os::fd::AsRawFd;
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(family, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?;
    setsockopt(&fd, ReusePort, &true)?;
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    Ok(UdpSocket::from(fd))
}

#[cfg(target_os = "linux")]
fn recv_many(socket: &UdpSocket, batch: &mut Batch) -> io::Result<()> {
    use nix::sys::socket::{
        recvmmsg, ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage,
    };
    use std::io::IoSliceMut;
    use std::os::fd::AsRawFd;
    let mut slices: Vec<[IoSliceMut; 1]> = batch
        .buffers
        .iter_mut()
        .map(|b| [IoSliceMut::new(b)])
        .collect();
    // fresh headers every call: the kernel shrinks each header's control and address
    // lengths to what the datagram used (no control data before the first drop) and nix
    // 0.31 does not restore them, so reused headers would lose the drop counter
    let mut headers: MultiHeaders<SockaddrStorage> =
        MultiHeaders::preallocate(BATCH, Some(nix::cmsg_space!(u32)));
    // never waits: the caller polls first
    let results = recvmmsg(
        socket.as_raw_fd(),
        &mut headers,
        slices.iter_mut(),
        MsgFlags::MSG_DONTWAIT,
        None,
    )
    .map_err(io::Error::from)?;
    for msg in results {
        let kernel_drops = msg.cmsgs().ok().and_then(|mut cmsgs| {
            cmsgs.find_map(|c| match c {
                ControlMessageOwned::RxqOvfl(n) => Some(n),
                _ => None,
            })
        });
        let from = msg.address.as_ref().and_then(|a| {
            a.as_sockaddr_in()
                .map(|v4| SocketAddr::from(*v4))
                .or_else(|| a.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6)))
        });
        // a datagram without a sender address (never on UDP) is read as an empty one from
        // the unspecified address: counted malformed, never answered
        batch.datagrams.push(Datagram {
            len: if from.is_some() { msg.bytes } else { 0 },
            from: from.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
            kernel_drops,
        });
    }
    Ok(())
}

#[cfg(unix)]
fn set_recv_buffer(socket: &UdpSocket, bytes: usize) -> Option<usize> {
    use nix::sys::socket::{getsockopt, setsockopt, sockopt::RcvBuf};
    // the kernel caps the request at net.core.rmem_max (and doubles it for bookkeeping)
    let _ = setsockopt(socket, RcvBuf, &bytes);
    getsockopt(socket, RcvBuf).ok()
}

#[cfg(not(unix))]
fn set_recv_buffer(_: &UdpSocket, _: usize) -> Option<usize> {
    None
}

#[cfg(target_os = "linux")]
fn enable_drop_counter(socket: &UdpSocket) -> bool {
    use nix::sys::socket::{setsockopt, sockopt::RxqOvfl};
    setsockopt(socket, RxqOvfl, &1).is_ok()
}

#[cfg(not(target_os = "linux"))]
fn enable_drop_counter(_: &UdpSocket) -> bool {
    false
}

/// Turns the kernel's wrapping 32-bit drop counter into a running 64-bit total.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DropTotal {
    last: Option<u32>,
    total: u64,
}

impl DropTotal {
    /// The total so far.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// Takes the counter a datagram carried; returns the total so far.
    pub(crate) fn update(&mut self, counter: u32) -> u64 {
        let grown = match self.last {
            Some(last) => counter.wrapping_sub(last),
            None => counter,
        };
        self.last = Some(counter);
        self.total += grown as u64;
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drop_total_follows_a_wrapping_counter() {
        let mut d = DropTotal::default();
        assert_eq!(d.update(5), 5);
        assert_eq!(d.update(5), 5);
        assert_eq!(d.update(9), 9);
        let mut w = DropTotal::default();
        w.update(u32::MAX - 1);
        assert_eq!(w.update(3), (u32::MAX - 1) as u64 + 5);
    }
}
