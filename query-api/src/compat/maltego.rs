//! Maltego transforms over the TRX protocol (`POST /compat/maltego/run/{name}`), as a Maltego
//! TDS / iTDS calls a transform server (maltego-trx 1.7.0 `server.py`: the request body is a
//! `MaltegoMessage` with one `MaltegoTransformRequestMessage`; the answer a `MaltegoMessage` with
//! a `MaltegoTransformResponseMessage`, element names as `maltego.py` writes them).
//!
//! Transforms (`name`, lower-case, as maltego-trx derives URL names):
//!
//! | transform | input `Value` | output entities |
//! |---|---|---|
//! | `ip-to-certificates` | an IPv4/IPv6 address, CIDR block, or `first-last` range that is one block (`maltego.Netblock`) | [`CERT_TYPE`], most recently seen first |
//! | `certificate-to-ips` | a certificate SHA-1 (or SHA-256), any case, `:`/`-` allowed | `maltego.IPv4Address` / `maltego.IPv6Address`, most recently seen first |
//! | `certificate-to-names` | same | `maltego.DNSName`, `maltego.EmailAddress`, `maltego.IPv4Address`/`IPv6Address`, `maltego.URL` (subject CN and SANs) |
//! | `name-to-certificates` | a DNS name (exact, case-insensitive; wildcard names literally) | [`CERT_TYPE`], most recently seen first |
//! | `serial-to-certificates` | a serial in hex (colons allowed) or decimal | [`CERT_TYPE`], most recently seen first |
//!
//! The input entity's `Type` is not checked (a TDS only offers a transform on the types it is
//! configured for): the transforms key on `Value`, so `maltego.IPv4Address`, `maltego.Netblock`
//! (CIDR values), `maltego.Hash`, `pt.SSLCertificate`, `maltego.Phrase` … all work.
//!
//! **Limits**: `Limits/@SoftLimit` (the client's slider) caps the entities returned, after
//! ranking by last sighting; `HardLimit` caps it further. Without `Limits`, [`DEFAULT_LIMIT`].
//! When entities are left out an `Inform` UIMessage says how many and how they were ranked.
//!
//! **Errors**: a request the transforms cannot answer (malformed XML, a DTD, a value that is not
//! an address / hash / serial) is answered **200** with a response message carrying a
//! `FatalError` UIMessage, as maltego-trx answers a failing transform (so the Maltego client
//! shows the text). Errors outside a transform (authentication, rate limits, statement timeout,
//! unknown transform) keep their HTTP status, with the same XML body (`super::envelopes`).
//!
//! **Credentials**: a TDS cannot add HTTP headers, so a transform setting
//! (`TransformFields/Field[@Name="certhist.apikey"]`, optionally `certhist.username`) is turned
//! into an `Authorization` header before the authentication layer runs ([`credentials_of`]),
//! when the request has none: the same key check, rate limits and failed-login limits apply.
//!
//! **Safety**: the request is at most [`MAX_REQUEST_BYTES`]; a document with a DTD
//! (`<!DOCTYPE`) is refused, so no entity is ever defined or expanded (only the five predefined
//! entities and character references are read); every value written is escaped by the XML
//! writer and characters XML 1.0 forbids are replaced by `?` (as maltego-trx does).

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use certhist_model::views::Role;
use certhist_model::{NameKind, Serial, Sha1};
use certhist_store::read::{self, CertDetails, MatchPattern, TimeWindow};
use chrono::{DateTime, Utc};
use ipnet::IpNet;
use quick_xml::events::{BytesRef, BytesStart, BytesText, Event};
use quick_xml::{Reader, Writer};

use super::{oneline, parse_hash, rfc3339, PerIp, MAX_ROWS};
use crate::auth::Principal;
use crate::error::{shorten, ApiError};
use crate::AppState;

/// Entity type of a certificate (value: its SHA-1 in lower-case hex). Maltego has no standard
/// certificate entity; this is certhist's own, with the properties listed in docs/API.md.
pub(crate) const CERT_TYPE: &str = "certhist.X509Certificate";

/// The transforms served, in the order they are listed in errors.
pub(crate) const TRANSFORMS: [&str; 5] = [
    "ip-to-certificates",
    "certificate-to-ips",
    "certificate-to-names",
    "name-to-certificates",
    "serial-to-certificates",
];

/// Largest request body read, in bytes (a real request is well under 4 KiB).
pub(crate) const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// How long the credential reader waits for a request body (`super::envelopes`).
pub(crate) const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Entities returned when the request carries no `Limits`.
pub(crate) const DEFAULT_LIMIT: usize = 100;

/// Most entities one answer carries, whatever the limits say.
pub(crate) const MAX_ENTITIES: usize = 10_000;

/// Transform setting carrying an API key (or password, with [`USER_SETTING`]).
pub(crate) const KEY_SETTING: &str = "certhist.apikey";
/// Transform setting carrying the account name.
pub(crate) const USER_SETTING: &str = "certhist.username";

const CONTENT_TYPE: &str = "text/xml; charset=utf-8";

// ---- the request ----

/// What a TRX request says (`MaltegoMsg` of maltego-trx reads the same parts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TrxRequest {
    /// `Entity/@Type` of the first entity.
    pub(crate) entity_type: String,
    /// `Entity/Value`, trimmed.
    pub(crate) value: String,
    /// `Entity/AdditionalFields/Field`: (Name, text).
    pub(crate) properties: Vec<(String, String)>,
    /// `TransformFields/Field`: (Name, text).
    pub(crate) settings: Vec<(String, String)>,
    /// `Limits/@SoftLimit`.
    pub(crate) soft_limit: Option<usize>,
    /// `Limits/@HardLimit`.
    pub(crate) hard_limit: Option<usize>,
}

impl TrxRequest {
    /// Entities to return: the soft limit (else the hard one, else [`DEFAULT_LIMIT`]), never
    /// above the hard limit nor [`MAX_ENTITIES`], at least 1.
    pub(crate) fn limit(&self) -> usize {
        let wanted = self.soft_limit.or(self.hard_limit).unwrap_or(DEFAULT_LIMIT);
        wanted
            .min(self.hard_limit.unwrap_or(usize::MAX))
            .clamp(1, MAX_ENTITIES)
    }

    fn setting(&self, name: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Capture {
    None,
    Value,
    Property,
    Setting,
}

/// The message of a reader error.
fn not_well_formed(e: impl std::fmt::Display) -> String {
    format!("not well-formed XML: {e}")
}

/// Reads a TRX request. Only the first `Entity` counts (as in maltego-trx); elements not listed
/// in [`TrxRequest`] are skipped. Errors name what is wrong.
pub(crate) fn parse_request(xml: &[u8]) -> Result<TrxRequest, String> {
    if xml.len() > MAX_REQUEST_BYTES {
        return Err(format!(
            "the request is larger than {MAX_REQUEST_BYTES} bytes"
        ));
    }
    let mut reader = Reader::from_reader(xml);
    reader.config_mut().check_end_names = true;
    let mut req = TrxRequest::default();
    let mut path: Vec<String> = Vec::new();
    let mut entities_seen = 0usize;
    let mut capture = Capture::None;
    let mut text = String::new();
    let mut field_name = String::new();
    let mut saw_request = false;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let event = reader.read_event_into(&mut buf).map_err(not_well_formed)?;
        match event {
            Event::DocType(_) => {
                return Err("a document type declaration (DTD) is not accepted".to_owned())
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = local_name(e);
                on_open(
                    &mut req,
                    &path,
                    &name,
                    e,
                    &mut entities_seen,
                    &mut saw_request,
                    &mut capture,
                    &mut field_name,
                )?;
                text.clear();
                if matches!(event, Event::Empty(_)) {
                    // <Field …/>: opened and closed at once.
                    close(&mut req, capture, &field_name, &text);
                    capture = Capture::None;
                } else {
                    path.push(name);
                }
            }
            // Text outside a captured element (whitespace between elements) is not decoded.
            Event::Text(t) if capture != Capture::None => {
                text.push_str(&t.decode().map_err(not_well_formed)?)
            }
            Event::CData(t) if capture != Capture::None => {
                text.push_str(&t.decode().map_err(not_well_formed)?)
            }
            Event::Text(_) | Event::CData(_) => {}
            Event::GeneralRef(r) => {
                let s = resolve_ref(&r)?;
                if capture != Capture::None {
                    text.push_str(&s);
                }
            }
            Event::End(_) => {
                path.pop();
                if capture != Capture::None {
                    close(&mut req, capture, &field_name, &text);
                    capture = Capture::None;
                    text.clear();
                }
            }
            Event::Eof => {
                if let Some(open) = path.last() {
                    return Err(format!(
                        "not well-formed XML: the document ends inside <{}>",
                        shorten(open)
                    ));
                }
                break;
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if !saw_request {
        return Err(
            "no MaltegoMessage/MaltegoTransformRequestMessage element: not a Maltego transform request"
                .to_owned(),
        );
    }
    if entities_seen == 0 {
        return Err("the request names no input entity (Entities/Entity)".to_owned());
    }
    Ok(req)
}

fn local_name(e: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(e.local_name().as_ref()).into_owned()
}

fn attr(e: &BytesStart<'_>, name: &str) -> Result<Option<String>, String> {
    for a in e.attributes() {
        let a = a.map_err(not_well_formed)?;
        if a.key.local_name().as_ref() == name.as_bytes() {
            let v = a.unescape_value().map_err(not_well_formed)?;
            return Ok(Some(v.into_owned()));
        }
    }
    Ok(None)
}

/// The five predefined entities and character references; any other reference is an error
/// (none can be declared: DTDs are refused).
fn resolve_ref(r: &BytesRef<'_>) -> Result<String, String> {
    if r.is_char_ref() {
        return r
            .resolve_char_ref()
            .ok()
            .flatten()
            .map(String::from)
            .ok_or_else(|| "not well-formed XML: a bad character reference".to_owned());
    }
    let name = r.decode().map_err(not_well_formed)?;
    Ok(match name.as_ref() {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "apos" => "'",
        "quot" => "\"",
        other => {
            return Err(format!(
                "not well-formed XML: undeclared entity &{};",
                shorten(other)
            ))
        }
    }
    .to_owned())
}

fn limit_attr(e: &BytesStart<'_>, name: &str) -> Result<Option<usize>, String> {
    match attr(e, name)? {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map(Some)
            .map_err(|_| format!("Limits/@{name} is not a whole number: {:?}", shorten(&v))),
    }
}

#[allow(clippy::too_many_arguments)]
fn on_open(
    req: &mut TrxRequest,
    path: &[String],
    name: &str,
    e: &BytesStart<'_>,
    entities_seen: &mut usize,
    saw_request: &mut bool,
    capture: &mut Capture,
    field_name: &mut String,
) -> Result<(), String> {
    let in_request = path.len() >= 2
        && path[0] == "MaltegoMessage"
        && path[1] == "MaltegoTransformRequestMessage";
    match (path.len(), name) {
        (0, "MaltegoMessage") => {}
        (0, other) => {
            return Err(format!(
                "the root element is {:?}, not MaltegoMessage",
                shorten(other)
            ))
        }
        (1, "MaltegoTransformRequestMessage") => *saw_request = true,
        _ => {}
    }
    if !in_request {
        return Ok(());
    }
    // Relative to MaltegoTransformRequestMessage.
    let rel: Vec<&str> = path[2..].iter().map(String::as_str).collect();
    match (rel.as_slice(), name) {
        (["Entities"], "Entity") => {
            *entities_seen += 1;
            if *entities_seen == 1 {
                req.entity_type = attr(e, "Type")?.unwrap_or_default();
            }
        }
        (["Entities", "Entity"], "Value") if *entities_seen == 1 => *capture = Capture::Value,
        (["Entities", "Entity", "AdditionalFields"], "Field") if *entities_seen == 1 => {
            *field_name = attr(e, "Name")?.unwrap_or_default();
            *capture = Capture::Property;
        }
        (["TransformFields"], "Field") => {
            *field_name = attr(e, "Name")?.unwrap_or_default();
            *capture = Capture::Setting;
        }
        ([], "Limits") => {
            req.soft_limit = limit_attr(e, "SoftLimit")?;
            req.hard_limit = limit_attr(e, "HardLimit")?;
        }
        _ => {}
    }
    Ok(())
}

fn close(req: &mut TrxRequest, capture: Capture, field_name: &str, text: &str) {
    match capture {
        Capture::None => {}
        Capture::Value => req.value = text.trim().to_owned(),
        Capture::Property => req
            .properties
            .push((field_name.to_owned(), text.trim().to_owned())),
        Capture::Setting => req
            .settings
            .push((field_name.to_owned(), text.trim().to_owned())),
    }
}

/// The `Authorization` header a request's transform settings ask for ([`KEY_SETTING`],
/// [`USER_SETTING`]): `Basic user:key` with a user name, else `Bearer key`. `None` when the body
/// is not a request or names no key.
pub(crate) fn credentials_of(xml: &[u8]) -> Option<String> {
    use base64::Engine;
    let req = parse_request(xml).ok()?;
    let key = req.setting(KEY_SETTING).filter(|k| !k.is_empty())?;
    Some(match req.setting(USER_SETTING).filter(|u| !u.is_empty()) {
        Some(user) => format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{key}"))
        ),
        None => format!("Bearer {key}"),
    })
}

// ---- the response ----

/// One property of an output entity (`AdditionalFields/Field`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) name: String,
    pub(crate) display: String,
    pub(crate) value: String,
}

/// One output entity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entity {
    pub(crate) entity_type: String,
    pub(crate) value: String,
    pub(crate) fields: Vec<Field>,
}

impl Entity {
    fn new(entity_type: &str, value: impl Into<String>) -> Self {
        Entity {
            entity_type: entity_type.to_owned(),
            value: value.into(),
            fields: Vec::new(),
        }
    }

    fn field(&mut self, name: &str, display: &str, value: impl Into<String>) {
        self.fields.push(Field {
            name: name.to_owned(),
            display: display.to_owned(),
            value: value.into(),
        });
    }
}

/// A `MaltegoTransformResponseMessage`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TrxResponse {
    pub(crate) entities: Vec<Entity>,
    /// (MessageType, text).
    pub(crate) messages: Vec<(&'static str, String)>,
}

impl TrxResponse {
    /// A response with no entities and one `FatalError` message.
    pub(crate) fn fatal(message: impl Into<String>) -> Self {
        TrxResponse {
            entities: Vec::new(),
            messages: vec![("FatalError", message.into())],
        }
    }

    fn inform(&mut self, message: impl Into<String>) {
        self.messages.push(("Inform", message.into()));
    }

    /// The XML document, element by element through the writer (every text and attribute
    /// escaped), in the element order maltego-trx writes.
    pub(crate) fn to_xml(&self) -> Vec<u8> {
        let mut w = Writer::new(Vec::new());
        let written: io::Result<()> = (|| {
            w.create_element("MaltegoMessage")
                .write_inner_content(|w| {
                    w.create_element("MaltegoTransformResponseMessage")
                        .write_inner_content(|w| {
                            w.create_element("Entities").write_inner_content(|w| {
                                for e in &self.entities {
                                    write_entity(w, e)?;
                                }
                                Ok(())
                            })?;
                            w.create_element("UIMessages").write_inner_content(|w| {
                                for (kind, text) in &self.messages {
                                    w.create_element("UIMessage")
                                        .with_attribute(("MessageType", *kind))
                                        .write_text_content(BytesText::new(&xml_safe(text)))?;
                                }
                                Ok(())
                            })?;
                            Ok(())
                        })?;
                    Ok(())
                })?;
            Ok(())
        })();
        if let Err(e) = written {
            // Writing into a Vec cannot fail; keep a well-formed answer regardless.
            tracing::error!(error = %e, "writing a Maltego response");
            return b"<MaltegoMessage><MaltegoTransformResponseMessage><Entities/><UIMessages><UIMessage MessageType=\"FatalError\">internal error</UIMessage></UIMessages></MaltegoTransformResponseMessage></MaltegoMessage>".to_vec();
        }
        w.into_inner()
    }

    /// The HTTP response with `status`.
    pub(crate) fn respond(&self, status: StatusCode) -> Response {
        (
            status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
            self.to_xml(),
        )
            .into_response()
    }
}

fn write_entity(w: &mut Writer<Vec<u8>>, e: &Entity) -> io::Result<()> {
    w.create_element("Entity")
        .with_attribute(("Type", xml_safe(&e.entity_type).as_str()))
        .write_inner_content(|w| {
            w.create_element("Value")
                .write_text_content(BytesText::new(&xml_safe(&e.value)))?;
            w.create_element("Weight")
                .write_text_content(BytesText::new("100"))?;
            if !e.fields.is_empty() {
                w.create_element("AdditionalFields")
                    .write_inner_content(|w| {
                        for f in &e.fields {
                            w.create_element("Field")
                                .with_attribute(("Name", xml_safe(&f.name).as_str()))
                                .with_attribute(("DisplayName", xml_safe(&f.display).as_str()))
                                .with_attribute(("MatchingRule", "loose"))
                                .write_text_content(BytesText::new(&xml_safe(&f.value)))?;
                        }
                        Ok(())
                    })?;
            }
            Ok(())
        })?;
    Ok(())
}

/// `text` with the characters XML 1.0 does not allow replaced by `?` (maltego-trx's
/// `remove_invalid_xml_chars`).
pub(crate) fn xml_safe(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}' => c,
            _ => '?',
        })
        .collect()
}

// ---- the route ----

/// `GET /compat/maltego/run/{name}`: what maltego-trx answers a GET (200 text for a known
/// transform).
pub(crate) async fn describe(
    principal: Result<Principal, ApiError>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    principal?.require(Role::Reader)?;
    let name = name.to_ascii_lowercase();
    if !TRANSFORMS.contains(&name.as_str()) {
        return Err(unknown_transform(&name));
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        format!(
            "Transform found with name '{name}', you will need to send a POST request to run it."
        ),
    )
        .into_response())
}

fn unknown_transform(name: &str) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        detail: format!(
            "No transform found with the name {:?}; this server runs: {}",
            shorten(name),
            TRANSFORMS.join(", ")
        ),
    }
}

/// `POST /compat/maltego/run/{name}`: runs a transform on the request's first entity.
pub(crate) async fn run(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    principal?.require(Role::Reader)?;
    let name = name.to_ascii_lowercase();
    if !TRANSFORMS.contains(&name.as_str()) {
        return Err(unknown_transform(&name));
    }
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            return Err(ApiError {
                status: e.status(),
                detail: format!("the request body could not be read: {}", e.body_text()),
            })
        }
    };
    let req = match parse_request(&body) {
        Ok(r) => r,
        Err(msg) => return Ok(TrxResponse::fatal(msg).respond(StatusCode::OK)),
    };
    if req.value.is_empty() {
        return Ok(TrxResponse::fatal("the input entity has no Value").respond(StatusCode::OK));
    }
    let conn = state.conn().await?;
    let limit = req.limit();
    let out = match name.as_str() {
        "ip-to-certificates" => ip_to_certificates(&state, &conn, &req.value, limit).await?,
        "certificate-to-ips" => certificate_to_ips(&conn, &req.value, limit).await?,
        "certificate-to-names" => certificate_to_names(&conn, &req.value, limit).await?,
        "name-to-certificates" => name_to_certificates(&conn, &req.value, limit).await?,
        _ => serial_to_certificates(&conn, &req.value, limit).await?,
    };
    Ok(out.respond(StatusCode::OK))
}

/// The sentence of a truncated answer.
fn truncation(shown: usize, total: usize, capped: bool, what: &str, limit: usize) -> String {
    let of = if capped {
        format!("at least {total}")
    } else {
        total.to_string()
    };
    format!(
        "{shown} of {of} {what} shown (limit {limit}, from the transform's SoftLimit/HardLimit), most recently seen first; raise the slider, or page through certhist's /api/v1 for all"
    )
}

fn ip_type(ip: &IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "maltego.IPv4Address",
        IpAddr::V6(_) => "maltego.IPv6Address",
    }
}

fn day(t: DateTime<Utc>) -> String {
    certhist_model::ymd(t)
}

/// Properties of a sighting span, and the link label (`first..last :ports`).
fn sighting_fields(e: &mut Entity, seen: &PerIp) {
    e.field("first_seen", "First seen", rfc3339(seen.first_seen));
    e.field("last_seen", "Last seen", rfc3339(seen.last_seen));
    e.field("times_seen", "Times seen", seen.times_seen.to_string());
    let ports: Vec<String> = seen.ports.iter().map(u16::to_string).collect();
    e.field("ports", "Ports", ports.join(","));
    e.field(
        "link#maltego.link.label",
        "Label",
        format!(
            "{}..{} :{}",
            day(seen.first_seen),
            day(seen.last_seen),
            ports.join(",")
        ),
    );
}

/// A certificate entity: value = SHA-1; its fields when stored; the sightings given.
fn cert_entity(sha1: &Sha1, details: Option<&CertDetails>, seen: Option<&PerIp>) -> Entity {
    let mut e = Entity::new(CERT_TYPE, certhist_model::hex_lower(sha1));
    if let Some(d) = details {
        let s = &d.summary;
        e.field("sha256", "SHA-256", certhist_model::hex_lower(s.sha256));
        if let Some(serial) = &s.serial {
            e.field("serial", "Serial number", serial.to_hex());
        }
        if let Some(cn) = &s.subject_cn {
            e.field("subject_cn", "Subject CN", cn.clone());
        }
        let subject = oneline(&d.subject);
        if !subject.is_empty() {
            e.field("subject", "Subject", subject);
        }
        let issuer = oneline(&d.issuer);
        if !issuer.is_empty() {
            e.field("issuer", "Issuer", issuer);
        }
        if let Some(t) = s.not_before {
            e.field("not_before", "Not before", rfc3339(t));
        }
        if let Some(t) = s.not_after {
            e.field("not_after", "Not after", rfc3339(t));
        }
    } else {
        e.field("stored", "Certificate stored", "false");
    }
    if let Some(seen) = seen {
        sighting_fields(&mut e, seen);
    }
    e
}

/// A range `first-last` (how `maltego.Netblock` entities write a block) that is exactly one
/// CIDR block.
fn range_block(text: &str) -> Option<Result<IpNet, String>> {
    let (a, b) = text.split_once('-')?;
    let (Ok(a), Ok(b)) = (a.trim().parse::<IpAddr>(), b.trim().parse::<IpAddr>()) else {
        return None;
    };
    let blocks: Vec<IpNet> = match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => ipnet::Ipv4Subnets::new(a, b, 0).map(IpNet::V4).collect(),
        (IpAddr::V6(a), IpAddr::V6(b)) => ipnet::Ipv6Subnets::new(a, b, 0).map(IpNet::V6).collect(),
        _ => Vec::new(),
    };
    Some(match blocks.as_slice() {
        [one] => Ok(*one),
        _ => Err(format!("the range {} is not one CIDR block", shorten(text))),
    })
}

/// Parses an address, a CIDR block or a range that is one block, within the server's widest
/// prefixes.
fn parse_net(value: &str, state: &AppState) -> Result<IpNet, String> {
    let t = value.trim();
    let net = if let Some(block) = range_block(t) {
        block?
    } else if t.contains('/') {
        t.parse::<IpNet>()
            .map_err(|_| format!("{:?} is not an IP address or CIDR block", shorten(t)))?
    } else {
        IpNet::from(
            t.parse::<IpAddr>()
                .map_err(|_| format!("{:?} is not an IP address or CIDR block", shorten(t)))?,
        )
    };
    let widest = match net {
        IpNet::V4(_) => state.config.widest_prefix_v4,
        IpNet::V6(_) => state.config.widest_prefix_v6,
    };
    if net.prefix_len() < widest {
        return Err(format!(
            "the block is wider than this server answers (/{widest} at most)"
        ));
    }
    Ok(net.trunc())
}

/// Ranks (key, sightings) by last sighting, newest first, then by key.
fn rank<K: Ord>(items: &mut [(K, Option<PerIp>)]) {
    items.sort_by(|a, b| {
        let la = a.1.as_ref().map(|p| p.last_seen);
        let lb = b.1.as_ref().map(|p| p.last_seen);
        lb.cmp(&la).then_with(|| a.0.cmp(&b.0))
    });
}

fn capped(n: usize) -> bool {
    i64::try_from(n).unwrap_or(i64::MAX) > MAX_ROWS
}

fn cap_len(n: usize) -> usize {
    n.min(usize::try_from(MAX_ROWS).unwrap_or(usize::MAX))
}

async fn details_map(
    conn: &certhist_store::Conn,
    sha1s: &[Sha1],
    with_sightings: bool,
) -> Result<BTreeMap<Sha1, CertDetails>, ApiError> {
    let mut sorted = sha1s.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    Ok(read::details_batch(conn, &sorted, with_sightings)
        .await?
        .into_iter()
        .map(|d| (d.summary.sha1, d))
        .collect())
}

async fn ip_to_certificates(
    state: &AppState,
    conn: &certhist_store::Conn,
    value: &str,
    limit: usize,
) -> Result<TrxResponse, ApiError> {
    let net = match parse_net(value, state) {
        Ok(n) => n,
        Err(msg) => return Ok(TrxResponse::fatal(msg)),
    };
    let rows = read::ip_history(conn, &net, &TimeWindow::default(), None, MAX_ROWS + 1).await?;
    let was_capped = capped(rows.len());
    let mut per_cert: BTreeMap<Sha1, PerIp> = BTreeMap::new();
    for r in &rows[..cap_len(rows.len())] {
        per_cert
            .entry(r.sha1)
            .and_modify(|p| p.merge(r.first_seen, r.last_seen, r.times_seen, r.port))
            .or_insert_with(|| PerIp::new(r.first_seen, r.last_seen, r.times_seen, r.port));
    }
    let mut items: Vec<(Sha1, Option<PerIp>)> =
        per_cert.into_iter().map(|(k, v)| (k, Some(v))).collect();
    rank(&mut items);
    let total = items.len();
    items.truncate(limit);
    let shown: Vec<Sha1> = items.iter().map(|i| i.0).collect();
    let details = details_map(conn, &shown, false).await?;
    let mut out = TrxResponse::default();
    for (sha1, seen) in &items {
        out.entities
            .push(cert_entity(sha1, details.get(sha1), seen.as_ref()));
    }
    if total > items.len() || was_capped {
        out.inform(truncation(
            items.len(),
            total,
            was_capped,
            "certificates",
            limit,
        ));
    }
    if total == 0 {
        out.inform(format!("no certificate was seen on {net}"));
    }
    Ok(out)
}

/// The SHA-1 of a certificate named by a SHA-1 or SHA-256 value; `Err` with the message for the
/// user when the value is not a hash or nothing is known.
async fn certificate_of(
    conn: &certhist_store::Conn,
    value: &str,
) -> Result<Result<(Sha1, bool), TrxResponse>, ApiError> {
    let Some(hash) = parse_hash(value) else {
        return Ok(Err(TrxResponse::fatal(format!(
            "{:?} is not a certificate SHA-1 (or SHA-256) in hex",
            shorten(value)
        ))));
    };
    match read::resolve_hash(conn, &hash).await? {
        Some(r) => Ok(Ok((r.sha1, r.has_cert))),
        None => {
            let mut out = TrxResponse::default();
            out.inform(format!("certhist knows no certificate {hash}"));
            Ok(Err(out))
        }
    }
}

async fn certificate_to_ips(
    conn: &certhist_store::Conn,
    value: &str,
    limit: usize,
) -> Result<TrxResponse, ApiError> {
    let sha1 = match certificate_of(conn, value).await? {
        Ok((sha1, _)) => sha1,
        Err(answer) => return Ok(answer),
    };
    let rows = read::cert_hosts(conn, &sha1, &TimeWindow::default(), None, MAX_ROWS + 1).await?;
    let was_capped = capped(rows.len());
    let mut items: Vec<(IpAddr, Option<PerIp>)> = super::hosts_per_ip(&rows[..cap_len(rows.len())])
        .into_iter()
        .map(|(ip, p)| (ip, Some(p)))
        .collect();
    rank(&mut items);
    let total = items.len();
    items.truncate(limit);
    let mut out = TrxResponse::default();
    for (ip, seen) in &items {
        let mut e = Entity::new(ip_type(ip), ip.to_string());
        if let Some(seen) = seen {
            sighting_fields(&mut e, seen);
        }
        out.entities.push(e);
    }
    if total > items.len() || was_capped {
        out.inform(truncation(
            items.len(),
            total,
            was_capped,
            "addresses",
            limit,
        ));
    }
    if total == 0 {
        out.inform(format!(
            "no address was seen serving {}",
            certhist_model::hex_lower(sha1)
        ));
    }
    Ok(out)
}

async fn certificate_to_names(
    conn: &certhist_store::Conn,
    value: &str,
    limit: usize,
) -> Result<TrxResponse, ApiError> {
    let (sha1, stored) = match certificate_of(conn, value).await? {
        Ok(found) => found,
        Err(answer) => return Ok(answer),
    };
    let mut out = TrxResponse::default();
    if !stored {
        out.inform(format!(
            "certhist has seen {} but does not store the certificate, so it knows no names in it",
            certhist_model::hex_lower(sha1)
        ));
        return Ok(out);
    }
    // One entity per (type, value), its kinds joined; in the store's order.
    let mut entities: Vec<(Entity, Vec<&'static str>)> = Vec::new();
    for n in read::cert_names(conn, &sha1).await? {
        let (ty, kind) = match n.kind {
            NameKind::Dns => ("maltego.DNSName", "SAN dNSName"),
            NameKind::Cn => match n.name.parse::<IpAddr>() {
                Ok(ip) => (ip_type(&ip), "subject CN"),
                Err(_) if n.name.contains('@') => ("maltego.EmailAddress", "subject CN"),
                Err(_) if !n.name.contains(' ') && n.name.contains('.') => {
                    ("maltego.DNSName", "subject CN")
                }
                Err(_) => ("maltego.Phrase", "subject CN"),
            },
            NameKind::Ip => match n.name.parse::<IpAddr>() {
                Ok(ip) => (ip_type(&ip), "SAN iPAddress"),
                Err(_) => ("maltego.Phrase", "SAN iPAddress"),
            },
            NameKind::Email => ("maltego.EmailAddress", "SAN rfc822Name"),
            NameKind::Uri => ("maltego.URL", "SAN uniformResourceIdentifier"),
        };
        match entities
            .iter_mut()
            .find(|(e, _)| e.entity_type == ty && e.value == n.name)
        {
            Some((_, kinds)) => {
                if !kinds.contains(&kind) {
                    kinds.push(kind);
                }
            }
            None => {
                let mut e = Entity::new(ty, n.name.clone());
                if let Some(rd) = &n.registered_domain {
                    e.field("registered_domain", "Registered domain", rd.clone());
                }
                entities.push((e, vec![kind]));
            }
        }
    }
    let total = entities.len();
    for (mut e, kinds) in entities.into_iter().take(limit) {
        let kinds = kinds.join(", ");
        e.field("name_source", "Found in", kinds.clone());
        e.field("link#maltego.link.label", "Label", kinds);
        out.entities.push(e);
    }
    if total > out.entities.len() {
        out.inform(format!(
            "{} of {total} names shown (limit {limit}, from the transform's SoftLimit/HardLimit); raise the slider for all",
            out.entities.len()
        ));
    }
    Ok(out)
}

/// Certificate entities for `sha1s` (stored ones), ranked by their last sighting over every
/// address (never seen last), at most `limit`.
async fn ranked_certificates(
    conn: &certhist_store::Conn,
    sha1s: &[Sha1],
    was_capped: bool,
    limit: usize,
) -> Result<TrxResponse, ApiError> {
    let details = details_map(conn, sha1s, true).await?;
    let mut items: Vec<(Sha1, Option<PerIp>)> = details
        .values()
        .map(|d| {
            let seen = d.sightings.as_ref().map(|s| PerIp {
                first_seen: s.first_seen,
                last_seen: s.last_seen,
                times_seen: s.times_seen,
                ports: std::collections::BTreeSet::new(),
            });
            (d.summary.sha1, seen)
        })
        .collect();
    rank(&mut items);
    let total = items.len();
    items.truncate(limit);
    let mut out = TrxResponse::default();
    for (sha1, seen) in &items {
        let mut e = cert_entity(sha1, details.get(sha1), None);
        if let Some(seen) = seen {
            e.field("first_seen", "First seen", rfc3339(seen.first_seen));
            e.field("last_seen", "Last seen", rfc3339(seen.last_seen));
            e.field("times_seen", "Times seen", seen.times_seen.to_string());
        }
        out.entities.push(e);
    }
    if total > items.len() || was_capped {
        out.inform(truncation(
            items.len(),
            total,
            was_capped,
            "certificates",
            limit,
        ));
    }
    Ok(out)
}

async fn name_to_certificates(
    conn: &certhist_store::Conn,
    value: &str,
    limit: usize,
) -> Result<TrxResponse, ApiError> {
    let name = value.trim().trim_end_matches('.').to_lowercase();
    if name.is_empty() || name.chars().any(char::is_whitespace) {
        return Ok(TrxResponse::fatal(format!(
            "{:?} is not a DNS name",
            shorten(value)
        )));
    }
    let hits = read::search(
        conn,
        certhist_model::views::SearchField::Name,
        &MatchPattern::Exact(name.clone()),
        None,
        MAX_ROWS + 1,
    )
    .await?;
    let was_capped = capped(hits.len());
    let sha1s: Vec<Sha1> = hits[..cap_len(hits.len())]
        .iter()
        .map(|h| h.cert.sha1)
        .collect();
    let mut out = ranked_certificates(conn, &sha1s, was_capped, limit).await?;
    if out.entities.is_empty() {
        out.inform(format!("no stored certificate names {name}"));
    }
    Ok(out)
}

async fn serial_to_certificates(
    conn: &certhist_store::Conn,
    value: &str,
    limit: usize,
) -> Result<TrxResponse, ApiError> {
    let serials = match Serial::parse_candidates(value) {
        Ok(s) => s,
        Err(e) => {
            return Ok(TrxResponse::fatal(format!(
                "{:?} is not a serial number (hex, colons allowed, or decimal): {e}",
                shorten(value)
            )))
        }
    };
    let rows = read::certs_by_serial(conn, &serials, None, None, None, MAX_ROWS + 1).await?;
    let was_capped = capped(rows.len());
    let sha1s: Vec<Sha1> = rows[..cap_len(rows.len())].iter().map(|c| c.sha1).collect();
    let mut out = ranked_certificates(conn, &sha1s, was_capped, limit).await?;
    if out.entities.is_empty() {
        out.inform(format!(
            "no stored certificate has serial {}",
            shorten(value.trim())
        ));
    }
    Ok(out)
}

/// An error response in the TRX envelope (see the module docs), keeping `status`.
pub(crate) fn error(status: StatusCode, message: String) -> Response {
    TrxResponse::fatal(message).respond(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"<MaltegoMessage>
    <MaltegoTransformRequestMessage>
        <Entities>
            <Entity Type="maltego.IPv4Address">
                <Genealogy><Type Name="maltego.IPv4Address" OldName="IPv4Address"/></Genealogy>
                <AdditionalFields>
                    <Field Name="ipv4-address" DisplayName="IP Address">192.0.2.10</Field>
                    <Field Name="note" DisplayName="Note">a &amp; b &#x3C;c&#62;</Field>
                </AdditionalFields>
                <Value>192.0.2.10</Value>
                <Weight>0</Weight>
            </Entity>
            <Entity Type="maltego.IPv4Address"><Value>192.0.2.99</Value></Entity>
        </Entities>
        <TransformFields>
            <Field Name="certhist.apikey"><![CDATA[chk_abc]]></Field>
        </TransformFields>
        <Limits SoftLimit="12" HardLimit="10000"/>
    </MaltegoTransformRequestMessage>
</MaltegoMessage>"#;

    #[test]
    fn reads_a_request() {
        let r = parse_request(SAMPLE.as_bytes()).unwrap();
        assert_eq!(r.entity_type, "maltego.IPv4Address");
        assert_eq!(r.value, "192.0.2.10");
        assert_eq!(
            r.properties,
            vec![
                ("ipv4-address".to_owned(), "192.0.2.10".to_owned()),
                ("note".to_owned(), "a & b <c>".to_owned())
            ]
        );
        assert_eq!(
            r.settings,
            vec![("certhist.apikey".to_owned(), "chk_abc".to_owned())]
        );
        assert_eq!((r.soft_limit, r.hard_limit), (Some(12), Some(10000)));
        assert_eq!(r.limit(), 12);
        assert_eq!(
            credentials_of(SAMPLE.as_bytes()).as_deref(),
            Some("Bearer chk_abc")
        );
    }

    #[test]
    fn netblock_ranges() {
        assert_eq!(
            range_block("192.0.2.96-192.0.2.127"),
            Some(Ok("192.0.2.96/27".parse().unwrap()))
        );
        assert_eq!(
            range_block("2001:db8::-2001:db8::ffff"),
            Some(Ok("2001:db8::/112".parse().unwrap()))
        );
        assert!(range_block("192.0.2.1-192.0.2.3").unwrap().is_err());
        assert!(range_block("192.0.2.1-2001:db8::1").unwrap().is_err());
        assert_eq!(range_block("192.0.2.1"), None);
        assert_eq!(range_block("a-b"), None);
    }

    #[test]
    fn limits() {
        let mut r = TrxRequest::default();
        assert_eq!(r.limit(), DEFAULT_LIMIT);
        r.hard_limit = Some(5);
        assert_eq!(r.limit(), 5);
        r.soft_limit = Some(50);
        assert_eq!(r.limit(), 5);
        r.hard_limit = None;
        assert_eq!(r.limit(), 50);
        r.soft_limit = Some(0);
        assert_eq!(r.limit(), 1);
        r.soft_limit = Some(usize::MAX);
        assert_eq!(r.limit(), MAX_ENTITIES);
    }

    #[test]
    fn refuses_dtds_and_unknown_entities() {
        let xxe = r#"<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]><MaltegoMessage><MaltegoTransformRequestMessage><Entities><Entity Type="a"><Value>&x;</Value></Entity></Entities></MaltegoTransformRequestMessage></MaltegoMessage>"#;
        assert!(parse_request(xxe.as_bytes()).unwrap_err().contains("DTD"));
        let undeclared = r#"<MaltegoMessage><MaltegoTransformRequestMessage><Entities><Entity Type="a"><Value>&x;</Value></Entity></Entities></MaltegoTransformRequestMessage></MaltegoMessage>"#;
        assert!(parse_request(undeclared.as_bytes())
            .unwrap_err()
            .contains("undeclared entity"));
        assert!(parse_request(b"<a/>").unwrap_err().contains("root element"));
        assert!(parse_request(b"<MaltegoMessage><MaltegoTransformRequestMessage></MaltegoTransformRequestMessage></MaltegoMessage>")
            .unwrap_err()
            .contains("no input entity"));
        assert!(
            parse_request(b"<MaltegoMessage><MaltegoTransformRequestMessage>")
                .unwrap_err()
                .contains("ends inside <MaltegoTransformRequestMessage>")
        );
        assert!(parse_request(b"<MaltegoMessage><x></y></MaltegoMessage>")
            .unwrap_err()
            .contains("well-formed"));
        let big = vec![b' '; MAX_REQUEST_BYTES + 1];
        assert!(parse_request(&big).unwrap_err().contains("larger"));
        let bad_limit = r#"<MaltegoMessage><MaltegoTransformRequestMessage><Entities><Entity Type="a"><Value>v</Value></Entity></Entities><Limits SoftLimit="many"/></MaltegoTransformRequestMessage></MaltegoMessage>"#;
        assert!(parse_request(bad_limit.as_bytes())
            .unwrap_err()
            .contains("SoftLimit"));
    }

    #[test]
    fn writes_escaped_xml() {
        let mut e = Entity::new(CERT_TYPE, "a<b&\"c\u{1}");
        e.field("subject", "Subject", "CN=x</Value><Entity>");
        let resp = TrxResponse {
            entities: vec![e],
            messages: vec![("Inform", "1 < 2".to_owned())],
        };
        let xml = String::from_utf8(resp.to_xml()).unwrap();
        assert_eq!(
            xml,
            "<MaltegoMessage><MaltegoTransformResponseMessage><Entities>\
             <Entity Type=\"certhist.X509Certificate\"><Value>a&lt;b&amp;&quot;c?</Value><Weight>100</Weight>\
             <AdditionalFields><Field Name=\"subject\" DisplayName=\"Subject\" MatchingRule=\"loose\">CN=x&lt;/Value&gt;&lt;Entity&gt;</Field></AdditionalFields>\
             </Entity></Entities><UIMessages><UIMessage MessageType=\"Inform\">1 &lt; 2</UIMessage></UIMessages>\
             </MaltegoTransformResponseMessage></MaltegoMessage>"
        );
    }
}
