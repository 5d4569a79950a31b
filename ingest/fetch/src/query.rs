//! Query strings, percent-encoded with `percent-encoding`.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Bytes left as they are in query keys and values: the RFC 3986 §2.3 unreserved characters, and
/// `*` (crt.sh wildcards stay readable in logs). Everything else, `%`, `+`, `/`, `=` and `&`
/// included, is percent-encoded.
const QUERY_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'*');

/// `base` with `key=value` pairs appended as its query (after `?`, or `&` if `base` has a query
/// already), each key and value percent-encoded.
pub fn url_with_query(base: &str, params: &[(&str, &str)]) -> String {
    let mut url = base.to_owned();
    let mut sep = if base.contains('?') { '&' } else { '?' };
    for (k, v) in params {
        url.push(sep);
        url.extend(utf8_percent_encode(k, QUERY_COMPONENT));
        url.push('=');
        url.extend(utf8_percent_encode(v, QUERY_COMPONENT));
        sep = '&';
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_encoded() {
        assert_eq!(
            url_with_query("https://crt.sh/", &[("q", "%.example.com"), ("match", "=")]),
            "https://crt.sh/?q=%25.example.com&match=%3D"
        );
        assert_eq!(
            url_with_query("http://l/ct/v1/get-proof-by-hash", &[("hash", "a+b/c=")]),
            "http://l/ct/v1/get-proof-by-hash?hash=a%2Bb%2Fc%3D"
        );
        assert_eq!(
            url_with_query("http://x/?a=1", &[("q", "*.ex ample~")]),
            "http://x/?a=1&q=*.ex%20ample~"
        );
        assert_eq!(url_with_query("http://x/", &[]), "http://x/");
        assert_eq!(
            url_with_query("http://x/", &[("q", "ü")]),
            "http://x/?q=%C3%BC"
        );
    }
}
