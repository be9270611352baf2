//! Importing: strict mode commits all or nothing, a failing write or input never hangs or
//! half-commits, and re-recording an event merges instead of forgetting.

use std::io::{BufReader, Read};
use std::sync::mpsc;
use std::time::Duration;

use paved_metrics::{DoraQuery, ImportOptions, Ledger, parse_time};
use serde_json::json;

fn t(s: &str) -> i64 {
    parse_time("t", s).unwrap()
}

fn deployment(i: usize) -> String {
    json!({"type": "deployment", "id": format!("d{i}"), "service": format!("svc-{}", i % 7), "team": "team",
           "environment": "production", "status": "success", "started_at": "2026-11-10T10:00:00Z",
           "finished_at": "2026-11-10T10:05:00Z",
           "commits": [{"sha": format!("sha-{i}"), "committed_at": "2026-11-10T09:00:00Z"}]})
    .to_string()
}

fn lines(n: usize) -> Vec<String> {
    (0..n).map(deployment).collect()
}

fn fresh() -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open_in(dir.path()).unwrap();
    (dir, l)
}

/// Runs `f` on its own thread and fails the test if it does not end within a minute.
fn within_a_minute<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(f()).unwrap());
    rx.recv_timeout(Duration::from_secs(60)).expect("the import hung")
}

#[test]
fn strict_import_writes_nothing_when_a_line_is_bad_wherever_it_is() {
    // 4,500 lines in batches of 2,000: a bad line late in the file comes after batches that a
    // careless writer would already have written.
    let n = 4_500;
    let strict = ImportOptions::strict(true).batch(2_000);
    for at in [0, n / 2, n - 1] {
        let (_d, l) = fresh();
        let mut input = lines(n);
        input[at] = r#"{"type":"deployment","id":"broken""#.into();
        let report = l.import_with(input.join("\n").as_bytes(), strict, |_| {}).unwrap();
        assert!(report.aborted, "bad line at {at}");
        assert_eq!(report.rejected.iter().map(|b| b.line).collect::<Vec<_>>(), [at + 1]);
        assert_eq!((report.deployments, report.incidents), (0, 0));
        assert_eq!(l.count_deployments().unwrap(), 0, "bad line at {at}: nothing written");
        // Without strict, every other line is written.
        let report = l.import_with(input.join("\n").as_bytes(), ImportOptions::default().batch(2_000), |_| {}).unwrap();
        assert_eq!((report.deployments, report.rejected.len()), (n as u64 - 1, 1));
        assert_eq!(l.count_deployments().unwrap(), n as u64 - 1);
    }
}

#[test]
fn a_line_that_is_not_utf8_is_a_bad_line_not_the_end_of_the_input() {
    let mut input = lines(3).join("\n").into_bytes();
    input.extend_from_slice(b"\n{\"type\":\"deployment\",\"id\":\"\xff\xfe\"}\n");
    input.extend_from_slice(deployment(3).as_bytes());
    let (_d, l) = fresh();
    let report = l.import(&input[..], true).unwrap();
    assert!(report.aborted);
    assert_eq!(report.rejected[0].line, 4);
    assert!(report.rejected[0].reason.contains("not UTF-8"), "{:?}", report.rejected);
    assert_eq!(l.count_deployments().unwrap(), 0, "strict: nothing written");
    let report = l.import(&input[..], false).unwrap();
    assert_eq!((report.deployments, report.rejected.len()), (4, 1), "the line after it was read too");
}

/// Input that fails with an I/O error after `ok` bytes.
struct FailingAfter {
    data: Vec<u8>,
    at: usize,
    ok: usize,
}

impl Read for FailingAfter {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at >= self.ok {
            return Err(std::io::Error::other("the disk went away"));
        }
        let n = buf.len().min(self.ok - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[test]
fn an_input_that_fails_to_read_commits_nothing_when_strict() {
    let data = lines(5_000).join("\n").into_bytes();
    let ok = data.len() * 9 / 10;
    let (_d, l) = fresh();
    let input = BufReader::new(FailingAfter { data: data.clone(), at: 0, ok });
    let e = l.import_with(input, ImportOptions::strict(true).batch(2_000), |_| {}).unwrap_err();
    assert!(e.to_string().contains("the disk went away"), "{e}");
    assert_eq!(l.count_deployments().unwrap(), 0, "strict: nothing committed");
    // Without strict, the whole batches read before the error stay.
    let input = BufReader::new(FailingAfter { data, at: 0, ok });
    l.import_with(input, ImportOptions::default().batch(2_000), |_| {}).unwrap_err();
    assert_eq!(l.count_deployments().unwrap(), 4_000);
}

#[test]
fn a_failing_write_ends_the_import_with_its_error_instead_of_hanging() {
    for strict in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open_in(dir.path()).unwrap();
        // A write that fails like a full disk would, early in a long input: the parser is far
        // ahead and blocks on the full channel unless the writer lets it go.
        let conn = rusqlite::Connection::open(l.path()).unwrap();
        conn.execute_batch(
            "CREATE TRIGGER full_disk BEFORE INSERT ON deployments WHEN NEW.id = 'd30500'
             BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
        )
        .unwrap();
        drop(conn);
        // Batches of 1,000: the parser is many full batches ahead of the failing write.
        let input = lines(40_000).join("\n");
        let (result, count) = within_a_minute(move || {
            let r = l.import_with(input.as_bytes(), ImportOptions::strict(strict).batch(1_000), |_| {});
            (r.map(drop), l.count_deployments().unwrap())
        });
        let e = result.unwrap_err();
        assert!(e.to_string().contains("disk is full"), "{e}");
        // Strict: nothing; otherwise the whole batches before the failing one.
        assert_eq!(count, if strict { 0 } else { 30_000 }, "strict = {strict}");
        drop(dir);
    }
}

#[test]
fn progress_is_reported_per_batch() {
    let (_d, l) = fresh();
    let input = lines(4_500).join("\n");
    let mut seen = Vec::new();
    let options = ImportOptions::default().batch(2_000);
    l.import_with(input.as_bytes(), options, |p| seen.push((p.lines, p.events, p.bytes))).unwrap();
    assert_eq!(seen.iter().map(|s| s.1).collect::<Vec<_>>(), [2_000, 4_000, 4_500]);
    // How far the input was read when each batch was full.
    let first_batch: usize = input.lines().take(2_000).map(|l| l.len() + 1).sum();
    assert_eq!((seen[0].0, seen[0].2), (2_000, first_batch as u64));
    assert_eq!(seen.last().unwrap().2, input.len() as u64);
}

#[test]
fn re_recording_merges_instead_of_forgetting() {
    let (_d, l) = fresh();
    let base = json!({"type": "deployment", "service": "api", "team": "t", "environment": "production",
                      "started_at": "2026-11-10T10:00:00Z"});
    let with = |fields: serde_json::Value| {
        let mut v = base.clone();
        for (k, val) in fields.as_object().unwrap() {
            v[k] = val.clone();
        }
        v.to_string()
    };
    let import = |l: &Ledger, line: String| {
        let r = l.import(line.as_bytes(), true).unwrap();
        assert!(r.is_clean(), "{:?}", r.rejected);
    };
    // A deployment, rolled back later by a rollback run.
    import(
        &l,
        with(
            json!({"id": "good", "status": "success", "finished_at": "2026-11-09T10:05:00Z", "started_at": "2026-11-09T10:00:00Z"}),
        ),
    );
    import(
        &l,
        with(json!({"id": "bad", "status": "success", "finished_at": "2026-11-10T10:05:00Z", "unplanned": true,
                           "commits": [{"sha": "has a space", "committed_at": "2026-11-10T09:00:00Z"}]})),
    );
    import(
        &l,
        with(
            json!({"id": "rb", "status": "success", "finished_at": "2026-11-10T11:05:00Z", "rollback": true, "started_at": "2026-11-10T11:00:00Z"}),
        ),
    );
    // Linked, resolved incident.
    let incident = json!({"type": "incident", "id": "i", "service": "api", "team": "t", "environment": "production",
                          "deployment_id": "good", "opened_at": "2026-11-09T11:00:00Z", "resolved_at": "2026-11-09T12:00:00Z"});
    import(&l, incident.to_string());
    let q = DoraQuery::new(t("2026-11-30T00:00:00Z"));
    let before = l.dora(&q).unwrap();
    assert_eq!((before.change_failure_rate.failed, before.change_failure_rate.rolled_back), (2, 1));
    assert_eq!((before.rework_rate.unplanned, before.lead_time.changes), (1, 1));

    // Re-sent without the fields that are already known: nothing is forgotten. The mark of the
    // rollback stays, `unplanned` stays, the commit (whose SHA has a space) stays.
    import(&l, with(json!({"id": "bad", "status": "success", "finished_at": "2026-11-10T10:05:00Z"})));
    // A stale "started" event does not re-open it (the import format has no in-progress
    // status; paved's recorder sends one).
    let mut started = paved_metrics::DeploymentEvent::new(
        "bad",
        "api",
        "t",
        "production",
        paved_metrics::DeploymentStatus::InProgress,
        t("2026-11-10T10:00:00Z"),
        0,
    );
    started.finished_at = None;
    l.write(&[paved_metrics::LedgerEvent::Deployment(started)]).unwrap();
    // The incident re-sent without deployment_id and resolved_at stays linked and resolved.
    let mut stale = incident.clone();
    stale.as_object_mut().unwrap().remove("deployment_id");
    stale.as_object_mut().unwrap().remove("resolved_at");
    import(&l, stale.to_string());
    assert_eq!(l.dora(&q).unwrap(), before);
    assert_eq!((l.count_deployments().unwrap(), l.count_incidents().unwrap()), (3, 1));

    // A newer event that sets a field does change it.
    let mut moved = incident;
    moved["resolved_at"] = json!("2026-11-09T13:00:00Z");
    import(&l, moved.to_string());
    import(
        &l,
        with(json!({"id": "bad", "status": "success", "finished_at": "2026-11-10T10:05:00Z",
                           "commits": [{"sha": "other", "committed_at": "2026-11-10T08:00:00Z"}]})),
    );
    let after = l.dora(&q).unwrap();
    assert_eq!(after.lead_time.changes, 1);
    assert_eq!(after.lead_time.median_seconds, Some(7_500.0)); // 08:00 → 10:05
    assert_ne!(after.recovery_time, before.recovery_time);
}

#[test]
fn surveys_and_tickets_are_validated_with_hints() {
    let (_d, l) = fresh();
    let bad = [
        (r#"{"type":"survey","id":"s","team":"t","at":"2026-11-10T10:00:00Z","score":11}"#, "not a score from 0 to 10"),
        (
            r#"{"type":"survey","id":"s","team":"t","at":"2026-11-10T10:00:00Z","score":9.5}"#,
            "not a score from 0 to 10",
        ),
        (
            r#"{"type":"survey","id":"s","team":"t","at":"2026-11-10T10:00:00Z","score":"9"}"#,
            "not a score from 0 to 10",
        ),
        (r#"{"type":"survey","id":"s","team":"t","at":"2026-11-10T10:00:00Z","score":-1}"#, "not a score from 0 to 10"),
        (r#"{"type":"survey","id":"s","team":"t","at":"2026-11-10T10:00:00Z"}"#, "invalid score"),
        (r#"{"type":"survey","id":"s","team":"t","score":9}"#, "invalid at"),
        (
            r#"{"type":"survey","id":"s","team":"t","at":"2026-11-10T10:00:00Z","score":9,"status":"success"}"#,
            "not a field of a survey",
        ),
        (r#"{"type":"support_ticket","id":"k","team":"t","opened_at":"2026-11-10T10:00:00Z"}"#, "invalid category"),
        (
            r#"{"type":"support_ticket","id":"k","team":"t","category":"db","opened_at":"2026-11-10T10:00:00Z","resolved_at":"2026-11-09T10:00:00Z"}"#,
            "before opened_at",
        ),
        (r#"{"type":"suport_ticket","id":"k","team":"t"}"#, "not a known type"),
    ];
    for (line, expected) in bad {
        let r = l.import(line.as_bytes(), true).unwrap();
        assert!(r.aborted, "{line}");
        assert!(r.rejected[0].reason.contains(expected), "{line}: {:?}", r.rejected[0]);
        assert!(r.rejected[0].hint.is_some(), "{line}: no hint");
    }
    let r = l.import(r#"{"type":"suport_ticket","id":"k","team":"t"}"#.as_bytes(), true).unwrap();
    assert_eq!(r.rejected[0].hint.as_deref(), Some("did you mean \"support_ticket\"?"));
}

#[test]
fn nps_and_tickets_per_week_with_trends() {
    let (_d, l) = fresh();
    let mut input = Vec::new();
    // This window (Oct 31 → Nov 30): 10, 9, 8, 6, 0 → 2 promoters, 1 passive, 2 detractors: NPS 0.
    for (i, score) in [10, 9, 8, 6, 0].iter().enumerate() {
        input.push(json!({"type": "survey", "id": format!("now-{i}"), "team": "payments", "score": score,
                          "at": format!("2026-11-1{i}T10:00:00Z"), "comment": "fine"}));
    }
    // The window before: 10, 10, 7, 3 → 2 promoters, 1 detractor of 4: NPS 25.
    for (i, score) in [10, 10, 7, 3].iter().enumerate() {
        input.push(json!({"type": "survey", "id": format!("before-{i}"), "team": "search", "score": score,
                          "at": format!("2026-10-1{i}T10:00:00Z")}));
    }
    // Tickets: 6 in this window (one still open), 3 in the window before.
    for i in 0..6 {
        let mut v = json!({"type": "support_ticket", "id": format!("T-{i}"), "team": "payments",
                           "category": if i < 4 { "deploys" } else { "databases" },
                           "opened_at": format!("2026-11-0{}T10:00:00Z", i + 1)});
        if i > 0 {
            v["resolved_at"] = json!(format!("2026-11-0{}T12:00:00Z", i + 1));
        }
        input.push(v);
    }
    for i in 0..3 {
        input.push(json!({"type": "support_ticket", "id": format!("old-{i}"), "team": "search", "category": "access",
                          "opened_at": format!("2026-10-0{}T10:00:00Z", i + 5), "resolved_at": "2026-10-20T00:00:00Z"}));
    }
    let text: Vec<String> = input.iter().map(|v| v.to_string()).collect();
    let r = l.import(text.join("\n").as_bytes(), true).unwrap();
    assert_eq!((r.surveys, r.support_tickets), (9, 9));
    let a = l.adoption(t("2026-11-30T00:00:00Z"), 30 * 86_400, &Default::default()).unwrap();
    let s = &a.satisfaction;
    assert_eq!((s.responses, s.promoters, s.passives, s.detractors), (5, 2, 1, 2));
    assert_eq!((s.nps, s.previous_nps, s.nps_change), (Some(0.0), Some(25.0), Some(-25.0)));
    let k = &a.support;
    let weeks = 30.0 / 7.0;
    assert_eq!(k.tickets, 6);
    assert!((k.tickets_per_week - 6.0 / weeks).abs() < 1e-9);
    assert!((k.previous_tickets_per_week - 3.0 / weeks).abs() < 1e-9);
    assert_eq!(k.open, 1);
    assert_eq!(k.resolution_median_seconds, Some(7_200.0));
    assert_eq!(k.by_category.get("deploys"), Some(&4));
    let text = a.to_text();
    assert!(text.contains("developer NPS              +0 (5 answers; previous window +25, change -25)"), "{text}");
    // Re-importing changes nothing.
    l.import(text_lines(&input).as_bytes(), true).unwrap();
    assert_eq!(l.adoption(t("2026-11-30T00:00:00Z"), 30 * 86_400, &Default::default()).unwrap(), a);
}

fn text_lines(v: &[serde_json::Value]) -> String {
    v.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("\n")
}

#[test]
fn import_reads_crlf_and_blank_lines() {
    let (_d, l) = fresh();
    let input = format!("{}\r\n\r\n   \n{}\r\n", deployment(1), deployment(2));
    let r = l.import(input.as_bytes(), true).unwrap();
    assert!(r.is_clean(), "{:?}", r.rejected);
    assert_eq!(r.deployments, 2);
}

#[test]
fn a_line_over_a_mebibyte_is_a_bad_line_and_the_next_one_is_read() {
    let (_d, l) = fresh();
    let huge = format!(r#"{{"type":"deployment","id":"{}"}}"#, "x".repeat(2 << 20));
    let input = format!("{}\n{huge}\n{}\n", deployment(1), deployment(2));
    let report = l.import(input.as_bytes(), false).unwrap();
    assert_eq!(report.deployments, 2);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].line, 2);
    assert!(report.rejected[0].reason.contains("longer than 1 MiB"), "{:?}", report.rejected);
}

#[test]
fn an_id_of_another_teams_event_is_refused_not_taken_over() {
    let (_d, l) = fresh();
    let ours = r#"{"type":"deployment","id":"1234","service":"checkout","team":"shop","environment":"production","status":"success","started_at":"2026-11-10T10:00:00Z","finished_at":"2026-11-10T10:05:00Z"}"#;
    let theirs = ours.replace("checkout", "search").replace("shop", "discovery");
    l.import(ours.as_bytes(), true).unwrap();
    let e = l.import(theirs.as_bytes(), true).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"invalid id "1234": is already the id of a deployment of service checkout (team shop) in production"#
    );
    assert!(e.hint().unwrap().contains("its own id"));
    let incident = r#"{"type":"incident","id":"INC-1","service":"checkout","team":"shop","environment":"production","opened_at":"2026-11-10T11:00:00Z"}"#;
    l.import(incident.as_bytes(), true).unwrap();
    let e = l.import(incident.replace("shop", "discovery").as_bytes(), true).unwrap_err();
    assert!(e.to_string().contains("is already the id of a incident of service checkout (team shop)"), "{e}");
    let ticket =
        r#"{"type":"support_ticket","id":"T-1","team":"shop","category":"deploys","opened_at":"2026-11-10T11:00:00Z"}"#;
    l.import(ticket.as_bytes(), true).unwrap();
    let e = l.import(ticket.replace("shop", "discovery").as_bytes(), true).unwrap_err();
    assert!(e.to_string().contains("support ticket of team shop"), "{e}");
    // Nothing moved.
    let r = l.dora(&DoraQuery::new(t("2026-11-30T00:00:00Z")).team(Some("shop"))).unwrap();
    assert_eq!(r.deployment_frequency.deployments, 1);
}

/// Deployments whose commits are shared between deployments, services and environments, listed
/// twice by one deployment, and delivered by failures as well as successes: first deliveries
/// decided across many rows of one batch.
fn tangled_history() -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..400usize {
        let env = if i % 3 == 0 { "staging" } else { "production" };
        let status = if i % 11 == 0 { "failure" } else { "success" };
        let mut commits: Vec<serde_json::Value> = (0..1 + i % 5)
            .map(|k| {
                let sha = format!("{:040x}", (i / 4 + k * 37) % 150);
                json!({"sha": sha, "committed_at": format!("2026-11-01T{:02}:{:02}:00Z", k % 24, i % 60)})
            })
            .collect();
        if i % 13 == 0 {
            // The same SHA twice, the later commit time first.
            let mut again = commits[0].clone();
            again["committed_at"] = json!("2026-10-31T00:00:00Z");
            commits.insert(0, commits[0].clone());
            commits.push(again);
        }
        out.push(
            json!({"type": "deployment", "id": format!("t{i}"), "service": format!("svc-{}", i % 3), "team": "team",
                   "environment": env, "status": status,
                   "started_at": format!("2026-11-{:02}T10:00:00Z", 2 + i / 20),
                   "finished_at": format!("2026-11-{:02}T10:{:02}:00Z", 2 + i / 20, 5 + i % 50),
                   "commits": commits})
            .to_string(),
        );
    }
    out
}

#[test]
fn a_batched_import_decides_first_deliveries_as_event_by_event_writes_do() {
    let input = tangled_history();
    // One batch of all 400 deployments (hundreds of commit rows, inserted many a statement)...
    let (_a, batched) = fresh();
    let report = batched.import_with(input.join("\n").as_bytes(), ImportOptions::default(), |_| {}).unwrap();
    assert_eq!(report.deployments, 400);
    // ...and, in reverse order, batches of 7 against one event a transaction.
    let (_b, small) = fresh();
    let reversed: Vec<String> = input.iter().rev().cloned().collect();
    small.import_with(reversed.join("\n").as_bytes(), ImportOptions::default().batch(7), |_| {}).unwrap();
    let (_c, single) = fresh();
    for line in &input {
        single.import(line.as_bytes(), true).unwrap();
    }
    let q = DoraQuery::new(t("2026-11-30T00:00:00Z")).window(90 * 86_400);
    let expected = serde_json::to_value(single.dora(&q).unwrap()).unwrap();
    assert!(expected.to_string().contains("lead_time"), "{expected}");
    assert_eq!(serde_json::to_value(batched.dora(&q).unwrap()).unwrap(), expected);
    assert_eq!(serde_json::to_value(small.dora(&q).unwrap()).unwrap(), expected);
}

#[test]
fn a_batched_import_empties_the_log_when_it_ends() {
    let (dir, l) = fresh();
    let report =
        l.import_with(lines(5_000).join("\n").as_bytes(), ImportOptions::default().batch(500), |_| {}).unwrap();
    assert_eq!(report.deployments, 5_000);
    let wal = dir.path().join("ledger.sqlite-wal");
    assert_eq!(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0), 0, "{wal:?}");
    // Another connection sees every event in the database file itself.
    let conn = rusqlite::Connection::open(l.path()).unwrap();
    let n: i64 = conn.query_row("SELECT count(*) FROM deployments", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 5_000);
}
