//! Distinguished names as sensors write them (RFC 2253 / OpenSSL one-line: `CN=a,O=b\, c`).

/// The value of the first `CN=` attribute of `dn` (escapes `\,` `\+` `\\` undone), if any.
pub(crate) fn common_name(dn: &str) -> Option<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = dn.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cur.push('\\');
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ',' | '+' => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    parts.iter().find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("CN")
            .then(|| unescape(v.trim()))
    })
}

fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cn() {
        assert_eq!(
            common_name("emailAddress=root@x,CN=localhost.localdomain,OU=S").as_deref(),
            Some("localhost.localdomain")
        );
        assert_eq!(
            common_name("CN=*.stripe.com,O=Stripe\\, Inc,C=US").as_deref(),
            Some("*.stripe.com")
        );
        assert_eq!(common_name("CN=a\\,b,O=x").as_deref(), Some("a,b"));
        assert_eq!(common_name("O=x,C=US"), None);
        assert_eq!(common_name(""), None);
    }
}
