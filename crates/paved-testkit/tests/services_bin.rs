//! `paved-test-services` (the Python tests' services): answers with one JSON line and stops
//! its services when its standard input closes.

use std::io::Write;
use std::process::{Command, Stdio};

#[test]
fn prints_where_services_listen_and_stops_on_eof() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_paved-test-services"))
        .arg("openbao")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("starts");
    child.stdin.take().expect("stdin").flush().expect("closes");
    let out = child.wait_with_output().expect("exits");
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).expect("utf-8");
    assert!(line.starts_with('{') && line.trim_end().ends_with('}'), "{line}");
    if paved_testkit::in_ci() || paved_testkit::find_tool("bao").is_some() {
        assert!(line.contains(r#""openbao": {"addr": "http://127.0.0.1:"#), "{line}");
    }
}

#[test]
fn refuses_an_unknown_service() {
    let out =
        Command::new(env!("CARGO_BIN_EXE_paved-test-services")).arg("redis").stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown service \"redis\""));
}
