//! `contract-0-1`: a test fixture of the paved policy host — a policy built against the
//! earlier contract, `paved:policy@0.1.0` (`crates/paved-policy/wit-0.1.0`), which the host
//! keeps running now that the current contract is 0.2.0.
//!
//! It denies every object labelled `contract-test: deny`, and reports the action it was
//! shown in the violation's message (`provision-database` for deprovisioning, the 0.1.0
//! view), so a test sees what such a plugin is told.

#[allow(missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../crates/paved-policy/wit-0.1.0",
        world: "plugin",
    });
}

use bindings::exports::paved::policy::policy::Guest;
use bindings::paved::policy::types::{Action, Decision, Info, Request, Severity, Violation};

/// The component.
struct Contract01;

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Deploy => "deploy",
        Action::Rollback => "rollback",
        Action::ProvisionDatabase => "provision-database",
    }
}

impl Guest for Contract01 {
    fn metadata() -> Info {
        Info {
            name: "contract-0-1".to_string(),
            version: "0.1.0".to_string(),
            description: "Test fixture: built against paved:policy@0.1.0; denies objects labelled contract-test=deny."
                .to_string(),
            actions: vec![Action::Deploy, Action::Rollback, Action::ProvisionDatabase],
        }
    }

    fn evaluate(request: Request) -> Result<Decision, String> {
        let mut violations = Vec::new();
        for (i, text) in request.objects.iter().enumerate() {
            if text.contains(r#""contract-test":"deny""#) {
                violations.push(Violation {
                    code: "contract-test".to_string(),
                    message: format!(
                        "labelled contract-test=deny ({} seen as {})",
                        request.app,
                        action_name(request.action)
                    ),
                    hint: Some("remove the label contract-test".to_string()),
                    object: Some(i as u32),
                    path: Some("metadata.labels.contract-test".to_string()),
                    severity: Severity::Deny,
                });
            }
        }
        if request.database.is_some() {
            violations.push(Violation {
                code: "database".to_string(),
                message: format!("database action seen as {}", action_name(request.action)),
                hint: None,
                object: None,
                path: None,
                severity: Severity::Warn,
            });
        }
        Ok(Decision { violations, mutated: None })
    }
}

bindings::export!(Contract01 with_types_in bindings);
