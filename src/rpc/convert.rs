//! Protobuf ↔ domain conversions with validation.

use super::pb;
use crate::cluster::types::{Gossip, Header, Message, MessageKind, NodeId, Role, SlotSet};

#[derive(Debug, thiserror::Error)]
#[error("invalid bus message: {0}")]
pub struct InvalidMessage(pub &'static str);

fn id(s: &str, what: &'static str) -> Result<NodeId, InvalidMessage> {
    NodeId::parse(s.as_bytes()).ok_or(InvalidMessage(what))
}

fn port(p: u32, what: &'static str) -> Result<u16, InvalidMessage> {
    u16::try_from(p).map_err(|_| InvalidMessage(what))
}

pub fn header_to_pb(h: &Header) -> pb::NodeHeader {
    pb::NodeHeader {
        id: h.sender.to_string(),
        current_epoch: h.current_epoch,
        config_epoch: h.config_epoch,
        primary: h.role == Role::Primary,
        primary_id: h.primary.map(|p| p.to_string()).unwrap_or_default(),
        slots: h.slots.to_bytes(),
        ip: h.ip.clone(),
        port: h.port as u32,
        cport: h.cport as u32,
        repl_offset: h.repl_offset,
        flags: h.flags,
    }
}

pub fn header_from_pb(h: &pb::NodeHeader) -> Result<Header, InvalidMessage> {
    Ok(Header {
        sender: id(&h.id, "sender id")?,
        current_epoch: h.current_epoch,
        config_epoch: h.config_epoch,
        role: if h.primary {
            Role::Primary
        } else {
            Role::Replica
        },
        primary: if h.primary_id.is_empty() {
            None
        } else {
            Some(id(&h.primary_id, "primary id")?)
        },
        slots: SlotSet::from_bytes(&h.slots).ok_or(InvalidMessage("slot bitmap size"))?,
        ip: h.ip.clone(),
        port: port(h.port, "port")?,
        cport: port(h.cport, "cluster port")?,
        repl_offset: h.repl_offset,
        flags: h.flags,
    })
}

pub fn message_to_pb(m: &Message) -> pb::BusMessage {
    let kind = match m.kind {
        MessageKind::Ping => pb::bus_message::Kind::Ping,
        MessageKind::Meet => pb::bus_message::Kind::Meet,
        MessageKind::Pong => pb::bus_message::Kind::Pong,
    };
    pb::BusMessage {
        kind: kind as i32,
        header: Some(header_to_pb(&m.header)),
        gossip: m
            .gossip
            .iter()
            .map(|g| pb::GossipEntry {
                id: g.id.to_string(),
                ip: g.ip.clone(),
                port: g.port as u32,
                cport: g.cport as u32,
                flags: g.flags,
                pong_recv: g.pong_recv,
            })
            .collect(),
        target_ip: m.target_ip.clone(),
    }
}

pub fn message_from_pb(m: &pb::BusMessage) -> Result<Message, InvalidMessage> {
    let kind = match pb::bus_message::Kind::try_from(m.kind) {
        Ok(pb::bus_message::Kind::Ping) => MessageKind::Ping,
        Ok(pb::bus_message::Kind::Meet) => MessageKind::Meet,
        Ok(pb::bus_message::Kind::Pong) => MessageKind::Pong,
        Err(_) => return Err(InvalidMessage("message kind")),
    };
    let header = header_from_pb(m.header.as_ref().ok_or(InvalidMessage("missing header"))?)?;
    let mut gossip = Vec::with_capacity(m.gossip.len().min(1024));
    for g in m.gossip.iter().take(1024) {
        gossip.push(Gossip {
            id: id(&g.id, "gossip id")?,
            ip: g.ip.clone(),
            port: port(g.port, "gossip port")?,
            cport: port(g.cport, "gossip cluster port")?,
            flags: g.flags,
            pong_recv: g.pong_recv,
        });
    }
    Ok(Message {
        kind,
        header,
        gossip,
        target_ip: m.target_ip.clone(),
    })
}

pub fn fail_from_pb(f: &pb::FailNotice) -> Result<(NodeId, NodeId), InvalidMessage> {
    Ok((id(&f.sender, "sender id")?, id(&f.failing, "failing id")?))
}
