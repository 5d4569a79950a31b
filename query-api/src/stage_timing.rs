//! Stage timing of requests (issue 17), on with `certhist serve --stage-timing`
//! (`CERTHIST_STAGE_TIMING=1`); off, neither the layer nor the route exists.
//!
//! Every request runs inside [`certhist_store::stage::scope`]; the store adds its pool waits,
//! database round trips and row decoding, `crate::json` and the web UI's renderer their
//! serialisation. This layer adds:
//! - `write`: from the handler's answer to the body handed over to hyper (headers encoded,
//!   body taken for the socket) — a large `write` means the connection task waited for a
//!   worker thread;
//! - `total`: from the request reaching the router to that point;
//! - `other`: `total` minus the stages (routing, authentication, parameter parsing, waiting
//!   for a worker between stages).
//!
//! One HDR histogram (µs, 2 significant digits) per route and column. The report is served at
//! [`PATH`] — only to loopback clients with the admin role (an open local server's user has
//! it), JSON by default, `?format=text` for the table, `DELETE` to reset between benchmark
//! runs — and printed to standard error when the server stops.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{MatchedPath, RawQuery, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use certhist_model::views::Role;
use certhist_store::stage::{self, Stage, Stages};
use hdrhistogram::Histogram;

use crate::auth::Principal;
use crate::error::ApiError;

/// Where the report is served.
pub const PATH: &str = "/debug/stage-timing";

/// The report's columns: the store's stages, then those measured here.
pub const COLUMNS: [&str; 7] = [
    "pool_wait",
    "query",
    "decode",
    "serialise",
    "write",
    "other",
    "total",
];

/// Percentiles of the report.
const PERCENTILES: [(&str, f64); 3] = [("p50", 50.0), ("p99", 99.0), ("p99_9", 99.9)];

/// The histograms of one route.
#[derive(Debug)]
struct RouteStats {
    requests: u64,
    statements: u64,
    columns: Vec<Histogram<u64>>,
}

impl RouteStats {
    fn new() -> Self {
        RouteStats {
            requests: 0,
            statements: 0,
            columns: COLUMNS
                .iter()
                .map(|_| {
                    // 1 µs .. 10 min: covers every request the server lets run.
                    Histogram::new_with_bounds(1, 600_000_000, 2).expect("valid histogram bounds")
                })
                .collect(),
        }
    }
}

/// The histograms of every route, shared by the layer and the report.
#[derive(Debug, Default)]
pub struct Recorder {
    routes: Mutex<BTreeMap<String, RouteStats>>,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

impl Recorder {
    fn record(&self, route: &str, stages: &Stages, write: Duration, total: Duration) {
        let measured: Duration =
            Stage::ALL.iter().map(|s| stages.get(*s)).sum::<Duration>() + write;
        let values = [
            stages.get(Stage::PoolWait),
            stages.get(Stage::Query),
            stages.get(Stage::Decode),
            stages.get(Stage::Serialise),
            write,
            total.saturating_sub(measured),
            total,
        ];
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let r = routes
            .entry(route.to_owned())
            .or_insert_with(RouteStats::new);
        r.requests += 1;
        r.statements += u64::from(stages.statements);
        for (h, v) in r.columns.iter_mut().zip(values) {
            h.saturating_record(micros(v));
        }
    }

    fn reset(&self) {
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The report as JSON: `{"unit": "µs", "routes": [{"route", "requests",
    /// "statements_per_request", "stages": {column: {"p50", "p99", "p99_9", "mean", "max"}}}]}`.
    pub fn json(&self) -> serde_json::Value {
        let routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let list: Vec<serde_json::Value> = routes
            .iter()
            .map(|(route, r)| {
                let stages: serde_json::Map<String, serde_json::Value> = COLUMNS
                    .iter()
                    .zip(&r.columns)
                    .map(|(name, h)| {
                        let mut o = serde_json::Map::new();
                        for (p, q) in PERCENTILES {
                            o.insert(p.to_owned(), h.value_at_percentile(q).into());
                        }
                        o.insert("mean".to_owned(), (h.mean().round() as u64).into());
                        o.insert("max".to_owned(), h.max().into());
                        ((*name).to_owned(), serde_json::Value::Object(o))
                    })
                    .collect();
                serde_json::json!({
                    "route": route,
                    "requests": r.requests,
                    "statements_per_request": if r.requests == 0 { 0.0 } else { r.statements as f64 / r.requests as f64 },
                    "stages": stages,
                })
            })
            .collect();
        serde_json::json!({ "unit": "µs", "routes": list })
    }

    /// The report as a table: one line per route and percentile, milliseconds.
    pub fn text(&self) -> String {
        let routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        let _ = write!(out, "{:<44} {:>7} {:>5}", "route (ms)", "reqs", "pct");
        for c in COLUMNS {
            let _ = write!(out, " {c:>9}");
        }
        out.push('\n');
        for (route, r) in routes.iter() {
            for (p, q) in PERCENTILES {
                let _ = write!(out, "{route:<44} {:>7} {p:>5}", r.requests);
                for h in &r.columns {
                    let _ = write!(out, " {:>9.2}", h.value_at_percentile(q) as f64 / 1000.0);
                }
                out.push('\n');
            }
        }
        out
    }
}

/// The layer: runs the request in a stage scope and records it when hyper takes the body.
pub(crate) async fn layer(
    State(recorder): State<Arc<Recorder>>,
    req: Request,
    next: Next,
) -> Response {
    let route = match req.extensions().get::<MatchedPath>() {
        Some(p) if p.as_str() == PATH => return next.run(req).await,
        Some(p) => format!("{} {}", req.method(), p.as_str()),
        None => format!("{} (no route)", req.method()),
    };
    let start = Instant::now();
    let (resp, stages) = stage::scope(next.run(req)).await;
    let answered = Instant::now();
    resp.map(|inner| {
        Body::new(TimedBody {
            inner,
            done: Some(Done {
                recorder,
                route,
                stages,
                start,
                answered,
            }),
        })
    })
}

#[derive(Debug)]
struct Done {
    recorder: Arc<Recorder>,
    route: String,
    stages: Stages,
    start: Instant,
    answered: Instant,
}

/// The response body; records the request when it ends or is dropped.
#[derive(Debug)]
struct TimedBody {
    inner: Body,
    done: Option<Done>,
}

impl TimedBody {
    fn finish(&mut self) {
        if let Some(d) = self.done.take() {
            let now = Instant::now();
            d.recorder
                .record(&d.route, &d.stages, now - d.answered, now - d.start);
        }
    }
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.finish();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for TimedBody {
    fn drop(&mut self) {
        self.finish();
    }
}

fn check_access(principal: &Principal) -> Result<(), ApiError> {
    principal.require(Role::Admin)?;
    if !principal.source.is_some_and(|ip| ip.is_loopback()) {
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            detail: "the stage timing report is served to loopback clients only".to_owned(),
        });
    }
    Ok(())
}

/// `GET /debug/stage-timing[?format=text]`: the report.
pub(crate) async fn report(
    State(recorder): State<Arc<Recorder>>,
    principal: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    check_access(&principal)?;
    let mut p = crate::params::Params::parse(raw.as_deref())?;
    let format = p.one("format")?;
    p.finish()?;
    match format.as_deref() {
        None | Some("json") => Ok(crate::json(&recorder.json())),
        Some("text") => Ok((
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            recorder.text(),
        )
            .into_response()),
        Some(_) => Err(crate::error::bad_request("format", "use json or text")),
    }
}

/// `DELETE /debug/stage-timing`: clears the histograms (204).
pub(crate) async fn reset(
    State(recorder): State<Arc<Recorder>>,
    principal: Principal,
) -> Result<StatusCode, ApiError> {
    check_access(&principal)?;
    recorder.reset();
    Ok(StatusCode::NO_CONTENT)
}
