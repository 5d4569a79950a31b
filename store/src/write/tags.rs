//! Tags and notes (issue 12). Each change records an audit entry in the same transaction, so
//! the two commit (or roll back) together; a change that changes nothing (a tag already there, a
//! tag that was not there) records nothing.

use certhist_model::views::{Note, Tag, Target};
use postgres_types::ToSql;

use super::{AuditEntry, StoreTx};
use crate::read::tags::{note_columns, note_from, tag_columns, tag_from};
use crate::StoreError;

/// Who makes a change: the author recorded on the tag or note, and the actor and source of the
/// audit entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Author {
    /// Recorded as the tag's or note's author: the account name, `local` for the user of an
    /// open server, `cli:USER` from the command line.
    pub name: String,
    /// The audit entry's actor: the account name, `None` for the local user of an open server.
    pub actor: Option<String>,
    /// The audit entry's source: the remote address, or `cli`.
    pub source: Option<String>,
}

/// What [`StoreTx::delete_note`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoteDeletion {
    /// The note was deleted.
    Deleted(Note),
    /// No note has this id.
    NotFound,
    /// The note is someone else's (only its author or an admin may delete it).
    NotAuthor {
        /// The note's author.
        author: String,
    },
}

/// The target columns (kind, net, sha1, name) of a `tags` / `notes` row.
fn target_params(
    target: &Target,
) -> (
    &'static str,
    Option<String>,
    Option<Vec<u8>>,
    Option<String>,
) {
    let kind = target.kind().as_str();
    match target {
        Target::Ip(ip) => (kind, Some(ip.to_string()), None, None),
        Target::Cidr(net) => (kind, Some(net.trunc().to_string()), None, None),
        Target::Certificate(sha1) => (kind, None, Some(sha1.to_vec()), None),
        Target::Name(name) => (kind, None, None, Some(name.clone())),
    }
}

/// The condition on `tags t` selecting exactly `target`'s rows through the unique index of its
/// column, with its parameters: `$1` the target (net as text, sha1 or name), `$2` the kind.
fn exact_target(target: &Target) -> (&'static str, Box<dyn ToSql + Sync + Send>) {
    match target {
        Target::Ip(ip) => (
            "t.kind = $2 AND t.net = $1::text::inet",
            Box::new(ip.to_string()),
        ),
        Target::Cidr(net) => (
            "t.kind = $2 AND t.net = $1::text::inet",
            Box::new(net.trunc().to_string()),
        ),
        Target::Certificate(sha1) => ("t.kind = $2 AND t.sha1 = $1", Box::new(sha1.to_vec())),
        Target::Name(name) => ("t.kind = $2 AND t.name = $1", Box::new(name.clone())),
    }
}

impl StoreTx<'_> {
    /// Tags `target` with `tag` (already normalised: [`certhist_model::views::parse_tag`]).
    /// Idempotent: when the target already has the tag, the first author and time are kept and
    /// nothing is recorded. Returns the tag and whether this call added it.
    pub async fn add_tag(
        &mut self,
        target: &Target,
        tag: &str,
        by: &Author,
    ) -> Result<(Tag, bool), StoreError> {
        let (kind, net, sha1, name) = target_params(target);
        let columns = tag_columns();
        let inserted = self
            .tx
            .query_opt(
                &format!(
                    "INSERT INTO tags AS t (kind, net, sha1, name, tag, author)
                     VALUES ($4, $1::text::inet, $2, $3, $5, $6)
                     ON CONFLICT DO NOTHING
                     RETURNING {columns}"
                ),
                &[&net, &sha1, &name, &kind, &tag, &by.name],
            )
            .await?;
        if let Some(row) = inserted {
            let added = tag_from(&row, 0)?;
            self.audit(&AuditEntry {
                actor: by.actor.clone(),
                action: "tag_add".to_owned(),
                target: Some(target.to_string()),
                source: by.source.clone(),
                detail: Some(serde_json::json!({ "tag": tag, "author": by.name })),
            })
            .await?;
            return Ok((added, true));
        }
        // Already there (possibly added by a concurrent transaction that has committed since:
        // ON CONFLICT waited for it).
        let (cond, value) = exact_target(target);
        let row = self
            .tx
            .query_one(
                &format!("SELECT {columns} FROM tags t WHERE {cond} AND t.tag = $3"),
                &[value.as_ref(), &kind, &tag],
            )
            .await?;
        Ok((tag_from(&row, 0)?, false))
    }

    /// Removes `tag` from `target`. Returns the removed tag, or `None` when the target did not
    /// have it (nothing is recorded then).
    pub async fn remove_tag(
        &mut self,
        target: &Target,
        tag: &str,
        by: &Author,
    ) -> Result<Option<Tag>, StoreError> {
        let (cond, value) = exact_target(target);
        let kind = target.kind().as_str();
        let row = self
            .tx
            .query_opt(
                &format!(
                    "DELETE FROM tags t WHERE {cond} AND t.tag = $3 RETURNING {}",
                    tag_columns()
                ),
                &[value.as_ref(), &kind, &tag],
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let removed = tag_from(&row, 0)?;
        self.audit(&AuditEntry {
            actor: by.actor.clone(),
            action: "tag_remove".to_owned(),
            target: Some(target.to_string()),
            source: by.source.clone(),
            detail: Some(serde_json::json!({
                "tag": tag,
                "added_by": removed.author,
                "added_at": removed.created_at,
            })),
        })
        .await?;
        Ok(Some(removed))
    }

    /// Adds a note (the body already checked: [`certhist_model::views::parse_note_body`]).
    pub async fn add_note(
        &mut self,
        target: &Target,
        body: &str,
        by: &Author,
    ) -> Result<Note, StoreError> {
        let (kind, net, sha1, name) = target_params(target);
        let row = self
            .tx
            .query_one(
                &format!(
                    "INSERT INTO notes AS t (kind, net, sha1, name, body, author)
                     VALUES ($4, $1::text::inet, $2, $3, $5, $6)
                     RETURNING {}",
                    note_columns()
                ),
                &[&net, &sha1, &name, &kind, &body, &by.name],
            )
            .await?;
        let note = note_from(&row, 0)?;
        self.audit(&AuditEntry {
            actor: by.actor.clone(),
            action: "note_add".to_owned(),
            target: Some(target.to_string()),
            source: by.source.clone(),
            detail: Some(serde_json::json!({
                "note_id": note.id,
                "author": by.name,
                "chars": body.chars().count(),
            })),
        })
        .await?;
        Ok(note)
    }

    /// Deletes note `id` when `by` wrote it, or whatever its author when `admin` is true.
    pub async fn delete_note(
        &mut self,
        id: i64,
        by: &Author,
        admin: bool,
    ) -> Result<NoteDeletion, StoreError> {
        let row = self
            .tx
            .query_opt(
                &format!(
                    "SELECT {} FROM notes t WHERE t.id = $1 FOR UPDATE",
                    note_columns()
                ),
                &[&id],
            )
            .await?;
        let Some(row) = row else {
            return Ok(NoteDeletion::NotFound);
        };
        let note = note_from(&row, 0)?;
        if note.author != by.name && !admin {
            return Ok(NoteDeletion::NotAuthor {
                author: note.author,
            });
        }
        self.tx
            .execute("DELETE FROM notes WHERE id = $1", &[&id])
            .await?;
        self.audit(&AuditEntry {
            actor: by.actor.clone(),
            action: "note_delete".to_owned(),
            target: Some(format!("{}:{}", note.kind, note.value)),
            source: by.source.clone(),
            detail: Some(serde_json::json!({
                "note_id": id,
                "author": note.author,
                "written_at": note.created_at,
            })),
        })
        .await?;
        Ok(NoteDeletion::Deleted(note))
    }
}
