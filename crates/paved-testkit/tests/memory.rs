//! The in-memory reference backends pass their traits' behaviour suites.

use std::sync::Arc;

use paved_core::DbEngine;
use paved_testkit::behavior::db_provisioner::{self, DbProvisionerHarness};
use paved_testkit::behavior::metrics::{self, MetricsHarness};
use paved_testkit::behavior::secret_store::{self, SecretStoreHarness};
use paved_testkit::memory::{MemoryDbProvisioner, MemoryMetrics, MemorySecretStore};

#[tokio::test]
async fn memory_secret_store_passes_the_suite() {
    let report = secret_store::run(&SecretStoreHarness::new(Arc::new(MemorySecretStore::new()), "vault://")).await;
    assert!(report.skipped.is_empty(), "{report}");
    assert_eq!(report.passed.len(), secret_store::scenarios().len());
}

#[tokio::test]
async fn an_unversioned_store_skips_the_version_scenarios_by_name() {
    let harness = SecretStoreHarness::new(Arc::new(MemorySecretStore::unversioned()), "vault://").without_versions();
    let report = secret_store::run(&harness).await;
    let skipped: Vec<&str> = report.skipped.iter().map(|(name, _)| *name).collect();
    assert_eq!(skipped, ["new_versions_increase", "get_ref_reads_a_pinned_version"]);
    assert!(report.to_string().contains("skipped new_versions_increase: the backend lacks [Versions]"), "{report}");
}

#[tokio::test]
async fn memory_db_provisioner_passes_the_suite_without_a_probe() {
    let provisioner = Arc::new(MemoryDbProvisioner::new(DbEngine::Postgres));
    let report = db_provisioner::run(
        &DbProvisionerHarness::new(provisioner.clone(), DbEngine::Postgres).refusing(DbEngine::Mongodb),
    )
    .await;
    assert_eq!(report.backend, "memory+postgres");
    // The scenarios that reach a database server are listed as skipped.
    let skipped: Vec<&str> = report.skipped.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        skipped,
        [
            "rejected_requests_leave_the_server_untouched",
            "generated_credentials_work_in_their_database",
            "credentials_reach_only_their_own_database",
            "another_team_of_the_same_service_cannot_reach_the_data",
            "deprovisioning_revokes_access_and_keeps_data_unless_dropped",
        ]
    );
    assert_eq!(report.passed.len() + skipped.len(), db_provisioner::scenarios().len());
    // Every scenario cleans up after itself.
    assert_eq!(provisioner.databases(), Vec::<String>::new());
}

#[tokio::test]
async fn memory_metrics_passes_the_suite_and_keeps_every_event() {
    let sink = Arc::new(MemoryMetrics::new());
    let report = metrics::run(&MetricsHarness::new("memory", sink.clone(), sink.clone())).await;
    assert!(report.skipped.is_empty(), "{report}");
    assert_eq!(report.passed.len(), metrics::scenarios().len());
    let events = sink.events();
    let kinds = metrics::every_event_kind();
    assert_eq!(&events[..kinds.len()], kinds.as_slice(), "events are kept as recorded, in order");
}

/// A store that forgets to delete: the suite must catch it, by scenario name.
struct NoDelete(MemorySecretStore);

#[async_trait::async_trait]
impl paved_core::SecretStore for NoDelete {
    fn name(&self) -> &str {
        "no-delete"
    }
    async fn get(&self, path: &str) -> paved_core::Result<paved_core::SecretMap> {
        self.0.get(path).await
    }
    async fn put(&self, path: &str, data: paved_core::SecretMap) -> paved_core::Result<u64> {
        self.0.put(path, data).await
    }
    async fn list(&self, prefix: &str) -> paved_core::Result<Vec<String>> {
        self.0.list(prefix).await
    }
    async fn delete(&self, _path: &str) -> paved_core::Result<()> {
        Ok(())
    }
    async fn get_ref(&self, reference: &paved_core::SecretRef) -> paved_core::Result<paved_core::SecretMap> {
        self.0.get_ref(reference).await
    }
}

/// A provisioner whose deprovisioning does nothing.
struct NoDeprovision(MemoryDbProvisioner);

#[async_trait::async_trait]
impl paved_core::DbProvisioner for NoDeprovision {
    fn name(&self) -> &str {
        "no-deprovision"
    }
    async fn provision(&self, request: &paved_core::DatabaseRequest) -> paved_core::Result<paved_core::DatabaseInfo> {
        self.0.provision(request).await
    }
    async fn status(&self, request: &paved_core::DatabaseRequest) -> paved_core::Result<paved_core::DatabaseInfo> {
        self.0.status(request).await
    }
    async fn deprovision(&self, _request: &paved_core::DatabaseRequest, _drop_data: bool) -> paved_core::Result<()> {
        Ok(())
    }
}

/// The panic message of a suite run expected to fail.
async fn failure_of(
    run: impl std::future::Future<Output = paved_testkit::behavior::Report> + Send + 'static,
) -> String {
    let panic = tokio::spawn(run).await.expect_err("the suite fails").into_panic();
    panic.downcast_ref::<String>().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_backend_that_breaks_the_contract_fails_by_scenario_name() {
    let message = failure_of(async {
        secret_store::run(&SecretStoreHarness::new(Arc::new(NoDelete(MemorySecretStore::new())), "vault://")).await
    })
    .await;
    assert!(message.contains("FAILED delete_then_get_is_not_found: get after delete: expected NotFound"), "{message}");
    assert!(message.contains("8 passed, 0 skipped, 1 failed"), "{message}");

    let message = failure_of(async {
        let provisioner = Arc::new(NoDeprovision(MemoryDbProvisioner::new(DbEngine::Mysql)));
        db_provisioner::run(&DbProvisionerHarness::new(provisioner, DbEngine::Mysql)).await
    })
    .await;
    assert!(message.contains("FAILED deprovisioning_makes_it_absent: state after deprovisioning"), "{message}");
    assert!(
        message.contains(
            "FAILED bad_names_are_rejected_and_create_nothing: deprovision in environment \"prod db\" was accepted"
        ),
        "{message}"
    );
    assert!(message.contains("skipped an_unsupported_engine_is_rejected"), "{message}");
}
