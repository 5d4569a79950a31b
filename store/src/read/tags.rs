//! Tags and notes (issue 12): the tags and notes of a target, the tags touching a page of list
//! rows (one statement per page, not one per row), and the targets carrying a tag.
//!
//! Addresses inherit the tags of the blocks containing them (`ip <<= net`): a row about
//! 10.0.0.7 shows the tags of 10.0.0.7 and of 10.0.0.0/24.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use certhist_model::views::{CertSummary, Note, Tag, TaggedItem, Target, TargetKind, TargetTags};
use certhist_model::Sha1;
use ipnet::IpNet;
use postgres_types::Type;
use tokio_postgres::Row;

use super::search::MatchPattern;
use super::{check_limit, fixed, summary_from};
use crate::{Conn, StoreError};

const TAGS_TOUCHING: &str = include_str!("tags_touching.sql");
pub(crate) const TAGGED: &str = include_str!("tagged.sql");

/// The target of a `tags` or `notes` row as text: the address, `network/prefix`, the SHA-1 in
/// hex, or the name.
pub(crate) const VALUE_SQL: &str = "CASE t.kind WHEN 'ip' THEN host(t.net) WHEN 'cidr' THEN text(t.net) WHEN 'certificate' THEN encode(t.sha1, 'hex') ELSE t.name END";

/// The columns [`tag_from`] reads, from a `tags t` row.
pub(crate) fn tag_columns() -> String {
    format!("t.tag, t.kind, {VALUE_SQL}, t.author, t.created_at")
}

/// The columns [`note_from`] reads, from a `notes t` row.
pub(crate) fn note_columns() -> String {
    format!("t.id, t.kind, {VALUE_SQL}, t.body, t.author, t.created_at")
}

fn kind_from(text: &str) -> Result<TargetKind, StoreError> {
    TargetKind::from_name(text)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown tag target kind {text:?}")))
}

/// Reads a [`Tag`] from the columns of [`tag_columns`] starting at `at`.
pub(crate) fn tag_from(r: &Row, at: usize) -> Result<Tag, StoreError> {
    Ok(Tag {
        tag: r.get(at),
        kind: kind_from(r.get(at + 1))?,
        value: r.get(at + 2),
        author: r.get(at + 3),
        created_at: r.get(at + 4),
    })
}

/// Reads a [`Note`] from the columns of [`note_columns`] starting at `at`.
pub(crate) fn note_from(r: &Row, at: usize) -> Result<Note, StoreError> {
    Ok(Note {
        id: r.get(at),
        kind: kind_from(r.get(at + 1))?,
        value: r.get(at + 2),
        body: r.get(at + 3),
        author: r.get(at + 4),
        created_at: r.get(at + 5),
    })
}

/// The condition selecting the rows of `tags t` / `notes t` on `target` or, for an address or
/// block, on it and every block containing it; with its one parameter (`$1`).
fn target_condition(
    target: &Target,
) -> (&'static str, Box<dyn postgres_types::ToSql + Sync + Send>) {
    match target {
        Target::Ip(ip) => ("t.net >>= $1::text::inet", Box::new(ip.to_string())),
        Target::Cidr(net) => ("t.net >>= $1::text::inet", Box::new(net.to_string())),
        Target::Certificate(sha1) => ("t.sha1 = $1", Box::new(sha1.to_vec())),
        Target::Name(name) => ("t.name = $1", Box::new(name.clone())),
    }
}

/// Tags of a target (for an address or block, with those of the blocks containing it), by tag
/// then target.
pub async fn tags_of(conn: &Conn, target: &Target) -> Result<Vec<Tag>, StoreError> {
    let (cond, value) = target_condition(target);
    let sql = format!(
        "SELECT {} FROM tags t WHERE {cond} ORDER BY t.tag, t.kind, 3",
        tag_columns()
    );
    let rows = conn.client().query(&sql, &[value.as_ref()]).await?;
    rows.iter().map(|r| tag_from(r, 0)).collect()
}

/// Notes of a target (for an address or block, with those of the blocks containing it), oldest
/// first.
pub async fn notes_of(conn: &Conn, target: &Target) -> Result<Vec<Note>, StoreError> {
    let (cond, value) = target_condition(target);
    let sql = format!(
        "SELECT {} FROM notes t WHERE {cond} ORDER BY t.created_at, t.id",
        note_columns()
    );
    let rows = conn.client().query(&sql, &[value.as_ref()]).await?;
    rows.iter().map(|r| note_from(r, 0)).collect()
}

/// Tags and notes of a target.
pub async fn target_tags(conn: &Conn, target: &Target) -> Result<TargetTags, StoreError> {
    Ok(TargetTags {
        kind: target.kind(),
        value: target.value(),
        tags: tags_of(conn, target).await?,
        notes: notes_of(conn, target).await?,
    })
}

/// Tags on a certificate or on any of `names` (its names), by tag then target: what a full
/// certificate record shows.
pub async fn cert_tag_details(
    conn: &Conn,
    sha1: &Sha1,
    names: &[String],
) -> Result<Vec<Tag>, StoreError> {
    let sql = format!(
        "SELECT {} FROM tags t WHERE t.sha1 = $1 OR t.name = ANY($2::text[]) ORDER BY t.tag, t.kind, 3",
        tag_columns()
    );
    let rows = conn.client().query(&sql, &[&sha1.to_vec(), &names]).await?;
    rows.iter().map(|r| tag_from(r, 0)).collect()
}

/// The tag names touching a page of rows, from [`tags_touching`]: look up an address (its own
/// tags and those of the blocks containing it), a certificate or a name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagIndex {
    ips: HashMap<IpAddr, BTreeSet<String>>,
    certs: HashMap<Sha1, BTreeSet<String>>,
    names: HashMap<String, BTreeSet<String>>,
}

impl TagIndex {
    /// Tags of an address and of the blocks containing it, sorted.
    pub fn ip(&self, ip: &IpAddr) -> Vec<String> {
        self.ips
            .get(ip)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Tags of a certificate, sorted.
    pub fn cert(&self, sha1: &Sha1) -> Vec<String> {
        self.certs
            .get(sha1)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Tags of a name, sorted.
    pub fn name(&self, name: &str) -> Vec<String> {
        self.names
            .get(name)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Tags of an address and of a certificate together (a sighting), sorted, each once.
    pub fn ip_and_cert(&self, ip: &IpAddr, sha1: &Sha1) -> Vec<String> {
        let mut all: BTreeSet<String> = self.ips.get(ip).cloned().unwrap_or_default();
        if let Some(c) = self.certs.get(sha1) {
            all.extend(c.iter().cloned());
        }
        all.into_iter().collect()
    }

    /// True when nothing touching the page is tagged.
    pub fn is_empty(&self) -> bool {
        self.ips.is_empty() && self.certs.is_empty() && self.names.is_empty()
    }
}

/// The tags touching a page of rows: on the addresses `ips` (and on blocks containing them,
/// `ip <<= net`), on the certificates `sha1s` and on the names `names`, in one statement (none
/// when all three are empty). Duplicates in the inputs are harmless.
///
/// Blocks are found as those overlapping the smallest block covering the page's addresses (one
/// per address family) and matched to each address here: two index scans per page instead of
/// one index probe per address (a 1,000-row page of one /16 went from ~7 ms of probes to the
/// figures in docs/API.md § Tags and notes).
pub async fn tags_touching(
    conn: &Conn,
    ips: &[IpAddr],
    sha1s: &[Sha1],
    names: &[String],
) -> Result<TagIndex, StoreError> {
    let mut index = TagIndex::default();
    if ips.is_empty() && sha1s.is_empty() && names.is_empty() {
        return Ok(index);
    }
    let ips: BTreeSet<IpAddr> = ips.iter().copied().collect();
    let (cover_v4, cover_v6) = covering_blocks(&ips);
    let ips: Vec<IpAddr> = ips.into_iter().collect();
    let keys: BTreeSet<Vec<u8>> = sha1s.iter().map(|s| s.to_vec()).collect();
    let keys: Vec<Vec<u8>> = keys.into_iter().collect();
    let names: BTreeSet<&String> = names.iter().collect();
    let names: Vec<&String> = names.into_iter().collect();
    let covers = (
        cover_v4.map(|n| n.to_string()),
        cover_v6.map(|n| n.to_string()),
    );
    // query_typed: one round trip (no separate prepare), like the reads whose pages it follows.
    let rows = crate::stage::timed(
        crate::stage::Stage::Query,
        conn.client().query_typed(
            TAGS_TOUCHING,
            &[
                (&ips, Type::INET_ARRAY),
                (&keys, Type::BYTEA_ARRAY),
                (&names, Type::TEXT_ARRAY),
                (&covers.0, Type::TEXT),
                (&covers.1, Type::TEXT),
            ],
        ),
    )
    .await?;
    let mut blocks: Vec<(IpNet, String)> = Vec::new();
    for r in &rows {
        let tag: String = r.get(4);
        match r.get::<_, i16>(0) {
            0 | 1 => {
                let text: String = r.get(1);
                let net: IpNet = text.parse().map_err(|_| {
                    StoreError::Corrupt(format!("tag network {text:?} does not parse"))
                })?;
                if r.get::<_, i16>(0) == 0 {
                    index.ips.entry(net.addr()).or_default().insert(tag);
                } else {
                    blocks.push((net, tag));
                }
            }
            2 => {
                let sha1: Sha1 = fixed(r.get::<_, Vec<u8>>(2))?;
                index.certs.entry(sha1).or_default().insert(tag);
            }
            _ => {
                index.names.entry(r.get(3)).or_default().insert(tag);
            }
        }
    }
    if !blocks.is_empty() {
        for ip in &ips {
            for (net, tag) in &blocks {
                if net.contains(ip) {
                    index.ips.entry(*ip).or_default().insert(tag.clone());
                }
            }
        }
    }
    Ok(index)
}

/// The smallest IPv4 block and the smallest IPv6 block covering the addresses (sorted), if any
/// of that family.
fn covering_blocks(ips: &BTreeSet<IpAddr>) -> (Option<IpNet>, Option<IpNet>) {
    let cover = |lo: IpAddr, hi: IpAddr| -> Option<IpNet> {
        let (bits, prefix) = match (lo, hi) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (32, (u32::from(a) ^ u32::from(b)).leading_zeros()),
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                (128, (u128::from(a) ^ u128::from(b)).leading_zeros())
            }
            _ => return None,
        };
        let prefix = u8::try_from(prefix.min(bits)).ok()?;
        IpNet::new(lo, prefix).ok().map(|n| n.trunc())
    };
    let span = |is_family: fn(&IpAddr) -> bool| {
        let mut family = ips.iter().filter(|ip| is_family(ip));
        let first = family.next()?;
        let last = family.next_back().unwrap_or(first);
        cover(*first, *last)
    };
    (span(IpAddr::is_ipv4), span(IpAddr::is_ipv6))
}

/// Fills the `tags` of certificate summaries from one [`tags_touching`] lookup.
pub(crate) async fn fill_summaries<'a>(
    conn: &Conn,
    summaries: impl IntoIterator<Item = &'a mut CertSummary>,
) -> Result<(), StoreError> {
    let mut summaries: Vec<&mut CertSummary> = summaries.into_iter().collect();
    if summaries.is_empty() {
        return Ok(());
    }
    let sha1s: Vec<Sha1> = summaries.iter().map(|s| s.sha1).collect();
    let index = tags_touching(conn, &[], &sha1s, &[]).await?;
    for s in &mut summaries {
        s.tags = index.cert(&s.sha1);
    }
    Ok(())
}

/// Paging key of [`tagged`]: (tag, kind, value) of the last item.
pub type TaggedKey = (String, TargetKind, String);

/// Tagged targets whose tag matches `pattern` (exact, prefix, suffix, contains or a regular
/// expression, case-insensitive), in (tag, kind, value) order after `after`; certificate targets
/// carry their summary (with its tags) when the DER is stored.
pub async fn tagged(
    conn: &Conn,
    pattern: &MatchPattern,
    after: Option<&TaggedKey>,
    limit: i64,
) -> Result<Vec<TaggedItem>, StoreError> {
    let limit = check_limit(limit)?;
    let (cond, value) = pattern.condition("t.tag", 1);
    let sql = TAGGED
        .replace("{value}", VALUE_SQL)
        .replace("{cond}", &cond);
    let (after_tag, after_kind, after_value) = match after {
        Some((t, k, v)) => (Some(t.clone()), Some(k.as_str()), Some(v.clone())),
        None => (None, None, None),
    };
    let rows = conn
        .client()
        .query(
            &sql,
            &[&value, &after_tag, &after_kind, &after_value, &limit],
        )
        .await?;
    let mut items = rows
        .iter()
        .map(|r| {
            Ok(TaggedItem {
                tag: tag_from(r, 0)?,
                cert: if r.get::<_, bool>(5) {
                    Some(summary_from(r, 6)?)
                } else {
                    None
                },
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    fill_summaries(conn, items.iter_mut().filter_map(|i| i.cert.as_mut())).await?;
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covering_blocks_per_family() {
        let ips: BTreeSet<IpAddr> = ["10.0.1.7", "10.0.3.9", "2001:db8::1", "2001:db8::ff"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let (v4, v6) = covering_blocks(&ips);
        assert_eq!(v4, Some("10.0.0.0/22".parse().unwrap()));
        assert_eq!(v6, Some("2001:db8::/120".parse().unwrap()));
        let one: BTreeSet<IpAddr> = ["192.0.2.1".parse().unwrap()].into();
        assert_eq!(
            covering_blocks(&one),
            (Some("192.0.2.1/32".parse().unwrap()), None)
        );
        assert_eq!(covering_blocks(&BTreeSet::new()), (None, None));
    }
}
