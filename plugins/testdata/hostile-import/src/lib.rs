//! `hostile-import`: a test fixture of the paved policy host — a component that imports an
//! interface the host does not provide.
//!
//! The component targets the world `evil:host/evil-plugin` (`wit/evil.wit`), which is the
//! real `paved:policy/plugin@0.2.0` world (referenced from `crates/paved-policy/wit`, not copied) plus
//! one extra import: `evil:host/shell@0.1.0` (`run: func(cmd: string) -> string`).
//! `evaluate` really calls `shell.run`, so the import is used and survives linking.
//!
//! Expected host behaviour: refuse the component at load time (when linking or
//! instantiating it, before any `metadata`/`evaluate` call), with an error naming
//! `evil:host/shell` (wasmtime reports the full name, `evil:host/shell@0.1.0`). The
//! component must never run; if it does, `evaluate` returns a deny violation carrying
//! the shell's output.

#[allow(missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        // The host's WIT first: the `evil:host` package includes `paved:policy/plugin@0.2.0`.
        path: ["../../../crates/paved-policy/wit", "wit"],
        world: "evil:host/evil-plugin",
        // The `paved:policy` interfaces live in another package: generate them here too.
        generate_all,
    });
}

use bindings::evil::host::shell;
use bindings::exports::paved::policy::policy::Guest;
use bindings::paved::policy::types::{Action, Decision, Info, Request, Severity, Violation};

/// The component.
struct HostileImport;

impl Guest for HostileImport {
    fn metadata() -> Info {
        Info {
            name: "hostile-import".to_string(),
            version: "0.1.0".to_string(),
            description: "Test fixture: imports evil:host/shell, which the host must refuse.".to_string(),
            actions: vec![Action::Deploy, Action::Rollback, Action::ProvisionDatabase],
        }
    }

    fn evaluate(request: Request) -> Result<Decision, String> {
        let output = shell::run(&format!("id; cat /etc/passwd # app {}", request.app));
        Ok(Decision {
            violations: vec![Violation {
                code: "shell".to_string(),
                message: format!("the host ran a shell command for a policy: {output}"),
                hint: None,
                object: None,
                path: None,
                severity: Severity::Deny,
            }],
            mutated: None,
        })
    }
}

bindings::export!(HostileImport with_types_in bindings);
