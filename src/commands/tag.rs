//! `certhist tag add|rm|list` and `certhist note add|list|rm` (issue 12): tags and notes shared
//! between analysts, on addresses, CIDR blocks, certificates (SHA-1) and names. The author is
//! `cli:$USER`; every change is in the audit log with source `cli`.

use std::io::Write;

use certhist_model::views::{
    parse_note_body, parse_tag, Note, Tag, TagInputError, TaggedItem, Target, TargetKind,
    TargetTags,
};
use certhist_store::read::{self, MatchPattern, TaggedKey};
use certhist_store::{Author, NoteDeletion, Store};
use clap::{Args, Subcommand};

use super::Failure;
use crate::cli::Cli;
use crate::exit;
use crate::output::{clean, ndjson, opt, time, Table};

/// Rows fetched per round trip.
const PAGE: i64 = 1000;

/// `certhist tag …`
#[derive(Debug, Subcommand)]
pub enum TagCommand {
    /// Tag a target: KIND is ip, cidr, certificate or name. Tagging again changes nothing.
    Add(TagArgs),
    /// Remove a tag from a target.
    Rm(TagArgs),
    /// Targets carrying TAG (`apt*` for a prefix; every tag without TAG), or with --target the
    /// tags and notes of one target.
    List(TagListArgs),
}

/// KIND VALUE TAG
#[derive(Debug, Args)]
pub struct TagArgs {
    /// ip | cidr | certificate | name.
    pub kind: String,
    /// An address, a CIDR block, a certificate SHA-1 (40 hex digits) or a DNS name.
    pub value: String,
    /// The tag: letters a-z, digits and . _ : / @ + - (lower-cased), at most 64 characters.
    pub tag: String,
}

/// `certhist tag list`
#[derive(Debug, Args)]
pub struct TagListArgs {
    /// The tag (exact, `prefix*`, `*suffix` or `*contains*`); all tags when absent.
    #[arg(conflicts_with = "target")]
    pub tag: Option<String>,
    /// The tags and notes of this target instead.
    #[arg(long, num_args = 2, value_names = ["KIND", "VALUE"])]
    pub target: Option<Vec<String>>,
    /// At most this many rows.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
    pub limit: i64,
}

/// `certhist note …`
#[derive(Debug, Subcommand)]
pub enum NoteCommand {
    /// Add a note to a target.
    Add(NoteAddArgs),
    /// The notes of a target (and of the blocks containing an address).
    List(NoteTargetArgs),
    /// Delete one of your notes by id.
    Rm(NoteRmArgs),
}

/// KIND VALUE TEXT
#[derive(Debug, Args)]
pub struct NoteAddArgs {
    /// ip | cidr | certificate | name.
    pub kind: String,
    /// The target.
    pub value: String,
    /// The note (1–10,000 characters).
    pub text: String,
}

/// KIND VALUE
#[derive(Debug, Args)]
pub struct NoteTargetArgs {
    /// ip | cidr | certificate | name.
    pub kind: String,
    /// The target.
    pub value: String,
}

/// ID
#[derive(Debug, Args)]
pub struct NoteRmArgs {
    /// The note's id (`certhist note list` shows it).
    pub id: i64,
}

fn input(e: TagInputError) -> Failure {
    Failure::Usage(format!(
        "{}: {}",
        e.parameter().to_uppercase(),
        clean(&e.to_string())
    ))
}

/// The author of changes made from the command line: `cli:$USER` (`cli` when USER is unset).
pub(crate) fn cli_author(cli: &Cli) -> Author {
    let name = match cli.user.as_deref().map(str::trim) {
        Some(u) if !u.is_empty() => format!("cli:{u}"),
        _ => "cli".to_owned(),
    };
    Author {
        actor: Some(name.clone()),
        name,
        source: Some("cli".to_owned()),
    }
}

pub(crate) async fn run_tag(cli: &Cli, command: &TagCommand) -> Result<u8, Failure> {
    let mut out = std::io::stdout().lock();
    match command {
        TagCommand::Add(a) => {
            let target = Target::parse(&a.kind, &a.value).map_err(input)?;
            let tag = parse_tag(&a.tag).map_err(input)?;
            let store = crate::open_store(cli).await?;
            let mut conn = store.conn().await?;
            let mut tx = conn.begin().await?;
            let (tag, created) = tx.add_tag(&target, &tag, &cli_author(cli)).await?;
            tx.commit().await?;
            if cli.json {
                ndjson(&mut out, &tag)?;
            } else if created {
                writeln!(
                    out,
                    "tagged {} {}",
                    clean(&target.to_string()),
                    clean(&tag.tag)
                )?;
            } else {
                writeln!(
                    out,
                    "{} already has tag {} (added by {} at {})",
                    clean(&target.to_string()),
                    clean(&tag.tag),
                    clean(&tag.author),
                    time(&tag.created_at)
                )?;
            }
            Ok(exit::OK)
        }
        TagCommand::Rm(a) => {
            let target = Target::parse(&a.kind, &a.value).map_err(input)?;
            let tag = parse_tag(&a.tag).map_err(input)?;
            let store = crate::open_store(cli).await?;
            let mut conn = store.conn().await?;
            let mut tx = conn.begin().await?;
            let removed = tx.remove_tag(&target, &tag, &cli_author(cli)).await?;
            tx.commit().await?;
            match removed {
                Some(t) => {
                    if cli.json {
                        ndjson(&mut out, &t)?;
                    } else {
                        writeln!(
                            out,
                            "removed tag {} from {}",
                            clean(&t.tag),
                            clean(&target.to_string())
                        )?;
                    }
                    Ok(exit::OK)
                }
                None => Err(Failure::NotFound(format!(
                    "{} has no tag {}",
                    clean(&target.to_string()),
                    clean(&tag)
                ))),
            }
        }
        TagCommand::List(a) => {
            let store = crate::open_store(cli).await?;
            if let Some(t) = &a.target {
                let [kind, value] = t.as_slice() else {
                    return Err(Failure::Usage("--target takes KIND VALUE".to_owned()));
                };
                let target = Target::parse(kind, value).map_err(input)?;
                return show_target(&store, &target, cli.json, &mut out).await;
            }
            let pattern = match &a.tag {
                Some(t) => MatchPattern::parse(t)?,
                None => MatchPattern::Prefix(String::new()),
            };
            let what = a.tag.clone().unwrap_or_else(|| "any tag".to_owned());
            list_tagged(&store, &pattern, &what, a.limit, cli.json, &mut out).await
        }
    }
}

pub(crate) async fn run_note(cli: &Cli, command: &NoteCommand) -> Result<u8, Failure> {
    let mut out = std::io::stdout().lock();
    match command {
        NoteCommand::Add(a) => {
            let target = Target::parse(&a.kind, &a.value).map_err(input)?;
            let body = parse_note_body(&a.text).map_err(input)?;
            let store = crate::open_store(cli).await?;
            let mut conn = store.conn().await?;
            let mut tx = conn.begin().await?;
            let note = tx.add_note(&target, &body, &cli_author(cli)).await?;
            tx.commit().await?;
            if cli.json {
                ndjson(&mut out, &note)?;
            } else {
                writeln!(
                    out,
                    "note {} added to {}",
                    note.id,
                    clean(&target.to_string())
                )?;
            }
            Ok(exit::OK)
        }
        NoteCommand::List(a) => {
            let target = Target::parse(&a.kind, &a.value).map_err(input)?;
            let store = crate::open_store(cli).await?;
            let conn = store.conn().await?;
            let notes = read::notes_of(&conn, &target).await?;
            if cli.json {
                for n in &notes {
                    ndjson(&mut out, n)?;
                }
                return Ok(exit::OK);
            }
            if notes.is_empty() {
                writeln!(out, "no notes on {}", clean(&target.to_string()))?;
                return Ok(exit::NOT_FOUND);
            }
            let value = target.value();
            print_notes(&notes, Some((target.kind(), value.as_str())), &mut out)?;
            Ok(exit::OK)
        }
        NoteCommand::Rm(a) => {
            let store = crate::open_store(cli).await?;
            let mut conn = store.conn().await?;
            let mut tx = conn.begin().await?;
            // Whoever can run the CLI on the database is its administrator.
            let outcome = tx.delete_note(a.id, &cli_author(cli), true).await?;
            tx.commit().await?;
            match outcome {
                NoteDeletion::NotFound => {
                    Err(Failure::NotFound(format!("no note with id {}", a.id)))
                }
                _ => {
                    if !cli.json {
                        writeln!(out, "note {} deleted", a.id)?;
                    }
                    Ok(exit::OK)
                }
            }
        }
    }
}

/// Prints the tags and notes of a target (`tag list --target`).
async fn show_target(
    store: &Store,
    target: &Target,
    json: bool,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let conn = store.conn().await?;
    let tags = read::target_tags(&conn, target).await?;
    if json {
        ndjson(out, &tags)?;
        return Ok(exit::OK);
    }
    if tags.tags.is_empty() && tags.notes.is_empty() {
        writeln!(out, "no tags or notes on {}", clean(&target.to_string()))?;
        return Ok(exit::NOT_FOUND);
    }
    print_target_tags(&tags, out)?;
    Ok(exit::OK)
}

/// The tags and notes of a target as lines (under a record or a history table).
pub(crate) fn print_target_tags(t: &TargetTags, out: &mut impl Write) -> Result<(), Failure> {
    let own = (t.kind, t.value.as_str());
    if !t.tags.is_empty() {
        print_tag_lines(&t.tags, Some(own), out)?;
    }
    if !t.notes.is_empty() {
        print_notes(&t.notes, Some(own), out)?;
    }
    Ok(())
}

/// ` on KIND VALUE` when a tag or note is on another target than `own` (a block containing the
/// address, a name of the certificate), else nothing.
fn elsewhere(kind: TargetKind, value: &str, own: Option<(TargetKind, &str)>) -> String {
    if own == Some((kind, value)) {
        String::new()
    } else {
        format!(" on {kind} {}", clean(value))
    }
}

/// Tags with author and time, one per line (`apt28 (by cli:alice, 2026-12-03 07:00:00Z)`), with
/// the target when it is not `own`.
pub(crate) fn print_tag_lines(
    tags: &[Tag],
    own: Option<(TargetKind, &str)>,
    out: &mut impl Write,
) -> Result<(), Failure> {
    writeln!(out, "{:>17}:", "tags")?;
    for t in tags {
        writeln!(
            out,
            "{:>17}  {} (by {}, {}){}",
            "",
            clean(&t.tag),
            clean(&t.author),
            time(&t.created_at),
            elsewhere(t.kind, &t.value, own)
        )?;
    }
    Ok(())
}

/// Notes, one block each: `#id by author at time` (and the target when it is not `own`), then
/// the text, indented.
pub(crate) fn print_notes(
    notes: &[Note],
    own: Option<(TargetKind, &str)>,
    out: &mut impl Write,
) -> Result<(), Failure> {
    writeln!(out, "{:>17}:", "notes")?;
    for n in notes {
        writeln!(
            out,
            "{:>17}  #{} by {} at {}{}",
            "",
            n.id,
            clean(&n.author),
            time(&n.created_at),
            elsewhere(n.kind, &n.value, own)
        )?;
        for line in n.body.lines() {
            writeln!(out, "{:>17}    {}", "", clean(line))?;
        }
    }
    Ok(())
}

/// Targets carrying a tag matching `pattern` (`tag list`, `query search tag`).
pub(crate) async fn list_tagged(
    store: &Store,
    pattern: &MatchPattern,
    what: &str,
    limit: i64,
    json: bool,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let conn = store.conn().await?;
    let mut items: Vec<TaggedItem> = Vec::new();
    let mut after: Option<TaggedKey> = None;
    while (items.len() as i64) < limit {
        let want = PAGE.min(limit - items.len() as i64);
        let page = read::tagged(&conn, pattern, after.as_ref(), want).await?;
        let done = (page.len() as i64) < want;
        after = page
            .last()
            .map(|t| (t.tag.tag.clone(), t.tag.kind, t.tag.value.clone()));
        items.extend(page);
        if done {
            break;
        }
    }
    if json {
        for i in &items {
            ndjson(out, i)?;
        }
        return Ok(exit::OK);
    }
    if items.is_empty() {
        writeln!(out, "nothing is tagged {}", clean(what))?;
        return Ok(exit::NOT_FOUND);
    }
    let mut t = Table::new(&["TAG", "KIND", "VALUE", "AUTHOR", "ADDED", "SUBJECT CN"]);
    for i in &items {
        t.row(vec![
            i.tag.tag.clone(),
            i.tag.kind.to_string(),
            i.tag.value.clone(),
            i.tag.author.clone(),
            time(&i.tag.created_at),
            i.cert
                .as_ref()
                .map(|c| opt(&c.subject_cn))
                .unwrap_or_default(),
        ]);
    }
    t.print(out)?;
    if items.len() as i64 >= limit {
        writeln!(out, "(first {limit} rows; raise --limit for more)")?;
    }
    Ok(exit::OK)
}
