//! The golden path as a library call: deploy, redeploy (a no-op), upgrade, roll back.
//!
//! Run with `cargo run -p paved-examples --example golden_path`.

use paved::{Component, CpuQuantity, DeployRequest, OrgConfig, Overrides};

#[tokio::main(flavor = "current_thread")]
async fn main() -> paved::Result<()> {
    let state = tempfile::tempdir().expect("a temporary directory");
    let platform = paved::gitops_platform(OrgConfig::default(), state.path())
        .on_progress(|p| println!("  [{}] {}", p.step, p.message))
        .actor("example")
        .build()?;

    // 1. Deploy v1.2.3 with three replicas.
    let request = DeployRequest::new("my-service", "ghcr.io/company/my-service:v1.2.3", "production")?.with_replicas(3);
    let outcome = platform.deploy(&request).await?;
    println!("revision {} at {}", outcome.record.revision, outcome.record.url.as_deref().unwrap_or("-"));

    // 2. The same request again changes nothing.
    assert!(!platform.deploy(&request).await?.changed);

    // 3. Upgrade, with two escape hatches (recorded in the release).
    let mut overrides = Overrides::default();
    overrides.cpu_limit = Some(CpuQuantity::new("2000m")?);
    overrides.disabled = vec![Component::Pdb];
    let upgrade = DeployRequest::new("my-service", "ghcr.io/company/my-service:v1.3.0", "production")?
        .with_replicas(3)
        .with_overrides(overrides);
    let outcome = platform.deploy(&upgrade).await?;
    let hatches: Vec<String> = outcome.record.escape_hatches.iter().map(ToString::to_string).collect();
    println!("revision {} uses escape hatches {}", outcome.record.revision, hatches.join(", "));

    // 4. Bad input is a typed error with a hint.
    let typo = DeployRequest::new("my-service", "ghcr.io/company/my-service:v1.3.0", "prod")?;
    let err = platform.deploy(&typo).await.unwrap_err();
    println!("error: {err}\n  hint: {}", err.hint().unwrap_or("-"));

    // 5. Roll back to the previous revision.
    let outcome = platform.rollback(&request.app, "production", None).await?;
    println!("rolled back: revision {} runs {}", outcome.record.revision, outcome.record.image);
    for r in platform.history(&request.app, "production").await? {
        println!("  {:>2}  {}  {:?}", r.revision, r.image, r.cause);
    }
    Ok(())
}
