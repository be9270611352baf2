//! One behaviour suite per backend trait, run on every backend of that trait (the way opendal
//! runs one suite on every storage service).
//!
//! A suite is a named list of [`Scenario`]s: plain async functions that take the suite's
//! harness (the backend under test as a trait object, plus what the suite needs to observe it)
//! and answer `Ok(())` or a [`Failure`] that says what was expected and what happened. [`run`]
//! runs every scenario, prints each result by name, skips (and lists) the scenarios whose
//! capabilities the backend lacks, and panics at the end when any scenario failed.
//!
//! | Trait | Harness | Scenarios |
//! |---|---|---|
//! | `SecretStore` | [`secret_store::SecretStoreHarness`] | [`secret_store::scenarios`] |
//! | `DbProvisioner` | [`db_provisioner::DbProvisionerHarness`] | [`db_provisioner::scenarios`] |
//! | `Metrics` | [`metrics::MetricsHarness`] | [`metrics::scenarios`] |
//! | `Deployer` | [`deployer::DeployerHarness`] | [`deployer::scenarios`] |
//! | `Notifier` | a notifier and what its receiver got | [`notifier::run`], [`notifier::run_unreachable`], [`notifier::run_slow`] |
//!
//! Adding a suite: a file with its harness (implementing [`Harness`]), its scenario functions
//! and a `scenarios()` list built with `scenario!`, declared below.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// Asserts a condition inside a scenario: returns a [`Failure`] with the formatted message
/// when it does not hold.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err($crate::behavior::Failure::new(format!($($msg)+)));
        }
    };
}

/// Asserts that two values are equal inside a scenario, naming what was compared.
macro_rules! ensure_eq {
    ($left:expr, $right:expr, $($msg:tt)+) => {
        match (&$left, &$right) {
            (left, right) => {
                if left != right {
                    return Err($crate::behavior::Failure::new(format!(
                        "{}: expected {:?}, got {:?}",
                        format!($($msg)+),
                        right,
                        left
                    )));
                }
            }
        }
    };
}

/// One entry of a scenario list: `scenario!(function)` or `scenario!(function, [Capability, …])`.
macro_rules! scenario {
    ($f:ident) => {
        scenario!($f, [])
    };
    ($f:ident, [$($cap:expr),* $(,)?]) => {
        $crate::behavior::Scenario { name: stringify!($f), requires: &[$($cap),*], run: |h| Box::pin($f(h)) }
    };
}

pub mod db_provisioner;
pub mod deployer;
pub mod metrics;
pub mod notifier;
pub mod secret_store;

/// Why a scenario failed: what was expected and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl Failure {
    /// A failure with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Failure(message.into())
    }

    /// Adds what the scenario was doing in front of the message.
    pub fn context(self, doing: &str) -> Self {
        Failure(format!("{doing}: {}", self.0))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

/// An unexpected backend error fails the scenario with everything the error shows.
impl From<paved_core::Error> for Failure {
    fn from(e: paved_core::Error) -> Self {
        Failure(format!("unexpected error: {}", error_text(&e)))
    }
}

/// Everything an error shows a user or a log: `Display`, `Debug` and the hint.
pub fn error_text(e: &paved_core::Error) -> String {
    format!("{e} (hint: {:?}) [{e:?}]", e.hint())
}

/// What a scenario answers.
pub type Outcome = Result<(), Failure>;

/// The future of one scenario run.
pub type ScenarioFuture<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

/// What a suite runs against: the backend under test and how to observe it.
pub trait Harness: Sync {
    /// The capabilities some scenarios need and some backends lack.
    type Capability: Copy + fmt::Debug + 'static;

    /// The backend's name, for the report (e.g. `vault+postgres`).
    fn backend(&self) -> String;

    /// `true` when the backend has `capability`; scenarios that need one it lacks are skipped.
    fn supports(&self, capability: Self::Capability) -> bool;
}

/// One scenario of a suite.
pub struct Scenario<H: Harness> {
    /// The scenario's name (its function's name), used in reports.
    pub name: &'static str,
    /// The capabilities it needs; it is skipped on a backend without them.
    pub requires: &'static [H::Capability],
    /// Runs it.
    pub run: for<'a> fn(&'a H) -> ScenarioFuture<'a>,
}

impl<H: Harness> fmt::Debug for Scenario<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scenario").field("name", &self.name).field("requires", &self.requires).finish()
    }
}

/// What a suite run found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The suite's name (the trait).
    pub suite: String,
    /// The backend's name.
    pub backend: String,
    /// The scenarios that passed.
    pub passed: Vec<&'static str>,
    /// The scenarios skipped, with the capabilities the backend lacks.
    pub skipped: Vec<(&'static str, String)>,
    /// The scenarios that failed, with why.
    pub failed: Vec<(&'static str, Failure)>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} suite on {}: {} passed, {} skipped, {} failed",
            self.suite,
            self.backend,
            self.passed.len(),
            self.skipped.len(),
            self.failed.len()
        )?;
        for (name, why) in &self.skipped {
            write!(f, "\n  skipped {name}: the backend lacks {why}")?;
        }
        for (name, failure) in &self.failed {
            write!(f, "\n  FAILED {name}: {failure}")?;
        }
        Ok(())
    }
}

/// Runs every scenario of `suite` on `harness`, in order, and reports each by name.
///
/// # Panics
/// After the last scenario, when any failed; the message lists every failure by scenario name.
pub async fn run<H: Harness>(suite: &str, harness: &H, scenarios: &[Scenario<H>]) -> Report {
    let mut report = Report { suite: suite.to_string(), backend: harness.backend(), ..Report::default() };
    for scenario in scenarios {
        let missing: Vec<H::Capability> = scenario.requires.iter().copied().filter(|c| !harness.supports(*c)).collect();
        if !missing.is_empty() {
            eprintln!("{suite}/{}: skipped {} (lacks {missing:?})", report.backend, scenario.name);
            report.skipped.push((scenario.name, format!("{missing:?}")));
            continue;
        }
        match (scenario.run)(harness).await {
            Ok(()) => {
                eprintln!("{suite}/{}: ok {}", report.backend, scenario.name);
                report.passed.push(scenario.name);
            }
            Err(failure) => {
                eprintln!("{suite}/{}: FAILED {}: {failure}", report.backend, scenario.name);
                report.failed.push((scenario.name, failure));
            }
        }
    }
    eprintln!("{report}");
    assert!(report.failed.is_empty(), "{report}");
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Toy {
        fast: bool,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum ToyCapability {
        Fast,
    }

    impl Harness for Toy {
        type Capability = ToyCapability;
        fn backend(&self) -> String {
            "toy".into()
        }
        fn supports(&self, capability: ToyCapability) -> bool {
            match capability {
                ToyCapability::Fast => self.fast,
            }
        }
    }

    async fn passes(_: &Toy) -> Outcome {
        ensure_eq!(1 + 1, 2, "arithmetic");
        Ok(())
    }

    async fn fails(_: &Toy) -> Outcome {
        ensure!(1 + 1 == 3, "one and one make {}", 1 + 1);
        Ok(())
    }

    async fn needs_speed(_: &Toy) -> Outcome {
        Ok(())
    }

    fn toy_scenarios() -> Vec<Scenario<Toy>> {
        vec![scenario!(passes), scenario!(fails), scenario!(needs_speed, [ToyCapability::Fast])]
    }

    #[tokio::test]
    async fn every_scenario_runs_and_failures_are_named_at_the_end() {
        let all = toy_scenarios();
        let report = run("Toy", &Toy { fast: true }, &all[..1]).await;
        assert_eq!(report.passed, ["passes"]);
        let skipped = run("Toy", &Toy { fast: false }, &[scenario!(needs_speed, [ToyCapability::Fast])]).await;
        assert_eq!(skipped.skipped, [("needs_speed", "[Fast]".to_string())]);
        assert!(skipped.to_string().contains("skipped needs_speed: the backend lacks [Fast]"), "{skipped}");

        let toy = Toy { fast: true };
        let result = tokio::spawn(async move {
            let all = toy_scenarios();
            run("Toy", &toy, &all).await
        })
        .await;
        let panic = result.unwrap_err().into_panic();
        let message = panic.downcast_ref::<String>().unwrap();
        assert!(message.contains("2 passed, 0 skipped, 1 failed"), "{message}");
        assert!(message.contains("FAILED fails: one and one make 2"), "{message}");
    }
}
