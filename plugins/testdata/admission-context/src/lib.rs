//! `admission-context`: a test fixture of the paved policy host — a policy built against
//! `paved:policy@0.2.0` that reads the admission context of `paved admission serve`.
//!
//! - every admission request gets a warning describing the context it saw
//!   (`context: UPDATE by alice in team-a, dry run, old object`), so a test sees what reached
//!   the plugin;
//! - an UPDATE that changes the label `immutable-owner` is denied (it needs the old object);
//! - a DELETE of an object labelled `protected: "true"` is denied (it needs the operation).
//!
//! At plan time (no admission context) it allows everything.

use paved_policy_sdk::{Decision, Input, Operation, Policy, Value, Violation};

/// The policy.
pub struct AdmissionContext;

fn label<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object.pointer("/metadata/labels").and_then(|l| l.get(key)).and_then(Value::as_str)
}

impl Policy for AdmissionContext {
    const NAME: &'static str = "admission-context";
    const DESCRIPTION: &'static str = "Test fixture: reports the admission context; denies changing the label immutable-owner and deleting objects labelled protected=true.";

    fn evaluate(input: &Input) -> Result<Decision, String> {
        let mut decision = Decision::allow();
        let Some(admission) = input.admission() else { return Ok(decision) };
        let operation = match admission.operation {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        };
        let old = input.old_object()?;
        decision.push(Violation::warn(
            "context",
            format!(
                "context: {operation} {} {} by {} in {}{}{}",
                admission.kind,
                admission.name,
                admission.user_info.username,
                admission.namespace.as_deref().unwrap_or("(cluster)"),
                if admission.dry_run { ", dry run" } else { "" },
                if old.is_some() { ", old object" } else { "" },
            ),
        ));
        let objects = input.objects()?;
        let Some(object) = objects.first() else { return Ok(decision) };
        if let Some(old) = &old
            && operation == "UPDATE"
            && label(old, "immutable-owner") != label(object, "immutable-owner")
        {
            decision.push(
                Violation::deny("immutable-owner", "the label immutable-owner cannot be changed")
                    .hint("create a new object instead")
                    .at(0, "metadata.labels.immutable-owner"),
            );
        }
        if operation == "DELETE" && label(object, "protected") == Some("true") {
            decision.push(
                Violation::deny("protected", "objects labelled protected=true cannot be deleted")
                    .hint("remove the label first"),
            );
        }
        Ok(decision)
    }
}

#[cfg(target_arch = "wasm32")]
paved_policy_sdk::export_policy!(AdmissionContext);
