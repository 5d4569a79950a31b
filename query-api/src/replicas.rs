//! Read replicas (issue 15): reads go to a hot standby, writes to the primary.
//!
//! A [`ReplicaSet`] holds one pool per replica (`certhist serve --replica-url URL`, repeatable)
//! and what the last health check found about each. [`ReplicaSet::spawn_monitor`] checks every
//! replica periodically — not per request — against the primary:
//!
//! - **down**: it cannot be reached (or the check takes longer than [`CHECK_TIMEOUT`]), or it
//!   is not in recovery (a promoted or unrelated server);
//! - **lag**: measured on our own clock from the primary's WAL positions sampled at each
//!   check (`pg_current_wal_lsn()`, kept for the last [`HISTORY`] checks): the time since the
//!   newest sample the replica has replayed (`pg_last_wal_replay_lsn()`), so 0 for a replica
//!   that has replayed everything the primary had written when sampled; for a replica behind
//!   every sample kept, at least the age of the oldest sample and of its last replayed
//!   transaction (`pg_last_xact_replay_timestamp()`). A replica whose lag exceeds the bound
//!   (`--replica-max-lag`) is not used until a later check finds it within it.
//!
//! `ReplicaSet::read_conn` takes a connection from the next usable replica (round robin); a
//! replica that fails to give one is marked down at once (the next check may bring it back) and
//! the next is tried; with none usable the caller uses the primary. Read handlers call
//! `AppState::read_conn`; everything that writes (tags, notes, uploads, accounts, sessions,
//! audit) and authentication keep `AppState::conn` (the primary).
//!
//! A replica can die between a health check and a read, or between checkout and query; a
//! standby can also cancel a read that conflicts with recovery. `retry_on_primary` (a layer
//! of every `GET`/`HEAD` route when replicas are configured) runs such a request again on the
//! primary when a replica served it and the answer was a server error (503: the replica is
//! also marked down at once), so a replica's failure costs the client nothing but time.
//! Only a streamed answer (NDJSON past its first page) cannot be retried once it has begun.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use certhist_store::{Conn, Store};

tokio::task_local! {
    /// How the request being handled may use the replicas, and which one served it.
    static READ_ROUTE: ReadRoute;
}

/// See [`READ_ROUTE`].
#[derive(Default)]
struct ReadRoute {
    /// Replicas are not used (the retry of a request a replica failed).
    primary_only: bool,
    /// The index of the replica that last gave the request a connection.
    used: Cell<Option<usize>>,
}

/// Longest a health check of one replica may take.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// Samples of the primary's WAL position kept to measure lag.
pub const HISTORY: usize = 4096;

/// The last state seen of one replica.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ReplicaState {
    /// The replica's connection URL, password masked.
    pub name: String,
    /// Reads are sent to it.
    pub usable: bool,
    /// It answered the last check and is in recovery.
    pub up: bool,
    /// Estimated replication lag, in seconds (`None` while down or not yet checked).
    pub lag_seconds: Option<f64>,
    /// WAL the primary has written and the replica has not replayed yet, in bytes.
    pub lag_bytes: Option<u64>,
    /// Why it is not usable.
    pub reason: Option<String>,
}

/// The pools of one replica.
#[derive(Debug)]
pub struct ReplicaPools {
    /// A display name: the URL with its password masked.
    pub name: String,
    /// Connections for reads (with the API's statement timeout).
    pub reads: Store,
    /// The health check's own pool (one connection), so that a busy read pool never makes a
    /// replica look down.
    pub checks: Store,
}

#[derive(Debug)]
struct Replica {
    store: Store,
    checks: Store,
    usable: AtomicBool,
    state: Mutex<ReplicaState>,
    /// Reads served (for the status report and tests).
    served: AtomicU64,
}

#[derive(Debug)]
struct Inner {
    replicas: Vec<Replica>,
    max_lag: Duration,
    next: AtomicUsize,
}

/// The replicas of `certhist serve` and their health (cheap to clone: shared).
#[derive(Clone, Debug)]
pub struct ReplicaSet {
    inner: Arc<Inner>,
}

/// The primary's WAL position at a check.
#[derive(Clone, Copy, Debug)]
struct PrimarySample {
    at: Instant,
    lsn: u64,
}

impl ReplicaSet {
    /// The replicas. None is used before a check finds it within `max_lag` of the primary.
    pub fn new(replicas: Vec<ReplicaPools>, max_lag: Duration) -> ReplicaSet {
        let replicas = replicas
            .into_iter()
            .map(|p| Replica {
                store: p.reads,
                checks: p.checks,
                usable: AtomicBool::new(false),
                state: Mutex::new(ReplicaState {
                    name: p.name,
                    usable: false,
                    up: false,
                    lag_seconds: None,
                    lag_bytes: None,
                    reason: Some("not checked yet".to_owned()),
                }),
                served: AtomicU64::new(0),
            })
            .collect();
        ReplicaSet {
            inner: Arc::new(Inner {
                replicas,
                max_lag,
                next: AtomicUsize::new(0),
            }),
        }
    }

    /// The state of each replica as of the last check.
    pub fn states(&self) -> Vec<ReplicaState> {
        self.inner
            .replicas
            .iter()
            .map(|r| r.state.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .collect()
    }

    /// Reads served by each replica so far, in order.
    pub fn served(&self) -> Vec<u64> {
        self.inner
            .replicas
            .iter()
            .map(|r| r.served.load(Ordering::Relaxed))
            .collect()
    }

    /// Checks every replica now (first a sample of the primary's WAL position, added to
    /// `history`, the samples of earlier checks, oldest first).
    async fn check(&self, primary: &Store, history: &mut VecDeque<PrimarySample>) {
        let sample = async {
            let conn = primary.conn().await.ok()?;
            let lsn = conn.current_wal_lsn().await.ok()?;
            Some(PrimarySample {
                at: Instant::now(),
                lsn,
            })
        };
        let sample = tokio::time::timeout(CHECK_TIMEOUT, sample)
            .await
            .ok()
            .flatten();
        if let Some(sample) = sample {
            if history.len() >= HISTORY {
                history.pop_front();
            }
            history.push_back(sample);
        }
        for r in &self.inner.replicas {
            let seen = tokio::time::timeout(CHECK_TIMEOUT, async {
                let conn = r.checks.conn().await.map_err(|e| e.to_string())?;
                conn.replay_state().await.map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())));
            let mut st = r.state.lock().unwrap_or_else(|e| e.into_inner());
            match seen {
                Err(e) => {
                    st.up = false;
                    st.lag_seconds = None;
                    st.lag_bytes = None;
                    st.reason = Some(format!("down: {e}"));
                }
                Ok(s) if !s.in_recovery => {
                    st.up = false;
                    st.lag_seconds = None;
                    st.lag_bytes = None;
                    st.reason =
                        Some("not a standby (pg_is_in_recovery() is false); not used".to_owned());
                }
                Ok(s) => {
                    st.up = true;
                    let (lag_bytes, lag) = match (sample, s.replay_lsn) {
                        (Some(now), Some(replay)) => {
                            let covered = history.iter().rev().find(|p| p.lsn <= replay);
                            let lag = match covered {
                                Some(p) if p.lsn == now.lsn => 0.0,
                                Some(p) => p.at.elapsed().as_secs_f64(),
                                None => history
                                    .front()
                                    .map(|p| p.at.elapsed().as_secs_f64())
                                    .unwrap_or_default()
                                    .max(s.replay_age_seconds.unwrap_or_default()),
                            };
                            (Some(now.lsn.saturating_sub(replay)), Some(lag))
                        }
                        _ => (None, None),
                    };
                    st.lag_bytes = lag_bytes;
                    st.lag_seconds = lag;
                    st.reason = match lag {
                        Some(l) if l <= self.inner.max_lag.as_secs_f64() => None,
                        Some(l) => Some(format!(
                            "lagging {l:.1} s behind the primary (bound {} s)",
                            self.inner.max_lag.as_secs_f64()
                        )),
                        None => Some("lag unknown (the primary did not answer)".to_owned()),
                    };
                }
            }
            st.usable = st.reason.is_none();
            if st.usable != r.usable.load(Ordering::Relaxed) {
                if st.usable {
                    tracing::info!(replica = %st.name, lag_seconds = ?st.lag_seconds, "replica used for reads");
                } else {
                    tracing::warn!(replica = %st.name, reason = ?st.reason, "replica not used for reads; reads go to the primary");
                }
            }
            r.usable.store(st.usable, Ordering::Relaxed);
        }
    }

    /// Checks the replicas now and then every `interval`, until the runtime shuts down.
    /// `primary` should be a pool of its own (the check holds one connection of it briefly).
    pub fn spawn_monitor(&self, primary: Store, interval: Duration) -> tokio::task::JoinHandle<()> {
        let set = self.clone();
        tokio::spawn(async move {
            let mut history = VecDeque::new();
            loop {
                set.check(&primary, &mut history).await;
                tokio::time::sleep(interval).await;
            }
        })
    }

    /// Checks the replicas once now (before serving, so reads use them from the first request).
    pub async fn check_once(&self, primary: &Store) {
        self.check(primary, &mut VecDeque::new()).await;
    }

    /// A connection to the next usable replica (round robin), or `None` when none is usable.
    /// A replica that cannot give one is marked down until the next check.
    pub(crate) async fn read_conn(&self) -> Option<Conn> {
        let n = self.inner.replicas.len();
        if n == 0 {
            return None;
        }
        if READ_ROUTE
            .try_with(|route| route.primary_only)
            .unwrap_or(false)
        {
            return None;
        }
        let start = self.inner.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            let index = (start + i) % n;
            let r = &self.inner.replicas[index];
            if !r.usable.load(Ordering::Relaxed) {
                continue;
            }
            // Waiting for a free pooled connection is not a failure of the replica; failing to
            // connect (refused, or the connect timeout of its URL) is.
            match r.store.conn().await {
                Ok(conn) => {
                    r.served.fetch_add(1, Ordering::Relaxed);
                    // Outside a request's scope (a streamed body's later pages) nothing is noted.
                    let _ = READ_ROUTE.try_with(|route| route.used.set(Some(index)));
                    return Some(conn);
                }
                Err(e) => self.mark_down(r, &e.to_string()),
            }
        }
        None
    }

    fn mark_down(&self, r: &Replica, why: &str) {
        r.usable.store(false, Ordering::Relaxed);
        let mut st = r.state.lock().unwrap_or_else(|e| e.into_inner());
        st.usable = false;
        st.up = false;
        st.reason = Some(format!("down: {why}"));
        tracing::warn!(replica = %st.name, error = %why, "replica unreachable; reads go to the primary until it answers a check");
    }
}

/// Runs a `GET`/`HEAD` request again on the primary when a replica served it and the answer
/// was a server error other than a timeout (a timeout would only repeat; see the module
/// documentation). A 503 (the replica could not be reached or went away mid-query) also marks
/// that replica down until a health check finds it well.
pub(crate) async fn retry_on_primary(
    State(set): State<ReplicaSet>,
    req: Request,
    next: Next,
) -> Response {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let again = parts.clone();
    let first = next.clone();
    let (response, used) = READ_ROUTE
        .scope(ReadRoute::default(), async move {
            let response = first.run(Request::from_parts(parts, body)).await;
            (response, READ_ROUTE.with(|route| route.used.get()))
        })
        .await;
    let status = response.status();
    let Some(index) = used else {
        return response;
    };
    if !status.is_server_error() || status == StatusCode::GATEWAY_TIMEOUT {
        return response;
    }
    let replica = &set.inner.replicas[index];
    if status == StatusCode::SERVICE_UNAVAILABLE {
        set.mark_down(replica, "a read on it failed: the connection was lost");
    } else {
        let name = replica
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .name
            .clone();
        tracing::warn!(replica = %name, %status, "a read on a replica failed; retried on the primary");
    }
    READ_ROUTE
        .scope(
            ReadRoute {
                primary_only: true,
                used: Cell::new(None),
            },
            next.run(Request::from_parts(again, axum::body::Body::empty())),
        )
        .await
}
