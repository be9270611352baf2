//! The DORA benchmark dataset: deployments of 500 services of 50 teams over one year, 1–5
//! commits each, and incidents, deterministic (a fixed-seed generator), written as JSON Lines
//! for `paved events import` and as CSV for PostgreSQL's `COPY`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The end of the dataset's year (and the `now` of the benchmark queries).
pub const NOW: i64 = 1_795_737_600; // 2026-11-27T00:00:00Z
const YEAR: i64 = 365 * 86_400;

/// Sizes of a dataset.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Deployments.
    pub deployments: usize,
    /// Incidents.
    pub incidents: usize,
}

/// The full benchmark: 1,000,000 deployments and 100,000 incidents.
pub const FULL: Sizes = Sizes { deployments: 1_000_000, incidents: 100_000 };

/// Where a generated dataset lives.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// JSON Lines, deployments then incidents.
    pub jsonl: PathBuf,
    /// CSV of deployments.
    pub deployments_csv: PathBuf,
    /// CSV of commits.
    pub commits_csv: PathBuf,
    /// CSV of incidents.
    pub incidents_csv: PathBuf,
    /// Number of events (lines of `jsonl`).
    pub events: usize,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .expect("in range")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formats")
}

/// Generates the dataset into `dir` (reused when already there).
pub fn generate(dir: &Path, sizes: Sizes) -> std::io::Result<Dataset> {
    std::fs::create_dir_all(dir)?;
    let d = Dataset {
        jsonl: dir.join("events.jsonl"),
        deployments_csv: dir.join("deployments.csv"),
        commits_csv: dir.join("commits.csv"),
        incidents_csv: dir.join("incidents.csv"),
        events: sizes.deployments + sizes.incidents,
    };
    let done = dir.join("complete");
    if done.is_file() {
        return Ok(d);
    }
    let mut jsonl = BufWriter::with_capacity(1 << 20, File::create(&d.jsonl)?);
    let mut dep_csv = BufWriter::with_capacity(1 << 20, File::create(&d.deployments_csv)?);
    let mut com_csv = BufWriter::with_capacity(1 << 20, File::create(&d.commits_csv)?);
    let mut inc_csv = BufWriter::with_capacity(1 << 20, File::create(&d.incidents_csv)?);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let start = NOW - YEAR;
    let step = YEAR / sizes.deployments as i64;
    let mut finished_times = Vec::with_capacity(sizes.deployments);
    for i in 0..sizes.deployments {
        let service = rng.below(500);
        let team = service % 50;
        let env = if rng.below(10) < 7 { "production" } else { "staging" };
        let roll = rng.below(100);
        let status = if roll < 90 {
            "success"
        } else if roll < 96 {
            "failure"
        } else {
            "rolled_back"
        };
        let finished = start + i as i64 * step + rng.below(step as u64) as i64;
        let started = finished - 60 - rng.below(840) as i64;
        let unplanned = rng.below(100) < 5;
        let mut commits = String::new();
        for c in 0..=rng.below(5) {
            let committed = started - 3_600 - rng.below(10 * 86_400) as i64;
            let sha = format!("{:012x}{c}", i);
            if c > 0 {
                commits.push(',');
            }
            commits.push_str(&format!(r#"{{"sha":"{sha}","committed_at":"{}"}}"#, rfc3339(committed)));
            writeln!(com_csv, "d{i},{sha},{}", rfc3339(committed))?;
        }
        writeln!(
            jsonl,
            r#"{{"type":"deployment","id":"d{i}","service":"service-{service}","team":"team-{team}","environment":"{env}","status":"{status}","started_at":"{}","finished_at":"{}","commits":[{commits}],"unplanned":{unplanned}}}"#,
            rfc3339(started),
            rfc3339(finished)
        )?;
        writeln!(
            dep_csv,
            "d{i},service-{service},team-{team},{env},{status},{},{},{unplanned}",
            rfc3339(started),
            rfc3339(finished)
        )?;
        finished_times.push((finished, service, team, env));
    }
    for k in 0..sizes.incidents {
        let i = rng.below(sizes.deployments as u64) as usize;
        let (finished, service, team, env) = finished_times[i];
        let opened = finished + 60 + rng.below(7_200) as i64;
        let linked = rng.below(10) < 7;
        let resolved = (rng.below(100) >= 5).then(|| opened + 600 + rng.below(2 * 86_400) as i64);
        let deployment = if linked { format!(r#","deployment_id":"d{i}""#) } else { String::new() };
        let resolved_json = resolved.map_or(String::new(), |r| format!(r#","resolved_at":"{}""#, rfc3339(r)));
        writeln!(
            jsonl,
            r#"{{"type":"incident","id":"i{k}","service":"service-{service}","team":"team-{team}","environment":"{env}"{deployment},"opened_at":"{}"{resolved_json}}}"#,
            rfc3339(opened)
        )?;
        writeln!(
            inc_csv,
            "i{k},service-{service},team-{team},{env},{},{},{}",
            if linked { format!("d{i}") } else { String::new() },
            rfc3339(opened),
            resolved.map_or(String::new(), rfc3339)
        )?;
    }
    for mut w in [jsonl, dep_csv, com_csv, inc_csv] {
        w.flush()?;
    }
    File::create(done)?;
    Ok(d)
}

/// DORA version 2 of every team over `[now - days, now]` in production, in one PostgreSQL
/// statement (`dora_v2.sql`): what a platform team would otherwise run. One row per team:
/// team, successes, production, failed_to_apply, failed, unplanned, lead median, lead p90,
/// changes, recovery median, recovered, unrecovered, incident median, incidents resolved,
/// incidents unresolved, deployment days, weekly median, monthly median.
pub fn postgres_query(days: i64) -> String {
    include_str!("dora_v2.sql").replace("{now}", &NOW.to_string()).replace("{days}", &days.to_string())
}

/// The PostgreSQL schema and load of a dataset (COPY from the CSV files, then indexes).
pub fn postgres_load(d: &Dataset) -> String {
    format!(
        r#"
CREATE TABLE deployments (id text PRIMARY KEY, service text, team text, environment text, status text,
                          started_at timestamptz, finished_at timestamptz, unplanned boolean);
CREATE TABLE commits (deployment_id text, sha text, committed_at timestamptz);
CREATE TABLE incidents (id text PRIMARY KEY, service text, team text, environment text, deployment_id text,
                        opened_at timestamptz, resolved_at timestamptz);
\copy deployments FROM '{}' WITH (FORMAT csv)
\copy commits FROM '{}' WITH (FORMAT csv)
\copy incidents FROM '{}' WITH (FORMAT csv, NULL '')
CREATE INDEX ON deployments (environment, finished_at);
CREATE INDEX ON deployments (service, environment, finished_at);
CREATE INDEX ON commits (deployment_id);
CREATE INDEX ON commits (sha);
CREATE INDEX ON incidents (deployment_id);
CREATE INDEX ON incidents (environment, opened_at);
ANALYZE;
"#,
        d.deployments_csv.display(),
        d.commits_csv.display(),
        d.incidents_csv.display()
    )
}
