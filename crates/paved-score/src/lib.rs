//! # paved-score
//!
//! [Score](https://score.dev) workloads for paved. A team that already has a `score.yaml` deploys
//! it unchanged: [`ScoreWorkload`] reads and validates it by the rules of the official
//! `score-v1b1` schema (errors name file, line and field), and [`translate`] turns it into a
//! [`paved_core::DeployRequest`] for the golden path, with the databases it needs.
//!
//! ```
//! use std::path::Path;
//! let text = "apiVersion: score.dev/v1b1\nmetadata:\n  name: web\ncontainers:\n  main:\n    image: nginx:1.27\n";
//! let workload = paved_score::ScoreWorkload::parse(Path::new("score.yaml"), text).unwrap();
//! assert_eq!(workload.name, "web");
//! ```

mod node;
pub mod placeholder;
pub mod spec;

pub use spec::{SCORE_SPEC_VERSION, ScoreWorkload};
pub mod translate;

pub use translate::{ScoreDeploy, ScoreFlags, translate};
