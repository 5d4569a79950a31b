//! The STIX 2.1 bundle: an `identity` for certhist, then for each sighting the `ipv4-addr` /
//! `ipv6-addr` (when the address changes), the `x509-certificate` (the first time the
//! certificate appears) and one `observed-data` (first/last observed, count, the address and the
//! certificate in `object_refs`, tags as `labels`), and a `relationship` `related-to` from the
//! certificate to the address with the sighting's period.

use std::collections::HashMap;
use std::net::IpAddr;

use serde_json::{json, Map, Value};

use super::ids::{derived_uuid, json_str, sco_uuid, stix_time, time};
use super::{CertInfo, Sighting};

/// `created` / `modified` of the identity (fixed: it never changes).
const IDENTITY_CREATED: &str = "2026-01-01T00:00:00.000Z";

/// The largest `number_observed` STIX allows.
const MAX_OBSERVED: i64 = 999_999_999;

pub(crate) struct Writer {
    bundle_id: String,
    identity_id: String,
    last_ip: Option<IpAddr>,
    /// The id of each certificate written (it depends on the serial).
    cert_ids: HashMap<[u8; 20], String>,
}

/// The id of the address SCO: `{"value": …}` canonical.
pub(crate) fn addr_id(ip: &IpAddr) -> String {
    let kind = if ip.is_ipv4() {
        "ipv4-addr"
    } else {
        "ipv6-addr"
    };
    format!(
        "{kind}--{}",
        sco_uuid(&format!("{{\"value\":{}}}", json_str(&ip.to_string())))
    )
}

/// The serial as certhist writes it (upper-case hex of the magnitude).
fn serial_of(info: Option<&CertInfo>) -> Option<String> {
    info.and_then(|i| i.details.as_ref())
        .and_then(|d| d.summary.serial.as_ref())
        .map(|s| s.to_hex())
}

/// The id of the certificate SCO: `hashes` (stix2 keeps one, SHA-1 before SHA-256) and
/// `serial_number`, canonical (keys sorted, no spaces).
pub(crate) fn cert_id(sha1: &[u8; 20], serial: Option<&str>) -> String {
    let hashes = format!(
        "{{\"SHA-1\":{}}}",
        json_str(&certhist_model::hex_lower(sha1))
    );
    let name = match serial {
        Some(s) => format!("{{\"hashes\":{hashes},\"serial_number\":{}}}", json_str(s)),
        None => format!("{{\"hashes\":{hashes}}}"),
    };
    format!("x509-certificate--{}", sco_uuid(&name))
}

impl Writer {
    pub(crate) fn new(label: &str) -> Writer {
        Writer {
            bundle_id: format!(
                "bundle--{}",
                derived_uuid(&[b"certhist stix bundle", label.as_bytes()])
            ),
            identity_id: format!("identity--{}", derived_uuid(&[b"certhist identity"])),
            last_ip: None,
            cert_ids: HashMap::new(),
        }
    }

    fn object(out: &mut Vec<u8>, v: &Value) {
        out.push(b',');
        let _ = serde_json::to_writer(&mut *out, v);
    }

    pub(crate) fn begin(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(
            format!(
                "{{\"type\":\"bundle\",\"id\":\"{}\",\"objects\":[",
                self.bundle_id
            )
            .as_bytes(),
        );
        let identity = json!({
            "type": "identity",
            "spec_version": "2.1",
            "id": self.identity_id,
            "created": IDENTITY_CREATED,
            "modified": IDENTITY_CREATED,
            "name": "certhist",
            "description": "Passive certificate-history database (export of its sightings)",
            "identity_class": "system",
        });
        let _ = serde_json::to_writer(&mut *out, &identity);
    }

    /// The objects of one sighting; `info` is given the first time its certificate appears
    /// (the certificate is written then).
    pub(crate) fn row(&mut self, s: &Sighting, info: Option<&CertInfo>, out: &mut Vec<u8>) {
        let addr = addr_id(&s.ip);
        if self.last_ip != Some(s.ip) {
            let kind = if s.ip.is_ipv4() {
                "ipv4-addr"
            } else {
                "ipv6-addr"
            };
            Self::object(
                out,
                &json!({"type": kind, "spec_version": "2.1", "id": addr, "value": s.ip.to_string()}),
            );
            self.last_ip = Some(s.ip);
        }
        if let Some(info) = info {
            let id = cert_id(&s.sha1, serial_of(Some(info)).as_deref());
            Self::object(out, &certificate(&s.sha1, &id, info));
            self.cert_ids.insert(s.sha1, id);
        }
        let cert = self
            .cert_ids
            .get(&s.sha1)
            .cloned()
            .unwrap_or_else(|| cert_id(&s.sha1, None));
        let count = s.times_seen.clamp(1, MAX_OBSERVED);
        let key = format!(
            "{}|{}|{}|{}|{}|{}",
            s.ip,
            s.port,
            certhist_model::hex_lower(s.sha1),
            time(&s.first_seen),
            time(&s.last_seen),
            s.times_seen
        );
        let created = stix_time(&s.last_seen);
        let mut od = json!({
            "type": "observed-data",
            "spec_version": "2.1",
            "id": format!("observed-data--{}", derived_uuid(&[b"observed-data", key.as_bytes()])),
            "created_by_ref": self.identity_id,
            "created": created,
            "modified": created,
            "first_observed": time(&s.first_seen),
            "last_observed": time(&s.last_seen),
            "number_observed": count,
            "object_refs": [addr, cert],
        });
        if !s.tags.is_empty() {
            if let Some(m) = od.as_object_mut() {
                m.insert("labels".into(), json!(s.tags));
            }
        }
        Self::object(out, &od);
        let mut rel = Map::new();
        rel.insert("type".into(), json!("relationship"));
        rel.insert("spec_version".into(), json!("2.1"));
        rel.insert(
            "id".into(),
            json!(format!(
                "relationship--{}",
                derived_uuid(&[b"relationship", key.as_bytes()])
            )),
        );
        rel.insert("created_by_ref".into(), json!(self.identity_id));
        rel.insert("created".into(), json!(created));
        rel.insert("modified".into(), json!(created));
        rel.insert("relationship_type".into(), json!("related-to"));
        rel.insert(
            "description".into(),
            json!(format!(
                "served on port {} (passive TLS sighting, {} times)",
                s.port, s.times_seen
            )),
        );
        rel.insert("source_ref".into(), json!(cert));
        rel.insert("target_ref".into(), json!(addr));
        rel.insert("start_time".into(), json!(time(&s.first_seen)));
        // STIX: stop_time must be later than start_time.
        if s.last_seen > s.first_seen {
            rel.insert("stop_time".into(), json!(time(&s.last_seen)));
        }
        Self::object(out, &Value::Object(rel));
    }

    pub(crate) fn end(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"]}");
    }
}

/// The `x509-certificate` SCO.
fn certificate(sha1: &[u8; 20], id: &str, info: &CertInfo) -> Value {
    let d = info.details.as_ref();
    let serial = d
        .and_then(|d| d.summary.serial.as_ref())
        .map(|s| s.to_hex());
    let mut m = Map::new();
    m.insert("type".into(), json!("x509-certificate"));
    m.insert("spec_version".into(), json!("2.1"));
    m.insert("id".into(), json!(id));
    let mut hashes = Map::new();
    hashes.insert("SHA-1".into(), json!(certhist_model::hex_lower(sha1)));
    if let Some(d) = d {
        hashes.insert(
            "SHA-256".into(),
            json!(certhist_model::hex_lower(d.summary.sha256)),
        );
    }
    m.insert("hashes".into(), Value::Object(hashes));
    if let Some(s) = serial {
        m.insert("serial_number".into(), json!(s));
    }
    if let Some(d) = d {
        if let Some(v) = &d.issuer.dn {
            m.insert("issuer".into(), json!(v));
        }
        if let Some(v) = &d.subject.dn {
            m.insert("subject".into(), json!(v));
        }
        if let Some(t) = &d.summary.not_before {
            m.insert("validity_not_before".into(), json!(time(t)));
        }
        if let Some(t) = &d.summary.not_after {
            m.insert("validity_not_after".into(), json!(time(t)));
        }
        if let Some(a) = &d.key_algorithm {
            m.insert("subject_public_key_algorithm".into(), json!(a));
        }
    }
    Value::Object(m)
}
