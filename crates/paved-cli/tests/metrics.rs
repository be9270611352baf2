//! `paved events` and `paved metrics` end to end: import, bad input, DORA output, concurrent
//! writers, and `/metrics` of a running `paved metrics serve` scraped by a real Prometheus server.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use assert_cmd::cargo::cargo_bin;
use serde_json::{Value, json};

fn paved(dir: &Path) -> Command {
    let mut cmd = Command::new(cargo_bin("paved"));
    cmd.current_dir(dir).env_remove("PAVED_STATE_DIR").env_remove("PAVED_CONFIG").env("PAVED_ACTOR", "tester");
    cmd.arg("--state-dir").arg(dir.join("state"));
    cmd
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.stdin(Stdio::null()).output().expect("paved runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn deployment(id: &str, team: &str, status: &str, finished: &str) -> String {
    json!({"type": "deployment", "id": id, "service": format!("{team}-svc"), "team": team, "environment": "production",
           "status": status, "started_at": "2026-11-01T00:00:00Z", "finished_at": finished,
           "commits": [{"sha": format!("{id}-c"), "committed_at": "2026-10-31T00:00:00Z"}]})
    .to_string()
}

#[test]
fn import_then_dora_json() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        deployment("d1", "payments", "success", "2026-11-02T00:00:00Z"),
        deployment("d2", "payments", "failure", "2026-11-03T00:00:00Z"),
        deployment("d3", "payments", "success", "2026-11-03T02:00:00Z"),
        json!({"type": "incident", "id": "i1", "service": "payments-svc", "team": "payments", "environment": "production",
               "deployment_id": "d3", "opened_at": "2026-11-04T00:00:00Z", "resolved_at": "2026-11-04T00:30:00Z"})
        .to_string(),
    ];
    std::fs::write(dir.path().join("events.jsonl"), lines.join("\n") + "\n").unwrap();
    let (code, out, err) = run(paved(dir.path()).args(["events", "import", "events.jsonl"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("imported 3 deployments and 1 incident into"), "{out}");
    // Importing the same ids again updates, never duplicates.
    assert_eq!(run(paved(dir.path()).args(["events", "import", "events.jsonl"])).0, 0);

    let (code, out, err) =
        run(paved(dir.path()).args(["metrics", "dora", "--now", "2026-11-30T00:00:00Z", "--output", "json"]));
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["deployment_frequency"]["deployments"], 2);
    // d2 never reached production (failed to apply); d3 caused an incident.
    assert_eq!(v["failed_to_apply"], 1);
    assert_eq!(
        v["change_failure_rate"],
        json!({"ratio": 0.5, "failed": 1, "rolled_back": 0, "incident_linked": 1, "rollout_failed": 0, "deployments": 2,
               "level": "low"})
    );
    // Recovery: d3, from its end (before the incident opened) to the resolution: 22.5 hours.
    assert_eq!(v["recovery_time"]["median_seconds"], 81_000.0);
    // Leads: d1-c 2 days, d3-c 3 days 2 hours.
    assert_eq!(v["lead_time"]["changes"], 2);
    assert_eq!(v["lead_time"]["median_seconds"], (2.0 * 86400.0 + 3.0 * 86400.0 + 7200.0) / 2.0);

    let (code, out, _) =
        run(paved(dir.path()).args(["metrics", "dora", "--now", "2026-11-30T00:00:00Z", "--by", "team"]));
    assert_eq!(code, 0);
    assert!(out.lines().any(|l| l.starts_with("payments") && l.contains("low")), "{out}");
    let (code, out, _) = run(paved(dir.path()).args(["metrics", "dora", "--now", "2026-11-30T00:00:00Z"]));
    assert_eq!(code, 0);
    assert!(out.contains("change failure rate") && out.contains("DORA 2023"), "{out}");
}

#[test]
fn bad_input_has_line_numbers_and_hints() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        deployment("d1", "payments", "success", "2026-11-02T00:00:00Z"),
        "{oops".to_string(),
        deployment("d2", "payments", "sucess", "2026-11-02T00:00:00Z"),
        r#"{"type":"incidnt","id":"i","service":"s","team":"t","environment":"production","opened_at":"2026-11-01T00:00:00Z"}"#.to_string(),
        deployment("d3", "payments", "success", "2026-10-01T00:00:00Z"), // finished before started
        deployment("d4", "payments", "success", "2026-11-02 00:00"),
    ];
    std::fs::write(dir.path().join("bad.jsonl"), lines.join("\n")).unwrap();
    let (code, _, err) = run(paved(dir.path()).args(["events", "import", "bad.jsonl", "--strict"]));
    assert_eq!(code, 2, "bad input, nothing imported: {err}");
    for expected in [
        "line 2: invalid JSON",
        "line 3: invalid status \"sucess\"",
        "did you mean \"success\"?",
        "line 4: invalid type \"incidnt\"",
        "did you mean \"incident\"?",
        "line 5: invalid finished_at",
        "before started_at",
        "line 6: invalid finished_at \"2026-11-02 00:00\": is not an RFC 3339 time",
        "nothing imported",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    let (_, out, _) =
        run(paved(dir.path()).args(["metrics", "dora", "--now", "2026-11-30T00:00:00Z", "--output", "json"]));
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["deployment_frequency"]["deployments"],
        0,
        "strict imported nothing"
    );
    // Without --strict the good line is imported and the exit code is still 1.
    let (code, out, _) = run(paved(dir.path()).args(["events", "import", "bad.jsonl"]));
    assert_eq!(code, 1);
    assert!(out.contains("imported 1 deployment and 0 incidents") && out.contains("5 bad lines skipped"), "{out}");
    // Bad flags are usage errors.
    let (code, _, err) = run(paved(dir.path()).args(["metrics", "dora", "--window", "30x"]));
    assert_eq!(code, 2);
    assert!(err.contains("unknown unit") && err.contains("hint:"), "{err}");
    let (code, _, err) = run(paved(dir.path()).args(["metrics", "dora", "--now", "yesterday"]));
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(paved(dir.path()).args(["metrics", "dora", "--by", "tribe"]));
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(paved(dir.path()).args(["events", "import", "missing.jsonl"]));
    assert_eq!(code, 2, "a missing input file is bad input: {err}");
    assert!(err.contains("missing.jsonl: cannot read the file") && err.contains("hint: check the path"), "{err}");
    assert_eq!(err.matches("No such file").count(), 1, "the cause is printed once: {err}");
}

#[test]
fn stdin_and_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut child =
        paved(dir.path()).args(["events", "import", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(deployment("d1", "search", "success", "2026-11-02T00:00:00Z").as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    let (code, _, err) = run(paved(dir.path()).args([
        "events",
        "record",
        "--type",
        "deployment",
        "--id",
        "d2",
        "--service",
        "search-svc",
        "--team",
        "search",
        "--status",
        "failure",
        "--started-at",
        "2026-11-03T00:00:00Z",
        "--finished-at",
        "2026-11-03T00:10:00Z",
        "--commit",
        "abc@2026-11-02T00:00:00Z",
    ]));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(paved(dir.path()).args([
        "events",
        "record",
        "--type",
        "incident",
        "--id",
        "i1",
        "--service",
        "search-svc",
        "--team",
        "search",
        "--deployment-id",
        "d2",
        "--opened-at",
        "2026-11-03T00:05:00Z",
    ]));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(paved(dir.path()).args([
        "events",
        "record",
        "--type",
        "deployment",
        "--id",
        "d3",
        "--service",
        "s",
        "--team",
        "t",
        "--status",
        "done",
        "--started-at",
        "2026-11-03T00:00:00Z",
        "--finished-at",
        "2026-11-03T00:10:00Z",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("expected one of \"success\", \"failure\", \"rolled_back\""), "{err}");
    let (_, out, _) =
        run(paved(dir.path()).args(["metrics", "dora", "--now", "2026-11-30T00:00:00Z", "--output", "json"]));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["change_failure_rate"]["deployments"], 1);
    assert_eq!(v["failed_to_apply"], 1); // d2
    // i1 is linked to d2, which never reached production: no failed change, and reported with
    // the incidents linked to no production deployment.
    assert_eq!((&v["recovery_time"]["unrecovered"], &v["incidents"]["unresolved"]), (&json!(0), &json!(1)));

    // Developer satisfaction and support tickets.
    let survey = |extra: &[&str]| {
        let mut args = vec!["events", "record", "--type", "survey", "--id", "s1", "--team", "search"];
        args.extend_from_slice(extra);
        run(paved(dir.path()).args(args))
    };
    let (code, _, err) = survey(&["--score", "11", "--at", "2026-11-20T10:00:00Z"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--score") && err.contains("from 0 to 10") && err.contains("hint: give a whole number"),
        "{err}"
    );
    let (code, _, err) = survey(&["--score", "9", "--at", "2026-11-20T10:00:00Z", "--env", "production"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--env") && err.contains("is not a flag of `--type survey`"), "{err}");
    let (code, out, err) = survey(&["--score", "9", "--at", "2026-11-20T10:00:00Z", "--comment", "smooth"]);
    assert_eq!((code, out.as_str()), (0, "recorded survey s1\n"), "{err}");
    let (code, _, err) = run(paved(dir.path()).args([
        "events",
        "record",
        "--type",
        "support_ticket",
        "--id",
        "HELP-1",
        "--team",
        "search",
        "--category",
        "databases",
        "--opened-at",
        "2026-11-21T09:00:00Z",
    ]));
    assert_eq!(code, 0, "{err}");
    let (code, out, err) =
        run(paved(dir.path()).args(["metrics", "adoption", "--now", "2026-11-30T00:00:00Z", "--output", "json"]));
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((&v["satisfaction"]["nps"], &v["satisfaction"]["responses"]), (&json!(100.0), &json!(1)));
    assert_eq!((&v["support"]["tickets"], &v["support"]["open"]), (&json!(1), &json!(1)));
    assert_eq!(v["support"]["by_category"], json!({"databases": 1}));
}

#[test]
fn concurrent_writers_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Four importers of 300 deployments each and four recorders of 15 events each, at once.
    for p in 0..4 {
        let lines: Vec<String> = (0..300)
            .map(|i| deployment(&format!("p{p}-{i}"), &format!("team{p}"), "success", "2026-11-02T00:00:00Z"))
            .collect();
        std::fs::write(dir.path().join(format!("p{p}.jsonl")), lines.join("\n")).unwrap();
    }
    let mut children = Vec::new();
    for p in 0..4 {
        children.push(
            paved(dir.path()).args(["events", "import", &format!("p{p}.jsonl")]).stdout(Stdio::null()).spawn().unwrap(),
        );
    }
    let recorders: Vec<_> = (0..4)
        .map(|r| {
            let dir = dir.path().to_path_buf();
            std::thread::spawn(move || {
                for i in 0..15 {
                    let (code, _, err) = run(paved(&dir).args([
                        "events",
                        "record",
                        "--type",
                        "deployment",
                        "--id",
                        &format!("r{r}-{i}"),
                        "--service",
                        "rec",
                        "--team",
                        "rec",
                        "--status",
                        "success",
                        "--started-at",
                        "2026-11-05T00:00:00Z",
                        "--finished-at",
                        "2026-11-05T00:01:00Z",
                    ]));
                    assert_eq!(code, 0, "{err}");
                }
            })
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    for r in recorders {
        r.join().unwrap();
    }
    let ledger = paved::metrics::Ledger::open_in(dir.path().join("state")).unwrap();
    assert_eq!(ledger.count_deployments().unwrap(), 4 * 300 + 4 * 15);
}

#[test]
fn deploys_are_recorded_and_scraped_by_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(paved(dir.path()).args([
        "deploy",
        "--app",
        "my-service",
        "--image",
        "ghcr.io/company/my-service:v1",
        "--env",
        "production",
        "--cpu-limit",
        "2",
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        run(paved(dir.path()).args([
            "deploy",
            "--app",
            "my-service",
            "--image",
            "ghcr.io/company/my-service:v2",
            "--env",
            "production"
        ]))
        .0,
        0
    );
    assert_eq!(run(paved(dir.path()).args(["rollback", "--app", "my-service", "--env", "production"])).0, 0);
    // An explicit end of the window, taken right after the deploys: they finished in this
    // second or earlier and must count (windows include their end); the imported deployment is
    // a day older, so the test does not depend on the calendar.
    let now = time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let rfc3339 = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap();
    let imported = deployment("d1", "payments", "success", &rfc3339(now - time::Duration::days(1)))
        .replace("2026-11-01T00:00:00Z", &rfc3339(now - time::Duration::days(2)))
        .replace("2026-10-31T00:00:00Z", &rfc3339(now - time::Duration::days(3)));
    std::fs::write(dir.path().join("e.jsonl"), imported).unwrap();
    assert_eq!(run(paved(dir.path()).args(["events", "import", "e.jsonl"])).0, 0);

    let mut server = paved(dir.path())
        .args(["metrics", "serve", "--listen", "127.0.0.1:0", "--now", &rfc3339(now)])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(server.stderr.take().unwrap()).read_line(&mut first).unwrap();
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .expect("the server prints its address")
        .to_string();
    let get = |path: &str, accept: &str| {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n").unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        (head.to_ascii_lowercase(), body.to_string())
    };
    let (head, body) = get("/metrics", "*/*");
    let (health_head, health) = get("/healthz", "*/*");

    assert!(head.starts_with("http/1.1 200"), "{head}");
    // OpenMetrics as prometheus-client encodes it, whatever the client asks for.
    assert!(head.contains("content-type: application/openmetrics-text; version=1.0.0"), "{head}");
    assert!(body.trim_end().ends_with("# EOF"), "{body}");
    assert!(health_head.starts_with("http/1.1 200") && health.contains("ok"));
    // paved's own deployments, each counted once with the result it finished with (the
    // rollback run included; its mark on v2 does not move v2 to another result), and the
    // imported one.
    assert!(body.contains(r#"paved_deployments_total{team="platform",service="my-service",environment="production",result="success"} 3"#), "{body}");
    assert!(!body.contains(r#"result="rolled_back""#), "{body}");
    assert!(
        body.contains(r#"paved_rollbacks_total{team="platform",service="my-service",environment="production"} 1"#),
        "{body}"
    );
    assert!(body.contains(r#"paved_deployments_total{team="payments",service="payments-svc",environment="production",result="success"} 1"#), "{body}");
    // The baseline policy checked both deploys and the rollback.
    assert!(
        body.contains(r#"paved_policy_evaluations_total{team="platform",environment="production",result="allowed"} 3"#),
        "{body}"
    );
    assert!(body.contains("paved_deployment_duration_seconds_bucket{le=\"+Inf\""), "{body}");
    // DORA: v1 and v2 reached production, the rollback marked v2 as a failed change.
    assert!(
        body.contains(r#"paved_dora_change_failure_ratio{team="platform",environment="production"} 0.5"#),
        "{body}"
    );
    assert!(body.contains(r#"paved_dora_deployments{team="platform",environment="production"} 1"#), "{body}");
    // Adoption over the window that ends now: both services, the CLI's deploy of this second included.
    assert!(body.contains("paved_adoption_services 2"), "{body}");
    assert!(body.contains("paved_golden_path_ratio"), "{body}");
    assert!(!body.contains("_per_day"), "base units only: {body}");
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        assert!(!line.contains("sha") && !line.contains("id="), "unbounded label in {line}");
    }

    // A real Prometheus server scrapes it (OpenMetrics negotiated) without a parse error.
    let scraped = paved_testkit::tool("prometheus", "apt-get install -y --no-install-recommends prometheus")
        .map(|prometheus| scrape_with_prometheus(&prometheus, &addr, dir.path()));
    server.kill().unwrap();
    let _ = server.wait();
    if let Some(value) = scraped {
        assert_eq!(value, "3", "Prometheus read paved_deployments_total");
    }
}

/// Runs Prometheus against `target` until it has scraped it, and returns the value it read for
/// paved_deployments_total of the platform team's successes. Fails on a scrape error.
fn scrape_with_prometheus(prometheus: &Path, target: &str, dir: &Path) -> String {
    let port = paved_testkit::free_port();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: paved\n    static_configs:\n      - targets: ['{target}']\n"),
    )
    .unwrap();
    let mut server = Command::new(prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus starts");
    let api = |path: &str| -> Option<Value> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
        let mut response = String::new();
        s.read_to_string(&mut response).ok()?;
        serde_json::from_str(response.split_once("\r\n\r\n")?.1).ok()
    };
    let query = "/api/v1/query?query=paved_deployments_total%7Bteam%3D%22platform%22%2Cresult%3D%22success%22%7D";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let result = loop {
        let target = api("/api/v1/targets").and_then(|v| v["data"]["activeTargets"].get(0).cloned());
        if let Some(t) = target.filter(|t| t["health"] != "unknown") {
            if t["health"] != "up" {
                break Err(format!("scrape failed: {}", t["lastError"]));
            }
            if let Some(v) = api(query).and_then(|v| v["data"]["result"][0]["value"][1].as_str().map(str::to_string)) {
                break Ok(v);
            }
        }
        if std::time::Instant::now() > deadline {
            break Err("Prometheus did not scrape paved within 60 s".into());
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    };
    server.kill().unwrap();
    let _ = server.wait();
    result.unwrap()
}
