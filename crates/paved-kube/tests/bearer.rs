//! Tokens paved issues itself: a kubeconfig user whose `exec` entry runs `aws eks get-token`
//! gets its token from the token source instead (the command is never run), and a token
//! source replaces every credential of the kubeconfig's user.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use paved_kube::live::{Connection, ExecReplacement, TokenSource};
use secrecy::SecretString;

/// A source that counts how often it is asked.
struct Counting(AtomicUsize);

#[async_trait]
impl TokenSource for Counting {
    async fn token(&self) -> paved_core::Result<SecretString> {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        Ok(SecretString::from(format!("k8s-aws-v1.token-{n}")))
    }
}

/// An API server that answers `/version` and remembers each request's Authorization header.
fn api_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let url = paved_testkit::stand_in(move |request| {
        record.lock().unwrap().push(request.header("authorization").unwrap_or("(none)").to_string());
        let body = r#"{"major":"1","minor":"33","gitVersion":"v1.33.0","gitCommit":"x","gitTreeState":"clean","buildDate":"2025-01-01T00:00:00Z","goVersion":"go1.24","compiler":"gc","platform":"linux/amd64"}"#;
        (200, "application/json", body.to_string())
    });
    let port = url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port");
    (port, seen)
}

fn kubeconfig(dir: &std::path::Path, port: u16, user: &str) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: eks\nclusters:\n- name: eks\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: eks\n  context:\n    cluster: eks\n    user: u\nusers:\n- name: u\n  user:\n{user}"
        ),
    )
    .unwrap();
    path
}

#[tokio::test]
async fn an_aws_eks_get_token_exec_entry_is_replaced_by_the_token_source() {
    let (port, seen) = api_server();
    let dir = tempfile::tempdir().unwrap();
    // The command does not exist here: running it would fail the request.
    let exec = "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: aws\n      args: [--region, eu-west-1, eks, get-token, --cluster-name, prod]\n";
    let path = kubeconfig(dir.path(), port, exec);
    let source = Arc::new(Counting(AtomicUsize::new(0)));
    let asked = Arc::new(Mutex::new(Vec::new()));
    let (give, record) = (source.clone(), asked.clone());
    let replace: ExecReplacement = Arc::new(move |command: &str, args: &[String], _env: &[(String, String)]| {
        record.lock().unwrap().push(format!("{command} {}", args.join(" ")));
        Some(give.clone() as Arc<dyn TokenSource>)
    });
    let client = Connection::kubeconfig(Some(path), None).replace_exec(replace).client_now().await.unwrap();
    for _ in 0..3 {
        client.apiserver_version().await.unwrap();
    }
    assert_eq!(asked.lock().unwrap().as_slice(), ["aws --region eu-west-1 eks get-token --cluster-name prod"]);
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        ["Bearer k8s-aws-v1.token-0"; 3],
        "one token, reused within its minute"
    );
    assert_eq!(source.0.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_token_source_replaces_the_users_own_token() {
    let (port, seen) = api_server();
    let dir = tempfile::tempdir().unwrap();
    let path = kubeconfig(dir.path(), port, "    token: static-token-of-the-kubeconfig\n");
    let source = Arc::new(Counting(AtomicUsize::new(7)));
    let client = Connection::kubeconfig(Some(path.clone()), None).token_source(source).client_now().await.unwrap();
    client.apiserver_version().await.unwrap();
    assert_eq!(seen.lock().unwrap().as_slice(), ["Bearer k8s-aws-v1.token-7"]);
    // Without a source, and an exec entry nobody replaces, the kubeconfig's own token is used.
    let (port, seen) = api_server();
    let path = kubeconfig(dir.path(), port, "    token: static-token-of-the-kubeconfig\n");
    let never: ExecReplacement = Arc::new(|_: &str, _: &[String], _: &[(String, String)]| None);
    let client = Connection::kubeconfig(Some(path), None).replace_exec(never).client_now().await.unwrap();
    client.apiserver_version().await.unwrap();
    assert_eq!(seen.lock().unwrap().as_slice(), ["Bearer static-token-of-the-kubeconfig"]);
}

/// A source that fails once, then works.
struct FlakyOnce(AtomicUsize);

#[async_trait]
impl TokenSource for FlakyOnce {
    async fn token(&self) -> paved_core::Result<SecretString> {
        match self.0.fetch_add(1, Ordering::SeqCst) {
            0 => Err(paved_core::Error::unavailable("eks", "no credentials (test)", None)),
            n => Ok(SecretString::from(format!("k8s-aws-v1.token-{n}"))),
        }
    }
}

#[tokio::test]
async fn a_failed_token_fails_one_request_and_the_next_asks_again() {
    let (port, seen) = api_server();
    let dir = tempfile::tempdir().unwrap();
    let path = kubeconfig(dir.path(), port, "    token: static\n");
    let client = Connection::kubeconfig(Some(path), None)
        .token_source(Arc::new(FlakyOnce(AtomicUsize::new(0))))
        .client_now()
        .await
        .unwrap();
    let e = client.apiserver_version().await.unwrap_err();
    assert!(format!("{e:?}").contains("no credentials (test)"), "{e:?}");
    client.apiserver_version().await.expect("the client is not broken for good");
    assert_eq!(seen.lock().unwrap().as_slice(), ["Bearer k8s-aws-v1.token-1"]);
}

#[tokio::test]
async fn a_bare_user_takes_the_configured_source_and_a_user_with_credentials_keeps_them() {
    let source = || Arc::new(Counting(AtomicUsize::new(3))) as Arc<dyn TokenSource>;
    let dir = tempfile::tempdir().unwrap();
    // Only the server and its CA: the configured source authenticates.
    let (port, seen) = api_server();
    let path = kubeconfig(dir.path(), port, "    {}\n");
    let client =
        Connection::kubeconfig(Some(path), None).token_source_for_bare_user(source()).client_now().await.unwrap();
    client.apiserver_version().await.unwrap();
    assert_eq!(seen.lock().unwrap().as_slice(), ["Bearer k8s-aws-v1.token-3"]);
    // A user with a token of its own keeps it: a setting from a repository cannot swap it.
    let (port, seen) = api_server();
    let path = kubeconfig(dir.path(), port, "    token: restricted-user\n");
    let client =
        Connection::kubeconfig(Some(path), None).token_source_for_bare_user(source()).client_now().await.unwrap();
    client.apiserver_version().await.unwrap();
    assert_eq!(seen.lock().unwrap().as_slice(), ["Bearer restricted-user"]);
}
