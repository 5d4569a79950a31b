//! The MISP event: one `ip-dst` attribute per sighting (first/last seen, the port, count and
//! sources in the comment, tags as MISP tags), then one `x509` object per certificate (template
//! v14: fingerprints, serial, subject / issuer and their parts, validity, key, DNS names, PEM and
//! base64 DER; `first_seen` / `last_seen` spanning its sightings) with a `seen-by` reference to
//! each of its sightings' attributes.

use std::collections::HashMap;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::ids::{derived_bytes, derived_uuid, json_str, time, uuid_text};
use super::{CertInfo, Sighting};
use certhist_model::Sha1;

/// uuid of the x509 object template (misp-objects `objects/x509/definition.json`).
const X509_TEMPLATE_UUID: &str = "d1ab756a-26b5-4349-9f43-765630f0911c";
/// Its version the fields follow.
const X509_TEMPLATE_VERSION: &str = "14";

/// The sightings of one certificate: their attributes' uuids and the span.
#[derive(Debug)]
pub(crate) struct Refs {
    /// The attributes' uuids, when kept (see [`Writer::new`]).
    pub(crate) attrs: Vec<[u8; 16]>,
    /// How many sightings.
    pub(crate) n: usize,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
}

pub(crate) struct Writer {
    label: String,
    /// Keep each row's attribute uuid for the references; false when the caller re-reads each
    /// certificate's hosts to write them (a reverse search or a field search).
    keep_refs: bool,
    event_uuid: String,
    first_attribute: bool,
    first_object: bool,
    refs: HashMap<Sha1, Refs>,
    /// Certificates in order of first appearance.
    order: Vec<Sha1>,
    latest: Option<DateTime<Utc>>,
}

/// The uuid of the `ip-dst` attribute of a sighting.
pub(crate) fn attribute_uuid(ip: &std::net::IpAddr, port: u16, sha1: &Sha1) -> [u8; 16] {
    derived_bytes(&[
        b"misp ip-dst",
        ip.to_string().as_bytes(),
        &port.to_be_bytes(),
        sha1,
    ])
}

/// The uuid of the `x509` object of a certificate.
pub(crate) fn object_uuid(sha1: &Sha1) -> String {
    derived_uuid(&[b"misp x509", sha1])
}

/// PEM of a DER certificate (64-column base64).
pub(crate) fn pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

impl Writer {
    pub(crate) fn new(label: &str, keep_refs: bool) -> Writer {
        Writer {
            label: label.to_owned(),
            keep_refs,
            event_uuid: derived_uuid(&[b"misp event", label.as_bytes()]),
            first_attribute: true,
            first_object: true,
            refs: HashMap::new(),
            order: Vec::new(),
            latest: None,
        }
    }

    pub(crate) fn begin(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(
            format!(
                "{{\"Event\":{{\"uuid\":\"{}\",\"info\":{},\"threat_level_id\":\"4\",\"analysis\":\"2\",\"distribution\":\"0\",\"published\":false,\"Attribute\":[",
                self.event_uuid,
                json_str(&format!("certhist export: {}", self.label))
            )
            .as_bytes(),
        );
    }

    pub(crate) fn row(&mut self, s: &Sighting, out: &mut Vec<u8>) {
        let uuid = attribute_uuid(&s.ip, s.port, &s.sha1);
        let sources = if s.sources.is_empty() {
            String::new()
        } else {
            format!("; sources: {}", s.sources.join(", "))
        };
        let mut a = json!({
            "uuid": uuid_text(&uuid),
            "type": "ip-dst",
            "category": "Network activity",
            "to_ids": false,
            "value": s.ip.to_string(),
            "first_seen": time(&s.first_seen),
            "last_seen": time(&s.last_seen),
            "comment": format!(
                "served certificate SHA-1 {} on port {}; seen {} times{}",
                certhist_model::hex_lower(s.sha1), s.port, s.times_seen, sources
            ),
        });
        if !s.tags.is_empty() {
            if let Some(m) = a.as_object_mut() {
                m.insert(
                    "Tag".into(),
                    Value::Array(s.tags.iter().map(|t| json!({"name": t})).collect()),
                );
            }
        }
        if !self.first_attribute {
            out.push(b',');
        }
        self.first_attribute = false;
        let _ = serde_json::to_writer(&mut *out, &a);
        match self.refs.get_mut(&s.sha1) {
            Some(r) => {
                if self.keep_refs {
                    r.attrs.push(uuid);
                }
                r.n += 1;
                r.first = r.first.min(s.first_seen);
                r.last = r.last.max(s.last_seen);
            }
            None => {
                self.order.push(s.sha1);
                self.refs.insert(
                    s.sha1,
                    Refs {
                        attrs: if self.keep_refs {
                            vec![uuid]
                        } else {
                            Vec::new()
                        },
                        n: 1,
                        first: s.first_seen,
                        last: s.last_seen,
                    },
                );
            }
        }
        self.latest = Some(self.latest.map_or(s.last_seen, |l| l.max(s.last_seen)));
    }

    pub(crate) fn attributes_done(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"],\"Object\":[");
    }

    /// The certificates, in order of first appearance.
    pub(crate) fn certificates(&mut self) -> Vec<Sha1> {
        std::mem::take(&mut self.order)
    }

    pub(crate) fn take_refs(&mut self, sha1: &Sha1) -> Option<Refs> {
        self.refs.remove(sha1)
    }

    /// The object up to its reference list (left open).
    pub(crate) fn object_head(
        &mut self,
        sha1: &Sha1,
        info: Option<&CertInfo>,
        refs: &Refs,
        out: &mut Vec<u8>,
    ) {
        let uuid = object_uuid(sha1);
        let mut attrs: Vec<(&str, &str, String)> = Vec::new();
        attrs.push((
            "x509-fingerprint-sha1",
            "x509-fingerprint-sha1",
            certhist_model::hex_lower(sha1),
        ));
        if let Some(d) = info.and_then(|i| i.details.as_ref()) {
            attrs.push((
                "x509-fingerprint-sha256",
                "x509-fingerprint-sha256",
                certhist_model::hex_lower(d.summary.sha256),
            ));
            if let Some(s) = &d.summary.serial {
                attrs.push(("serial-number", "text", s.to_hex()));
            }
            if let Some(v) = &d.subject.dn {
                attrs.push(("subject", "text", v.clone()));
            }
            if let Some(v) = &d.issuer.dn {
                attrs.push(("issuer", "text", v.clone()));
            }
            for (prefix, dn) in [("subject", &d.subject), ("issuer", &d.issuer)] {
                for (suffix, v) in [
                    ("common-name", &dn.cn),
                    ("organization", &dn.o),
                    ("organizational-unit", &dn.ou),
                    ("country", &dn.c),
                    ("locality", &dn.l),
                    ("state-or-province-name", &dn.st),
                ] {
                    if let Some(v) = v {
                        let rel: &'static str = relation(prefix, suffix);
                        attrs.push((rel, "text", v.clone()));
                    }
                }
            }
            if let Some(t) = &d.summary.not_before {
                attrs.push(("validity-not-before", "datetime", time(t)));
            }
            if let Some(t) = &d.summary.not_after {
                attrs.push(("validity-not-after", "datetime", time(t)));
            }
            if let Some(a) = &d.key_algorithm {
                attrs.push(("pubkey-info-algorithm", "text", a.clone()));
            }
            if let Some(b) = d.key_bits {
                attrs.push(("pubkey-info-size", "text", b.to_string()));
            }
        }
        if let Some(i) = info {
            for n in &i.dns_names {
                attrs.push(("dns_names", "hostname", n.clone()));
            }
            if let Some(der) = &i.der {
                attrs.push(("pem", "text", pem(der)));
                attrs.push((
                    "raw-base64",
                    "text",
                    base64::engine::general_purpose::STANDARD.encode(der),
                ));
            }
        }
        let attributes: Vec<Value> = attrs
            .iter()
            .enumerate()
            .map(|(i, (rel, ty, v))| {
                json!({
                    "uuid": derived_uuid(&[b"misp x509 attribute", sha1, &i.to_be_bytes(), rel.as_bytes(), v.as_bytes()]),
                    "object_relation": rel,
                    "type": ty,
                    "to_ids": false,
                    "value": v,
                })
            })
            .collect();
        let mut m = Map::new();
        m.insert("name".into(), json!("x509"));
        m.insert("meta-category".into(), json!("network"));
        m.insert(
            "description".into(),
            json!("x509 object describing a X.509 certificate"),
        );
        m.insert("template_uuid".into(), json!(X509_TEMPLATE_UUID));
        m.insert("template_version".into(), json!(X509_TEMPLATE_VERSION));
        m.insert("uuid".into(), json!(uuid));
        m.insert("first_seen".into(), json!(time(&refs.first)));
        m.insert("last_seen".into(), json!(time(&refs.last)));
        m.insert(
            "comment".into(),
            json!(format!("seen on {} address:port pairs", refs.n)),
        );
        m.insert("Attribute".into(), Value::Array(attributes));
        let head = serde_json::to_vec(&Value::Object(m)).unwrap_or_default();
        if !self.first_object {
            out.push(b',');
        }
        self.first_object = false;
        // Reopen the object to append the reference list.
        out.extend_from_slice(&head[..head.len().saturating_sub(1)]);
        out.extend_from_slice(b",\"ObjectReference\":[");
    }

    /// One `seen-by` reference of the object of `sha1`.
    pub(crate) fn reference(&self, sha1: &Sha1, attr: &[u8; 16], first: bool, out: &mut Vec<u8>) {
        let object = object_uuid(sha1);
        let r = json!({
            "uuid": derived_uuid(&[b"misp reference", object.as_bytes(), attr]),
            "object_uuid": object,
            "referenced_uuid": uuid_text(attr),
            "relationship_type": "seen-by",
        });
        if !first {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut *out, &r);
    }

    pub(crate) fn object_tail(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"]}");
    }

    pub(crate) fn end(&mut self, out: &mut Vec<u8>) {
        // The event's date: the latest sighting (deterministic; today would differ per run).
        let latest = self.latest.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        out.extend_from_slice(
            format!(
                "],\"date\":\"{}\",\"timestamp\":\"{}\"}}}}",
                latest.format("%Y-%m-%d"),
                latest.timestamp()
            )
            .as_bytes(),
        );
    }
}

/// The template's relation name of a subject / issuer part.
fn relation(prefix: &str, suffix: &str) -> &'static str {
    match (prefix, suffix) {
        ("subject", "common-name") => "subject-common-name",
        ("subject", "organization") => "subject-organization",
        ("subject", "organizational-unit") => "subject-organizational-unit",
        ("subject", "country") => "subject-country",
        ("subject", "locality") => "subject-locality",
        ("subject", "state-or-province-name") => "subject-state-or-province-name",
        ("issuer", "common-name") => "issuer-common-name",
        ("issuer", "organization") => "issuer-organization",
        ("issuer", "organizational-unit") => "issuer-organizational-unit",
        ("issuer", "country") => "issuer-country",
        ("issuer", "locality") => "issuer-locality",
        _ => "issuer-state-or-province-name",
    }
}
