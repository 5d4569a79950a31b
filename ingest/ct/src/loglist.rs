//! The v3 log list JSON (as published for Chrome/Apple): `operators[].logs[]` (RFC 6962) and
//! `operators[].tiled_logs[]` (static-ct-api), each with `log_id`, `key`, `description`, and
//! `url` or `submission_url`/`monitoring_url`. A bare log entry or an array of entries is accepted.

use serde::Deserialize;

use crate::client::LogKind;
use crate::CtError;

/// One log of a log list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedLog {
    /// `description`.
    pub description: String,
    /// Base64 log ID.
    pub log_id: Option<String>,
    /// Base64 DER SPKI.
    pub key: Option<String>,
    /// The URL to read from (`url` or `monitoring_url`).
    pub url: String,
    /// The API.
    pub kind: LogKind,
}

#[derive(Deserialize)]
struct RawLog {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    log_id: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    monitoring_url: Option<String>,
    #[serde(default)]
    log_spec: Option<String>,
}

#[derive(Deserialize)]
struct RawOperator {
    #[serde(default)]
    logs: Vec<RawLog>,
    #[serde(default)]
    tiled_logs: Vec<RawLog>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawList {
    Full { operators: Vec<RawOperator> },
    Many(Vec<RawLog>),
    One(Box<RawLog>),
}

fn convert(l: RawLog, tiled: bool) -> Option<ListedLog> {
    let is_static =
        tiled || l.monitoring_url.is_some() || l.log_spec.as_deref() == Some("static-ct-api");
    let url = if is_static {
        l.monitoring_url.or(l.url)
    } else {
        l.url.or(l.monitoring_url)
    }?;
    Some(ListedLog {
        description: l.description.unwrap_or_default(),
        log_id: l.log_id,
        key: l.key,
        url,
        kind: if is_static {
            LogKind::Static
        } else {
            LogKind::Rfc6962
        },
    })
}

/// Parses a log list.
pub fn parse(json: &[u8]) -> Result<Vec<ListedLog>, CtError> {
    let raw: RawList =
        serde_json::from_slice(json).map_err(|e| CtError::Usage(format!("bad log list: {e}")))?;
    Ok(match raw {
        RawList::Full { operators } => operators
            .into_iter()
            .flat_map(|o| {
                o.logs
                    .into_iter()
                    .filter_map(|l| convert(l, false))
                    .chain(o.tiled_logs.into_iter().filter_map(|l| convert(l, true)))
                    .collect::<Vec<_>>()
            })
            .collect(),
        RawList::Many(v) => v.into_iter().filter_map(|l| convert(l, false)).collect(),
        RawList::One(l) => convert(*l, false).into_iter().collect(),
    })
}

/// Selects logs by name: a case-insensitive substring of the description or URL, or the log ID.
pub fn select<'a>(logs: &'a [ListedLog], names: &[String]) -> Result<Vec<&'a ListedLog>, CtError> {
    let mut out = Vec::new();
    for n in names {
        let n_l = n.to_lowercase();
        let hits: Vec<&ListedLog> = logs
            .iter()
            .filter(|l| {
                l.log_id.as_deref() == Some(n.as_str())
                    || l.description.to_lowercase().contains(&n_l)
                    || l.url.to_lowercase().contains(&n_l)
            })
            .collect();
        if hits.is_empty() {
            return Err(CtError::Usage(format!("no log in the list matches {n:?}")));
        }
        for h in hits {
            // A log named twice (by description and by URL, say) is ingested once.
            if !out.iter().any(|o: &&ListedLog| std::ptr::eq(*o, h)) {
                out.push(h);
            }
        }
    }
    Ok(out)
}
