//! The `SecretStore` behaviour suite on `VaultSecretStore` against a real OpenBao dev server
//! (KV v2 on `secret/`). The Vault-only parts (metadata, destroy, undelete, auth, TLS) are in
//! `kv.rs`.

mod common;

use std::sync::Arc;

use common::{bao, store};
use paved_testkit::behavior::secret_store::{SecretStoreHarness, run};

#[tokio::test]
async fn vault_kv_passes_the_secret_store_suite() {
    let Some(bao) = bao() else { return };
    let report = run(&SecretStoreHarness::new(Arc::new(store(&bao).await), "vault://secret/")).await;
    assert!(report.skipped.is_empty(), "{report}");
}
