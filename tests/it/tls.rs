//! TLS as Valkey configures it: a 3×2 cluster whose nodes speak TLS on their client ports
//! (`tls-port`) and on the cluster port (`tls-cluster`, `tls-replication`), created with the
//! unmodified `redis-cli --tls --cluster create`, then a native reshard and a failover that
//! run over the TLS cluster port. Certificates come from the `openssl` command (a test CA; the
//! node certificate names no IP address, as cluster certificates often do not).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Context, Result};
use redis::Commands;

use crate::failover::NODE_TIMEOUT_MS;
use crate::harness::{key_slot, try_wait_until_every, Cluster, Node, RawConn, CLUSTER_PASSWORD};

const HEALTHY: Duration = Duration::from_secs(60);

/// redis-py RedisCluster over TLS: writes and reads 200 keys, prints the primaries' ports.
const REDIS_PY_TLS: &str = r#"
import os
from redis.cluster import RedisCluster
rc = RedisCluster(host="127.0.0.1", port=int(os.environ["PORT"]), password=os.environ["PW"],
                  ssl=True, ssl_ca_certs=os.environ["CA"], ssl_certfile=os.environ["CERT"],
                  ssl_keyfile=os.environ["KEY"], ssl_check_hostname=False, socket_timeout=30)
for i in range(200):
    assert rc.set(f"py:tls:{i}", f"v{i}") is True
assert all(rc.get(f"py:tls:{i}") == f"v{i}".encode() for i in range(200))
ports = sorted(str(n.port) for n in rc.get_primaries())
print("ok " + ",".join(ports))
"#;

/// A CA and one certificate (server and client use) signed by it, in a temporary directory.
struct TestCerts {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .context("running openssl")?;
    ensure!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

impl TestCerts {
    fn generate() -> Result<TestCerts> {
        let dir = tempfile::Builder::new().prefix("rockslot-tls-").tempdir()?;
        let d = dir.path();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        let mut ca = vec!["req", "-x509", "-new", "-nodes"];
        ca.extend(ec);
        ca.extend(["-keyout", "ca.key", "-out", "ca.crt", "-days", "2"]);
        ca.extend(["-subj", "/CN=rockslot test CA"]);
        openssl(d, &ca)?;
        let mut certs = TestCerts {
            ca: d.join("ca.crt"),
            cert: d.join("node.crt"),
            key: d.join("node.key"),
            _dir: dir,
        };
        (certs.cert, certs.key) = certs.issue("node", "rockslot-node")?;
        Ok(certs)
    }

    /// Another certificate the CA signs (`<name>.crt`, `<name>.key`), named `cn`.
    fn issue(&self, name: &str, cn: &str) -> Result<(PathBuf, PathBuf)> {
        let d = self._dir.path();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        let (key, csr, crt) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
        );
        let subj = format!("/CN={cn}");
        let mut req = vec!["req", "-new", "-nodes"];
        req.extend(ec);
        req.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        openssl(d, &req)?;
        std::fs::write(
            d.join("ext.cnf"),
            "subjectAltName=DNS:rockslot-node\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n",
        )?;
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
            ],
        )?;
        Ok((d.join(crt), d.join(key)))
    }

    fn path(p: &Path) -> String {
        p.to_string_lossy().into_owned()
    }

    /// redis-cli's TLS options with this certificate as the client's.
    fn cli_args(&self) -> Vec<String> {
        vec![
            "--tls".into(),
            "--cacert".into(),
            Self::path(&self.ca),
            "--cert".into(),
            Self::path(&self.cert),
            "--key".into(),
            Self::path(&self.key),
        ]
    }
}

/// `redis-cli <tls options> -a … -p <port> args…`; stdout, or an error with stderr.
fn redis_cli(tls: &[String], port: u16, args: &[&str]) -> Result<String> {
    let out = Command::new("redis-cli")
        .args(tls)
        .args(["-a", CLUSTER_PASSWORD, "--no-auth-warning", "-p"])
        .arg(port.to_string())
        .args(args)
        .output()
        .context("running redis-cli")?;
    ensure!(
        out.status.success(),
        "redis-cli {args:?} on port {port}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The client ports CLUSTER NODES names (the `ip:port` before `@`).
fn ports_in_nodes(text: &str) -> Result<Vec<u16>> {
    let mut ports: Vec<u16> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let addr = l.split(' ').nth(1).context("address field")?;
            let port = addr
                .split('@')
                .next()
                .and_then(|a| a.rsplit(':').next())
                .context("port")?;
            Ok(port.parse()?)
        })
        .collect::<Result<_>>()?;
    ports.sort_unstable();
    Ok(ports)
}

/// Every key still holds `v-<key>`, read through the cluster client.
fn every_key_intact(c: &Cluster, keys: &[String], after: &str) -> Result<()> {
    let mut con = c.conn()?;
    for k in keys {
        let v: Option<String> = con.get(k)?;
        ensure!(
            v.as_deref() == Some(format!("v-{k}").as_str()),
            "{k} after {after}: {v:?}"
        );
    }
    Ok(())
}

#[test]
fn tls_cluster_is_created_by_redis_cli_reshards_and_fails_over_over_tls() -> Result<()> {
    let certs = TestCerts::generate()?;
    let c = Cluster::builder(6)
        .node_timeout_ms(NODE_TIMEOUT_MS)
        .directive("tls-port", "{tls_port}")
        .directive("tls-cert-file", &TestCerts::path(&certs.cert))
        .directive("tls-key-file", &TestCerts::path(&certs.key))
        .directive("tls-ca-cert-file", &TestCerts::path(&certs.ca))
        .directive("tls-cluster", "yes")
        .directive("tls-replication", "yes")
        .start()?;
    let mut c = c;
    let tls = certs.cli_args();
    let tls_ports: Vec<u16> = (0..6).map(|i| c.node(i).tls_port()).collect();

    // The unmodified redis-cli creates the cluster through the TLS ports only.
    let t0 = Instant::now();
    let mut create: Vec<String> = vec!["--cluster".into(), "create".into()];
    create.extend(tls_ports.iter().map(|p| format!("127.0.0.1:{p}")));
    create.extend(["--cluster-replicas", "1", "--cluster-yes"].map(String::from));
    let refs: Vec<&str> = create.iter().map(String::as_str).collect();
    let out = redis_cli(&tls, tls_ports[0], &refs)?;
    ensure!(out.contains("All 16384 slots covered"), "create: {out}");
    c.wait_healthy(HEALTHY)?;
    c.wait_all_replicating(0, HEALTHY)?;
    println!(
        "tls: redis-cli --tls --cluster create, healthy in {:?}",
        t0.elapsed()
    );

    // A TLS client is shown TLS ports; a plain one plain ports (Valkey answers per connection).
    let mut want_tls = tls_ports.clone();
    want_tls.sort_unstable();
    let mut want_plain = c.ports();
    want_plain.sort_unstable();
    let over_tls = redis_cli(&tls, tls_ports[1], &["CLUSTER", "NODES"])?;
    ensure!(
        ports_in_nodes(&over_tls)? == want_tls,
        "CLUSTER NODES over TLS:\n{over_tls}"
    );
    let plain = c.cluster_nodes_text(1)?;
    ensure!(
        ports_in_nodes(&plain)? == want_plain,
        "CLUSTER NODES over TCP:\n{plain}"
    );
    let slots = redis_cli(&tls, tls_ports[2], &["CLUSTER", "SLOTS"])?;
    // Slot numbers stay below 16384; the harness's ports are all above 20000.
    let shown: Vec<u16> = slots
        .lines()
        .filter_map(|l| l.trim().parse::<u16>().ok())
        .filter(|&n| n >= 20000)
        .collect();
    ensure!(
        shown.len() >= 3 && shown.iter().all(|p| tls_ports.contains(p)),
        "CLUSTER SLOTS over TLS:\n{slots}"
    );
    let check = redis_cli(
        &tls,
        tls_ports[0],
        &["--cluster", "check", &format!("127.0.0.1:{}", tls_ports[0])],
    )?;
    ensure!(
        check.contains("[OK] All 16384 slots covered"),
        "check: {check}"
    );

    // Redirects name the owner's TLS port, and redis-cli -c follows them over TLS.
    let key = (0..)
        .map(|i| format!("tls:{i}"))
        .find(|k| c.key_owner(k).is_ok_and(|o| o != 0))
        .context("a key owned elsewhere")?;
    let owner = c.key_owner(&key)?;
    let moved = redis_cli(&tls, tls_ports[0], &["SET", &key, "v"])?;
    ensure!(
        moved.contains(&format!(
            "MOVED {} 127.0.0.1:{}",
            key_slot(key.as_bytes()),
            tls_ports[owner]
        )),
        "redirect over TLS: {moved}"
    );
    let set = redis_cli(&tls, tls_ports[0], &["-c", "SET", &key, "over-tls"])?;
    ensure!(set.trim() == "OK", "{set}");

    // Without a client certificate (tls-auth-clients yes) or without TLS, nothing is served.
    let no_cert = Command::new("redis-cli")
        .args(["--tls", "--cacert", &TestCerts::path(&certs.ca), "-p"])
        .arg(tls_ports[0].to_string())
        .arg("PING")
        .output()?;
    ensure!(
        !String::from_utf8_lossy(&no_cert.stdout).contains("PONG"),
        "a client without a certificate was served"
    );
    let plain_on_tls = Command::new("redis-cli")
        .args(["-p", &tls_ports[0].to_string(), "PING"])
        .output()?;
    ensure!(!String::from_utf8_lossy(&plain_on_tls.stdout).contains("PONG"));

    // The cluster port speaks TLS with the CA's certificate (and offers HTTP/2 for gRPC).
    let probe = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{}", c.node(0).bus_port()),
        ])
        .args([
            "-CAfile",
            &TestCerts::path(&certs.ca),
            "-cert",
            &TestCerts::path(&certs.cert),
        ])
        .args(["-key", &TestCerts::path(&certs.key), "-alpn", "h2"])
        .stdin(std::process::Stdio::null())
        .output()?;
    let said = String::from_utf8_lossy(&probe.stdout).into_owned();
    ensure!(
        said.contains("Verify return code: 0 (ok)") && said.contains("ALPN protocol: h2"),
        "openssl s_client on the cluster port: {said}"
    );

    // redis-py's RedisCluster with ssl=True, unmodified: it discovers the TLS ports.
    let mut py = Command::new("python3");
    py.args(["-c", REDIS_PY_TLS])
        .env("PORT", tls_ports[0].to_string())
        .env("PW", CLUSTER_PASSWORD)
        .env("CA", TestCerts::path(&certs.ca))
        .env("CERT", TestCerts::path(&certs.cert))
        .env("KEY", TestCerts::path(&certs.key));
    let run = crate::harness::ToolRun::run(&mut py, Duration::from_secs(120))?.ensure_success()?;
    let last = run.stdout.lines().last().unwrap_or_default().to_string();
    let mut want_primaries: Vec<String> = Vec::new();
    for m in c.masters(0)? {
        want_primaries.push(tls_ports[m].to_string());
    }
    want_primaries.sort();
    ensure!(
        last == format!("ok {}", want_primaries.join(",")),
        "redis-py over TLS: {last}"
    );

    // Data for the reshard and the failover.
    let mut con = c.conn()?;
    let keys: Vec<String> = (0..3000).map(|i| format!("k:{i}")).collect();
    for k in &keys {
        let _: () = con.set(k, format!("v-{k}"))?;
    }

    // A native reshard over the TLS cluster port, asked for over a TLS client connection.
    let src = c.slot_owner(0, 0)?;
    let dst = c
        .masters(0)?
        .into_iter()
        .find(|&m| m != src)
        .context("another primary")?;
    let dst_id = c.myid(dst)?;
    let t0 = Instant::now();
    let r = redis_cli(
        &tls,
        tls_ports[src],
        &[
            "CLUSTER",
            "MIGRATESLOTS",
            "SLOTSRANGE",
            "0",
            "999",
            "NODE",
            &dst_id,
        ],
    )?;
    ensure!(!r.contains("ERR"), "MIGRATESLOTS: {r}");
    let all: Vec<usize> = (0..6).collect();
    c.wait_slot_served_by(999, dst, &all, HEALTHY)?;
    c.wait_slot_served_by(0, dst, &all, HEALTHY)?;
    let dst_replica = c.replica_of(0, dst)?;
    c.wait_same_dbsize(dst, dst_replica, HEALTHY)?;
    println!(
        "tls: slots 0-999 moved natively over TLS in {:?}",
        t0.elapsed()
    );
    every_key_intact(&c, &keys, "the native reshard")?;

    // The legacy reshard of the unmodified redis-cli over TLS: its MIGRATE calls dial the
    // target's TLS port, over TLS (tls-cluster), as Valkey's do.
    let from = c
        .masters(0)?
        .into_iter()
        .find(|&m| m != dst)
        .context("a third primary")?;
    let from_id = c.myid(from)?;
    let t0 = Instant::now();
    let out = redis_cli(
        &tls,
        tls_ports[from],
        &[
            "--cluster",
            "reshard",
            &format!("127.0.0.1:{}", tls_ports[from]),
            "--cluster-from",
            &from_id,
            "--cluster-to",
            &dst_id,
            "--cluster-slots",
            "200",
            "--cluster-yes",
        ],
    )?;
    ensure!(!out.contains("ERR"), "reshard: {out}");
    c.wait_converged(HEALTHY)?;
    let moved_keys = keys
        .iter()
        .filter(|k| c.key_owner(k).is_ok_and(|o| o == dst))
        .count();
    println!(
        "tls: redis-cli --tls --cluster reshard of 200 slots in {:?} ({moved_keys} keys now on the target)",
        t0.elapsed()
    );
    every_key_intact(&c, &keys, "the legacy reshard")?;
    c.wait_same_dbsize(dst, dst_replica, HEALTHY)?;

    // A failover: the bus and the replication stream run over TLS.
    c.node_mut(dst).kill9()?;
    let t0 = Instant::now();
    let survivors: Vec<usize> = all.iter().copied().filter(|&i| i != dst).collect();
    c.wait_slot_served_by(0, dst_replica, &survivors, HEALTHY)?;
    println!(
        "tls: replica {dst_replica} took over from {dst} in {:?}",
        t0.elapsed()
    );
    try_wait_until_every(
        HEALTHY,
        Duration::from_millis(100),
        "every key readable after the failover",
        || {
            let Ok(mut con) = c.conn() else {
                return Ok(false);
            };
            for k in &keys {
                match con.get::<_, Option<String>>(k) {
                    Ok(v) if v.as_deref() == Some(format!("v-{k}").as_str()) => {}
                    Ok(v) => return Err(anyhow!("{k} after the failover: {v:?}")),
                    Err(_) => return Ok(false),
                }
            }
            Ok(true)
        },
    )?;
    let got = redis_cli(&tls, tls_ports[dst_replica], &["-c", "GET", &key])?;
    ensure!(
        got.trim() == "over-tls" || c.key_owner(&key)? != dst_replica,
        "{got}"
    );
    Ok(())
}

#[test]
fn tls_misconfiguration_stops_the_start_with_a_clear_message() -> Result<()> {
    let certs = TestCerts::generate()?;
    let (cert, key, ca) = (
        TestCerts::path(&certs.cert),
        TestCerts::path(&certs.key),
        TestCerts::path(&certs.ca),
    );
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("tls-port", "{tls_port}")],
            "TLS needs tls-cert-file and tls-key-file",
        ),
        (
            vec![
                ("tls-port", "{tls_port}"),
                ("tls-cert-file", "/nonexistent/node.crt"),
                ("tls-key-file", &key),
                ("tls-auth-clients", "no"),
            ],
            "tls-cert-file /nonexistent/node.crt",
        ),
        (
            vec![
                ("tls-port", "{tls_port}"),
                ("tls-cert-file", &cert),
                ("tls-key-file", &ca),
                ("tls-auth-clients", "no"),
            ],
            "tls-key-file",
        ),
        (
            vec![
                ("tls-cluster", "yes"),
                ("tls-cert-file", &cert),
                ("tls-key-file", &key),
            ],
            "Either tls-ca-cert-file or tls-ca-cert-dir must be specified",
        ),
        (
            vec![("tls-auth-clients", "sometimes")],
            "argument(s) must be one of the following: no, yes, optional",
        ),
    ];
    for (directives, expected) in cases {
        let mut b = Node::builder();
        for (k, v) in &directives {
            b = b.directive(k, v);
        }
        let (status, log) = b.run_to_exit(Duration::from_secs(20))?;
        ensure!(!status.success(), "{directives:?} started");
        ensure!(
            log.contains(expected),
            "{directives:?}: expected {expected:?} in:\n{log}"
        );
    }
    // A TLS port without client certificates required serves a client that has none; the
    // cluster port (here for replication) still requires one.
    let node = Node::builder()
        .directive("tls-port", "{tls_port}")
        .directive("tls-cert-file", &cert)
        .directive("tls-key-file", &key)
        .directive("tls-ca-cert-file", &ca)
        .directive("tls-replication", "yes")
        .directive("tls-auth-clients", "no")
        .start()?;
    // TLS 1.3 reports a refused client certificate after the handshake: s_client sends a line.
    let bus = |with_cert: bool| -> Result<String> {
        let mut extra = vec!["-alpn", "h2"];
        if with_cert {
            extra.extend(["-cert", cert.as_str(), "-key", key.as_str()]);
        }
        s_client(node.bus_port(), Path::new(&ca), &extra)
    };
    let without = bus(false)?;
    ensure!(
        without.contains("certificate required") || without.contains("alert"),
        "the cluster port took a peer without a certificate: {without}"
    );
    let with = bus(true)?;
    ensure!(with.contains("Verify return code: 0 (ok)"), "{with}");
    ensure!(!with.contains("certificate required"), "{with}");
    let out = Command::new("redis-cli")
        .args([
            "--tls",
            "--cacert",
            &ca,
            "-p",
            &node.tls_port().to_string(),
            "PING",
        ])
        .output()?;
    ensure!(
        String::from_utf8_lossy(&out.stdout).trim() == "PONG",
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A TLS client that sends a long pipeline before reading any reply is served in full.
    let mut py = Command::new("python3");
    py.args(["-c", TLS_PIPELINE])
        .env("PORT", node.tls_port().to_string())
        .env("CA", &ca);
    let run = crate::harness::ToolRun::run(&mut py, Duration::from_secs(60))?.ensure_success()?;
    let last = run.stdout.lines().last().unwrap_or_default().to_string();
    ensure!(last == "5000 replies", "pipelined TLS client: {last}");
    // Past maxclients a TLS client reads Valkey's refusal too (after the handshake).
    let mut py = Command::new("python3");
    py.args(["-c", TLS_MAXCLIENTS])
        .env("PORT", node.tls_port().to_string())
        .env("CA", &ca);
    let run = crate::harness::ToolRun::run(&mut py, Duration::from_secs(60))?.ensure_success()?;
    let last = run.stdout.lines().last().unwrap_or_default().to_string();
    ensure!(
        last == "b'+OK\\r\\n' b'-ERR max number of clients reached\\r\\n'",
        "TLS client past maxclients: {last}"
    );
    Ok(())
}

/// Lowers maxclients to 1 over a TLS connection, then opens a second one and prints what
/// each read.
const TLS_MAXCLIENTS: &str = r#"
import os, socket, ssl
ctx = ssl.create_default_context(cafile=os.environ["CA"])
ctx.check_hostname = False
def conn():
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(os.environ["PORT"]))))
    s.settimeout(10)
    return s
a = conn()
a.sendall(b"*4\r\n$6\r\nCONFIG\r\n$3\r\nSET\r\n$10\r\nmaxclients\r\n$1\r\n1\r\n")
ok = a.recv(100)
b = conn()
print(ok, b.recv(100))
"#;

/// 5,000 ECHOs of 8 KiB written before any reply is read, over TLS (40 MB each way, far more
/// than the socket buffers hold); counts the replies.
const TLS_PIPELINE: &str = r#"
import os, socket, ssl
ctx = ssl.create_default_context(cafile=os.environ["CA"])
ctx.check_hostname = False
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(os.environ["PORT"]))))
s.settimeout(30)
n, size = 5000, 8192
body = b"v" * size
req = b"*2\r\n$4\r\nECHO\r\n$%d\r\n%s\r\n" % (size, body)
reply_len = len(b"$%d\r\n" % size) + size + 2
s.sendall(req * n)
total = 0
while total < reply_len * n:
    data = s.recv(1 << 20)
    if not data:
        break
    total += len(data)
print(f"{total // reply_len} replies")
"#;

/// `openssl s_client` against `port` with `extra` options; its whole output.
fn s_client(port: u16, ca: &Path, extra: &[&str]) -> Result<String> {
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .arg("-CAfile")
        .arg(ca)
        .args(extra)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        let _ = stdin.write_all(b"PING\r\n");
        std::thread::sleep(Duration::from_millis(300));
    }
    let out = child.wait_with_output()?;
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// The TLS settings beyond the files: CAs from `tls-ca-cert-dir`, `tls-protocols`,
/// `tls-ciphersuites`/`tls-ciphers`; and CONFIG SET of the certificate, which the next
/// handshake uses, while a file that does not load is refused and changes nothing.
#[test]
fn tls_protocols_ciphers_ca_dir_and_certificates_set_at_run_time() -> Result<()> {
    let certs = TestCerts::generate()?;
    let path = |p: &Path| p.display().to_string();
    let ca_dir = certs._dir.path().join("cas");
    std::fs::create_dir_all(&ca_dir)?;
    std::fs::copy(&certs.ca, ca_dir.join("ca.pem"))?;
    std::fs::write(ca_dir.join("README"), "not a certificate\n")?;
    let (cert2, key2) = certs.issue("second", "rockslot-second")?;
    let node = Node::builder()
        .directive("tls-port", "{tls_port}")
        .directive("tls-cert-file", &path(&certs.cert))
        .directive("tls-key-file", &path(&certs.key))
        .directive("tls-ca-cert-dir", &path(&ca_dir))
        .directive("tls-auth-clients", "yes")
        .directive("tls-protocols", "TLSv1.3")
        .directive("tls-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256")
        .start()?;
    let port = node.tls_port();
    let client = ["-cert", &path(&certs.cert), "-key", &path(&certs.key)];
    let mut v13 = client.to_vec();
    v13.push("-tls1_3");
    let ok = s_client(port, &certs.ca, &v13)?;
    ensure!(
        ok.contains("+PONG"),
        "a client certificate from the CA dir: {ok}"
    );
    ensure!(
        ok.contains("TLS_CHACHA20_POLY1305_SHA256"),
        "the one suite allowed: {ok}"
    );
    let mut v12 = client.to_vec();
    v12.push("-tls1_2");
    let refused = s_client(port, &certs.ca, &v12)?;
    ensure!(!refused.contains("+PONG"), "TLS 1.2 was served: {refused}");

    // CONFIG SET: TLS 1.2 with one suite; then another certificate for the next handshakes.
    let mut c = node.raw()?;
    for (k, v) in [
        ("tls-protocols", "TLSv1.2 TLSv1.3"),
        ("tls-ciphers", "ECDHE-ECDSA-AES256-GCM-SHA384"),
    ] {
        ensure!(
            c.cmd(&["CONFIG", "SET", k, v])? == b"+OK\r\n",
            "CONFIG SET {k}"
        );
    }
    let tls12 = s_client(port, &certs.ca, &v12)?;
    ensure!(
        tls12.contains("+PONG") && tls12.contains("ECDHE-ECDSA-AES256-GCM-SHA384"),
        "{tls12}"
    );
    let set =
        |c: &mut RawConn, k: &str, v: &str| -> Result<Vec<u8>> { c.cmd(&["CONFIG", "SET", k, v]) };
    ensure!(set(&mut c, "tls-key-file", &path(&key2))?.starts_with(b"-ERR CONFIG SET failed"));
    ensure!(
        c.cmd(&[
            "CONFIG",
            "SET",
            "tls-cert-file",
            &path(&cert2),
            "tls-key-file",
            &path(&key2)
        ])? == b"+OK\r\n"
    );
    let second = s_client(port, &certs.ca, &v13)?;
    ensure!(
        second.contains("CN=rockslot-second") || second.contains("CN = rockslot-second"),
        "the new certificate is not presented: {second}"
    );
    let bad =
        String::from_utf8_lossy(&set(&mut c, "tls-cert-file", "/nonexistent.pem")?).into_owned();
    ensure!(
        bad.contains("Unable to update TLS configuration. Check server logs."),
        "{bad}"
    );
    let kept = String::from_utf8_lossy(&c.cmd(&["CONFIG", "GET", "tls-cert-file"])?).into_owned();
    ensure!(
        kept.contains("second.crt"),
        "a refused file changed the setting: {kept}"
    );
    ensure!(
        s_client(port, &certs.ca, &v13)?.contains("+PONG"),
        "still served"
    );

    // A key encrypted with a passphrase (PKCS#8, as OpenSSL 3 writes it) and its pass.
    let d = certs._dir.path();
    openssl(
        d,
        &[
            "pkcs8",
            "-topk8",
            "-in",
            "node.key",
            "-out",
            "enc.key",
            "-passout",
            "pass:s3cret",
        ],
    )?;
    let enc = path(&d.join("enc.key"));
    let node = Node::builder()
        .directive("tls-port", "{tls_port}")
        .directive("tls-cert-file", &path(&certs.cert))
        .directive("tls-key-file", &enc)
        .directive("tls-key-file-pass", "s3cret")
        .directive("tls-auth-clients", "no")
        .start()?;
    ensure!(
        s_client(node.tls_port(), &certs.ca, &[])?.contains("+PONG"),
        "encrypted key"
    );

    // Settings that cannot work stop the start with the reason.
    for (k, v, want) in [
        (
            "tls-protocols",
            "TLSv1.9",
            "Invalid tls-protocols specified",
        ),
        (
            "tls-ciphersuites",
            "TLS_NOPE_SHA1",
            "none of 'TLS_NOPE_SHA1'",
        ),
        (
            "tls-key-file",
            enc.as_str(),
            "the key is encrypted: set tls-key-file-pass",
        ),
    ] {
        let (status, log) = Node::builder()
            .directive("tls-port", "{tls_port}")
            .directive("tls-cert-file", &path(&certs.cert))
            .directive("tls-key-file", &path(&certs.key))
            .directive("tls-auth-clients", "no")
            .directive(k, v)
            .run_to_exit(Duration::from_secs(20))?;
        ensure!(!status.success() && log.contains(want), "{k} {v}: {log}");
    }
    let (status, log) = Node::builder()
        .directive("tls-port", "{tls_port}")
        .directive("tls-cert-file", &path(&certs.cert))
        .directive("tls-key-file", &enc)
        .directive("tls-key-file-pass", "wrong")
        .directive("tls-auth-clients", "no")
        .run_to_exit(Duration::from_secs(20))?;
    ensure!(
        !status.success() && log.contains("cannot decrypt the key with tls-key-file-pass"),
        "{log}"
    );
    Ok(())
}
