//! `paved-test-services openbao postgres mariadb moto`: starts the real services the Rust tests
//! use (the same [`paved_testkit`] code: free ports, the same tools, failing in CI when one is
//! missing), prints one JSON line with where they listen, and stops them when standard input
//! closes. The Python tests (`bindings/python/tests`) run their services through it.
//!
//! A service that is not installed outside CI is left out of the JSON (the tests needing it
//! skip); in CI (`CI=true`) it fails the run.

use std::io::Read;

/// `"name": {"key": "value", …}` with JSON escaping (ports are numbers).
fn field(name: &str, pairs: &[(&str, String)]) -> String {
    let values: Vec<String> = pairs
        .iter()
        .map(|(k, v)| match v.parse::<u16>() {
            Ok(n) if *k == "port" => format!("{}: {n}", quoted(k)),
            _ => format!("{}: {}", quoted(k), quoted(v)),
        })
        .collect();
    format!("{}: {{{}}}", quoted(name), values.join(", "))
}

/// `s` as a JSON string.
fn quoted(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn main() {
    let mut fields = Vec::new();
    let mut keep: Vec<Box<dyn std::any::Any>> = Vec::new();
    for name in std::env::args().skip(1) {
        match name.as_str() {
            "openbao" => {
                if let Some(bao) = paved_testkit::OpenBao::start() {
                    fields.push(field(
                        "openbao",
                        &[
                            ("addr", bao.addr()),
                            ("token", bao.token().into()),
                            ("bin", bao.bin().display().to_string()),
                        ],
                    ));
                    keep.push(Box::new(bao));
                }
            }
            "postgres" => {
                if let Some(pg) = paved_testkit::Postgres::start() {
                    fields.push(field(
                        "postgres",
                        &[
                            ("port", pg.port().to_string()),
                            ("user", "postgres".into()),
                            ("password", paved_testkit::Postgres::PASSWORD.into()),
                        ],
                    ));
                    keep.push(Box::new(pg));
                }
            }
            "mariadb" => {
                if let Some(db) = paved_testkit::MariaDb::start() {
                    fields.push(field(
                        "mariadb",
                        &[
                            ("port", db.port().to_string()),
                            ("user", "root".into()),
                            ("password", paved_testkit::MariaDb::PASSWORD.into()),
                        ],
                    ));
                    keep.push(Box::new(db));
                }
            }
            "moto" => {
                if let Some(moto) = paved_testkit::Moto::start() {
                    fields.push(field(
                        "moto",
                        &[("endpoint", moto.endpoint()), ("region", paved_testkit::Moto::REGION.into())],
                    ));
                    keep.push(Box::new(moto));
                }
            }
            other => {
                eprintln!("paved-test-services: unknown service {other:?} (openbao, postgres, mariadb, moto)");
                std::process::exit(2);
            }
        }
    }
    println!("{{{}}}", fields.join(", "));
    // Serve until the test run closes our standard input (or dies).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(keep);
}
