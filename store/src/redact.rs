//! Connection strings without their passwords, for error messages and `Debug` output.

/// Put in place of a password.
const MASK: &str = "***";

/// `url` with every password replaced by `***`: the password of a `postgres://user:pw@host/db`
/// URL's user info (everything from the first `:` of the user info to the last `@`, so a
/// password holding `@`, `/` or `?` is masked too), a `password=` query parameter, or the value
/// of the `password` key of a libpq `key=value` string. A `key=value` string that does not parse
/// is not shown at all. Masking too much is allowed; showing a password is not.
pub fn redact_url(url: &str) -> String {
    let lower = url.to_ascii_lowercase();
    let scheme_len = ["postgres://", "postgresql://"]
        .iter()
        .find(|s| lower.starts_with(*s))
        .map(|s| s.len());
    match scheme_len {
        Some(n) => redact_uri(&url[..n], &url[n..]),
        None => redact_key_values(url)
            .unwrap_or_else(|| "(connection string not shown: it does not parse)".to_owned()),
    }
}

/// Replaces every password of `url` in `text` (a message that may quote it) by `***`.
pub(crate) fn scrub(text: &str, url: &str) -> String {
    let mut out = text.to_owned();
    for secret in passwords(url) {
        if !secret.is_empty() {
            out = out.replace(&secret, MASK);
        }
    }
    out
}

fn redact_uri(scheme: &str, rest: &str) -> String {
    let (authority, tail) = match rest.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = match userinfo.find(':') {
                Some(colon) => format!("{}:{MASK}", &userinfo[..colon]),
                None => userinfo.to_owned(),
            };
            (format!("{user}@"), &rest[at + 1..])
        }
        None => (String::new(), rest),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}={MASK}"),
                    _ => p.to_owned(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}{authority}{tail}")
}

/// The `key=value` pairs of a libpq connection string, values as written (quotes included).
fn key_values(s: &str) -> Option<Vec<(&str, &str)>> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < bytes.len() && bytes[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i == bytes.len() {
            return Some(out);
        }
        let key_start = i;
        while i < bytes.len() && bytes[i] != b'=' && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = &s[key_start..i];
        skip_ws(&mut i);
        if i == bytes.len() || bytes[i] != b'=' || key.is_empty() {
            return None;
        }
        i += 1;
        skip_ws(&mut i);
        let value_start = i;
        if i < bytes.len() && bytes[i] == b'\'' {
            i += 1;
            loop {
                match bytes.get(i) {
                    None => return None,
                    Some(b'\\') => i += 2,
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    Some(_) => i += 1,
                }
            }
        } else {
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
        }
        let i_end = i.min(bytes.len());
        out.push((key, s.get(value_start..i_end)?));
        i = i_end;
    }
}

fn redact_key_values(s: &str) -> Option<String> {
    let pairs = key_values(s)?;
    Some(
        pairs
            .iter()
            .map(|(k, v)| {
                if k.eq_ignore_ascii_case("password") {
                    format!("{k}={MASK}")
                } else {
                    format!("{k}={v}")
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// The passwords `url` holds, as written (for [`scrub`]).
fn passwords(url: &str) -> Vec<String> {
    let lower = url.to_ascii_lowercase();
    let mut out = Vec::new();
    if let Some(n) = ["postgres://", "postgresql://"]
        .iter()
        .find(|s| lower.starts_with(*s))
        .map(|s| s.len())
    {
        let rest = &url[n..];
        if let Some(at) = rest.rfind('@') {
            if let Some(colon) = rest[..at].find(':') {
                out.push(rest[colon + 1..at].to_owned());
            }
        }
        if let Some((_, query)) = rest.split_once('?') {
            for p in query.split('&') {
                if let Some((k, v)) = p.split_once('=') {
                    if k.eq_ignore_ascii_case("password") {
                        out.push(v.to_owned());
                    }
                }
            }
        }
    } else if let Some(pairs) = key_values(url) {
        for (k, v) in pairs {
            if k.eq_ignore_ascii_case("password") {
                out.push(v.trim_matches('\'').to_owned());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_passwords_are_masked() {
        let cases = [
            (
                "postgres://u:s3cr3t@127.0.0.1:1/x",
                "postgres://u:***@127.0.0.1:1/x",
            ),
            (
                "postgresql://u:p@ss/w?rd@db.example:5432/certhist?sslmode=disable",
                "postgresql://u:***@db.example:5432/certhist?sslmode=disable",
            ),
            (
                "postgres://u@h/db?password=s3cr3t&application_name=a",
                "postgres://u@h/db?password=***&application_name=a",
            ),
            ("postgres://h/db", "postgres://h/db"),
            ("POSTGRES://u:pw@h/db", "POSTGRES://u:***@h/db"),
        ];
        for (url, want) in cases {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }

    #[test]
    fn key_value_passwords_are_masked() {
        assert_eq!(
            redact_url("host=/run/pg port=5432 user=u password=s3cr3t dbname=x"),
            "host=/run/pg port=5432 user=u password=*** dbname=x"
        );
        assert_eq!(
            redact_url("host = h password = 'a b\\' c' dbname=x"),
            "host=h password=*** dbname=x"
        );
        // Unparsable: nothing of it is shown.
        let shown = redact_url("host=h password='unterminated s3cr3t");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        let shown = redact_url("password s3cr3t");
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }

    #[test]
    fn messages_quoting_a_password_are_scrubbed() {
        let url = "postgres://u:s3cr3t@h/db?password=other";
        assert_eq!(scrub("bad: s3cr3t and other", url), "bad: *** and ***");
        assert_eq!(scrub("x s3cr3t", "user=u password='s3cr3t'"), "x ***");
    }
}
