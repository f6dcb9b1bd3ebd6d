//! The OSC server's UDP socket: a receive buffer sized for bursts (`SO_RCVBUF`) and, on
//! Linux, the kernel's count of datagrams it dropped because that buffer was full.
//!
//! The count comes from `SO_RXQ_OVFL`: with it set, every datagram carries (as `recvmsg`
//! ancillary data) the socket's drop counter as of its arrival. We chose it over reading the
//! `drops` column of `/proc/net/udp` for the socket's inode because it is exact for this
//! socket, needs no file parsing or polling, works the same for IPv4 and IPv6 and inside any
//! network namespace, and arrives with the data at no extra system call. Its one limit:
//! drops after the last datagram received are reported with the next one.

use std::io;
use std::net::{SocketAddr, UdpSocket};

/// A bound UDP socket that reports the kernel's drops with each datagram where it can.
pub(crate) struct OscSocket {
    socket: UdpSocket,
    /// Receive buffer the kernel granted, in bytes (None where it cannot be read).
    pub(crate) recv_buffer_bytes: Option<usize>,
    /// The kernel reports its drops with each datagram.
    pub(crate) counts_drops: bool,
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

impl OscSocket {
    /// Binds `addr` and asks for a receive buffer of `recv_buffer_bytes`.
    pub(crate) fn bind(addr: SocketAddr, recv_buffer_bytes: usize) -> io::Result<OscSocket> {
        let socket = UdpSocket::bind(addr)?;
        let recv_buffer_bytes = set_recv_buffer(&socket, recv_buffer_bytes);
        let counts_drops = enable_drop_counter(&socket);
        Ok(OscSocket {
            socket,
            recv_buffer_bytes,
            counts_drops,
        })
    }

    /// The socket itself (timeouts, address, sending).
    pub(crate) fn udp(&self) -> &UdpSocket {
        &self.socket
    }

    /// Waits (up to the read timeout) for one datagram.
    pub(crate) fn recv(&self, buf: &mut [u8]) -> io::Result<Datagram> {
        if self.counts_drops {
            return recv_counting(&self.socket, buf);
        }
        let (len, from) = self.socket.recv_from(buf)?;
        Ok(Datagram {
            len,
            from,
            kernel_drops: None,
        })
    }
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

#[cfg(target_os = "linux")]
fn recv_counting(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<Datagram> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, SockaddrStorage};
    use std::io::IoSliceMut;
    use std::os::fd::AsRawFd;
    let mut iov = [IoSliceMut::new(buf)];
    let mut cmsg = nix::cmsg_space!(u32);
    let msg = recvmsg::<SockaddrStorage>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .map_err(io::Error::from)?;
    let kernel_drops = msg.cmsgs().ok().and_then(|mut cmsgs| {
        cmsgs.find_map(|c| match c {
            ControlMessageOwned::RxqOvfl(n) => Some(n),
            _ => None,
        })
    });
    let from = msg
        .address
        .as_ref()
        .and_then(|a| {
            a.as_sockaddr_in()
                .map(|v4| SocketAddr::from(*v4))
                .or_else(|| a.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6)))
        })
        .ok_or_else(|| io::Error::other("a datagram without a sender address"))?;
    Ok(Datagram {
        len: msg.bytes,
        from,
        kernel_drops,
    })
}

#[cfg(not(target_os = "linux"))]
fn recv_counting(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<Datagram> {
    let (len, from) = socket.recv_from(buf)?;
    Ok(Datagram {
        len,
        from,
        kernel_drops: None,
    })
}

/// Turns the kernel's wrapping 32-bit drop counter into a running 64-bit total.
#[derive(Debug, Default)]
pub(crate) struct DropTotal {
    last: Option<u32>,
    total: u64,
}

impl DropTotal {
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
