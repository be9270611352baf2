//! The ledger file: schema versions, and writers in several threads with their own connections.

use paved_metrics::{DeploymentEvent, DeploymentStatus, Error, Ledger, LedgerEvent};

#[test]
fn a_newer_schema_is_refused_not_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    drop(Ledger::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    match Ledger::open(&path) {
        Err(Error::SchemaTooNew { found: 99, .. }) => {}
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    // Reopening an up-to-date ledger migrates nothing and keeps the data.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    drop(conn);
    let l = Ledger::open(&path).unwrap();
    l.write(&[LedgerEvent::Deployment(DeploymentEvent::new(
        "a",
        "s",
        "t",
        "production",
        DeploymentStatus::Success,
        0,
        1,
    ))])
    .unwrap();
    drop(l);
    assert_eq!(Ledger::open(&path).unwrap().count_deployments().unwrap(), 1);
}

#[test]
fn threads_with_their_own_ledgers_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    Ledger::open(&path).unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let path = &path;
            s.spawn(move || {
                let l = Ledger::open(path).unwrap();
                for i in 0..50 {
                    let d = DeploymentEvent::new(
                        &format!("{t}-{i}"),
                        "svc",
                        "team",
                        "production",
                        DeploymentStatus::Success,
                        i,
                        i + 1,
                    );
                    l.write(&[LedgerEvent::Deployment(d)]).unwrap();
                }
            });
        }
    });
    assert_eq!(Ledger::open(&path).unwrap().count_deployments().unwrap(), 200);
}
