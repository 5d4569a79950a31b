//! Entry points of the fuzz targets (`fuzz/` at the repository root) into parsers that are
//! private to this crate: the query-string parameters (`params.rs`) and the search box
//! (`web/recognise.rs`). Not part of the API; they panic when a parser breaks its contract
//! (an error that is not a 400 naming a parameter), which is what a fuzzer looks for.

use axum::http::StatusCode;

use crate::error::ApiError;
use crate::params::{self, Params};
use crate::ServeConfig;

fn check(result: Result<impl Sized, ApiError>) {
    if let Err(e) = result {
        assert_eq!(e.status, StatusCode::BAD_REQUEST, "{}", e.detail);
        assert!(
            e.detail.contains('`'),
            "error names no parameter: {}",
            e.detail
        );
    }
}

/// Parses `query` as a request's query string and reads it the way handlers do: the time window,
/// `limit`, a boolean, an integer range, a cursor, then every value of `q` as an address or CIDR
/// block, a certificate hash and an OCSP hash; finally the unknown-parameter check.
pub fn query_params(query: &str) {
    let config = ServeConfig::default();
    let mut p = match Params::parse(Some(query)) {
        Ok(p) => p,
        Err(e) => return check(Err::<(), _>(e)),
    };
    check(p.window());
    check(p.limit(&config));
    check(p.boolean("exact"));
    check(p.int("hops", 0, i64::from(config.max_expand_hops)));
    check(p.cursor::<(String, i64, Vec<u8>)>());
    check(p.cursor::<serde_json::Value>());
    for v in p.all("q") {
        check(params::ip_or_cidr("q", &v, &config));
        check(params::ip("q", &v));
        check(params::cert_hash("q", &v));
        check(params::hash20("q", &v));
    }
    check(p.required("ip"));
    check(p.finish());
}

/// Every reading of the search box's `text`, with the link and description of each.
pub fn search_box(text: &str) -> Vec<(String, String)> {
    crate::web::recognise::recognise(text)
        .iter()
        .map(|r| (r.href(), r.describe()))
        .collect()
}
