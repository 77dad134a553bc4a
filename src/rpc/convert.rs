//! Protobuf ↔ domain conversions with validation.

use super::pb;
use crate::cluster::types::{
    AuthReply, AuthRequest, Gossip, Header, Message, MessageKind, NodeId, Role, SlotSet, SlotUpdate,
};

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
        tls_port: h.tls_port as u32,
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
        tls_port: port(h.tls_port, "tls port")?,
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
        updates: m
            .updates
            .iter()
            .map(|u| pb::SlotUpdate {
                id: u.id.to_string(),
                config_epoch: u.config_epoch,
                slots: u.slots.to_bytes(),
            })
            .collect(),
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
    let mut updates = Vec::with_capacity(m.updates.len().min(64));
    for u in m.updates.iter().take(64) {
        updates.push(SlotUpdate {
            id: id(&u.id, "update id")?,
            config_epoch: u.config_epoch,
            slots: SlotSet::from_bytes(&u.slots)
                .ok_or(InvalidMessage("update slot bitmap size"))?,
        });
    }
    Ok(Message {
        kind,
        header,
        gossip,
        target_ip: m.target_ip.clone(),
        updates,
    })
}

pub fn fail_from_pb(f: &pb::FailNotice) -> Result<(NodeId, NodeId), InvalidMessage> {
    Ok((id(&f.sender, "sender id")?, id(&f.failing, "failing id")?))
}

pub fn auth_request_to_pb(r: &AuthRequest) -> pb::FailoverAuthRequest {
    pb::FailoverAuthRequest {
        sender: r.sender.to_string(),
        epoch: r.epoch,
        primary_id: r.primary.to_string(),
        config_epoch: r.config_epoch,
        slots: r.slots.to_bytes(),
        manual: r.manual,
    }
}

pub fn auth_request_from_pb(r: &pb::FailoverAuthRequest) -> Result<AuthRequest, InvalidMessage> {
    Ok(AuthRequest {
        sender: id(&r.sender, "sender id")?,
        epoch: r.epoch,
        primary: id(&r.primary_id, "primary id")?,
        config_epoch: r.config_epoch,
        slots: SlotSet::from_bytes(&r.slots).ok_or(InvalidMessage("slot bitmap size"))?,
        manual: r.manual,
    })
}

pub fn auth_reply_to_pb(r: &AuthReply) -> pb::FailoverAuthReply {
    pb::FailoverAuthReply {
        voter: r.voter.to_string(),
        granted: r.granted,
        epoch: r.epoch,
    }
}

pub fn auth_reply_from_pb(r: &pb::FailoverAuthReply) -> Result<AuthReply, InvalidMessage> {
    Ok(AuthReply {
        voter: id(&r.voter, "voter id")?,
        granted: r.granted,
        epoch: r.epoch,
    })
}

pub fn manual_failover_from_pb(r: &pb::ManualFailoverRequest) -> Result<NodeId, InvalidMessage> {
    id(&r.replica, "replica id")
}
