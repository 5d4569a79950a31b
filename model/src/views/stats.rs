//! Database statistics and health.

use serde::Serialize;
use utoipa::ToSchema;

/// Table sizes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Stats {
    /// True when some figure is the planner's estimate (large tables); false when every figure
    /// is an exact count.
    pub estimated: bool,
    /// Certificates stored.
    pub certificates: i64,
    /// Certificate names.
    pub names: i64,
    /// Observations (ip, port, sha1).
    pub observations: i64,
    /// Distinct addresses observed.
    pub distinct_ips: i64,
    /// CT entries.
    pub ct_entries: i64,
    /// Cache entries.
    pub cache_entries: i64,
}

/// Health of the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// Exact row counts of a (local) database, as `certhist db status` shows them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Counts {
    /// Certificates stored.
    pub certificates: i64,
    /// Of which stored with a parse error.
    pub unparsable: i64,
    /// Names.
    pub names: i64,
    /// Observations (ip, port, sha1).
    pub observations: i64,
    /// Distinct IPs observed.
    pub distinct_ips: i64,
    /// CT entries.
    pub ct_entries: i64,
    /// Cache entries.
    pub cache_entries: i64,
}
