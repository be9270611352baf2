//! Secret values and tokens never show up in tracing output (at TRACE), `Debug` output or
//! errors, on success, error and retry paths.

mod common;

use std::time::Duration;

use common::{bao, map, run_bao};
use paved_core::SecretStore;
use paved_vault::{VaultConfig, VaultSecretStore};
use secrecy::{ExposeSecret, SecretString};

const VALUE: &str = "canary-value-5e1d9b7c";
const TOKEN: &str = "canary-token-0a4f2e6d";
const SECRET_ID: &str = "canary-secret-id-7c3b1a9e";

#[tokio::test]
async fn secret_values_and_tokens_never_leak() {
    let Some(mut bao) = bao() else { return };
    run_bao(&bao, &["token", "create", &format!("-id={TOKEN}"), "-policy=root"]);

    let capture = paved_testkit::CapturedLogs::start();

    // Everything shown to a human or a log along the way.
    let mut shown = Vec::<String>::new();
    let mut show_err = |e: paved_core::Error| shown.push(format!("{e}\n{e:?}\n{:?}", e.hint()));

    let config = VaultConfig::new(bao.addr(), SecretString::from(TOKEN)).retries(2, Duration::from_millis(10));
    let store = VaultSecretStore::connect(config.clone()).await.unwrap();
    let debug_views = format!("{config:?}\n{store:?}");

    // Success paths.
    store.put("leak/db", map(&[("password", VALUE)])).await.unwrap();
    store.put("leak/db", map(&[("password", VALUE), ("user", "app")])).await.unwrap();
    let got = store.get("leak/db").await.unwrap();
    assert_eq!(got["password"].expose_secret(), VALUE);
    let debug_views = format!("{debug_views}\n{got:?}");
    let v1 = store.read_version("leak/db", 1).await.unwrap();
    let debug_views = format!("{debug_views}\n{v1:?}\n{:?}", store.metadata("leak/db").await.unwrap());
    store.list("leak").await.unwrap();
    run_bao(&bao, &["kv", "put", "-mount=secret", "leak/from-bao", &format!("value={VALUE}")]);
    let from_bao = store.get("leak/from-bao").await.unwrap();
    let debug_views = format!("{debug_views}\n{from_bao:?}");

    // Error paths: deleted, missing version, missing mount, invalid path, bad token.
    store.delete("leak/db").await.unwrap();
    show_err(store.get("leak/db").await.unwrap_err());
    let e = store.read_version("leak/db", 9).await.unwrap_err();
    let crate_error = format!("{e}\n{e:?}");
    show_err(e.into());
    show_err(store.with_mount("nope").put("leak/db", map(&[("password", VALUE)])).await.unwrap_err());
    show_err(store.put("leak/../db", map(&[("password", VALUE)])).await.unwrap_err());
    let bad = VaultConfig::new(bao.addr(), SecretString::from(format!("{TOKEN}-x")));
    let e = VaultSecretStore::connect(bad).await.unwrap_err();
    let crate_error = format!("{crate_error}\n{e}\n{e:?}");
    show_err(e.into());

    // Login paths: AppRole with a known secret ID, a revoked token, a new login, a denial.
    run_bao(&bao, &["auth", "enable", "approle"]);
    let policy =
        std::env::temp_dir().join(format!("paved-leak-{}-{}.hcl", std::process::id(), paved_testkit::free_port()));
    std::fs::write(&policy, "path \"secret/data/leak/*\" { capabilities = [\"create\", \"update\", \"read\"] }\n")
        .unwrap();
    run_bao(&bao, &["policy", "write", "leak", policy.to_str().unwrap()]);
    let _ = std::fs::remove_file(&policy);
    run_bao(&bao, &["write", "auth/approle/role/leak", "token_policies=leak", "token_ttl=5m"]);
    run_bao(&bao, &["write", "auth/approle/role/leak/custom-secret-id", &format!("secret_id={SECRET_ID}")]);
    let role_id = run_bao(&bao, &["read", "-field=role_id", "auth/approle/role/leak/role-id"]);
    let approle = config.clone().approle("approle", role_id.trim(), SecretString::from(SECRET_ID));
    let relogin = VaultSecretStore::connect(approle.clone()).await.unwrap();
    let debug_views = format!("{debug_views}\n{approle:?}\n{relogin:?}");
    run_bao(&bao, &["token", "revoke", "-mode=path", "auth/approle/login"]);
    relogin.put("leak/approle", map(&[("password", VALUE)])).await.unwrap();
    let wrong = config.clone().approle("approle", role_id.trim(), SecretString::from(format!("{SECRET_ID}-x")));
    let e = VaultSecretStore::connect(wrong).await.unwrap_err();
    let crate_error = format!("{crate_error}\n{e}\n{e:?}");
    show_err(e.into());

    // Retry paths: the server stops mid-run (connection errors, retried), then comes back.
    bao.stop();
    show_err(store.put("leak/db", map(&[("password", VALUE)])).await.unwrap_err());
    show_err(store.get("leak/db").await.unwrap_err());
    bao.restart();
    // The restarted dev server does not know the canary token: a permission error, not a leak.
    show_err(store.get("leak/db").await.unwrap_err());

    let logs = capture.stop();
    // The capture saw the work, including the retries, at TRACE level.
    assert!(logs.contains("vault.write") && logs.contains("vault.read"), "{logs}");
    assert!(logs.contains("retrying vault request"), "{logs}");
    assert!(logs.contains("TRACE"), "{logs}");
    assert!(logs.contains("logged in") && logs.contains("logging in again"), "{logs}");
    assert_eq!(shown.len(), 9);
    for (name, text) in
        [("logs", &logs), ("debug", &debug_views), ("errors", &format!("{}\n{crate_error}", shown.join("\n")))]
    {
        assert!(!text.contains(VALUE), "the secret value leaked into {name}:\n{text}");
        assert!(!text.contains(TOKEN), "the token leaked into {name}:\n{text}");
        assert!(!text.contains(SECRET_ID), "the secret ID leaked into {name}:\n{text}");
    }
}
