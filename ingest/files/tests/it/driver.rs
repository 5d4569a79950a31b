//! The import driver against a real database: the per-file lock, the cursor and resume,
//! re-import detection, batches that span files, progress events.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use certhist_files::{
    import_files, CertificateFiles, ImportError, ImportEvent, ImportOptions, NoProgress,
    ObservationFiles,
};
use certhist_test_support::TestDb;

use crate::data_dir;

async fn scalar(db: &TestDb, sql: &str) -> i64 {
    let (c, conn) = db.pg_config().connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    c.query_one(sql, &[]).await.unwrap().get(0)
}

/// `n` sightings of distinct keys, with blank and comment lines between (the cursor counts
/// lines, not rows).
fn sightings(dir: &std::path::Path, n: u32) -> PathBuf {
    let path = dir.join("sightings.csv");
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(f, "# exported sightings\nip,port,sha1,first_seen").unwrap();
    for i in 0..n {
        writeln!(f, "192.0.2.{},443,{:040x},1700000000", i % 250, i).unwrap();
        if i % 3 == 0 {
            writeln!(f).unwrap();
        }
    }
    path
}

/// Issue 11: the driver holds the per-file advisory lock for the whole import: while another
/// session holds it, an import of the same bytes fails at once with `Busy` and writes nothing.
#[tokio::test]
async fn a_file_locked_by_another_session_is_refused() {
    let db = TestDb::new().await;
    let store = db.store();
    let dir = tempfile::tempdir().unwrap();
    let path = sightings(dir.path(), 10);
    let sha = certhist_files::input::content_sha256(&path).unwrap();
    let other = store.conn().await.unwrap();
    assert!(other.try_lock_file(&sha).await.unwrap());
    let format = Arc::new(ObservationFiles::default());
    let err = import_files(
        &store,
        format.clone(),
        std::slice::from_ref(&path),
        &ImportOptions::default(),
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ImportError::Busy { .. }), "{err}");
    assert!(err
        .to_string()
        .contains("is being imported by another certhist process"));
    assert_eq!(scalar(&db, "SELECT count(*) FROM observations").await, 0);
    other.unlock_file(&sha).await.unwrap();
    let report = import_files(
        &store,
        format,
        std::slice::from_ref(&path),
        &ImportOptions::default(),
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(report.files[0].records, 10);
}

/// An import stopped after two batches resumes after the committed cursor (a line number for
/// observation files), a complete one is skipped, and `force` adds the counts again.
#[tokio::test]
async fn counted_imports_resume_skip_and_force() {
    let db = TestDb::new().await;
    let store = db.store();
    let dir = tempfile::tempdir().unwrap();
    let path = sightings(dir.path(), 30);
    let lines = std::fs::read_to_string(&path).unwrap().lines().count() as u64;
    let format = Arc::new(ObservationFiles {
        source: Some("test".to_owned()),
    });
    let paths = [path.clone()];
    let run = |options: ImportOptions| {
        let store = store.clone();
        let format = format.clone();
        let paths = paths.clone();
        async move {
            import_files(&store, format, &paths, &options, &NoProgress)
                .await
                .unwrap()
                .files
                .remove(0)
        }
    };
    let part = run(ImportOptions {
        batch_items: 4,
        max_batches: Some(2),
        ..ImportOptions::default()
    })
    .await;
    assert_eq!((part.records, part.complete), (8, false));
    // Header, comment and blank lines are lines: the cursor is the line of the 8th row.
    let text = std::fs::read_to_string(&path).unwrap();
    let line_of_8th = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("192."))
        .nth(7)
        .unwrap()
        .0 as u64
        + 1;
    assert_eq!(part.cursor, line_of_8th);
    assert_eq!(
        scalar(&db, "SELECT rows_done FROM imported_files").await,
        line_of_8th as i64
    );
    let rest = run(ImportOptions {
        batch_items: 4,
        ..ImportOptions::default()
    })
    .await;
    assert_eq!(
        (
            rest.resumed_after_items,
            rest.records,
            rest.complete,
            rest.cursor
        ),
        (line_of_8th, 22, true, lines)
    );
    assert_eq!(
        scalar(&db, "SELECT sum(times_seen)::bigint FROM observations").await,
        30
    );
    let again = run(ImportOptions::default()).await;
    assert!(again.already_imported && again.records == 0, "{again:?}");
    let forced = run(ImportOptions {
        force: true,
        ..ImportOptions::default()
    })
    .await;
    assert_eq!((forced.already_imported, forced.records), (false, 30));
    assert_eq!(
        scalar(&db, "SELECT sum(times_seen)::bigint FROM observations").await,
        60
    );
}

/// Certificate files are harmless: batches span files (the 55 small files of a directory in one
/// batch), each file's hash is taken while it is read, and progress events come in order.
#[tokio::test]
async fn harmless_imports_batch_across_files_and_report_events() {
    let db = TestDb::new().await;
    let store = db.store();
    let dir = data_dir().join("certificate-transparency-go/trillian/testdata");
    let files: Vec<PathBuf> = {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    };
    let events = Mutex::new(Vec::<String>::new());
    let sink = |e: &ImportEvent<'_>| {
        let text = match e {
            ImportEvent::FileStarted { path, .. } => format!("start {}", path.display()),
            ImportEvent::Progress { items } => format!("progress {items}"),
            ImportEvent::Problem(p) => format!("problem {p}"),
            ImportEvent::FileFinished(s) => format!("done {}", s.file),
            _ => "other".to_owned(),
        };
        events.lock().unwrap().push(text);
    };
    let report = import_files(
        &store,
        Arc::new(CertificateFiles),
        std::slice::from_ref(&dir),
        &ImportOptions {
            batch_items: 10_000,
            ..ImportOptions::default()
        },
        &sink,
    )
    .await
    .unwrap();
    assert_eq!(report.files.len(), files.len());
    let events = events.into_inner().unwrap();
    // One batch for the whole directory: a single progress event, after every file.
    let progress: Vec<&String> = events
        .iter()
        .filter(|e| e.starts_with("progress"))
        .collect();
    assert_eq!(progress.len(), 1, "{events:?}");
    assert_eq!(events.last(), progress.last().copied());
    let mut expected = Vec::new();
    for f in &files {
        expected.push(format!("start {}", f.display()));
        expected.push(format!("done {}", f.display()));
    }
    let order: Vec<&String> = events
        .iter()
        .filter(|e| !e.starts_with("progress"))
        .collect();
    assert_eq!(order, expected.iter().collect::<Vec<_>>());
    for (f, s) in files.iter().zip(&report.files) {
        let want = hex::encode(certhist_files::input::content_sha256(f).unwrap());
        assert_eq!(s.content_sha256, want, "{}", f.display());
    }
    let distinct = scalar(&db, "SELECT count(*) FROM certificates").await as u64;
    assert_eq!(report.totals.certs_new, distinct);
    assert_eq!(
        report.totals.certs_new + report.totals.certs_known,
        report.totals.certs_seen
    );
    // The chain files repeat the leaves: more occurrences than distinct certificates.
    assert!(report.totals.certs_seen > distinct, "{:?}", report.totals);
}
