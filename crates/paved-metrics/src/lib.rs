//! # paved-metrics
//!
//! How a platform team proves its platform works: every platform event goes into one
//! append-mostly [`Ledger`] (embedded SQLite, WAL), from which come the DORA keys as the
//! design's version 2 defines them ([`Ledger::dora`], module [`dora`]), adoption, velocity and
//! developer satisfaction ([`Ledger::adoption`]) and a Prometheus exposition
//! ([`prom::registry`]: counters kept as events are written, gauges computed and cached).
//!
//! paved records its own deployments when a [`LedgerRecorder`] is the platform's metrics
//! sink; events from CI, incident and help-desk tools come in as JSON Lines
//! ([`Ledger::import`]; deployments, incidents, `survey` answers and `support_ticket`s):
//!
//! ```text
//! {"type":"deployment","id":"d-1","service":"payment-service","team":"payments","environment":"production","status":"success","started_at":"2026-11-01T10:00:00Z","finished_at":"2026-11-01T10:04:00Z","commits":[{"sha":"a1b2c3","committed_at":"2026-10-31T16:00:00Z"}],"unplanned":false}
//! {"type":"incident","id":"i-1","service":"payment-service","team":"payments","environment":"production","deployment_id":"d-1","opened_at":"2026-11-01T11:00:00Z","resolved_at":"2026-11-01T11:40:00Z"}
//! ```
//!
//! ```
//! use paved_metrics::{DoraQuery, Ledger, parse_time};
//! let dir = tempfile::tempdir().unwrap();
//! let ledger = Ledger::open_in(dir.path()).unwrap();
//! let lines = r#"{"type":"deployment","id":"d-1","service":"pay","team":"payments","environment":"production","status":"success","started_at":"2026-11-01T10:00:00Z","finished_at":"2026-11-01T10:04:00Z","commits":[{"sha":"a1","committed_at":"2026-10-31T16:00:00Z"}]}"#;
//! ledger.import(lines.as_bytes(), true).unwrap();
//! let now = parse_time("now", "2026-11-02T00:00:00Z").unwrap();
//! let report = ledger.dora(&DoraQuery::new(now)).unwrap();
//! assert_eq!(report.deployment_frequency.deployments, 1);
//! assert_eq!(report.lead_time.median_seconds, Some(18.0 * 3600.0 + 240.0));
//! ```

pub mod adoption;
pub mod dora;
pub mod error;
pub mod import;
pub mod ledger;
pub mod model;
pub mod prom;
pub mod recorder;
#[cfg(feature = "serve")]
pub mod serve;
mod tally;

pub use adoption::{AdoptionReport, catalog_teams};
pub use dora::{DoraQuery, DoraReport, GroupBy, Level, parse_window, window_days};
pub use error::{Error, Result};
pub use import::{BadLine, DEFAULT_BATCH, ImportOptions, ImportProgress, ImportReport};
pub use ledger::{LEDGER_FILE, Ledger};
pub use model::{
    ActivityEvent, ActivityKind, CommitRef, DeploymentEvent, DeploymentStatus, IncidentEvent, LedgerEvent,
    SupportTicketEvent, SurveyEvent, UnixSeconds, format_time, parse_time,
};
pub use recorder::LedgerRecorder;
