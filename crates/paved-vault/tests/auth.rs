//! Token lifetimes against a real OpenBao dev server: renewal before expiry, a new login when
//! the token expired, hit its max TTL or was revoked (AppRole), and a clear error for a plain
//! token that is no longer valid.
//!
//! The sleeps wait for real server-side TTLs (a few seconds) to pass.

mod common;

use std::time::Duration;

use common::{bao, exposed, map, run_bao};
use paved_core::SecretStore;
use paved_testkit::OpenBao;
use paved_vault::{VaultConfig, VaultSecretStore};
use secrecy::SecretString;
use serde_json::Value;

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap()
}

/// An AppRole `paved` with the given TTLs, allowed to read and write `secret/apps/*` (and to
/// look itself up, by the default policy): (role ID, secret ID).
fn approle(bao: &OpenBao, ttl: &str, max_ttl: &str) -> (String, SecretString) {
    run_bao(bao, &["auth", "enable", "approle"]);
    let dir = std::env::temp_dir().join(format!("paved-vault-auth-{}-{}", std::process::id(), bao.addr().len()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join(format!("kv-{}.hcl", paved_testkit::free_port()));
    std::fs::write(&policy, "path \"secret/data/apps/*\" { capabilities = [\"create\", \"update\", \"read\"] }\n")
        .unwrap();
    run_bao(bao, &["policy", "write", "kv-apps", policy.to_str().unwrap()]);
    let _ = std::fs::remove_file(policy);
    run_bao(
        bao,
        &[
            "write",
            "auth/approle/role/paved",
            "token_policies=kv-apps",
            &format!("token_ttl={ttl}"),
            &format!("token_max_ttl={max_ttl}"),
        ],
    );
    let role = json(&run_bao(bao, &["read", "-format=json", "auth/approle/role/paved/role-id"]));
    let secret = json(&run_bao(bao, &["write", "-f", "-format=json", "auth/approle/role/paved/secret-id"]));
    (
        role["data"]["role_id"].as_str().unwrap().to_string(),
        SecretString::from(secret["data"]["secret_id"].as_str().unwrap().to_string()),
    )
}

/// The live tokens created by `path` (e.g. `auth/approle/login`), as `lookup` answers.
fn tokens_from(bao: &OpenBao, path: &str) -> Vec<Value> {
    let list = json(&run_bao(bao, &["list", "-format=json", "auth/token/accessors"]));
    let mut found = Vec::new();
    for accessor in list.as_array().unwrap() {
        let out =
            bao.command().args(["token", "lookup", "-format=json", "-accessor", accessor.as_str().unwrap()]).output();
        let Ok(out) = out else { continue };
        if !out.status.success() {
            continue;
        }
        let data = json(&String::from_utf8_lossy(&out.stdout))["data"].clone();
        if data["path"] == path {
            found.push(data);
        }
    }
    found
}

async fn approle_store(bao: &OpenBao, ttl: &str, max_ttl: &str) -> VaultSecretStore {
    let (role_id, secret_id) = approle(bao, ttl, max_ttl);
    let store = VaultSecretStore::connect(common::config(bao).approle("approle", role_id, secret_id)).await.unwrap();
    store.put("apps/one", map(&[("k", "v")])).await.unwrap();
    store
}

async fn read_ok(store: &VaultSecretStore) {
    assert_eq!(exposed(&store.get("apps/one").await.unwrap()), [("k".to_string(), "v".to_string())]);
}

#[tokio::test]
async fn approle_token_is_renewed_before_it_expires() {
    let Some(bao) = bao() else { return };
    let store = approle_store(&bao, "3s", "1m").await;
    let first = tokens_from(&bao, "auth/approle/login");
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(first[0]["last_renewal_time"].is_null(), "{first:?}");
    // Twice past two thirds of the TTL: each read renews first; together longer than the TTL.
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(2300)).await;
        read_ok(&store).await;
    }
    let now = tokens_from(&bao, "auth/approle/login");
    assert_eq!(now.len(), 1, "still the one token: {now:?}");
    assert_eq!(now[0]["accessor"], first[0]["accessor"]);
    assert!(now[0]["last_renewal_time"].as_u64().is_some(), "renewed: {now:?}");
}

#[tokio::test]
async fn expired_or_maxed_out_approle_token_logs_in_again() {
    let Some(bao) = bao() else { return };
    // Max TTL 4 s: renewal at ~2.3 s only reaches the max TTL, then a new login is needed.
    let store = approle_store(&bao, "3s", "4s").await;
    let first = tokens_from(&bao, "auth/approle/login")[0]["accessor"].clone();
    tokio::time::sleep(Duration::from_millis(2300)).await;
    read_ok(&store).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    read_ok(&store).await;
    let second = tokens_from(&bao, "auth/approle/login");
    assert!(second.iter().any(|t| t["accessor"] != first), "a new login: {second:?}");
    // Idle past the TTL: the token is gone on the server; the next read logs in again.
    let before: Vec<Value> = second.iter().map(|t| t["accessor"].clone()).collect();
    tokio::time::sleep(Duration::from_millis(4200)).await;
    read_ok(&store).await;
    let after = tokens_from(&bao, "auth/approle/login");
    assert!(after.iter().any(|t| !before.contains(&t["accessor"])), "a new login: {after:?}");
}

#[tokio::test]
async fn revoked_approle_token_logs_in_again_once() {
    let Some(bao) = bao() else { return };
    let store = approle_store(&bao, "5m", "10m").await;
    let first = tokens_from(&bao, "auth/approle/login")[0]["accessor"].clone();
    run_bao(&bao, &["token", "revoke", "-mode=path", "auth/approle/login"]);
    assert!(tokens_from(&bao, "auth/approle/login").is_empty());
    read_ok(&store).await;
    let now = tokens_from(&bao, "auth/approle/login");
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now[0]["accessor"], first);
    // A denial by policy (the token is fine) is an error, without a new login.
    let e = store.put("other/x", map(&[("k", "v")])).await.unwrap_err();
    assert!(e.to_string().contains("permission denied on secret/other/x"), "{e}");
    assert_eq!(tokens_from(&bao, "auth/approle/login")[0]["accessor"], now[0]["accessor"]);
}

fn token_config(bao: &OpenBao, token: String) -> VaultConfig {
    VaultConfig::new(bao.addr(), SecretString::from(token)).retries(2, Duration::from_millis(10))
}

#[tokio::test]
async fn renewable_plain_token_is_renewed() {
    let Some(bao) = bao() else { return };
    let created = json(&run_bao(&bao, &["token", "create", "-format=json", "-ttl=3s", "-policy=root"]));
    let token = created["auth"]["client_token"].as_str().unwrap().to_string();
    let store = VaultSecretStore::connect(token_config(&bao, token)).await.unwrap();
    store.put("apps/one", map(&[("k", "v")])).await.unwrap();
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(2300)).await;
        read_ok(&store).await;
    }
    let data = json(&run_bao(
        &bao,
        &["token", "lookup", "-format=json", "-accessor", created["auth"]["accessor"].as_str().unwrap()],
    ));
    assert!(data["data"]["last_renewal_time"].as_u64().is_some(), "{data}");
}

#[tokio::test]
async fn revoked_or_expired_plain_token_is_a_clear_error() {
    let Some(bao) = bao() else { return };
    // Revoked.
    let created = json(&run_bao(&bao, &["token", "create", "-format=json", "-policy=root"]));
    let token = created["auth"]["client_token"].as_str().unwrap().to_string();
    let store = VaultSecretStore::connect(token_config(&bao, token.clone())).await.unwrap();
    store.put("apps/one", map(&[("k", "v")])).await.unwrap();
    run_bao(&bao, &["token", "revoke", &token]);
    let e = store.get("apps/one").await.unwrap_err();
    let text = common::error_text(&e);
    assert!(text.contains("does not accept the token (invalid, expired or revoked)"), "{text}");
    assert!(text.contains(&bao.addr()) && text.contains("secret/apps/one"), "{text}");
    let hint = e.hint().unwrap();
    assert!(hint.contains("VAULT_TOKEN") && hint.contains("AppRole"), "{hint}");
    assert!(!text.contains(&token), "{text}");
    // Not renewable and expired.
    let created =
        json(&run_bao(&bao, &["token", "create", "-format=json", "-ttl=2s", "-renewable=false", "-policy=root"]));
    let token = created["auth"]["client_token"].as_str().unwrap().to_string();
    let store = VaultSecretStore::connect(token_config(&bao, token)).await.unwrap();
    read_ok(&store).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let e = store.get("apps/one").await.unwrap_err();
    assert!(matches!(&e, paved_core::Error::Denied { message, .. } if message.contains("expired or revoked")), "{e:?}");
}

/// Issue 18, hole 8: a token without the `default` policy (it may not look itself up) is a
/// valid token: it connects, and a path its policies deny is a permission error, not an
/// expired token; an AppRole whose tokens lack `default` does not log in again per denial.
#[tokio::test]
async fn a_policy_denial_is_not_taken_for_an_expired_token() {
    let Some(bao) = bao() else { return };
    let dir = std::env::temp_dir().join(format!("paved-vault-nodefault-{}", paved_testkit::free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("kv-apps.hcl");
    std::fs::write(&policy, "path \"secret/data/apps/*\" { capabilities = [\"create\", \"update\", \"read\"] }\n")
        .unwrap();
    run_bao(&bao, &["policy", "write", "kv-apps", policy.to_str().unwrap()]);
    let token =
        json(&run_bao(&bao, &["token", "create", "-format=json", "-no-default-policy", "-policy=kv-apps", "-ttl=1h"]))
            ["auth"]["client_token"]
            .as_str()
            .unwrap()
            .to_string();
    let store =
        VaultSecretStore::connect(VaultConfig::new(bao.addr(), SecretString::from(token.clone()))).await.unwrap();
    store.put("apps/x", map(&[("k", "v")])).await.unwrap();
    let e = store.get("other/y").await.unwrap_err();
    assert_eq!(e.kind(), paved_core::ErrorKind::Denied, "{e}");
    assert!(!e.to_string().contains("expired"), "a policy denial, not an expired token: {e}");
    // Once revoked, the same token is reported as no longer valid.
    run_bao(&bao, &["token", "revoke", &token]);
    let e = store.get("apps/x").await.unwrap_err();
    assert!(e.to_string().contains("expired"), "revoked: reported as no longer valid: {e}");

    // AppRole with tokens without `default`: a denial does not log in again.
    run_bao(&bao, &["auth", "enable", "approle"]);
    run_bao(&bao, &["write", "auth/approle/role/nodefault", "token_policies=kv-apps", "token_no_default_policy=true"]);
    let role = json(&run_bao(&bao, &["read", "-format=json", "auth/approle/role/nodefault/role-id"]));
    let secret = json(&run_bao(&bao, &["write", "-f", "-format=json", "auth/approle/role/nodefault/secret-id"]));
    let mut config = VaultConfig::new(bao.addr(), SecretString::from(String::new()));
    config.auth = paved_vault::VaultAuth::AppRole {
        mount: "approle".into(),
        role_id: role["data"]["role_id"].as_str().unwrap().to_string(),
        secret_id: SecretString::from(secret["data"]["secret_id"].as_str().unwrap().to_string()),
    };
    let store = VaultSecretStore::connect(config).await.unwrap();
    let logins = tokens_from(&bao, "auth/approle/login").len();
    for _ in 0..3 {
        assert!(store.get("other/y").await.is_err());
    }
    assert_eq!(tokens_from(&bao, "auth/approle/login").len(), logins, "no new login per denied request");
    let _ = std::fs::remove_dir_all(&dir);
}
