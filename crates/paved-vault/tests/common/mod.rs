//! Shared helpers: a real OpenBao dev server and a store connected to it.

#![allow(dead_code, unreachable_pub)]

pub mod db;

use std::time::Duration;

use paved_testkit::OpenBao;
use paved_vault::{VaultConfig, VaultSecretStore};
use secrecy::{ExposeSecret, SecretString};

/// A fresh OpenBao dev server, or `None` (skip) outside CI when `bao` is missing.
pub fn bao() -> Option<OpenBao> {
    OpenBao::start()
}

/// A configuration for the server with the root token and quick retries.
pub fn config(bao: &OpenBao) -> VaultConfig {
    VaultConfig::new(bao.addr(), SecretString::from(bao.token())).retries(2, Duration::from_millis(10))
}

/// A connected store on `secret/`.
pub async fn store(bao: &OpenBao) -> VaultSecretStore {
    VaultSecretStore::connect(config(bao)).await.expect("connects to the dev server")
}

/// A secret map from pairs.
pub fn map(pairs: &[(&str, &str)]) -> paved_core::SecretMap {
    pairs.iter().map(|(k, v)| (k.to_string(), SecretString::from(v.to_string()))).collect()
}

/// A secret map's values, exposed, for assertions.
pub fn exposed(m: &paved_core::SecretMap) -> Vec<(String, String)> {
    m.iter().map(|(k, v)| (k.clone(), v.expose_secret().to_string())).collect()
}

/// Runs `bao` against the server; panics with its stderr on failure; returns stdout.
pub fn run_bao(bao: &OpenBao, args: &[&str]) -> String {
    let out = bao.command().args(args).output().expect("bao runs");
    assert!(out.status.success(), "bao {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Everything an error shows: Display, Debug and hint.
pub fn error_text(e: &paved_core::Error) -> String {
    format!("{e}\n{e:?}\n{:?}", e.hint())
}
