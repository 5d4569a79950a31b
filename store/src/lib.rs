//! Postgres store of certhist.
//!
//! This crate owns every SQL statement. It opens the database (a managed local cluster or a
//! server given by URL), applies the embedded migrations, writes batches with `COPY … (FORMAT
//! binary)` into staging tables merged by one statement each, and answers the read queries used
//! by the CLI and the HTTP API.
//!
//! Writing: get a [`Conn`] from [`Store::conn`], open a [`StoreTx`] with [`Conn::begin`], call the
//! `write_*` methods and the cursor setters, then [`StoreTx::commit`]. Data and cursor commit
//! together; dropping a `StoreTx` without committing rolls everything back.

pub mod cluster;
pub mod convert;
mod error;
mod migrate;
pub mod read;
mod redact;
pub mod replication;
pub mod stage;
mod write;

use std::path::PathBuf;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::NoTls;

use cluster::{ClusterConfig, StartOptions};

pub use error::StoreError;
pub use migrate::{applied_versions, schema_fingerprint};
pub use redact::redact_url;
pub use write::accounts::{
    check_password, check_user_name, csrf_token_for, sha256, Actor, NewApiKey, NewSession,
    KEY_PREFIX, MIN_PASSWORD_CHARS,
};
pub use write::{
    AuditEntry, Author, CacheEntryRow, CertWriteStats, CtEntryRow, CtLogState, FollowCursor,
    ImportState, NoteDeletion, PassiveWriteStats, StoreTx,
};

/// Where the database is.
///
/// `Debug` shows the URL with its password masked; the URL itself is a [`SecretString`], read
/// only where the connection is made.
#[derive(Clone)]
pub struct DbConfig {
    /// A PostgreSQL connection string (`postgres://…` or `host=… dbname=…`), which may hold a
    /// password. `None` means the managed local cluster under `home`.
    pub url: Option<SecretString>,
    /// Data directory of the managed local cluster (`$CERTHIST_HOME`, default `./certhist-data`).
    pub home: PathBuf,
    /// Connections kept in the pool.
    pub max_connections: usize,
    /// Where the managed cluster's server binaries are looked for.
    pub cluster: ClusterConfig,
}

impl std::fmt::Debug for DbConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbConfig")
            .field(
                "url",
                &self
                    .url
                    .as_ref()
                    .map(|u| redact::redact_url(u.expose_secret())),
            )
            .field("home", &self.home)
            .field("max_connections", &self.max_connections)
            .field("cluster", &self.cluster)
            .finish()
    }
}

impl DbConfig {
    /// The managed cluster under `home` (server binaries looked for as
    /// [`ClusterConfig::default`] does).
    pub fn managed(home: impl Into<PathBuf>) -> Self {
        DbConfig {
            url: None,
            home: home.into(),
            max_connections: 8,
            cluster: ClusterConfig::default(),
        }
    }
}

/// A pool of connections to a migrated certhist database.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    pg_config: tokio_postgres::Config,
    max_connections: usize,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // tokio-postgres prints a password as `_`.
        f.debug_struct("Store")
            .field("pg_config", &self.pg_config)
            .field("pool", &self.pool.status())
            .finish()
    }
}

/// One pooled connection.
pub struct Conn {
    client: deadpool_postgres::Object,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the database described by `config` (starting the managed cluster when no URL is
    /// given) and applies pending migrations.
    pub async fn open(config: &DbConfig) -> Result<Store, StoreError> {
        let pg_config = match &config.url {
            Some(url) => {
                let url = url.expose_secret();
                url.parse::<tokio_postgres::Config>()
                    .map_err(|e| StoreError::BadUrl {
                        url: redact::redact_url(url),
                        reason: redact::scrub(&e.to_string(), url),
                    })?
            }
            None => {
                let home = config.home.clone();
                let options = StartOptions {
                    cluster: config.cluster.clone(),
                    ..StartOptions::default()
                };
                let cluster = tokio::task::spawn_blocking(move || {
                    cluster::ensure_running_with(&home, &options)
                })
                .await
                .map_err(|e| StoreError::Cluster(cluster::ClusterError::Other(e.to_string())))??;
                cluster.pg_config("certhist")
            }
        };
        if config.url.is_none() {
            ensure_database(&pg_config).await?;
        }
        Self::open_with(pg_config, config.max_connections).await
    }

    /// Opens a pool on an explicit connection config and applies pending migrations.
    pub async fn open_with(
        pg_config: tokio_postgres::Config,
        max_connections: usize,
    ) -> Result<Store, StoreError> {
        let store = Self::connect_only(pg_config, max_connections)?;
        let mut conn = store.conn().await?;
        migrate::run(&mut conn.client).await?;
        Ok(store)
    }

    /// A pool on a database known to be migrated, without running the migrations (the test
    /// harness's per-test copies of a migrated template).
    pub fn connect_only(
        pg_config: tokio_postgres::Config,
        max_connections: usize,
    ) -> Result<Store, StoreError> {
        Self::connect_recycling(pg_config, max_connections, RecyclingMethod::Fast)
    }

    /// [`Store::connect_only`] with a chosen check of a pooled connection before it is handed
    /// out (`Fast`: only whether the client saw the socket close; `Verified`: one empty round
    /// trip, so a connection to a server that just died is dropped instead of failing a query).
    pub(crate) fn connect_recycling(
        pg_config: tokio_postgres::Config,
        max_connections: usize,
        recycling_method: RecyclingMethod,
    ) -> Result<Store, StoreError> {
        let manager =
            Manager::from_config(pg_config.clone(), NoTls, ManagerConfig { recycling_method });
        let pool = Pool::builder(manager)
            .max_size(max_connections.max(1))
            .build()
            .map_err(|e| StoreError::PoolSetup(e.to_string()))?;
        Ok(Store {
            pool,
            pg_config,
            max_connections,
        })
    }

    /// A second pool on the same database for request handling: its connections run every
    /// statement under `statement_timeout` (`Duration::ZERO`: none) and without parallel plans
    /// (`max_parallel_workers_per_gather = 0`), both set once per connection in the startup
    /// packet, so they cost no round trip per query. Used by the HTTP API. Parallel plans are
    /// left to the other pool's long statements (exports, ingest): for a request they start
    /// worker processes that take milliseconds to launch and compete with the pool's other
    /// connections for the same cores — at 100 M observations the planner chose one for a
    /// two-address `/overlap` (1,393 rows estimated, 23 read) and made it 8× slower.
    pub fn for_requests(&self, timeout: std::time::Duration) -> Result<Store, StoreError> {
        let mut config = self.pg_config.clone();
        let ms = timeout.as_millis().min(i32::MAX as u128);
        let mut options = config.get_options().unwrap_or_default().to_owned();
        if !options.is_empty() {
            options.push(' ');
        }
        options.push_str(&format!(
            "-c statement_timeout={ms} -c max_parallel_workers_per_gather=0"
        ));
        config.options(&options);
        Store::connect_only(config, self.max_connections)
    }

    /// Takes a connection from the pool.
    pub async fn conn(&self) -> Result<Conn, StoreError> {
        Ok(Conn {
            client: stage::timed(stage::Stage::PoolWait, self.pool.get()).await?,
        })
    }

    /// A connection from the pool if one is free now (`None` when all are in use), for work
    /// that can also be done on a connection the caller already holds.
    pub async fn try_conn(&self) -> Result<Option<Conn>, StoreError> {
        let now = deadpool_postgres::Timeouts {
            wait: Some(std::time::Duration::ZERO),
            create: None,
            recycle: None,
        };
        match self.pool.timeout_get(&now).await {
            Ok(client) => Ok(Some(Conn { client })),
            Err(deadpool_postgres::PoolError::Timeout(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// Creates the database named in `pg_config` when it does not exist (connecting to the `postgres`
/// maintenance database of the same server). Safe when two processes race.
pub async fn ensure_database(pg_config: &tokio_postgres::Config) -> Result<(), StoreError> {
    let dbname = pg_config.get_dbname().unwrap_or("certhist").to_owned();
    let mut admin = pg_config.clone();
    admin.dbname("postgres");
    let (client, connection) = admin.connect(NoTls).await?;
    let driver = tokio::spawn(connection);
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&dbname])
        .await?
        .is_some();
    if !exists {
        let quoted = format!("\"{}\"", dbname.replace('"', "\"\""));
        if let Err(e) = client
            .batch_execute(&format!("CREATE DATABASE {quoted}"))
            .await
        {
            if e.code() != Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) {
                return Err(e.into());
            }
        }
    }
    drop(client);
    let _ = driver.await;
    Ok(())
}

fn file_lock_key(content_sha256: &[u8; 32]) -> i64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&content_sha256[..8]);
    i64::from_be_bytes(first)
}

impl Conn {
    /// Starts a transaction. Dropping it without [`StoreTx::commit`] rolls back.
    pub async fn begin(&mut self) -> Result<StoreTx<'_>, StoreError> {
        let tx = self.client.transaction().await?;
        Ok(StoreTx::new(tx))
    }

    /// Takes a session-level advisory lock named by a file's content hash, so two processes do
    /// not import the same file at once (both would see it as not imported yet). Returns false
    /// when another session holds it. Released by [`Conn::unlock_file`] or when the connection
    /// closes (a crashed importer never leaves it behind).
    pub async fn try_lock_file(&self, content_sha256: &[u8; 32]) -> Result<bool, StoreError> {
        let key = file_lock_key(content_sha256);
        let row = self
            .client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .await?;
        Ok(row.get(0))
    }

    /// Releases [`Conn::try_lock_file`].
    pub async fn unlock_file(&self, content_sha256: &[u8; 32]) -> Result<(), StoreError> {
        let key = file_lock_key(content_sha256);
        self.client
            .execute("SELECT pg_advisory_unlock($1)", &[&key])
            .await?;
        Ok(())
    }

    /// Records an audit entry on its own (for events that change nothing else, such as a failed
    /// login); changes record theirs in their own transaction with [`StoreTx::audit`].
    pub async fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.client
            .execute(
                write::INSERT_AUDIT,
                &[
                    &entry.actor,
                    &entry.action,
                    &entry.target,
                    &entry.source,
                    &entry.detail,
                ],
            )
            .await?;
        Ok(())
    }

    /// The value of a server setting on this connection (`current_setting`), e.g. to check
    /// what a pool's startup options set.
    pub async fn setting(&self, name: &str) -> Result<String, StoreError> {
        let row = self
            .client
            .query_one("SELECT current_setting($1)", &[&name])
            .await?;
        Ok(row.get(0))
    }

    /// Checks that the server answers (`SELECT 1`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.client.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// The underlying client, for read queries in this crate.
    pub(crate) fn client(&self) -> &tokio_postgres::Client {
        &self.client
    }
}
