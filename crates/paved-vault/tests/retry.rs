//! Retries against a scripted HTTP server: 429 and 5xx are retried, other 4xx are not; the
//! namespace header is sent on every request.

use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use paved_core::SecretStore;
use paved_vault::{VaultConfig, VaultSecretStore};
use secrecy::{ExposeSecret, SecretString};

const KV_READ: &str = r#"{"request_id":"r","lease_id":"","lease_duration":0,"renewable":false,"wrap_info":null,"warnings":null,"auth":null,
"data":{"data":{"k":"v"},"metadata":{"created_time":"2026-01-01T00:00:00Z","deletion_time":"","destroyed":false,"version":1,"custom_metadata":null}}}"#;

/// Answers requests with `script` (status, body) in order (the last one repeats) and records
/// each request's head.
struct Scripted {
    addr: String,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    fn start(script: Vec<(u16, &'static str)>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for (i, stream) in listener.incoming().enumerate() {
                let Ok(mut stream) = stream else { return };
                let request = paved_testkit::StandInRequest::read(&mut BufReader::new(stream.try_clone().unwrap()));
                seen.lock().unwrap().push(request.head);
                let (status, body) = script[i.min(script.len() - 1)];
                if status == 0 {
                    // Never answer: the client times out.
                    held.push(stream);
                    continue;
                }
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes());
            }
        });
        Scripted { addr, heads }
    }

    fn store(&self) -> VaultSecretStore {
        let config = VaultConfig::new(&self.addr, SecretString::from("t"))
            .retries(3, Duration::from_millis(5))
            .namespace("team-a/dev");
        VaultSecretStore::new(config).unwrap()
    }

    fn requests(&self) -> usize {
        self.heads.lock().unwrap().len()
    }
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_retried() {
    let server = Scripted::start(vec![(503, r#"{"errors":["busy"]}"#), (429, r#"{"errors":[]}"#), (200, KV_READ)]);
    let data = server.store().get("app/db").await.unwrap();
    assert_eq!(data["k"].expose_secret(), "v");
    assert_eq!(server.requests(), 3);
    for head in server.heads.lock().unwrap().iter() {
        assert!(head.starts_with("GET /v1/secret/data/app/db"), "{head}");
        assert!(head.to_ascii_lowercase().contains("x-vault-namespace: team-a/dev"), "{head}");
    }
}

#[tokio::test]
async fn retries_stop_after_the_limit() {
    let server = Scripted::start(vec![(500, r#"{"errors":["internal error"]}"#)]);
    let e = server.store().get("app/db").await.unwrap_err();
    assert_eq!(server.requests(), 4, "one request and three retries");
    assert!(e.to_string().contains("answered 500") && e.to_string().contains("internal error"), "{e}");
    assert!(e.hint().is_some());
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    for (status, body) in [
        (400, r#"{"errors":["bad request"]}"#),
        (403, r#"{"errors":["permission denied"]}"#),
        (404, r#"{"errors":[]}"#),
    ] {
        let server = Scripted::start(vec![(status, body), (200, KV_READ)]);
        let e = server.store().get("app/db").await.unwrap_err();
        // A 403 is not retried; the token is looked up once to tell an invalid token from a
        // denial by policy (here the lookup gets an unexpected answer: the denial stands).
        let expected = if status == 403 { 2 } else { 1 };
        assert_eq!(server.requests(), expected, "{status} is not retried");
        if status == 403 {
            assert!(e.to_string().contains("permission denied on secret/app/db"), "{e}");
        }
        assert!(e.hint().is_some() || status == 400, "{e:?}");
    }
}

#[tokio::test]
async fn a_sealed_server_is_retried_then_reported() {
    let server = Scripted::start(vec![(503, r#"{"errors":["Vault is sealed"]}"#)]);
    let e = server.store().put("app/db", [("k".to_string(), SecretString::from("v"))].into()).await.unwrap_err();
    assert_eq!(server.requests(), 4);
    assert!(e.to_string().contains(&format!("{} is sealed", server.addr)), "{e}");
}

#[tokio::test]
async fn a_write_that_may_have_arrived_is_not_repeated() {
    let server = Scripted::start(vec![(0, "")]);
    let config = VaultConfig::new(&server.addr, SecretString::from("t"))
        .timeout(Duration::from_millis(300))
        .retries(2, Duration::from_millis(5));
    let store = VaultSecretStore::new(config).unwrap();
    let e = store.write("app/db", &[("k".to_string(), SecretString::from("v"))].into()).await.unwrap_err();
    assert!(matches!(e, paved_vault::Error::Unreachable { .. }), "{e:?}");
    assert!(e.to_string().contains("no answer within 300 ms"), "{e}");
    assert_eq!(server.requests(), 1, "a timed-out write is not sent again");
    // A read is safe to repeat.
    store.read("app/db").await.unwrap_err();
    assert_eq!(server.requests(), 4);
}
