//! The kernel's socket table asked through netlink `sock_diag`: the inodes of the TCP
//! sockets listening on one port. The kernel walks only its small listening table and
//! filters by port itself, where reading /proc/net/tcp makes it format every socket.

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, TCP_LISTEN};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr};
use std::collections::BTreeSet;
use std::time::Duration;

/// How long the kernel may take to answer (it answers at once; this only bounds the wait).
const ANSWER_WAIT: Duration = Duration::from_secs(1);
/// One read's buffer: the kernel fills at most 32 KiB per datagram of a dump.
const DATAGRAM: usize = 64 * 1024;
/// Datagrams read per question, at most (a port has one or two listening sockets).
const MAX_DATAGRAMS: usize = 64;

/// The inodes of the TCP sockets listening on `port` (IPv4, and IPv6 with `v6`), or `None`
/// when the kernel refuses the question (no sock_diag, or netlink not allowed here): the
/// caller then reads /proc/net/tcp.
pub(crate) fn listening_inodes(port: u16, v6: bool) -> Option<BTreeSet<u64>> {
    let mut socket = Socket::new(NETLINK_SOCK_DIAG).ok()?;
    socket.bind_auto().ok()?;
    socket.connect(&SocketAddr::new(0, 0)).ok()?;
    rustix::net::sockopt::set_socket_timeout(
        &socket,
        rustix::net::sockopt::Timeout::Recv,
        Some(ANSWER_WAIT),
    )
    .ok()?;
    let mut inodes = BTreeSet::new();
    let families: &[u8] = if v6 { &[AF_INET, AF_INET6] } else { &[AF_INET] };
    for family in families {
        ask(&socket, *family, port, &mut inodes)?;
    }
    Some(inodes)
}

/// One dump of the `family` sockets listening on `port`, their inodes added to `inodes`.
fn ask(socket: &Socket, family: u8, port: u16, inodes: &mut BTreeSet<u64>) -> Option<()> {
    let mut socket_id = if family == AF_INET {
        SocketId::new_v4()
    } else {
        SocketId::new_v6()
    };
    socket_id.source_port = port;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let request = SockDiagMessage::InetRequest(InetRequest {
        family,
        protocol: IPPROTO_TCP,
        extensions: ExtensionFlags::empty(),
        states: StateFlags::LISTEN,
        socket_id,
    });
    let mut packet = NetlinkMessage::new(header, request.into());
    packet.finalize();
    let mut out = vec![0; packet.buffer_len()];
    packet.serialize(&mut out);
    socket.send(&out, 0).ok()?;
    let mut datagram: Vec<u8> = Vec::with_capacity(DATAGRAM);
    for _ in 0..MAX_DATAGRAMS {
        datagram.clear();
        let size = socket.recv(&mut datagram, 0).ok()?;
        if size > datagram.len() {
            return None; // truncated
        }
        let mut at = 0;
        while at < datagram.len() {
            let message = NetlinkMessage::<SockDiagMessage>::deserialize(&datagram[at..]).ok()?;
            let length = message.header.length as usize;
            match message.payload {
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
                    let h = r.header;
                    if h.state == TCP_LISTEN && h.socket_id.source_port == port {
                        inodes.insert(u64::from(h.inode));
                    }
                }
                NetlinkPayload::Done(_) => return Some(()),
                NetlinkPayload::Error(_) => return None,
                _ => {}
            }
            if length == 0 {
                return None;
            }
            at += (length + 3) & !3; // messages are 4-byte aligned
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inode_of(listener: &std::net::TcpListener) -> u64 {
        use std::os::fd::AsRawFd;
        let link =
            std::fs::read_link(format!("/proc/self/fd/{}", listener.as_raw_fd())).expect("fd link");
        let text = link.to_string_lossy().into_owned();
        text.trim_start_matches("socket:[")
            .trim_end_matches(']')
            .parse()
            .expect("socket inode")
    }

    #[test]
    fn finds_the_one_listening_socket_of_a_port() {
        let v4 = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = v4.local_addr().expect("addr").port();
        let found = listening_inodes(port, false).expect("netlink answers here");
        assert_eq!(found, BTreeSet::from([inode_of(&v4)]));
        // A connected socket on the same port is not a listener.
        let _client = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        assert_eq!(listening_inodes(port, true), Some(found));
        drop(v4);
        assert_eq!(listening_inodes(port, true), Some(BTreeSet::new()));
    }
}
