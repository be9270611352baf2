//! Importing events from CI and incident tools: JSON Lines, one event per line.

use std::io::{BufRead, Read};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::ledger::{Commit, Ledger};
use crate::model::{LedgerEvent, parse_line};

/// The longest line read (1 MiB); a longer one is a bad line, skipped without being held.
pub const MAX_LINE: usize = 1 << 20;

/// Events written per transaction by default when importing without `strict`.
pub const DEFAULT_BATCH: usize = 50_000;

/// How [`Ledger::import_with`] imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportOptions {
    /// Write nothing unless every line is good and the input is read to its end.
    pub strict: bool,
    /// Events per transaction without `strict` (and per progress report). Larger batches
    /// import faster; smaller ones hold the ledger's write lock for less time, so that paved
    /// processes recording at the same time wait less.
    pub batch: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions { strict: false, batch: DEFAULT_BATCH }
    }
}

impl ImportOptions {
    /// The default options, strict or not.
    pub fn strict(strict: bool) -> Self {
        ImportOptions { strict, ..Default::default() }
    }

    /// Sets the batch size (at least 1).
    pub fn batch(mut self, events: usize) -> Self {
        self.batch = events.max(1);
        self
    }
}

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
fn parse_all(mut input: impl BufRead, size: usize, tx: std::sync::mpsc::SyncSender<Parsed>) -> Result<()> {
    let mut batch = Vec::with_capacity(size.min(DEFAULT_BATCH));
    let mut buf = Vec::with_capacity(512);
    let (mut bytes, mut lines) = (0u64, 0u64);
    loop {
        buf.clear();
        let io = |source| Error::Io { path: "<input>".into(), source };
        let n = (&mut input).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        lines += 1;
        let parsed = if buf.len() > MAX_LINE && !buf.ends_with(b"\n") {
            // Skip the rest of the line without holding it.
            loop {
                let chunk = input.fill_buf().map_err(io)?;
                if chunk.is_empty() {
                    break;
                }
                match chunk.iter().position(|b| *b == b'\n') {
                    Some(i) => {
                        input.consume(i + 1);
                        bytes += i as u64 + 1;
                        break;
                    }
                    None => {
                        let len = chunk.len();
                        input.consume(len);
                        bytes += len as u64;
                    }
                }
            }
            Err(Error::invalid(
                "line",
                format!("{} bytes or more", MAX_LINE + 1),
                format!("is longer than {} MiB", MAX_LINE >> 20),
                Some("one event per line; a commit list that long belongs in several events".into()),
            ))
        } else {
            match std::str::from_utf8(&buf) {
                Ok(line) if line.trim().is_empty() => continue,
                Ok(line) => parse_line(line.trim_end_matches(['\n', '\r'])),
                Err(e) => Err(Error::invalid(
                    "line",
                    format!("byte {}", e.valid_up_to() + 1),
                    "is not UTF-8",
                    Some("save the file as UTF-8 (e.g. iconv -t UTF-8)".into()),
                )),
            }
        };
        match parsed {
            Ok(e) => {
                batch.push(e);
                if batch.len() >= size {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(size.min(DEFAULT_BATCH)));
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
    /// otherwise the good lines are written in transactions of [`DEFAULT_BATCH`] events and the
    /// bad ones (including lines that are not UTF-8) reported, and an input that fails to read
    /// keeps the batches written before it. Importing an id again merges the event into the
    /// stored one instead of duplicating it.
    ///
    /// Durability: the batches are synced by checkpoints on another thread and by the last
    /// batch's commit, so everything imported survives a power loss once the import returns.
    /// While it runs, the ledger's log (`ledger.sqlite-wal`) grows by what it writes (up to the
    /// size of the data imported); it is emptied when the import ends.
    pub fn import(&self, input: impl BufRead + Send, strict: bool) -> Result<ImportReport> {
        self.import_with(input, ImportOptions::strict(strict), |_| {})
    }

    /// [`Ledger::import`] with options, calling `progress` after every batch.
    pub fn import_with(
        &self,
        input: impl BufRead + Send,
        options: ImportOptions,
        mut progress: impl FnMut(ImportProgress),
    ) -> Result<ImportReport> {
        let strict = options.strict;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Parsed>(2);
        std::thread::scope(|scope| {
            let parser = scope.spawn(move || parse_all(input, options.batch, tx));
            // Written batches are freed on a thread of their own: millions of small frees are
            // off the writer's path, the import's critical one.
            let (spent, freed) = std::sync::mpsc::sync_channel::<Vec<LedgerEvent>>(2);
            scope.spawn(move || freed.iter().for_each(drop));
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
                                // Batch by batch inside the one transaction: memory stays bounded
                                // and the progress is true.
                                w.flush()?;
                                step(&mut report, &events, bytes, lines);
                                let _ = spent.send(events);
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
                self.in_batches(|committed| {
                    // Bad lines are set aside as they come, so that the next item is a batch
                    // or the end: a batch followed by no other is the last, committed durably.
                    let next = |rejected: &mut Vec<BadLine>| loop {
                        match rx.recv() {
                            Ok(Parsed::Bad(b)) => rejected.push(b),
                            Ok(Parsed::Events(events, bytes, lines)) => return Some((events, bytes, lines)),
                            Ok(Parsed::End) | Err(_) => return None,
                        }
                    };
                    let mut item = next(&mut report.rejected);
                    while let Some((events, bytes, lines)) = item {
                        item = next(&mut report.rejected);
                        let commit = if item.is_none() { Commit::Durable } else { Commit::Batch };
                        self.write_as(commit, &events)?;
                        committed();
                        step(&mut report, &events, bytes, lines);
                        let _ = spent.send(events);
                    }
                    Ok(())
                })
            };
            // A parser blocked on the full channel (the writer failed) wakes up and ends.
            drop(rx);
            drop(spent);
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
