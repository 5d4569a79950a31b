//! Per-request stage timing (issue 17): where the time of one request goes — waiting for a
//! pooled connection, database round trips, decoding rows into view types, serialising or
//! rendering the answer.
//!
//! The HTTP server runs a request inside [`scope`] when stage timing is on
//! (`certhist serve --stage-timing`); the code on the request's path adds the time it spends to
//! the request's [`Stages`] through [`timed`] / [`timed_sync`]. Outside a scope (stage timing
//! off, the CLI, tests) both only check a task-local and run the work: no clock is read and
//! nothing is recorded.

use std::cell::RefCell;
use std::future::Future;
use std::time::{Duration, Instant};

/// A stage of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Waiting for a pooled database connection (including opening one).
    PoolWait,
    /// Database round trips: from sending a statement to having every row.
    Query,
    /// Turning rows into view types (`certhist_model::views`).
    Decode,
    /// JSON serialisation or HTML rendering of the answer.
    Serialise,
}

impl Stage {
    /// Every stage, in the order of a request.
    pub const ALL: [Stage; 4] = [
        Stage::PoolWait,
        Stage::Query,
        Stage::Decode,
        Stage::Serialise,
    ];

    /// The stage's name in reports (`pool_wait`, `query`, `decode`, `serialise`).
    pub fn name(self) -> &'static str {
        match self {
            Stage::PoolWait => "pool_wait",
            Stage::Query => "query",
            Stage::Decode => "decode",
            Stage::Serialise => "serialise",
        }
    }
}

/// Time spent in each stage by one request, and how many statements it ran.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stages {
    /// Indexed like [`Stage::ALL`].
    pub spent: [Duration; 4],
    /// Database statements run (round trips timed as [`Stage::Query`]).
    pub statements: u32,
}

impl Stages {
    /// The time spent in `stage`.
    pub fn get(&self, stage: Stage) -> Duration {
        self.spent[stage as usize]
    }
}

tokio::task_local! {
    static CURRENT: RefCell<Stages>;
}

/// Runs `fut` (a request) with a fresh [`Stages`] that [`timed`] and [`timed_sync`] add to,
/// and returns both.
pub async fn scope<F: Future>(fut: F) -> (F::Output, Stages) {
    CURRENT
        .scope(RefCell::new(Stages::default()), async move {
            let out = fut.await;
            let stages = CURRENT.with(|s| *s.borrow());
            (out, stages)
        })
        .await
}

fn add(stage: Stage, spent: Duration) {
    let _ = CURRENT.try_with(|s| {
        let mut s = s.borrow_mut();
        s.spent[stage as usize] += spent;
        if stage == Stage::Query {
            s.statements += 1;
        }
    });
}

fn active() -> bool {
    CURRENT.try_with(|_| ()).is_ok()
}

/// Awaits `fut`, adding the time it takes to `stage` when inside a [`scope`].
pub async fn timed<F: Future>(stage: Stage, fut: F) -> F::Output {
    if !active() {
        return fut.await;
    }
    let t = Instant::now();
    let out = fut.await;
    add(stage, t.elapsed());
    out
}

/// Runs `f`, adding the time it takes to `stage` when inside a [`scope`].
pub fn timed_sync<R>(stage: Stage, f: impl FnOnce() -> R) -> R {
    if !active() {
        return f();
    }
    let t = Instant::now();
    let out = f();
    add(stage, t.elapsed());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_inside_a_scope_only() {
        // Outside a scope: the work runs, nothing to record into.
        assert_eq!(timed(Stage::Query, async { 7 }).await, 7);
        assert_eq!(timed_sync(Stage::Decode, || 8), 8);
        let (out, stages) = scope(async {
            timed(Stage::Query, tokio::time::sleep(Duration::from_millis(5))).await;
            timed(Stage::Query, async {}).await;
            timed_sync(Stage::Decode, || 3)
        })
        .await;
        assert_eq!(out, 3);
        assert_eq!(stages.statements, 2);
        assert!(stages.get(Stage::Query) >= Duration::from_millis(5));
        assert_eq!(stages.get(Stage::PoolWait), Duration::ZERO);
    }
}
