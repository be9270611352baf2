//! Importing events from CI and incident tools: JSON Lines, one event per line.

use std::io::BufRead;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::model::{LedgerEvent, parse_line};

/// Lines written per transaction when importing without `strict`.
const BATCH: usize = 100_000;

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
    /// Survey answers written (new or updated).
    pub surveys: u64,
    /// Support tickets written (new or updated).
    pub support_tickets: u64,
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

    fn count(&mut self, events: &[LedgerEvent]) {
        for e in events {
            match e {
                LedgerEvent::Deployment(_) => self.deployments += 1,
                LedgerEvent::Incident(_) => self.incidents += 1,
                LedgerEvent::Survey(_) => self.surveys += 1,
                LedgerEvent::SupportTicket(_) => self.support_tickets += 1,
                LedgerEvent::Activity(_) => {}
            }
        }
    }
}

/// How far an import has got, reported after every written batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportProgress {
    /// Bytes of input read.
    pub bytes: u64,
    /// Lines read.
    pub lines: u64,
    /// Events written (or, with `strict`, staged in the open transaction).
    pub events: u64,
}

/// What the parser thread hands the writer.
enum Parsed {
    /// Parsed events, and how far the input had been read when the batch was full.
    Events(Vec<LedgerEvent>, u64, u64),
    Bad(BadLine),
    /// The whole input was read: without it, the input ended in an error.
    End,
}

/// Reads and parses lines on its own thread (JSON and time parsing overlap the writes).
/// Returns early, without error, when the writer has stopped listening.
fn parse_all(mut input: impl BufRead, tx: std::sync::mpsc::SyncSender<Parsed>) -> Result<()> {
    let mut batch = Vec::with_capacity(BATCH);
    let mut buf = Vec::with_capacity(512);
    let (mut bytes, mut lines) = (0u64, 0u64);
    loop {
        buf.clear();
        let n = input.read_until(b'\n', &mut buf).map_err(|source| Error::Io { path: "<input>".into(), source })?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        lines += 1;
        let parsed = match std::str::from_utf8(&buf) {
            Ok(line) if line.trim().is_empty() => continue,
            Ok(line) => parse_line(line.trim_end_matches(['\n', '\r'])),
            Err(e) => Err(Error::invalid(
                "line",
                format!("byte {}", e.valid_up_to() + 1),
                "is not UTF-8",
                Some("save the file as UTF-8 (e.g. iconv -t UTF-8)".into()),
            )),
        };
        match parsed {
            Ok(e) => {
                batch.push(e);
                if batch.len() == BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    if tx.send(Parsed::Events(full, bytes, lines)).is_err() {
                        return Ok(());
                    }
                }
            }
            Err(e) => {
                let bad = BadLine { line: lines as usize, reason: e.to_string(), hint: e.hint().map(str::to_string) };
                if tx.send(Parsed::Bad(bad)).is_err() {
                    return Ok(());
                }
            }
        }
    }
    if !batch.is_empty() && tx.send(Parsed::Events(batch, bytes, lines)).is_err() {
        return Ok(());
    }
    let _ = tx.send(Parsed::End);
    Ok(())
}

impl Ledger {
    /// Imports JSON Lines. Empty lines are skipped. With `strict`, nothing is written when
    /// any line is bad or the input cannot be read to its end (one transaction, rolled back);
    /// otherwise the good lines are written in transactions of 20,000 events and the bad ones
    /// (including lines that are not UTF-8) reported, and an input that fails to read keeps
    /// the batches written before it. Importing an id again merges the event into the stored
    /// one instead of duplicating it.
    pub fn import(&self, input: impl BufRead + Send, strict: bool) -> Result<ImportReport> {
        self.import_with_progress(input, strict, |_| {})
    }

    /// [`Ledger::import`], calling `progress` after every batch of 20,000 events.
    pub fn import_with_progress(
        &self,
        input: impl BufRead + Send,
        strict: bool,
        mut progress: impl FnMut(ImportProgress),
    ) -> Result<ImportReport> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Parsed>(4);
        std::thread::scope(|scope| {
            let parser = scope.spawn(move || parse_all(input, tx));
            let mut report = ImportReport::default();
            let mut done = ImportProgress::default();
            let mut step = |report: &mut ImportReport, events: &[LedgerEvent], bytes, lines| {
                report.count(events);
                done = ImportProgress { bytes, lines, events: done.events + events.len() as u64 };
                progress(done);
            };
            let written = if strict {
                self.write_with(|w| {
                    let mut ended = false;
                    for item in rx.iter() {
                        match item {
                            Parsed::Events(events, bytes, lines) if report.rejected.is_empty() => {
                                for e in &events {
                                    w.event(e)?;
                                }
                                step(&mut report, &events, bytes, lines);
                            }
                            Parsed::Events(..) => {}
                            Parsed::Bad(b) => report.rejected.push(b),
                            Parsed::End => ended = true,
                        }
                    }
                    // Commit only a whole input without bad lines.
                    Ok((ended && report.rejected.is_empty()).then_some(()))
                })
                .map(drop)
            } else {
                (|| {
                    for item in rx.iter() {
                        match item {
                            Parsed::Events(events, bytes, lines) => {
                                self.write(&events)?;
                                step(&mut report, &events, bytes, lines);
                            }
                            Parsed::Bad(b) => report.rejected.push(b),
                            Parsed::End => {}
                        }
                    }
                    Ok(())
                })()
            };
            // A parser blocked on the full channel (the writer failed) wakes up and ends.
            drop(rx);
            let parsed = parser.join().expect("the parser thread does not panic");
            written?;
            parsed?;
            if strict && !report.rejected.is_empty() {
                report = ImportReport {
                    rejected: std::mem::take(&mut report.rejected),
                    aborted: true,
                    ..Default::default()
                };
            }
            Ok(report)
        })
    }
}
