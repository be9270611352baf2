//! The ledger file: schema versions, and writers in several threads with their own connections.

use paved_metrics::{DeploymentEvent, DeploymentStatus, Error, Ledger, LedgerEvent};

#[cfg(unix)]
#[test]
fn a_ledger_that_is_a_symlink_is_refused_and_its_target_untouched() {
    let (dir, outside) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let victim = outside.path().join("bashrc");
    std::fs::write(&victim, "export PATH=/usr/bin\n").unwrap();
    let missing = outside.path().join("new.sqlite");
    for target in [&victim, &missing] {
        let link = dir.path().join("ledger.sqlite");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(target, &link).unwrap();
        assert!(Ledger::open(&link).is_err(), "{} was opened through a link", target.display());
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "export PATH=/usr/bin\n");
    assert!(!missing.exists(), "nothing was created outside");
}

#[test]
fn a_newer_schema_is_refused_not_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    drop(Ledger::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    match Ledger::open(&path) {
        Err(Error::SchemaTooNew { found: 99, .. }) => {}
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    // Reopening an up-to-date ledger migrates nothing and keeps the data.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", current).unwrap();
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
