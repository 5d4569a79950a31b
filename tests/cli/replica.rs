//! Issue 15: `certhist db replica create|start|stop|status` and `certhist serve --replica-url`
//! against a real hot standby of a managed cluster of the test's own (streaming replication
//! over the primary's Unix socket), with real HTTP.
//!
//! Which server answered is told by the data: with replay paused on the standby
//! (`pg_wal_replay_pause()`), an import on the primary is visible in answers from the primary
//! only. The addresses and SHA-1s are those of `tests/data/scans/README.md` (computed from the
//! fixture bytes independently of certhist).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{data, stderr, stdout};

/// (fixture, address, leaf SHA-1) of three ZGrab2 files, one address each.
const AMQP: (&str, &str, &str) = (
    "scans/zmap__zgrab2/output.json",
    "165.227.114.176",
    "8e85228d704ac0972817d43f5f0f22264e2e7654",
);
const GOOGLE: (&str, &str, &str) = (
    "scans/pfuentes69__tls-discovery/results_8_8_8_8_443.json",
    "8.8.8.8",
    "c412277b646ca22ddd640d517e6d30b7d0b229a9",
);
const WISEKEY: (&str, &str, &str) = (
    "scans/pfuentes69__tls-discovery/results_91_209_3_10_443.json",
    "91.209.3.10",
    "5e0555105b30e156dfac12f4ed3ffa106a818dd1",
);

/// A primary home and a replica directory of their own, both stopped when the test ends.
struct Homes {
    _dir: tempfile::TempDir,
    home: PathBuf,
    replica: PathBuf,
}

impl Homes {
    fn new() -> Homes {
        // 0755: when the tests run as root the server account must reach both directories.
        let dir = tempfile::Builder::new()
            .prefix("certhist-replica-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .tempdir()
            .unwrap();
        Homes {
            home: dir.path().join("primary"),
            replica: dir.path().join("replica"),
            _dir: dir,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_certhist"))
            .arg("--home")
            .arg(&self.home)
            .args(args)
            .env_remove("DATABASE_URL")
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "certhist {args:?}: {}\n{}",
            stderr(&o),
            stdout(&o)
        );
        stdout(&o)
    }

    fn replica_arg(&self) -> &str {
        self.replica.to_str().unwrap()
    }

    fn import(&self, fixture: (&str, &str, &str)) {
        let path = data(fixture.0);
        self.ok(&["import", "zgrab2", path.to_str().unwrap()]);
    }

    /// The replica postmaster's pid.
    fn replica_pid(&self) -> u32 {
        let text = std::fs::read_to_string(self.replica.join("pgdata/postmaster.pid")).unwrap();
        text.lines().next().unwrap().trim().parse().unwrap()
    }
}

impl Drop for Homes {
    fn drop(&mut self) {
        let _ = self.run(&["db", "replica", "stop", self.replica.to_str().unwrap()]);
        let _ = self.run(&["db", "stop"]);
    }
}

/// `certhist serve` with replicas; stopped on drop. The rest of its stderr is kept in `log`.
struct Server {
    child: Child,
    base: String,
    log: Arc<std::sync::Mutex<String>>,
}

impl Server {
    fn start(homes: &Homes, replica_url: &str, max_lag: &str) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_certhist"))
            .arg("--home")
            .arg(&homes.home)
            .args(["serve", "--listen", "127.0.0.1:0", "--max-connections", "4"])
            .args(["--replica-url", replica_url, "--replica-max-lag", max_lag])
            .args(["--replica-check-ms", "100"])
            .env_remove("DATABASE_URL")
            .env_remove("RUST_LOG")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start certhist serve");
        let mut reader = BufReader::new(child.stderr.take().expect("stderr"));
        let mut base = None;
        let mut seen = String::new();
        for _ in 0..10 {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            seen.push_str(&line);
            if let Some(url) = line
                .split_whitespace()
                .find(|w| w.starts_with("http://"))
                .and_then(|w| w.strip_suffix("/api/v1"))
            {
                base = Some(url.to_owned());
                break;
            }
        }
        let base = base.unwrap_or_else(|| panic!("no serving line in {seen:?}"));
        let log = Arc::new(std::sync::Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        Server { child, base, log }
    }

    /// GET /api/v1/ip/{ip}: Some(body) on 200, None otherwise (or on a transport error).
    async fn ip(&self, client: &reqwest::Client, ip: &str) -> Option<String> {
        let resp = client
            .get(format!("{}/api/v1/ip/{ip}", self.base))
            .send()
            .await
            .ok()?;
        if resp.status() != 200 {
            return None;
        }
        resp.text().await.ok()
    }

    async fn shows(&self, client: &reqwest::Client, fixture: (&str, &str, &str)) -> bool {
        let body = self
            .ip(client, fixture.1)
            .await
            .unwrap_or_else(|| panic!("GET /ip/{} failed", fixture.1));
        body.contains(fixture.2)
    }

    /// Polls until [`Server::shows`] gives `want` (up to 20 s); false when it never does.
    async fn eventually(
        &self,
        client: &reqwest::Client,
        fixture: (&str, &str, &str),
        want: bool,
    ) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.shows(client, fixture).await == want {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A superuser session on the replica (over its socket).
async fn replica_sql(url: &str) -> tokio_postgres::Client {
    let (client, conn) = url
        .parse::<tokio_postgres::Config>()
        .unwrap()
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// Whether `certhist query ip` on the primary (no replica involved) shows the fixture.
fn primary_shows(homes: &Homes, fixture: (&str, &str, &str)) -> bool {
    homes
        .ok(&["--json", "query", "ip", fixture.1])
        .contains(fixture.2)
}

fn start_replica(homes: &Homes) -> String {
    let out = homes.ok(&["--json", "db", "replica", "start", homes.replica_arg()]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    v["url"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replica_serves_reads_and_the_primary_takes_over_when_it_lags_or_dies() {
    let homes = Homes::new();
    homes.ok(&["db", "start"]);
    let made = homes.ok(&["db", "replica", "create", homes.replica_arg()]);
    assert!(made.contains("replica created"), "{made}");
    // A second create into the same directory is refused, with the reason.
    let again = homes.run(&["db", "replica", "create", homes.replica_arg()]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    let url = start_replica(&homes);
    let status: serde_json::Value = serde_json::from_str(
        homes
            .ok(&["--json", "db", "replica", "status", homes.replica_arg()])
            .trim(),
    )
    .unwrap();
    assert_eq!(status["running"], true, "{status}");
    assert_eq!(status["in_recovery"], true, "{status}");
    assert!(status["lag_bytes"].is_u64(), "{status}");
    let client = reqwest::Client::new();
    let sql = replica_sql(&url).await;

    // --- Reads go to the replica: with its replay paused, a write on the primary is not seen.
    let server = Server::start(&homes, &url, "3600");
    sql.batch_execute("SELECT pg_wal_replay_pause()")
        .await
        .unwrap();
    homes.import(AMQP);
    assert!(
        primary_shows(&homes, AMQP),
        "the import reached the primary"
    );
    for _ in 0..5 {
        assert!(
            !server.shows(&client, AMQP).await,
            "a read was answered by the primary although the replica is within the lag bound"
        );
    }
    let readers: i64 = sql
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'certhist-replica-reader'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(readers >= 1, "no connection of serve on the replica");
    // Writes reach the primary and become visible on the replica once it replays.
    sql.batch_execute("SELECT pg_wal_replay_resume()")
        .await
        .unwrap();
    assert!(
        server.eventually(&client, AMQP, true).await,
        "the primary's write never became visible through the replica"
    );

    // --- Lag beyond the bound: reads go to the primary.
    let strict = Server::start(&homes, &url, "1");
    assert!(strict.shows(&client, AMQP).await);
    sql.batch_execute("SELECT pg_wal_replay_pause()")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    homes.import(GOOGLE);
    assert!(
        strict.eventually(&client, GOOGLE, true).await,
        "a replica lagging beyond --replica-max-lag 1 kept answering"
    );
    // Meanwhile the replica itself still has not seen it (the lax server reads from it).
    assert!(!server.shows(&client, GOOGLE).await);
    sql.batch_execute("SELECT pg_wal_replay_resume()")
        .await
        .unwrap();
    assert!(server.eventually(&client, GOOGLE, true).await);
    drop(strict);

    // --- The replica's postmaster killed mid-load: the primary takes over, no request fails.
    const WORKERS: usize = 4;
    let stop = Arc::new(AtomicBool::new(false));
    let killed_at: Arc<std::sync::Mutex<Option<Instant>>> = Arc::default();
    let base = server.base.clone();
    let mut tasks = Vec::new();
    for _ in 0..WORKERS {
        let (stop, base, client) = (stop.clone(), base.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            // (started, ok and right)
            let mut log: Vec<(Instant, bool)> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let right = match client
                    .get(format!("{base}/api/v1/ip/{}", AMQP.1))
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 200 => {
                        r.text().await.map(|b| b.contains(AMQP.2)).unwrap_or(false)
                    }
                    _ => false,
                };
                log.push((started, right));
            }
            log
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let pid = homes.replica_pid();
    let kill = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    *killed_at.lock().unwrap() = Some(Instant::now());
    tokio::time::sleep(Duration::from_millis(2000)).await;
    stop.store(true, Ordering::Relaxed);
    let mut log = Vec::new();
    for t in tasks {
        log.extend(t.await.unwrap());
    }
    let killed = killed_at.lock().unwrap().unwrap();
    let before = log.iter().filter(|(t, _)| *t < killed).count();
    let failed: Vec<_> = log.iter().filter(|(_, ok)| !ok).collect();
    assert!(before > 0, "no request before the kill");
    // A read the dying replica failed (in flight at the kill, or on a connection checked out
    // just before the backend went) is run again on the primary: none fails.
    assert!(
        failed.is_empty(),
        "{} of {} requests failed although the primary was up",
        failed.len(),
        log.len()
    );
    let late: Vec<_> = log
        .iter()
        .filter(|(t, _)| *t > killed + Duration::from_millis(500))
        .collect();
    assert!(!late.is_empty(), "no request after the kill");
    assert!(
        late.iter().all(|(_, ok)| *ok),
        "a request well after the kill failed"
    );
    let retried = server
        .log
        .lock()
        .unwrap()
        .lines()
        .filter(|l| l.contains("a read on it failed") || l.contains("retried on the primary"))
        .count();
    eprintln!(
        "kill under load: {} requests ({before} before the kill), {} failed, {retried} retried on the primary",
        log.len(),
        failed.len()
    );

    // --- Restarted, the replica is used again (its replay paused: the primary's next write
    //     is missing from answers once it serves again).
    let url2 = start_replica(&homes);
    assert_eq!(url2, url);
    let sql = replica_sql(&url).await;
    sql.batch_execute("SELECT pg_wal_replay_pause()")
        .await
        .unwrap();
    homes.import(WISEKEY);
    assert!(primary_shows(&homes, WISEKEY));
    assert!(
        server.eventually(&client, WISEKEY, false).await,
        "the restarted replica was not used again"
    );
    sql.batch_execute("SELECT pg_wal_replay_resume()")
        .await
        .unwrap();
    drop(server);
    let stopped = homes.ok(&["db", "replica", "stop", homes.replica_arg()]);
    assert!(stopped.contains("stopped"), "{stopped}");
}

/// Bad input: a replica of a directory that is not one, a bad URL, a bad lag.
#[test]
fn replica_commands_refuse_bad_input() {
    let homes = Homes::new();
    let o = homes.run(&["db", "replica", "status", "/nonexistent/certhist-replica"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("holds no replica"), "{}", stderr(&o));
    let o = homes.run(&["serve", "--replica-max-lag=-3"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("replica-max-lag"), "{}", stderr(&o));
}

/// A loopback TCP port free at the time of the call.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Issue 15, over TCP: with the primary listening on TCP the standby streams from it over TCP
/// with the password of role certhist (SCRAM), the standby listens on TCP itself, and
/// `serve --replica-url` reads from it over TCP with that password; with a wrong password the
/// replica is unusable and reads go to the primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replica_over_tcp_with_a_password_serves_reads() {
    let homes = Homes::new();
    let (primary_port, replica_port) = (free_port(), free_port());
    homes.ok(&[
        "db",
        "start",
        "--listen",
        &format!("127.0.0.1:{primary_port}"),
    ]);
    let made: serde_json::Value = serde_json::from_str(
        homes
            .ok(&["--json", "db", "replica", "create", homes.replica_arg()])
            .trim(),
    )
    .unwrap();
    assert_eq!(made["via"], "tcp", "{made}");
    let app = made["application_name"].as_str().unwrap().to_owned();
    let auto = std::fs::read_to_string(homes.replica.join("pgdata/postgresql.auto.conf")).unwrap();
    let conninfo = auto
        .lines()
        .rfind(|l| l.starts_with("primary_conninfo"))
        .unwrap_or_else(|| panic!("no primary_conninfo in {auto}"));
    assert!(
        conninfo.contains("host=''127.0.0.1''")
            && conninfo.contains(&format!("port={primary_port} "))
            && conninfo.contains("password="),
        "{conninfo}"
    );

    let started: serde_json::Value = serde_json::from_str(
        homes
            .ok(&[
                "--json",
                "db",
                "replica",
                "start",
                homes.replica_arg(),
                "--listen",
                &format!("127.0.0.1:{replica_port}"),
            ])
            .trim(),
    )
    .unwrap();
    let socket_url = started["url"].as_str().unwrap().to_owned();
    let tcp_url = started["tcp_url"].as_str().unwrap_or_default();
    assert!(
        tcp_url.contains(&format!("@127.0.0.1:{replica_port}/")),
        "{started}"
    );

    // The standby's WAL receiver is a TCP client of the primary.
    let primary = replica_sql(homes.ok(&["db", "url"]).trim()).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let client_addr = loop {
        let row = primary
            .query_opt(
                "SELECT host(client_addr) FROM pg_stat_replication WHERE application_name = $1",
                &[&app],
            )
            .await
            .unwrap();
        if let Some(addr) = row.and_then(|r| r.get::<_, Option<String>>(0)) {
            break addr;
        }
        assert!(
            Instant::now() < deadline,
            "the standby never streamed over TCP"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(client_addr, "127.0.0.1");

    // The replica over TCP: the primary's password opens it, no password or a wrong one does not.
    let primary_tcp = homes
        .ok(&["db", "url", "--tcp", "--with-password"])
        .trim()
        .to_owned();
    let replica_url = primary_tcp.replace(
        &format!("@127.0.0.1:{primary_port}/"),
        &format!("@127.0.0.1:{replica_port}/"),
    );
    assert_ne!(replica_url, primary_tcp, "{primary_tcp}");
    let password = replica_url
        .split("://certhist:")
        .nth(1)
        .and_then(|rest| rest.split('@').next())
        .unwrap_or_else(|| panic!("no password in the TCP URL"))
        .to_owned();
    assert!(!password.is_empty());
    let wrong_url = replica_url.replace(
        &format!(":{password}@"),
        &format!(":{}x@", &password[..password.len() - 1]),
    );
    let no_password = replica_url.replace(&format!(":{password}@"), "@");
    for bad in [&wrong_url, &no_password] {
        let refused = bad
            .parse::<tokio_postgres::Config>()
            .unwrap()
            .connect(tokio_postgres::NoTls)
            .await;
        assert!(
            refused.is_err(),
            "the replica let a client in without the password"
        );
    }
    let over_tcp = replica_sql(&replica_url).await;
    let in_recovery: bool = over_tcp
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(in_recovery);

    // Reads go to the replica over TCP: with its replay paused a write on the primary is not seen.
    let client = reqwest::Client::new();
    let sql = replica_sql(&socket_url).await;
    let server = Server::start(&homes, &replica_url, "3600");
    sql.batch_execute("SELECT pg_wal_replay_pause()")
        .await
        .unwrap();
    homes.import(AMQP);
    assert!(primary_shows(&homes, AMQP));
    for _ in 0..5 {
        assert!(
            !server.shows(&client, AMQP).await,
            "a read was answered by the primary although the replica over TCP is usable"
        );
    }
    let tcp_readers: i64 = sql
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
             WHERE application_name = 'certhist-replica-reader' AND host(client_addr) = '127.0.0.1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        tcp_readers >= 1,
        "no TCP connection of serve on the replica"
    );

    // A wrong password: the replica is never used, reads are answered by the primary.
    let refused = Server::start(&homes, &wrong_url, "3600");
    assert!(
        refused.eventually(&client, AMQP, true).await,
        "a replica that refuses the password was used"
    );
    drop(refused);

    sql.batch_execute("SELECT pg_wal_replay_resume()")
        .await
        .unwrap();
    assert!(
        server.eventually(&client, AMQP, true).await,
        "the primary's write never became visible through the replica over TCP"
    );
}
