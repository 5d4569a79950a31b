//! The rows of an export, read page by page: a stack of jobs, each reading one keyset-paged
//! list with the API's store functions (the history of a block, the hosts of a certificate, a
//! field search, the tagged targets). A list of certificates or targets pushes one job per item,
//! so the output keeps the lists' order.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use certhist_model::views::{MatchMode, SearchField, Target};
use certhist_model::Sha1;
use certhist_store::read::{self, IpHistoryKey, MatchPattern, SearchKey, TaggedKey, TimeWindow};
use certhist_store::{Store, StoreError};
use chrono::{DateTime, Utc};
use ipnet::IpNet;

use super::PAGE;

/// One sighting: an address served a certificate on a port between two times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sighting {
    /// The address.
    pub ip: IpAddr,
    /// The port (0 = unknown).
    pub port: u16,
    /// The certificate.
    pub sha1: Sha1,
    /// First sighting.
    pub first_seen: DateTime<Utc>,
    /// Last sighting.
    pub last_seen: DateTime<Utc>,
    /// Number of sightings.
    pub times_seen: i64,
    /// Sources that reported it.
    pub sources: Vec<String>,
    /// Tags on the address (and blocks containing it) and on the certificate, sorted.
    pub tags: Vec<String>,
}

#[derive(Debug)]
pub(crate) enum Job {
    /// The history of a block, optionally only of these certificates.
    Net {
        net: IpNet,
        only: Option<Arc<HashSet<Sha1>>>,
        after: Option<IpHistoryKey>,
    },
    /// The hosts of a certificate.
    Hosts {
        sha1: Sha1,
        cert_tags: Option<Vec<String>>,
        after: Option<(IpAddr, u16)>,
    },
    /// The certificates matching a field.
    Search {
        field: SearchField,
        pattern: MatchPattern,
        after: Option<SearchKey>,
    },
    /// The targets carrying a tag.
    Tagged {
        pattern: MatchPattern,
        after: Option<TaggedKey>,
    },
}

#[derive(Debug)]
pub(crate) struct Rows {
    jobs: Vec<Job>,
    window: TimeWindow,
    /// Certificates whose hosts were pushed (a certificate matches a search once per value).
    searched: HashSet<Sha1>,
    /// Rows written, when the jobs may overlap (tags).
    seen: Option<HashSet<(IpAddr, u16, Sha1)>>,
}

fn full<T>(items: &[T]) -> bool {
    i64::try_from(items.len()).unwrap_or(i64::MAX) >= PAGE
}

fn merged(a: &[String], b: &[String]) -> Vec<String> {
    let mut v: Vec<String> = a.iter().chain(b).cloned().collect();
    v.sort();
    v.dedup();
    v
}

impl Rows {
    pub(crate) fn new(jobs: Vec<Job>, window: TimeWindow, remember: bool) -> Rows {
        Rows {
            jobs,
            window,
            searched: HashSet::new(),
            seen: remember.then(HashSet::new),
        }
    }

    /// The next non-empty batch of rows; `None` at the end.
    pub(crate) async fn next(
        &mut self,
        store: &Store,
    ) -> Result<Option<Vec<Sighting>>, StoreError> {
        loop {
            let Some(job) = self.jobs.pop() else {
                return Ok(None);
            };
            let conn = store.conn().await?;
            let rows = match job {
                Job::Net { net, only, after } => {
                    let items =
                        read::ip_history(&conn, &net, &self.window, after.as_ref(), PAGE).await?;
                    if full(&items) {
                        if let Some(l) = items.last() {
                            self.jobs.push(Job::Net {
                                net,
                                only: only.clone(),
                                after: Some((l.ip, l.port, l.sha1)),
                            });
                        }
                    }
                    items
                        .into_iter()
                        .filter(|i| only.as_ref().is_none_or(|o| o.contains(&i.sha1)))
                        .map(|i| Sighting {
                            ip: i.ip,
                            port: i.port,
                            sha1: i.sha1,
                            first_seen: i.first_seen,
                            last_seen: i.last_seen,
                            times_seen: i.times_seen,
                            sources: i.sources,
                            tags: i.tags,
                        })
                        .collect::<Vec<_>>()
                }
                Job::Hosts {
                    sha1,
                    cert_tags,
                    after,
                } => {
                    let cert_tags = match cert_tags {
                        Some(t) => t,
                        None => read::tags_touching(&conn, &[], &[sha1], &[])
                            .await?
                            .cert(&sha1),
                    };
                    let items = read::cert_hosts(&conn, &sha1, &self.window, after, PAGE).await?;
                    if full(&items) {
                        if let Some(l) = items.last() {
                            self.jobs.push(Job::Hosts {
                                sha1,
                                cert_tags: Some(cert_tags.clone()),
                                after: Some((l.ip, l.port)),
                            });
                        }
                    }
                    items
                        .into_iter()
                        .map(|h| Sighting {
                            ip: h.ip,
                            port: h.port,
                            sha1,
                            first_seen: h.first_seen,
                            last_seen: h.last_seen,
                            times_seen: h.times_seen,
                            sources: h.sources,
                            tags: merged(&h.tags, &cert_tags),
                        })
                        .collect()
                }
                Job::Search {
                    field,
                    pattern,
                    after,
                } => {
                    let items = read::search(&conn, field, &pattern, after.as_ref(), PAGE).await?;
                    let next = if full(&items) {
                        items.last().map(|l| Job::Search {
                            field,
                            pattern: pattern.clone(),
                            after: Some((l.matched.clone(), l.cert.sha1)),
                        })
                    } else {
                        None
                    };
                    self.jobs.extend(next);
                    let mut hosts = Vec::new();
                    for i in items {
                        if self.searched.insert(i.cert.sha1) {
                            hosts.push(Job::Hosts {
                                sha1: i.cert.sha1,
                                cert_tags: Some(i.cert.tags),
                                after: None,
                            });
                        }
                    }
                    self.jobs.extend(hosts.into_iter().rev());
                    continue;
                }
                Job::Tagged { pattern, after } => {
                    let items = read::tagged(&conn, &pattern, after.as_ref(), PAGE).await?;
                    let next = if full(&items) {
                        items.last().map(|l| Job::Tagged {
                            pattern: pattern.clone(),
                            after: Some((l.tag.tag.clone(), l.tag.kind, l.tag.value.clone())),
                        })
                    } else {
                        None
                    };
                    self.jobs.extend(next);
                    let mut jobs = Vec::new();
                    for i in items {
                        let Ok(target) = Target::parse(i.tag.kind.as_str(), &i.tag.value) else {
                            continue;
                        };
                        jobs.push(match target {
                            Target::Ip(ip) => Job::Net {
                                net: IpNet::from(ip),
                                only: None,
                                after: None,
                            },
                            Target::Cidr(net) => Job::Net {
                                net,
                                only: None,
                                after: None,
                            },
                            Target::Certificate(sha1) => Job::Hosts {
                                sha1,
                                cert_tags: None,
                                after: None,
                            },
                            Target::Name(name) => Job::Search {
                                field: SearchField::Name,
                                pattern: MatchPattern::with_mode(MatchMode::Exact, &name)?,
                                after: None,
                            },
                        });
                    }
                    self.jobs.extend(jobs.into_iter().rev());
                    continue;
                }
            };
            let rows = match self.seen.as_mut() {
                Some(seen) => rows
                    .into_iter()
                    .filter(|r| seen.insert((r.ip, r.port, r.sha1)))
                    .collect(),
                None => rows,
            };
            if !rows.is_empty() {
                return Ok(Some(rows));
            }
        }
    }
}
