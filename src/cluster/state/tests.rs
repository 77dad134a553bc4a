//! State-machine rules without I/O: two or more states exchange messages by direct calls.

use super::*;
use crate::cluster::nodes_conf;
use crate::cluster::types::MessageKind;

fn node(port: u16) -> ClusterState {
    let mut st = ClusterState::new(
        NodeId::random(),
        "127.0.0.1".into(),
        port,
        port + 10000,
        1000,
    );
    st.node_timeout = 5000;
    st
}

/// One full PING/PONG (or MEET/PONG) round from `a` to the node `b` at `a`'s record `target`.
fn exchange(
    a: &mut ClusterState,
    target: NodeId,
    b: &mut ClusterState,
    kind: MessageKind,
    now: u64,
) {
    let msg = a.message(kind, &target);
    b.on_request(&msg, "127.0.0.1", now);
    let reply = b.message(MessageKind::Pong, &a.myself);
    a.on_reply(target, &reply, now);
}

/// Runs ticks and delivers every PING/MEET among `nodes` until nothing changes.
fn converge(nodes: &mut [ClusterState], mut now: u64) -> u64 {
    for _ in 0..20 {
        now += 1000;
        for i in 0..nodes.len() {
            let out = nodes[i].tick(now);
            for o in out {
                let (target, kind) = match o {
                    Outgoing::Ping(t) => (t, MessageKind::Ping),
                    Outgoing::Meet(t) => (t, MessageKind::Meet),
                    _ => continue,
                };
                let port = nodes[i].nodes[&target].port;
                let Some(j) = nodes.iter().position(|n| n.me().port == port) else {
                    continue;
                };
                if i == j {
                    continue;
                }
                let (a, b) = if i < j {
                    let (l, r) = nodes.split_at_mut(j);
                    (&mut l[i], &mut r[0])
                } else {
                    let (l, r) = nodes.split_at_mut(i);
                    (&mut r[0], &mut l[j])
                };
                exchange(a, target, b, kind, now);
            }
        }
    }
    now
}

#[test]
fn slot_assignment_errors_use_valkey_wording() {
    let mut a = node(7000);
    a.add_slots(&[1, 2, 3]).unwrap();
    assert_eq!(
        a.add_slots(&[3]).unwrap_err().to_string(),
        "ERR Slot 3 is already busy"
    );
    assert_eq!(
        a.add_slots(&[9, 9]).unwrap_err().to_string(),
        "ERR Slot 9 specified multiple times"
    );
    assert_eq!(
        a.del_slots(&[50]).unwrap_err().to_string(),
        "ERR Slot 50 is already unassigned"
    );
    a.del_slots(&[1]).unwrap();
    assert_eq!(a.slots_of(&a.myself).count(), 2);
}

#[test]
fn meet_and_gossip_form_a_full_mesh_with_agreed_slots() {
    let mut nodes: Vec<ClusterState> = (0..4).map(|i| node(7000 + i)).collect();
    nodes[0].add_slots(&(0..8192).collect::<Vec<_>>()).unwrap();
    nodes[1]
        .add_slots(&(8192..16384).collect::<Vec<_>>())
        .unwrap();
    for (i, n) in nodes.iter_mut().enumerate() {
        n.set_config_epoch(i as u64 + 1).unwrap();
    }
    // Everyone meets node 0 only; gossip must introduce the rest.
    for n in nodes.iter_mut().skip(1) {
        n.meet("127.0.0.1", 7000, 17000, 1000).unwrap();
    }
    converge(&mut nodes, 1000);
    let ids: Vec<NodeId> = nodes.iter().map(|n| n.myself).collect();
    for n in &nodes {
        assert_eq!(n.nodes.len(), 4, "every node knows every node");
        assert!(n.nodes.values().all(|r| !r.handshake));
        assert_eq!(n.slots[0], Some(ids[0]));
        assert_eq!(n.slots[16383], Some(ids[1]));
        assert!(n.ok);
    }
    assert_eq!(
        nodes[0].set_config_epoch(9).unwrap_err(),
        ClusterError::EpochKnowsOthers
    );
}

#[test]
fn higher_config_epoch_wins_a_slot() {
    let mut nodes: Vec<ClusterState> = (0..2).map(|i| node(7000 + i)).collect();
    nodes[0].add_slots(&[5]).unwrap();
    nodes[0].set_config_epoch(1).unwrap();
    nodes[1].set_config_epoch(2).unwrap();
    nodes[1].meet("127.0.0.1", 7000, 17000, 1000).unwrap();
    let now = converge(&mut nodes, 1000);
    let (a, b) = (nodes[0].myself, nodes[1].myself);
    assert_eq!(nodes[1].slots[5], Some(a));
    // Node 1 takes the slot with a newer epoch (as SETSLOT NODE + bump does after a move).
    nodes[1].slots.set(5, Some(b));
    nodes[1].bump_epoch();
    converge(&mut nodes, now);
    assert_eq!(nodes[0].slots[5], Some(b));
    // Node 0 lost its only slot to another primary, so it now follows it.
    assert_eq!(nodes[0].me().role, Role::Replica);
}

#[test]
fn config_epoch_collision_is_resolved() {
    let mut nodes: Vec<ClusterState> = (0..2).map(|i| node(7000 + i)).collect();
    nodes[0].set_config_epoch(1).unwrap();
    nodes[1].set_config_epoch(1).unwrap();
    nodes[1].meet("127.0.0.1", 7000, 17000, 1000).unwrap();
    converge(&mut nodes, 1000);
    assert_ne!(nodes[0].me().config_epoch, nodes[1].me().config_epoch);
}

#[test]
fn bumpepoch_reports_still_when_already_greatest() {
    let mut a = node(7000);
    assert_eq!(a.bump_epoch(), (true, 1));
    assert_eq!(a.bump_epoch(), (false, 1));
}

#[test]
fn forget_bans_gossip_reintroduction() {
    let mut nodes: Vec<ClusterState> = (0..3).map(|i| node(7000 + i)).collect();
    for n in nodes.iter_mut().skip(1) {
        n.meet("127.0.0.1", 7000, 17000, 1000).unwrap();
    }
    let now = converge(&mut nodes, 1000);
    let gone = nodes[2].myself;
    nodes[0].forget(gone.as_str().as_bytes(), now).unwrap();
    assert!(!nodes[0].nodes.contains_key(&gone));
    // Node 1 still gossips about it; the ban keeps it out.
    let msg = nodes[1].message(MessageKind::Ping, &nodes[0].myself);
    nodes[0].on_request(&msg, "127.0.0.1", now + 10);
    assert!(!nodes[0].nodes.values().any(|n| n.port == 7002));
    let me = nodes[0].myself;
    assert_eq!(
        nodes[0].forget(me.as_str().as_bytes(), now).unwrap_err(),
        ClusterError::ForgetSelf
    );
    assert!(matches!(
        nodes[0].forget(b"0000000000000000000000000000000000000000", now),
        Err(ClusterError::UnknownNode(_))
    ));
}

#[test]
fn silent_node_becomes_pfail_then_fail_by_majority() {
    let mut nodes: Vec<ClusterState> = (0..3).map(|i| node(7000 + i)).collect();
    nodes[0].add_slots(&(0..6000).collect::<Vec<_>>()).unwrap();
    nodes[1]
        .add_slots(&(6000..12000).collect::<Vec<_>>())
        .unwrap();
    nodes[2]
        .add_slots(&(12000..16384).collect::<Vec<_>>())
        .unwrap();
    for n in nodes.iter_mut().skip(1) {
        n.meet("127.0.0.1", 7000, 17000, 1000).unwrap();
    }
    let mut now = converge(&mut nodes, 1000);
    let dead = nodes[2].myself;
    // Node 2 stops answering: only 0 and 1 keep exchanging.
    let mut alive: Vec<ClusterState> = nodes.drain(..2).collect();
    for _ in 0..12 {
        now += 1000;
        for i in 0..2 {
            for o in alive[i].tick(now) {
                if let Outgoing::Ping(t) = o {
                    if t == dead {
                        continue;
                    }
                    let (l, r) = alive.split_at_mut(1);
                    if i == 0 {
                        exchange(&mut l[0], t, &mut r[0], MessageKind::Ping, now);
                    } else {
                        exchange(&mut r[0], t, &mut l[0], MessageKind::Ping, now);
                    }
                }
            }
        }
    }
    for n in &alive {
        assert!(
            n.nodes[&dead].fail,
            "a majority (2 of 3 primaries) marks it FAIL"
        );
        assert!(!n.ok, "its slots are no longer served");
    }
}

#[test]
fn setslot_rules() {
    let mut nodes: Vec<ClusterState> = (0..2).map(|i| node(7000 + i)).collect();
    nodes[0].add_slots(&[7]).unwrap();
    nodes[1].meet("127.0.0.1", 7000, 17000, 1000).unwrap();
    converge(&mut nodes, 1000);
    let (a, b) = (nodes[0].myself, nodes[1].myself);
    assert_eq!(
        nodes[1].set_slot(7, SetSlot::Migrating(a), 0).unwrap_err(),
        ClusterError::NotOwner(7)
    );
    assert_eq!(
        nodes[0].set_slot(7, SetSlot::Importing(b), 0).unwrap_err(),
        ClusterError::AlreadyOwner(7)
    );
    nodes[0].set_slot(7, SetSlot::Migrating(b), 3).unwrap();
    nodes[1].set_slot(7, SetSlot::Importing(a), 0).unwrap();
    assert_eq!(
        nodes[0].set_slot(7, SetSlot::Node(b), 3).unwrap_err(),
        ClusterError::SlotHasKeys(7)
    );
    nodes[1].set_slot(7, SetSlot::Node(b), 0).unwrap();
    assert!(
        nodes[1].me().config_epoch > nodes[0].me().config_epoch,
        "taking an imported slot leaves the new owner with the greatest epoch"
    );
    assert!(nodes[1].importing.is_empty());
}

#[test]
fn nodes_conf_roundtrip_and_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nodes.conf");
    let mut nodes: Vec<ClusterState> = (0..2).map(|i| node(7000 + i)).collect();
    nodes[0].add_slots(&[0, 1, 2, 10]).unwrap();
    nodes[1].meet("127.0.0.1", 7000, 17000, 1000).unwrap();
    converge(&mut nodes, 1000);
    let b = nodes[1].myself;
    nodes[0].set_slot(2, SetSlot::Migrating(b), 1).unwrap();
    nodes_conf::save(&nodes[0], &path).unwrap();
    let loaded = nodes_conf::load(&path, 5000, 5000).unwrap().unwrap();
    assert_eq!(loaded.myself, nodes[0].myself);
    assert_eq!(loaded.slots, nodes[0].slots);
    assert_eq!(loaded.migrating, nodes[0].migrating);
    assert_eq!(loaded.current_epoch, nodes[0].current_epoch);
    assert_eq!(loaded.nodes.len(), 2);

    std::fs::write(&path, "garbage line here\n").unwrap();
    let err = nodes_conf::load(&path, 0, 5000).unwrap_err().to_string();
    assert!(err.contains("nodes.conf:1:"), "{err}");
    std::fs::write(&path, "").unwrap();
    assert!(nodes_conf::load(&path, 0, 5000).unwrap().is_none());
}

#[test]
fn imported_slots_win_with_a_new_epoch_and_a_lost_handover_is_repaired_by_gossip() {
    let mut nodes: Vec<ClusterState> = (0..3).map(|i| node(7100 + i)).collect();
    nodes[0].add_slots(&[0, 1, 2, 3]).unwrap();
    nodes[1].add_slots(&[100]).unwrap();
    nodes[2].add_slots(&[200]).unwrap();
    for (i, n) in nodes.iter_mut().enumerate() {
        n.set_config_epoch(i as u64 + 1).unwrap();
    }
    nodes[1].meet("127.0.0.1", 7100, 17100, 1000).unwrap();
    nodes[2].meet("127.0.0.1", 7100, 17100, 1000).unwrap();
    let now = converge(&mut nodes, 1000);
    let (src, dst) = (nodes[0].myself, nodes[1].myself);
    // The target takes slots 0-1 with an epoch greater than every other one.
    let epoch = nodes[1].take_imported_slots(&[0, 1]).unwrap();
    assert!(epoch > 3, "epoch {epoch}");
    assert_eq!(nodes[1].slots[0], Some(dst));
    // The source never learned it (its handover was lost): gossip gives the slots to the
    // target everywhere, and the source keeps the rest.
    let now = converge(&mut nodes, now);
    for n in &nodes {
        assert_eq!((n.slots[0], n.slots[1]), (Some(dst), Some(dst)));
        assert_eq!((n.slots[2], n.slots[3]), (Some(src), Some(src)));
    }
    assert_eq!(nodes[0].me().role, Role::Primary);
    // The normal path: the source records the handover itself at once.
    let third = nodes[2].myself;
    let epoch2 = nodes[2].take_imported_slots(&[2]).unwrap();
    nodes[0].hand_over(&[2], third, epoch2);
    assert_eq!(nodes[0].slots[2], Some(third));
    assert_eq!(nodes[0].nodes[&third].config_epoch, epoch2);
    assert!(nodes[0].current_epoch >= epoch2);
    converge(&mut nodes, now);
    assert_eq!(nodes[1].slots[2], Some(third));
    // A replica cannot take slots.
    let mut r = node(7200);
    r.me_mut().role = Role::Replica;
    assert!(r.take_imported_slots(&[5]).is_err());
}

#[test]
fn tls_ports_travel_in_headers_persist_as_aux_fields_and_follow_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nodes.conf");
    let mut nodes: Vec<ClusterState> = (0..2).map(|i| node(7200 + i)).collect();
    let me = nodes[0].myself;
    nodes[0].nodes.get_mut(&me).unwrap().tls_port = 27200;
    nodes[0].add_slots(&[5]).unwrap();
    nodes[1].meet("127.0.0.1", 7200, 17200, 1000).unwrap();
    converge(&mut nodes, 1000);
    // The other node learned the TLS port from the headers.
    assert_eq!(nodes[1].nodes[&me].tls_port, 27200);
    assert_eq!(nodes[1].nodes[&me].client_port(true), 27200);
    assert_eq!(nodes[1].nodes[&me].client_port(false), 7200);
    let other = nodes[1].myself;
    assert_eq!(
        nodes[1].nodes[&other].client_port(true),
        7201,
        "no TLS port: the plain one"
    );

    // CLUSTER NODES and SLOTS name the port of the client's kind; no aux field leaks.
    let tls_text = crate::cluster::view::nodes(&nodes[1], true);
    assert!(
        tls_text.contains("127.0.0.1:27200@17200 master"),
        "{tls_text}"
    );
    let plain_text = crate::cluster::view::nodes(&nodes[1], false);
    assert!(
        plain_text.contains("127.0.0.1:7200@17200 master"),
        "{plain_text}"
    );
    assert!(!tls_text.contains("tls-port=") && !plain_text.contains("tls-port="));
    let slots = format!("{:?}", crate::cluster::view::slots(&nodes[1], true));
    assert!(slots.contains("Int(27200)"), "{slots}");

    // nodes.conf keeps the plain port and the TLS port as Valkey's aux field, and loads both.
    nodes_conf::save(&nodes[1], &path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("127.0.0.1:7200@17200,tls-port=27200 "),
        "{text}"
    );
    let loaded = nodes_conf::load(&path, 5000, 5000).unwrap().unwrap();
    assert_eq!(loaded.nodes[&me].tls_port, 27200);
    assert_eq!(loaded.nodes[&me].port, 7200);
    std::fs::write(&path, text.replace("tls-port=27200", "tls-port=x")).unwrap();
    let err = nodes_conf::load(&path, 5000, 5000).unwrap_err().to_string();
    assert!(err.contains("invalid tls-port"), "{err}");
}
