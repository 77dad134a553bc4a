//! Numbered databases in cluster mode (`cluster-databases`, as Valkey 9): keys of several
//! databases move with their slots (native migration through `rockslot-cli --cluster
//! reshard`), reach the replicas, and come back from a backup into the databases they were
//! in; and MIGRATE between standalone nodes reads the selected database and writes the named
//! one, from rockslot and from valkey-server.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{ensure, Result};

use crate::harness::{Cluster, Node, RedisServer};

const SETTLE: Duration = Duration::from_secs(60);
const DBS: [u8; 3] = [0, 2, 3];
const KEYS: usize = 300;

/// One connection per (node, database).
struct Conns<'c> {
    cluster: &'c Cluster,
    open: HashMap<(usize, u8), redis::Connection>,
}

impl Conns<'_> {
    fn get(&mut self, node: usize, db: u8) -> Result<&mut redis::Connection> {
        if !self.open.contains_key(&(node, db)) {
            let mut c = self.cluster.node(node).conn()?;
            redis::cmd("SELECT").arg(db).exec(&mut c)?;
            self.open.insert((node, db), c);
        }
        Ok(self.open.get_mut(&(node, db)).expect("just opened"))
    }
}

fn value(db: u8, i: usize) -> String {
    format!("value of {i} in db {db}")
}

fn load(c: &Cluster) -> Result<()> {
    let mut conns = Conns {
        cluster: c,
        open: HashMap::new(),
    };
    for db in DBS {
        for i in 0..KEYS {
            // The same names in every database, so a mix-up between databases shows.
            let k = format!("k{i}");
            let owner = c.key_owner(&k)?;
            let conn = conns.get(owner, db)?;
            redis::cmd("SET").arg(&k).arg(value(db, i)).exec(conn)?;
            if i % 30 == 0 {
                let l = format!("list{i}");
                let owner = c.key_owner(&l)?;
                let conn = conns.get(owner, db)?;
                redis::cmd("RPUSH").arg(&l).arg(db).arg(i).exec(conn)?;
            }
        }
    }
    Ok(())
}

/// Every key is at its slot's owner, in its database, with its value; each database's keys
/// add up over the primaries.
fn verify(c: &Cluster, what: &str) -> Result<()> {
    let mut conns = Conns {
        cluster: c,
        open: HashMap::new(),
    };
    for db in DBS {
        for i in 0..KEYS {
            let k = format!("k{i}");
            let conn = conns.get(c.key_owner(&k)?, db)?;
            let v: Option<String> = redis::cmd("GET").arg(&k).query(conn)?;
            ensure!(
                v.as_deref() == Some(value(db, i).as_str()),
                "{what}: {k} in db {db} is {v:?}"
            );
            if i % 30 == 0 {
                let l = format!("list{i}");
                let conn = conns.get(c.key_owner(&l)?, db)?;
                let got: Vec<String> = redis::cmd("LRANGE").arg(&l).arg(0).arg(-1).query(conn)?;
                ensure!(
                    got == vec![db.to_string(), i.to_string()],
                    "{what}: {l} in db {db}: {got:?}"
                );
            }
        }
        let mut total = 0;
        for m in c.masters(0)? {
            let n: i64 = redis::cmd("DBSIZE").query(conns.get(m, db)?)?;
            total += n;
        }
        ensure!(
            total as usize == KEYS + KEYS / 30,
            "{what}: db {db} holds {total} keys"
        );
    }
    Ok(())
}

#[test]
fn cluster_databases_move_replicate_and_back_up_with_their_slots() -> Result<()> {
    let c = Cluster::builder(6)
        .directive("cluster-databases", "4")
        .start()?;
    c.create_and_wait(1)?;
    load(&c)?;
    verify(&c, "loaded")?;
    let masters = c.masters(0)?;
    let (from, to) = (c.myid(masters[0])?, c.myid(masters[1])?);
    c.reshard_via(0, true, &from, &to, 5000)?;
    let seed = format!("127.0.0.1:{}", c.node(0).port());
    c.wait_converged(SETTLE)?;
    verify(&c, "after moving 5000 slots")?;
    // Replicas hold what their primaries hold, database by database.
    for m in c.masters(0)? {
        let r = c.replica_of(0, m)?;
        for db in DBS {
            let count = |i: usize| -> Result<i64> {
                let mut conn = c.node(i).conn()?;
                redis::cmd("SELECT").arg(db).exec(&mut conn)?;
                Ok(redis::cmd("DBSIZE").query(&mut conn)?)
            };
            let want = count(m)?;
            crate::harness::wait_until(SETTLE, "the replica's databases", || {
                count(r).is_ok_and(|n| n == want)
            })?;
        }
    }

    let out = tempfile::Builder::new().prefix("rockslot-it-").tempdir()?;
    let dir = out.path().join("bk").display().to_string();
    c.rockslot_cli_cluster(&["backup", &seed, "--out", &dir])?
        .ensure_success()?;
    let d = Cluster::builder(3)
        .directive("cluster-databases", "4")
        .start()?;
    d.create_and_wait(0)?;
    let dseed = format!("127.0.0.1:{}", d.node(0).port());
    d.rockslot_cli_cluster(&["restore", &dseed, "--from", &dir])?
        .ensure_success()?;
    verify(&d, "restored into three primaries")?;
    Ok(())
}

/// MIGRATE copies from the selected database into the named one, rockslot to rockslot and
/// valkey-server to rockslot, and the moved key leaves only its own database.
#[test]
fn migrate_reads_the_selected_database_and_writes_the_named_one() -> Result<()> {
    let src = Node::start()?;
    let dst = Node::start()?;
    let mut s = src.conn()?;
    redis::cmd("SET").arg("k").arg("db0").exec(&mut s)?;
    redis::cmd("SELECT").arg(3).exec(&mut s)?;
    redis::cmd("SET").arg("k").arg("db3").exec(&mut s)?;
    redis::cmd("HSET").arg("h").arg("f").arg("v").exec(&mut s)?;
    for key in ["k", "h"] {
        let r: String = redis::cmd("MIGRATE")
            .arg("127.0.0.1")
            .arg(dst.port())
            .arg(key)
            .arg(5)
            .arg(5000)
            .query(&mut s)?;
        ensure!(r == "OK", "MIGRATE {key}: {r}");
    }
    let n: i64 = redis::cmd("DBSIZE").query(&mut s)?;
    ensure!(n == 0, "db 3 of the source still holds {n} keys");
    redis::cmd("SELECT").arg(0).exec(&mut s)?;
    let v: String = redis::cmd("GET").arg("k").query(&mut s)?;
    ensure!(v == "db0", "db 0's k is untouched: {v}");
    let mut d = dst.conn()?;
    redis::cmd("SELECT").arg(5).exec(&mut d)?;
    let v: String = redis::cmd("GET").arg("k").query(&mut d)?;
    ensure!(v == "db3", "{v}");
    let v: String = redis::cmd("HGET").arg("h").arg("f").query(&mut d)?;
    ensure!(v == "v", "{v}");

    let valkey = RedisServer::start_valkey()?;
    let mut vc = redis::Client::open(format!("redis://{}/", valkey.addr()))?.get_connection()?;
    redis::cmd("SELECT").arg(7).exec(&mut vc)?;
    redis::cmd("RPUSH")
        .arg("fromvalkey")
        .arg("a")
        .arg("b")
        .exec(&mut vc)?;
    let r: String = redis::cmd("MIGRATE")
        .arg("127.0.0.1")
        .arg(dst.port())
        .arg("fromvalkey")
        .arg(9)
        .arg(5000)
        .query(&mut vc)?;
    ensure!(r == "OK", "valkey's MIGRATE: {r}");
    redis::cmd("SELECT").arg(9).exec(&mut d)?;
    let got: Vec<String> = redis::cmd("LRANGE")
        .arg("fromvalkey")
        .arg(0)
        .arg(-1)
        .query(&mut d)?;
    ensure!(got == vec!["a", "b"], "{got:?}");
    Ok(())
}
