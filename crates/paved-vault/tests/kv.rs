//! `VaultSecretStore` against a real OpenBao dev server (started by the tests).

mod common;

use std::time::Duration;

use common::{bao, error_text, exposed, map, run_bao, store};
use paved_core::{Error, SecretStore};
use paved_vault::{VaultConfig, VaultSecretStore};
use secrecy::SecretString;

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test]
async fn round_trip_versions_list_delete_and_metadata() {
    let Some(bao) = bao() else { return };
    let store = store(&bao).await;
    assert_eq!(store.name(), "vault");

    let v1 = store.put("payments/db", map(&[("user", "app"), ("password", "first")])).await.unwrap();
    let v2 = store.put("payments/db", map(&[("user", "app"), ("password", "second")])).await.unwrap();
    assert_eq!((v1, v2), (1, 2));
    assert_eq!(exposed(&store.get("payments/db").await.unwrap()), pairs(&[("password", "second"), ("user", "app")]));
    assert_eq!(
        exposed(&store.read_version("payments/db", 1).await.unwrap()),
        pairs(&[("password", "first"), ("user", "app")])
    );

    store.put("payments/api", map(&[("key", "k")])).await.unwrap();
    store.put("payments/nested/deep", map(&[("x", "y")])).await.unwrap();
    assert_eq!(store.list("payments").await.unwrap(), ["api", "db", "nested/"]);
    assert_eq!(store.list("/").await.unwrap(), ["payments/"]);
    assert!(store.list("nothing-here").await.unwrap().is_empty());

    let meta = store.metadata("payments/db").await.unwrap();
    assert_eq!(meta.current_version, 2);
    assert_eq!(meta.versions.keys().copied().collect::<Vec<_>>(), [1, 2]);
    assert!(meta.versions.values().all(|v| v.deletion_time.is_none() && !v.destroyed));

    // Soft delete: the latest version is gone, older ones and the metadata stay.
    store.delete("payments/db").await.unwrap();
    let e = store.get("payments/db").await.unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    assert_eq!(exposed(&store.read_version("payments/db", 1).await.unwrap())[0].1, "first");
    let meta = store.metadata("payments/db").await.unwrap();
    assert!(meta.versions[&2].deletion_time.is_some());
    assert!(meta.versions[&1].deletion_time.is_none());
    store.undelete_versions("payments/db", &[2]).await.unwrap();
    assert_eq!(exposed(&store.get("payments/db").await.unwrap())[0].1, "second");

    // Destroy: the data of version 1 is gone for good.
    store.destroy_versions("payments/db", &[1]).await.unwrap();
    assert!(store.metadata("payments/db").await.unwrap().versions[&1].destroyed);
    let e = store.read_version("payments/db", 1).await.unwrap_err();
    assert!(matches!(e, paved_vault::Error::NotFound { version: Some(1), .. }), "{e:?}");

    store.destroy_all("payments/api").await.unwrap();
    assert_eq!(store.list("payments").await.unwrap(), ["db", "nested/"]);
}

#[tokio::test]
async fn missing_path_is_not_found_with_a_hint() {
    let Some(bao) = bao() else { return };
    let store = store(&bao).await;
    let e = store.get("payments/absent").await.unwrap_err();
    let Error::NotFound { what, hint } = &e else { panic!("{e:?}") };
    assert!(what.contains("secret/payments/absent"), "{what}");
    assert!(what.contains(&bao.addr()), "{what}");
    assert!(hint.as_deref().unwrap().contains("bao kv list -mount=secret payments/"), "{hint:?}");
    assert!(e.is_user_error());
    let e = store.metadata("payments/absent").await.unwrap_err();
    assert!(matches!(e, paved_vault::Error::NotFound { .. }), "{e:?}");
    let e = store.get("a/../b").await.unwrap_err();
    assert!(matches!(e, Error::InvalidInput { .. }) && e.hint().is_some(), "{e:?}");
}

#[tokio::test]
async fn missing_mount_is_a_clear_error() {
    let Some(bao) = bao() else { return };
    let store = store(&bao).await.with_mount("kv-missing");
    let e = store.get("payments/db").await.unwrap_err();
    let text = error_text(&e);
    assert!(text.contains("no secrets engine is mounted at kv-missing/"), "{text}");
    assert!(e.hint().unwrap().contains("bao secrets enable -path=kv-missing kv-v2"), "{text}");
    let e = store.put("payments/db", map(&[("k", "v")])).await.unwrap_err();
    assert!(e.to_string().contains("kv-missing"), "{e}");
    let e = store.list("payments").await.unwrap_err();
    assert!(e.to_string().contains("kv-missing"), "{e}");
}

#[tokio::test]
async fn unreachable_address_is_named() {
    let port = paved_testkit::free_port();
    let addr = format!("http://127.0.0.1:{port}");
    let config = VaultConfig::new(&addr, SecretString::from("t"))
        .timeout(Duration::from_secs(2))
        .retries(1, Duration::from_millis(10));
    let e = VaultSecretStore::connect(config.clone()).await.unwrap_err();
    assert!(matches!(e, paved_vault::Error::Unreachable { .. }), "{e:?}");
    let e = paved_core::Error::from(e);
    let text = error_text(&e);
    assert!(e.to_string().contains(&format!("vault: {addr} is unreachable")), "{text}");
    assert!(e.hint().unwrap().contains("VAULT_ADDR"), "{text}");
    let store = VaultSecretStore::new(config).unwrap();
    let e = store.get("x").await.unwrap_err();
    assert!(e.to_string().contains(&addr), "{e}");

    let e = VaultSecretStore::new(VaultConfig::new("not a url", SecretString::from("t"))).unwrap_err();
    assert!(matches!(e, paved_vault::Error::Config { .. }) && e.hint().is_some(), "{e:?}");
}

/// Issue 18, hole 7: a plain `http://` address to another host is refused before anything is
/// sent (the token would cross the network in clear text), unless the environment allows it.
#[tokio::test]
async fn plain_http_to_another_host_is_refused() {
    for addr in ["http://vault.example.com:8200", "http://10.0.0.7:8200", "HTTP://Vault.Example.com"] {
        let e = VaultSecretStore::new(VaultConfig::new(addr, SecretString::from("canary-token"))).unwrap_err();
        assert!(matches!(e, paved_vault::Error::Config { .. }), "{addr}: {e:?}");
        let e = paved_core::Error::from(e);
        assert!(e.to_string().contains("clear text"), "{addr}: {e}");
        assert!(e.hint().unwrap().contains("PAVED_VAULT_ALLOW_HTTP"), "{e:?}");
        assert!(!error_text(&e).contains("canary-token"));
        // Explicitly allowed, in code or from the environment (never from paved.toml).
        VaultSecretStore::new(VaultConfig::new(addr, SecretString::from("t")).allow_insecure_http(true)).unwrap();
        let env = |name: &str| match name {
            "VAULT_ADDR" => Some(addr.to_string()),
            "VAULT_TOKEN" => Some("t".to_string()),
            "PAVED_VAULT_ALLOW_HTTP" => Some("1".to_string()),
            _ => None,
        };
        VaultSecretStore::new(VaultConfig::from_lookup(env).unwrap()).unwrap();
    }
    for addr in ["http://127.0.0.1:8200", "http://localhost:8200", "http://[::1]:8200", "https://vault.example.com"] {
        VaultSecretStore::new(VaultConfig::new(addr, SecretString::from("t"))).unwrap();
    }
}

#[tokio::test]
async fn sealed_server_and_bad_token_are_clear_errors() {
    let Some(bao) = bao() else { return };
    let store = store(&bao).await;
    let bad =
        VaultSecretStore::connect(VaultConfig::new(bao.addr(), SecretString::from("not-a-token"))).await.unwrap_err();
    // Every valid token may look itself up: a denial at connect means the token is not valid.
    assert!(matches!(bad, paved_vault::Error::TokenExpired { .. }), "{bad:?}");
    assert!(bad.to_string().contains("does not accept the token"), "{bad}");
    assert!(bad.hint().unwrap().contains("VAULT_TOKEN"));

    run_bao(&bao, &["operator", "seal"]);
    let e = store.get("payments/db").await.unwrap_err();
    let text = error_text(&e);
    assert!(e.to_string().contains(&format!("vault: {} is sealed", bao.addr())), "{text}");
    assert!(e.hint().unwrap().contains("bao operator unseal"), "{text}");
}

#[tokio::test]
async fn server_stopped_mid_run_then_restarted() {
    let Some(mut bao) = bao() else { return };
    let store = store(&bao).await;
    store.put("app/cfg", map(&[("k", "v")])).await.unwrap();
    bao.stop();
    let e = store.get("app/cfg").await.unwrap_err();
    assert!(e.to_string().contains(&format!("vault: {} is unreachable", bao.addr())), "{e}");
    bao.restart();
    // The same store (and HTTP client) works again; a dev server restarts empty.
    store.put("app/cfg", map(&[("k", "again")])).await.unwrap();
    assert_eq!(exposed(&store.get("app/cfg").await.unwrap()), pairs(&[("k", "again")]));
}

#[tokio::test]
async fn interop_with_the_bao_cli() {
    let Some(bao) = bao() else { return };
    let store = store(&bao).await;

    // Written by paved, read by bao.
    store.put("interop/from-paved", map(&[("password", "p@ss w0rd"), ("user", "svc")])).await.unwrap();
    let out = run_bao(&bao, &["kv", "get", "-format=json", "-mount=secret", "interop/from-paved"]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["data"]["data"], serde_json::json!({"password": "p@ss w0rd", "user": "svc"}));
    assert_eq!(json["data"]["metadata"]["version"], 1);

    // Written by bao, read by paved.
    run_bao(&bao, &["kv", "put", "-mount=secret", "interop/from-bao", "token=abc=def", "port=5432"]);
    assert_eq!(
        exposed(&store.get("interop/from-bao").await.unwrap()),
        pairs(&[("port", "5432"), ("token", "abc=def")])
    );
    // A JSON value that is not a string (written through the API) reads as its JSON text.
    let dir = tempdir();
    let file = dir.join("data.json");
    std::fs::write(&file, r#"{"port": 5432, "tls": true}"#).unwrap();
    run_bao(&bao, &["kv", "put", "-mount=secret", "interop/typed", &format!("@{}", file.display())]);
    assert_eq!(exposed(&store.get("interop/typed").await.unwrap()), pairs(&[("port", "5432"), ("tls", "true")]));
    let _ = std::fs::remove_dir_all(dir);
}

fn tempdir() -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("paved-vault-test-{}-{}", std::process::id(), paved_testkit::free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn approle_login() {
    let Some(bao) = bao() else { return };
    run_bao(&bao, &["auth", "enable", "approle"]);
    let dir = tempdir();
    let policy = dir.join("kv.hcl");
    std::fs::write(&policy, "path \"secret/data/apps/*\" { capabilities = [\"create\", \"update\", \"read\"] }\n")
        .unwrap();
    run_bao(&bao, &["policy", "write", "kv-apps", policy.to_str().unwrap()]);
    run_bao(&bao, &["write", "auth/approle/role/paved", "token_policies=kv-apps", "token_ttl=5m"]);
    let role: serde_json::Value =
        serde_json::from_str(&run_bao(&bao, &["read", "-format=json", "auth/approle/role/paved/role-id"])).unwrap();
    let secret: serde_json::Value =
        serde_json::from_str(&run_bao(&bao, &["write", "-f", "-format=json", "auth/approle/role/paved/secret-id"]))
            .unwrap();
    let _ = std::fs::remove_dir_all(dir);
    let role_id = role["data"]["role_id"].as_str().unwrap();
    let secret_id = SecretString::from(secret["data"]["secret_id"].as_str().unwrap().to_string());

    let config = common::config(&bao).approle("approle", role_id, secret_id);
    let store = VaultSecretStore::connect(config.clone()).await.unwrap();
    store.put("apps/one", map(&[("k", "v")])).await.unwrap();
    assert_eq!(exposed(&store.get("apps/one").await.unwrap()), pairs(&[("k", "v")]));
    // The policy is enforced: outside apps/ is denied.
    let e = store.put("other/x", map(&[("k", "v")])).await.unwrap_err();
    assert!(e.to_string().contains("permission denied on secret/other/x"), "{e}");
    // A wrong secret ID fails at connect.
    let wrong = common::config(&bao).approle("approle", role_id, SecretString::from("wrong".to_string()));
    assert!(VaultSecretStore::connect(wrong).await.is_err());
    // AppRole needs a login: `new` refuses it with a hint.
    assert!(VaultSecretStore::new(config).unwrap_err().hint().unwrap().contains("connect"));
}

#[tokio::test]
async fn namespace_header_reaches_the_namespace() {
    let Some(bao) = bao() else { return };
    run_bao(&bao, &["namespace", "create", "team-a"]);
    run_bao(&bao, &["secrets", "enable", "-namespace=team-a", "-path=secret", "kv-v2"]);
    let store = VaultSecretStore::connect(common::config(&bao).namespace("team-a")).await.unwrap();
    store.put("ns/only", map(&[("k", "in-team-a")])).await.unwrap();
    // bao sees it in the namespace, not at the root.
    let out = run_bao(&bao, &["kv", "get", "-namespace=team-a", "-format=json", "-mount=secret", "ns/only"]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["data"]["data"]["k"], "in-team-a");
    let root = common::store(&bao).await;
    assert!(matches!(root.get("ns/only").await.unwrap_err(), Error::NotFound { .. }));
}

#[tokio::test]
async fn https_with_the_servers_ca() {
    let Some(bao) = paved_testkit::OpenBao::start_tls() else { return };
    assert!(bao.addr().starts_with("https://"));
    let ca = bao.ca_cert().unwrap();
    let store = VaultSecretStore::connect(common::config(&bao).ca_cert(&ca)).await.unwrap();
    store.put("tls/x", map(&[("k", "over-tls")])).await.unwrap();
    assert_eq!(exposed(&store.get("tls/x").await.unwrap()), pairs(&[("k", "over-tls")]));
    let out = run_bao(&bao, &["kv", "get", "-field=k", "-mount=secret", "tls/x"]);
    assert_eq!(out.trim(), "over-tls");

    // Without the CA the certificate is not trusted: one clear error naming the fix.
    let e = VaultSecretStore::connect(common::config(&bao)).await.unwrap_err();
    assert!(matches!(e, paved_vault::Error::Unreachable { .. }), "{e:?}");
    assert!(e.to_string().contains("certificate"), "{e}");
    assert!(e.hint().unwrap().contains("VAULT_CACERT"), "{e:?}");
    // A CA file that is not there.
    let e = VaultSecretStore::new(common::config(&bao).ca_cert("/nonexistent/ca.pem")).unwrap_err();
    assert!(matches!(e, paved_vault::Error::Config { .. }) && e.to_string().contains("/nonexistent/ca.pem"), "{e:?}");
}
