//! The view layer: the one JSON contract. Every output — CLI `--json`, `/api/v1`, the web UI,
//! exports — serialises these types (serde, with an OpenAPI schema from utoipa), never database
//! rows or a second copy of them. The store's read functions return them.
//!
//! Conventions: hashes are lower-case hex, serials upper-case hex without separators, times RFC
//! 3339 UTC, addresses in their canonical text form, closed sets of values are enums serialised
//! in lower case. Lists are [`Page`]s in the API and one object per line (NDJSON) on the command
//! line; the items are the same.

mod accounts;
mod certificate;
pub mod cryptnet;
mod export;
mod graph;
mod history;
mod search;
mod stats;
mod tags;
mod upload;

pub use accounts::{ApiKeyView, AuditEntryView, Role, SessionView, UserView};
pub use certificate::{
    CacheEntry, CacheEntryKind, CertSummary, CertificateRecord, Commonness, CtEntry, CtEntryType,
    OcspStatus,
};
pub use export::{CofRow, ExportFormat};
pub use graph::{
    CertPeriod, ExpandGraph, GraphEdge, GraphNode, IpPeriod, NodeKind, OverlapCertItem,
    OverlapIpItem, Period, Pruned,
};
pub use history::{
    CertStubRecord, ClientContactItem, HostItem, IpHistoryItem, IpHistoryPage, StubSightingItem,
};
pub use search::{MatchMode, SearchField, SearchItem};
pub use stats::{Counts, Health, Stats};
pub use tags::{
    parse_note_body, parse_tag, Note, Tag, TagInputError, TaggedItem, Target, TargetKind,
    TargetTags, MAX_NOTE_CHARS, MAX_TAG_CHARS,
};
pub use upload::{CryptnetUpload, UploadProblem, UploadSummary, UPLOAD_PROBLEMS_LISTED};

use serde::Serialize;
use utoipa::ToSchema;

/// A page of a list: `next_cursor` is `null` on the last page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` when this is the last page.
    pub next_cursor: Option<String>,
}
