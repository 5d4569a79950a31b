//! Test-database helper (dev-only; never a dependency of a production crate): one managed cluster per test run (or `TEST_DATABASE_URL`), a template
//! database migrated once, a fresh database per test.
//!
//! ```no_run
//! # async fn t() {
//! let db = certhist_test_support::TestDb::new().await;
//! let store = db.store();
//! # }
//! ```
//!
//! - With `TEST_DATABASE_URL` set, that server is used (its user needs `CREATEDB`); otherwise a
//!   managed cluster in `<temp dir>/certhist-test-cluster-<euid>` (server binaries found as
//!   [`test_cluster_config`] says), shared by every test binary
//!   and process (the cluster's own `flock` serialises the start), and left running for the
//!   next run (`certhist db stop` or [`certhist_store::cluster::stop`] on that directory stops it).
//! - The template `certhist_tpl_<hash of the embedded migrations>` is built once per schema
//!   version under a server-wide advisory lock: created as a scratch database, migrated, then
//!   renamed into place, so a crashed build never leaves a half-migrated template.
//! - Each [`TestDb`] is `CREATE DATABASE certhist_test_<unix secs>_<pid>_<n> TEMPLATE …`; dropping
//!   it drops the database. Leftovers older than an hour (crashed runs) are dropped at first use.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::OnceCell;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};

use certhist_store::cluster::{self, ClusterConfig, StartOptions};
use certhist_store::Store;

/// Advisory lock key held while building templates and cleaning up ("certtest" in ASCII).
const TEMPLATE_LOCK_KEY: i64 = 0x6365_7274_7465_7374;
/// Test databases older than this are leftovers of crashed runs.
const LEFTOVER_AGE_SECS: u64 = 3600;
/// Connections in each test database's pool.
const TEST_POOL_SIZE: usize = 4;

/// Server settings of the managed test cluster: throw-away data, so no durability.
const TEST_CLUSTER_SETTINGS: &[(&str, &str)] = &[
    ("fsync", "off"),
    ("full_page_writes", "off"),
    ("synchronous_commit", "off"),
    ("shared_buffers", "128MB"),
    ("max_connections", "300"),
    ("max_wal_size", "1GB"),
];

/// Server connection shared by every test of this process.
#[derive(Debug)]
struct Shared {
    /// Connects to a maintenance database of the server (`postgres`, or the database in
    /// `TEST_DATABASE_URL`).
    admin: Config,
    /// Name of the migrated template.
    template: String,
}

static SHARED: OnceCell<Shared> = OnceCell::const_new();
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh, migrated database for one test, dropped when this value is dropped.
pub struct TestDb {
    name: String,
    config: Config,
    admin: Config,
    store: Store,
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TestDb {
    /// Creates a database from the migrated template. Panics with the reason when the test
    /// server cannot be set up (test code only).
    pub async fn new() -> TestDb {
        match Self::try_new().await {
            Ok(db) => db,
            Err(e) => panic!("TestDb: cannot set up a test database: {e}"),
        }
    }

    /// [`TestDb::new`] returning the error instead of panicking.
    pub async fn try_new() -> Result<TestDb, String> {
        let shared = SHARED.get_or_try_init(init_shared).await?;
        let now_secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let name = format!(
            "certhist_test_{now_secs}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let admin = connect(&shared.admin).await?;
        let sql = format!(
            "CREATE DATABASE {} TEMPLATE {}",
            quote_ident(&name),
            quote_ident(&shared.template)
        );
        retry_in_use(|| admin.batch_execute(&sql))
            .await
            .map_err(|e| format!("{sql}: {e}"))?;
        let mut config = shared.admin.clone();
        config.dbname(&name);
        let store =
            Store::connect_only(config.clone(), TEST_POOL_SIZE).map_err(|e| e.to_string())?;
        Ok(TestDb {
            name,
            config,
            admin: shared.admin.clone(),
            store,
        })
    }

    /// A connection pool on this database (cheap to clone; all clones share the pool).
    pub fn store(&self) -> Store {
        self.store.clone()
    }

    /// Connection settings of this database (for `Store::open_with`, raw clients, psql).
    pub fn pg_config(&self) -> Config {
        self.config.clone()
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop is synchronous and may run inside (or outside) the test's runtime: use a thread
        // with a runtime of its own, and never panic from here.
        let handle = std::thread::spawn(move || -> Result<(), String> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let client = connect(&admin).await?;
                client
                    .batch_execute(&format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        quote_ident(&name)
                    ))
                    .await
                    .map_err(|e| e.to_string())
            })
        });
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!(
                "warning: TestDb: cannot drop test database {}: {e}",
                self.name
            ),
            Err(_) => eprintln!(
                "warning: TestDb: dropping test database {} panicked",
                self.name
            ),
        }
    }
}

/// Home of the managed test cluster: `<temp dir>/certhist-test-cluster-<euid>`.
pub fn test_cluster_home() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("certhist-test-cluster-{}", nix::unistd::geteuid()))
}

/// Where the managed test cluster's server binaries are looked for: `CERTHIST_PG_BINDIR` and
/// `PATH`, as the `certhist` binary does (test code reads the environment; the store does not).
pub fn test_cluster_config() -> ClusterConfig {
    ClusterConfig {
        pg_bindir: std::env::var_os("CERTHIST_PG_BINDIR").map(Into::into),
        search_path: std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default(),
    }
}

async fn init_shared() -> Result<Shared, String> {
    let admin = match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => url
            .parse::<Config>()
            .map_err(|e| format!("TEST_DATABASE_URL does not parse: {e}"))?,
        _ => {
            let home = test_cluster_home();
            let options = StartOptions {
                tcp: None,
                settings: TEST_CLUSTER_SETTINGS
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                cluster: test_cluster_config(),
                ..StartOptions::default()
            };
            let info =
                tokio::task::spawn_blocking(move || cluster::ensure_running_with(&home, &options))
                    .await
                    .map_err(|e| format!("cluster start task failed: {e}"))?
                    .map_err(|e| e.to_string())?;
            info.pg_config("postgres")
        }
    };
    let template = format!("certhist_tpl_{}", certhist_store::schema_fingerprint());
    let client = connect(&admin).await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&TEMPLATE_LOCK_KEY])
        .await
        .map_err(|e| format!("advisory lock: {e}"))?;
    let result = async {
        drop_leftovers(&client).await;
        build_template(&client, &admin, &template).await
    }
    .await;
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&TEMPLATE_LOCK_KEY])
        .await;
    result?;
    Ok(Shared { admin, template })
}

async fn build_template(client: &Client, admin: &Config, template: &str) -> Result<(), String> {
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&template])
        .await
        .map_err(|e| e.to_string())?
        .is_some();
    if exists {
        return Ok(());
    }
    let now_secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let build = format!(
        "certhist_tplbuild_{}_{now_secs}_{}",
        certhist_store::schema_fingerprint(),
        std::process::id()
    );
    client
        .batch_execute(&format!(
            "CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'",
            quote_ident(&build)
        ))
        .await
        .map_err(|e| format!("create template database {build}: {e}"))?;
    let mut config = admin.clone();
    config.dbname(&build);
    {
        let store = Store::open_with(config, 1)
            .await
            .map_err(|e| format!("migrating template database {build}: {e}"))?;
        drop(store);
    }
    // The pool's connection closes asynchronously: end any session still on it, then rename.
    let rename = format!(
        "ALTER DATABASE {} RENAME TO {}",
        quote_ident(&build),
        quote_ident(template)
    );
    let mut attempts = 0;
    loop {
        let _ = client
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&build],
            )
            .await;
        match client.batch_execute(&rename).await {
            Ok(()) => break,
            Err(e) if e.code() == Some(&SqlState::OBJECT_IN_USE) && attempts < 200 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(format!("{rename}: {e}")),
        }
    }
    // Nobody may connect to the template: a session on it would make CREATE DATABASE fail.
    client
        .batch_execute(&format!(
            "ALTER DATABASE {} WITH ALLOW_CONNECTIONS false",
            quote_ident(template)
        ))
        .await
        .map_err(|e| format!("lock template {template}: {e}"))?;
    Ok(())
}

/// Drops `certhist_test_*` and `certhist_tplbuild_*` databases older than an hour (their names
/// carry their creation time). Failures are only reported.
async fn drop_leftovers(client: &Client) {
    let Ok(rows) = client
        .query(
            r"SELECT datname FROM pg_database WHERE datname LIKE 'certhist\_test\_%' OR datname LIKE 'certhist\_tplbuild\_%'",
            &[],
        )
        .await
    else {
        return;
    };
    let now_secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for row in rows {
        let name: String = row.get(0);
        let created_secs = name
            .split('_')
            .find_map(|part| part.parse::<u64>().ok().filter(|n| *n > 1_000_000_000));
        let Some(created_secs) = created_secs else {
            continue;
        };
        if now_secs.saturating_sub(created_secs) < LEFTOVER_AGE_SECS {
            continue;
        }
        if let Err(e) = client
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(&name)
            ))
            .await
        {
            eprintln!("warning: TestDb: cannot drop leftover database {name}: {e}");
        }
    }
}

async fn connect(config: &Config) -> Result<Client, String> {
    let (client, connection) = config.connect(NoTls).await.map_err(|e| {
        let source = std::error::Error::source(&e)
            .map(|s| format!(": {s}"))
            .unwrap_or_default();
        let server = match std::env::var("TEST_DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => format!("TEST_DATABASE_URL={url}"),
            _ => format!(
                "the managed test cluster in {}",
                test_cluster_home().display()
            ),
        };
        format!("cannot connect to {server}: {e}{source}")
    })?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Retries while the template is in use by another session (SQLSTATE 55006), up to ~10 s.
async fn retry_in_use<F, Fut>(mut f: F) -> Result<(), tokio_postgres::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), tokio_postgres::Error>>,
{
    let mut attempts = 0;
    loop {
        match f().await {
            Err(e) if e.code() == Some(&SqlState::OBJECT_IN_USE) && attempts < 200 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
