//! Importing events from CI and incident tools: JSON Lines, one event per line.

use std::io::BufRead;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::model::{LedgerEvent, parse_line};

/// Lines written per transaction when importing without `strict`.
const BATCH: usize = 20_000;

/// One rejected line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    /// Why it was rejected.
    pub reason: String,
    /// How to fix it.
    pub hint: Option<String>,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Deployments written (new or updated).
    pub deployments: u64,
    /// Incidents written (new or updated).
    pub incidents: u64,
    /// Rejected lines, in order.
    pub rejected: Vec<BadLine>,
    /// `true` when nothing was written because a line was bad and the import was strict.
    pub aborted: bool,
}

impl ImportReport {
    /// `true` when every line was imported.
    pub fn is_clean(&self) -> bool {
        self.rejected.is_empty()
    }
}

/// What the parser thread hands the writer.
enum Parsed {
    Events(Vec<LedgerEvent>),
    Bad(BadLine),
}

/// Reads and parses lines on its own thread (JSON and time parsing overlap the writes).
fn parse_all(input: impl BufRead, tx: std::sync::mpsc::SyncSender<Parsed>) -> Result<()> {
    let mut batch = Vec::with_capacity(BATCH);
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(|source| Error::Io { path: "<input>".into(), source })?;
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(&line) {
            Ok(e) => {
                batch.push(e);
                if batch.len() == BATCH
                    && tx.send(Parsed::Events(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))).is_err()
                {
                    return Ok(());
                }
            }
            Err(e) => {
                let bad = BadLine { line: i + 1, reason: e.to_string(), hint: e.hint().map(str::to_string) };
                if tx.send(Parsed::Bad(bad)).is_err() {
                    return Ok(());
                }
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(Parsed::Events(batch));
    }
    Ok(())
}

fn count(report: &mut ImportReport, events: &[LedgerEvent]) {
    for e in events {
        match e {
            LedgerEvent::Deployment(_) => report.deployments += 1,
            LedgerEvent::Incident(_) => report.incidents += 1,
            LedgerEvent::Activity(_) => {}
        }
    }
}

impl Ledger {
    /// Imports JSON Lines. Empty lines are skipped. With `strict`, nothing is written when
    /// any line is bad (one transaction, rolled back); otherwise the good lines are written
    /// (in transactions of 20,000 events) and the bad ones reported. Importing an id again
    /// updates the event instead of duplicating it.
    pub fn import(&self, input: impl BufRead + Send, strict: bool) -> Result<ImportReport> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Parsed>(4);
        std::thread::scope(|scope| {
            let parser = scope.spawn(move || parse_all(input, tx));
            let mut report = ImportReport::default();
            if strict {
                let written = self.write_with(|w| {
                    for item in rx.iter() {
                        match item {
                            Parsed::Events(events) if report.rejected.is_empty() => {
                                for e in &events {
                                    w.event(e)?;
                                }
                                count(&mut report, &events);
                            }
                            Parsed::Events(_) => {}
                            Parsed::Bad(b) => report.rejected.push(b),
                        }
                    }
                    Ok(report.rejected.is_empty().then_some(()))
                });
                if let Err(e) = written {
                    drop(parser.join());
                    return Err(e);
                }
                if !report.rejected.is_empty() {
                    report.aborted = true;
                    report.deployments = 0;
                    report.incidents = 0;
                }
            } else {
                for item in rx.iter() {
                    match item {
                        Parsed::Events(events) => {
                            self.write(&events)?;
                            count(&mut report, &events);
                        }
                        Parsed::Bad(b) => report.rejected.push(b),
                    }
                }
            }
            parser.join().expect("the parser thread does not panic")?;
            Ok(report)
        })
    }
}
