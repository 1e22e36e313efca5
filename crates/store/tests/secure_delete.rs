//! SQLite runs with `secure_delete`: a deleted secret's bytes are not left
//! in the database file or its write-ahead log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeZone, Utc};
use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use guichet_store::repo::outbox::{self, Message};
use guichet_store::{DatabaseUrl, PoolOptions, Store};

const SECRET: &str = "SECRET-7f3a9c1e5b2d4086-CODE-481516";

fn occurrences(path: &std::path::Path) -> usize {
    let Ok(bytes) = std::fs::read(path) else {
        return 0;
    };
    bytes
        .windows(SECRET.len())
        .filter(|w| *w == SECRET.as_bytes())
        .count()
}

fn message(id: &str) -> Message {
    Message {
        id: id.to_owned(),
        org_id: None,
        channel: "email".into(),
        recipient: "someone@example.com".into(),
        subject: "code".into(),
        body: format!("Your code is {SECRET}."),
        template: "login_code".into(),
        attempts: 0,
        created_at: Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap(),
    }
}

/// Writes a secret, deletes it, lets SQLite checkpoint as it does on its
/// own (passive checkpoint, then the log is reused by the next write), and
/// returns how often the secret's bytes are found in the file and the WAL.
fn write_delete_checkpoint(extra_pragmas: &str) -> (usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    let store =
        Store::connect(&DatabaseUrl::Sqlite(path.clone()), &PoolOptions::one_shot()).unwrap();
    let mut conn = store.conn().unwrap();
    if let guichet_store::DbConnection::Sqlite(c) = &mut *conn {
        c.batch_execute(extra_pragmas).unwrap();
    }
    // Padding rows so that the secret sits in a page shared with live rows.
    for i in 0..20 {
        let mut m = message(&format!("msg_pad{i:02}"));
        m.body = format!("padding {i}");
        outbox::enqueue(&mut conn, &m).unwrap();
    }
    outbox::enqueue(&mut conn, &message("msg_secret")).unwrap();
    diesel::sql_query("DELETE FROM outbox WHERE id = 'msg_secret'")
        .execute(&mut *conn)
        .unwrap();
    diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)")
        .execute(&mut *conn)
        .unwrap();
    // The next write starts the log over (and cuts it to the kept size).
    let mut after = message("msg_after");
    after.body = "after".into();
    outbox::enqueue(&mut conn, &after).unwrap();
    let wal = path.with_file_name("g.db-wal");
    let found = (occurrences(&path), occurrences(&wal));
    drop(conn);
    drop(store);
    found
}

#[test]
fn a_deleted_secret_is_not_left_in_the_file_or_the_wal() {
    let (file, wal) = write_delete_checkpoint("");
    assert_eq!(file, 0, "secret left in the database file");
    assert_eq!(wal, 0, "secret left in the write-ahead log");
}

/// The same run without the two pragmas leaves the secret behind, so the
/// test above would catch their removal.
#[test]
fn without_the_pragmas_the_secret_stays() {
    let (file, wal) =
        write_delete_checkpoint("PRAGMA secure_delete = OFF; PRAGMA journal_size_limit = -1;");
    assert!(file + wal > 0, "the control run should leave the secret");
}
