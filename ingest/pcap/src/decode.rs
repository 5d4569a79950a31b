//! Link layer → IP → TCP, without allocation. Every read is bounds-checked (`get`): a short or
//! lying header makes the packet "not TCP", never a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Link-layer header types (LINKTYPE_* of the pcap/pcapng specifications) this reader decodes.
pub(crate) mod linktype {
    pub const NULL: i32 = 0;
    pub const ETHERNET: i32 = 1;
    pub const RAW: i32 = 101;
    /// Some platforms' DLT values for raw IP written as linktypes by old libpcap versions.
    pub const RAW_OPENBSD: i32 = 12;
    pub const RAW_BSD: i32 = 14;
    pub const LOOP: i32 = 108;
    pub const LINUX_SLL: i32 = 113;
    pub const IPV4: i32 = 228;
    pub const IPV6: i32 = 229;
    pub const LINUX_SLL2: i32 = 276;
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;

/// A TCP segment borrowed from the packet buffer.
#[derive(Debug)]
pub(crate) struct Segment<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub flags: u8,
    pub payload: &'a [u8],
}

pub(crate) const TCP_FIN: u8 = 0x01;
pub(crate) const TCP_SYN: u8 = 0x02;
pub(crate) const TCP_RST: u8 = 0x04;
pub(crate) const TCP_ACK: u8 = 0x10;

/// Why a packet gave no TCP segment (counted in the stats).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Skip {
    /// Not IP, or IP but not TCP: the common, cheap case.
    NotTcp,
    /// An IPv4 or IPv6 fragment (not reassembled).
    Fragment,
    /// A header shorter than it says it is (snap length, corruption).
    Short,
    /// A link type this reader does not decode.
    UnknownLink,
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    let b = data.get(at..at + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

fn be32(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Decodes one captured frame of link type `link` down to its TCP segment.
pub(crate) fn decode(link: i32, frame: &[u8]) -> Result<Segment<'_>, Skip> {
    match link {
        linktype::ETHERNET => ethernet(frame),
        linktype::RAW | linktype::RAW_OPENBSD | linktype::RAW_BSD => ip_by_version(frame),
        linktype::IPV4 => ipv4(frame),
        linktype::IPV6 => ipv6(frame),
        // The 4-byte address family is in the writer's byte order (NULL) or big-endian (LOOP),
        // and its values differ between systems: the IP version nibble says it as well.
        linktype::NULL | linktype::LOOP => ip_by_version(frame.get(4..).ok_or(Skip::Short)?),
        linktype::LINUX_SLL => {
            let proto = be16(frame, 14).ok_or(Skip::Short)?;
            ethertype(proto, frame.get(16..).ok_or(Skip::Short)?)
        }
        linktype::LINUX_SLL2 => {
            let proto = be16(frame, 0).ok_or(Skip::Short)?;
            ethertype(proto, frame.get(20..).ok_or(Skip::Short)?)
        }
        _ => Err(Skip::UnknownLink),
    }
}

fn ethernet(frame: &[u8]) -> Result<Segment<'_>, Skip> {
    let mut at = 12;
    let mut kind = be16(frame, at).ok_or(Skip::Short)?;
    // VLAN tags, stacked (802.1Q, 802.1ad): at most a few.
    let mut tags = 0;
    while matches!(kind, ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD) && tags < 4 {
        at += 4;
        kind = be16(frame, at).ok_or(Skip::Short)?;
        tags += 1;
    }
    ethertype(kind, frame.get(at + 2..).ok_or(Skip::Short)?)
}

fn ethertype(kind: u16, payload: &[u8]) -> Result<Segment<'_>, Skip> {
    match kind {
        ETHERTYPE_IPV4 => ipv4(payload),
        ETHERTYPE_IPV6 => ipv6(payload),
        _ => Err(Skip::NotTcp),
    }
}

fn ip_by_version(packet: &[u8]) -> Result<Segment<'_>, Skip> {
    match packet.first().map(|b| b >> 4) {
        Some(4) => ipv4(packet),
        Some(6) => ipv6(packet),
        Some(_) => Err(Skip::NotTcp),
        None => Err(Skip::Short),
    }
}

fn ipv4(packet: &[u8]) -> Result<Segment<'_>, Skip> {
    let first = *packet.first().ok_or(Skip::Short)?;
    if first >> 4 != 4 {
        return Err(Skip::NotTcp);
    }
    let header_len = usize::from(first & 0x0f) * 4;
    let protocol = *packet.get(9).ok_or(Skip::Short)?;
    if protocol != 6 {
        return Err(Skip::NotTcp);
    }
    if header_len < 20 {
        return Err(Skip::Short);
    }
    let total = usize::from(be16(packet, 2).ok_or(Skip::Short)?);
    let fragment = be16(packet, 6).ok_or(Skip::Short)?;
    // More-fragments flag or a non-zero offset.
    if fragment & 0x3fff != 0 {
        return Err(Skip::Fragment);
    }
    let src = Ipv4Addr::from(be32(packet, 12).ok_or(Skip::Short)?);
    let dst = Ipv4Addr::from(be32(packet, 16).ok_or(Skip::Short)?);
    // The IP total length trims link-layer padding; 0 is written by TSO-offloading captures.
    let end = if total == 0 {
        packet.len()
    } else {
        total.min(packet.len())
    };
    let body = packet.get(header_len..end).ok_or(Skip::Short)?;
    tcp(IpAddr::V4(src), IpAddr::V4(dst), body)
}

fn ipv6(packet: &[u8]) -> Result<Segment<'_>, Skip> {
    if packet.first().map(|b| b >> 4) != Some(6) {
        return Err(Skip::NotTcp);
    }
    let payload_len = usize::from(be16(packet, 4).ok_or(Skip::Short)?);
    let mut next = *packet.get(6).ok_or(Skip::Short)?;
    let src: [u8; 16] = packet
        .get(8..24)
        .and_then(|s| s.try_into().ok())
        .ok_or(Skip::Short)?;
    let dst: [u8; 16] = packet
        .get(24..40)
        .and_then(|s| s.try_into().ok())
        .ok_or(Skip::Short)?;
    let end = if payload_len == 0 {
        packet.len()
    } else {
        (40 + payload_len).min(packet.len())
    };
    let mut at = 40;
    // Extension headers: hop-by-hop, routing, destination options, authentication.
    for _ in 0..8 {
        match next {
            6 => {
                let body = packet.get(at..end).ok_or(Skip::Short)?;
                return tcp(
                    IpAddr::V6(Ipv6Addr::from(src)),
                    IpAddr::V6(Ipv6Addr::from(dst)),
                    body,
                );
            }
            0 | 43 | 60 => {
                next = *packet.get(at).ok_or(Skip::Short)?;
                let len = usize::from(*packet.get(at + 1).ok_or(Skip::Short)?);
                at += (len + 1) * 8;
            }
            51 => {
                next = *packet.get(at).ok_or(Skip::Short)?;
                let len = usize::from(*packet.get(at + 1).ok_or(Skip::Short)?);
                at += (len + 2) * 4;
            }
            44 => return Err(Skip::Fragment),
            _ => return Err(Skip::NotTcp),
        }
    }
    Err(Skip::NotTcp)
}

fn tcp(src: IpAddr, dst: IpAddr, body: &[u8]) -> Result<Segment<'_>, Skip> {
    let sport = be16(body, 0).ok_or(Skip::Short)?;
    let dport = be16(body, 2).ok_or(Skip::Short)?;
    let seq = be32(body, 4).ok_or(Skip::Short)?;
    let offset_byte = *body.get(12).ok_or(Skip::Short)?;
    let flags = *body.get(13).ok_or(Skip::Short)?;
    let header_len = usize::from(offset_byte >> 4) * 4;
    if header_len < 20 {
        return Err(Skip::Short);
    }
    let payload = body.get(header_len..).ok_or(Skip::Short)?;
    Ok(Segment {
        src,
        dst,
        sport,
        dport,
        seq,
        flags,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_frames_are_skipped_not_panicking() {
        for link in [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 9999] {
            for len in 0..80 {
                let frame = vec![0x45u8; len];
                let _ = decode(link, &frame);
                let frame = vec![0x60u8; len];
                let _ = decode(link, &frame);
            }
        }
    }

    #[test]
    fn ipv4_fragment_is_reported() {
        let mut p = vec![0u8; 40];
        p[0] = 0x45;
        p[2] = 0;
        p[3] = 40;
        p[6] = 0x20; // more fragments
        p[9] = 6;
        assert_eq!(decode(linktype::RAW, &p).unwrap_err(), Skip::Fragment);
    }
}
