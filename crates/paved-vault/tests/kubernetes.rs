//! Kubernetes auth: the login request paved sends (path, role, service-account JWT read from
//! its file at every login) and the token it then uses, checked against a scripted HTTP
//! responder that records requests.
//!
//! This checks the request construction (paths, JSON bodies, token headers) and the re-login
//! on a token that is no longer valid, on a custom auth mount. The login against a real OpenBao
//! with its kubernetes auth method enabled, where only the Kubernetes API server's TokenReview
//! endpoint is a stand-in, is in `kubernetes_openbao.rs`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use paved_core::SecretStore;
use paved_vault::{VaultConfig, VaultSecretStore};
use secrecy::{ExposeSecret, SecretString};

const KV_READ: &str = r#"{"request_id":"r","lease_id":"","lease_duration":0,"renewable":false,"wrap_info":null,"warnings":null,"auth":null,
"data":{"data":{"k":"v"},"metadata":{"created_time":"2026-01-01T00:00:00Z","deletion_time":"","destroyed":false,"version":1,"custom_metadata":null}}}"#;

fn login(token: &str) -> String {
    format!(
        r#"{{"request_id":"r","lease_id":"","lease_duration":0,"renewable":false,"data":null,"wrap_info":null,"warnings":null,
"auth":{{"client_token":"{token}","accessor":"acc","policies":["default"],"token_policies":["default"],"metadata":{{"role":"payments"}},
"lease_duration":3600,"renewable":true,"entity_id":"e","token_type":"service","orphan":true}}}}"#
    )
}

const DENIED: &str = r#"{"errors":["permission denied"]}"#;

/// One recorded request: the request line, the headers (lowercase) and the body.
#[derive(Debug, Clone)]
struct Request {
    line: String,
    headers: String,
    body: String,
}

/// Answers requests with `script` in order and records them.
fn scripted(script: Vec<(u16, String)>) -> (String, Arc<Mutex<Vec<Request>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for (i, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut headers = String::new();
            let mut length = 0usize;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                let h = h.to_ascii_lowercase();
                if let Some(v) = h.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                headers.push_str(&h);
            }
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            record.lock().unwrap().push(Request {
                line: line.trim().to_string(),
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            let (status, body) = script.get(i).cloned().unwrap_or((500, r#"{"errors":["script ended"]}"#.into()));
            let response = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    (addr, seen)
}

fn jwt_file(content: &str) -> std::path::PathBuf {
    let path =
        std::env::temp_dir().join(format!("paved-k8s-jwt-{}-{}", std::process::id(), paved_testkit::free_port()));
    std::fs::write(&path, content).unwrap();
    path
}

#[tokio::test]
async fn kubernetes_login_sends_role_and_jwt_and_logs_in_again_with_a_rotated_jwt() {
    let (addr, seen) = scripted(vec![
        (200, login("tok-one")),
        (200, KV_READ.into()),
        // The token was revoked: the read is denied, lookup-self too, and the token probe
        // (sys/internal/ui/mounts) says the token is no longer accepted; a new login follows.
        (403, DENIED.into()),
        (403, DENIED.into()),
        (403, DENIED.into()),
        (200, login("tok-two")),
        (200, KV_READ.into()),
    ]);
    let jwt = jwt_file("eyJ.first-jwt.sig\n");
    let config = VaultConfig::new(&addr, SecretString::from(String::new()))
        .kubernetes("k8s-prod", "payments")
        .kubernetes_jwt(&jwt)
        .retries(0, Duration::from_millis(1));
    assert!(!format!("{config:?}").contains("first-jwt"));
    let store = VaultSecretStore::connect(config).await.unwrap();
    assert_eq!(store.get("app/db").await.unwrap()["k"].expose_secret(), "v");
    // The kubelet rotates the token file; the next login reads it again.
    std::fs::write(&jwt, "eyJ.second-jwt.sig").unwrap();
    assert_eq!(store.get("app/db").await.unwrap()["k"].expose_secret(), "v");
    let _ = std::fs::remove_file(&jwt);

    let seen = seen.lock().unwrap().clone();
    let lines: Vec<&str> = seen.iter().map(|r| r.line.as_str()).collect();
    assert_eq!(
        lines,
        [
            "POST /v1/auth/k8s-prod/login HTTP/1.1",
            "GET /v1/secret/data/app/db? HTTP/1.1",
            "GET /v1/secret/data/app/db? HTTP/1.1",
            "GET /v1/auth/token/lookup-self HTTP/1.1",
            "GET /v1/sys/internal/ui/mounts HTTP/1.1",
            "POST /v1/auth/k8s-prod/login HTTP/1.1",
            "GET /v1/secret/data/app/db? HTTP/1.1",
        ]
    );
    let body: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(body, serde_json::json!({"role": "payments", "jwt": "eyJ.first-jwt.sig"}));
    let body: serde_json::Value = serde_json::from_str(&seen[5].body).unwrap();
    assert_eq!(body, serde_json::json!({"role": "payments", "jwt": "eyJ.second-jwt.sig"}));
    // Logins carry no token; requests carry the token of the latest login.
    assert!(!seen[0].headers.contains("x-vault-token: tok"), "{:?}", seen[0]);
    assert!(seen[1].headers.contains("x-vault-token: tok-one"), "{:?}", seen[1]);
    assert!(!seen[5].headers.contains("x-vault-token: tok"), "{:?}", seen[5]);
    assert!(seen[6].headers.contains("x-vault-token: tok-two"), "{:?}", seen[6]);
}

#[tokio::test]
async fn a_second_denial_after_a_new_login_is_the_error() {
    let (addr, seen) = scripted(vec![
        (200, login("tok-one")),
        (403, DENIED.into()),
        (403, DENIED.into()),
        (403, DENIED.into()),
        (200, login("tok-two")),
        (403, DENIED.into()),
    ]);
    let jwt = jwt_file("eyJ.jwt.sig");
    let config = VaultConfig::new(&addr, SecretString::from(String::new()))
        .kubernetes("kubernetes", "payments")
        .kubernetes_jwt(&jwt)
        .retries(0, Duration::from_millis(1));
    let store = VaultSecretStore::connect(config).await.unwrap();
    let e = store.get("app/db").await.unwrap_err();
    let _ = std::fs::remove_file(&jwt);
    assert!(e.to_string().contains("permission denied on secret/app/db"), "{e}");
    assert_eq!(seen.lock().unwrap().len(), 6, "one probe, one new login and one more try, no loop");
}

#[tokio::test]
async fn a_missing_service_account_token_is_a_config_error() {
    let config = VaultConfig::new("http://127.0.0.1:9", SecretString::from(String::new()))
        .kubernetes("kubernetes", "payments")
        .kubernetes_jwt("/nonexistent/serviceaccount/token");
    let e = VaultSecretStore::connect(config).await.unwrap_err();
    assert!(matches!(e, paved_vault::Error::Config { .. }), "{e:?}");
    assert!(e.to_string().contains("/nonexistent/serviceaccount/token"), "{e}");
    assert!(e.hint().unwrap().contains("VAULT_K8S_JWT_PATH"), "{e:?}");
}
