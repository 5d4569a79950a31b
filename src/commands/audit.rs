//! `certhist audit [--since RFC3339|DURATION] [--limit N]`: the audit log, newest first.

use certhist_store::read;
use chrono::{DateTime, Utc};
use clap::Args;

use super::Failure;
use crate::cli::Cli;
use crate::exit;
use crate::output::{ndjson, opt, time, Table};

/// Show the audit log (logins, failed logins, account changes, writes), newest first.
#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// Only entries at or after this time: RFC 3339 (2026-12-01T00:00:00Z) or a duration back
    /// from now (90s, 15m, 24h, 7d, 2w).
    #[arg(long, value_parser = parse_since)]
    pub since: Option<DateTime<Utc>>,
    /// At most this many entries.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..=10000))]
    pub limit: i64,
}

/// An RFC 3339 time, or a duration (`<n>s|m|h|d|w`) back from now.
pub fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let text = text.trim();
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is neither an RFC 3339 time nor a duration like 24h"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => {
            return Err(format!(
                "{text:?}: a duration needs a unit: s, m, h, d or w (e.g. 24h)"
            ))
        }
    };
    n.checked_mul(secs)
        .and_then(chrono::Duration::try_seconds)
        .and_then(|d| Utc::now().checked_sub_signed(d))
        .ok_or_else(|| format!("{text:?} reaches too far back"))
}

pub(crate) async fn run(cli: &Cli, args: &AuditArgs) -> Result<u8, Failure> {
    let store = crate::open_store(cli).await?;
    let conn = store.conn().await?;
    let entries = read::accounts::audit_entries(&conn, args.since, None, args.limit).await?;
    let mut out = std::io::stdout().lock();
    if cli.json {
        for e in &entries {
            ndjson(&mut out, e)?;
        }
    } else {
        let mut t = Table::new(&["ID", "AT", "ACTOR", "ACTION", "TARGET", "SOURCE", "DETAIL"]);
        for e in &entries {
            t.row(vec![
                e.id.to_string(),
                time(&e.at),
                opt(&e.actor),
                e.action.clone(),
                opt(&e.target),
                opt(&e.source),
                e.detail
                    .as_ref()
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "-".to_owned()),
            ]);
        }
        t.print(&mut out)?;
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_times_and_durations() {
        assert_eq!(
            parse_since("2026-12-01T00:00:00Z").unwrap().to_rfc3339(),
            "2026-12-01T00:00:00+00:00"
        );
        let ago = Utc::now() - parse_since("2h").unwrap();
        assert!((7190..=7210).contains(&ago.num_seconds()), "{ago}");
        assert!(parse_since("2").is_err());
        assert!(parse_since("yesterday").is_err());
        assert!(parse_since("99999999999999w").is_err());
    }
}
