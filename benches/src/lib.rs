//! Shared inputs of paved's benchmarks (`cargo bench -p paved-benches`); the figures are
//! recorded in `BENCHMARKS.md` at the workspace root.

pub mod dora_data;

use paved::DeployRequest;

/// The golden-path request used by every deploy benchmark, for app number `i`.
pub fn request(i: usize) -> DeployRequest {
    let app = if i == 0 { "my-service".to_string() } else { format!("service-{i}") };
    DeployRequest::new(&app, &format!("ghcr.io/company/{app}:v1.2.3"), "production")
        .expect("valid request")
        .with_replicas(3)
}
