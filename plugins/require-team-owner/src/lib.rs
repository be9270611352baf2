//! `require-team-owner` (paved's own): every object, and every workload's pod template, carries
//! the team label (setting `label`, default `paved.dev/team`, the label paved's golden path
//! renders) with a non-empty value naming a known team (setting `teams`; empty: any team); and
//! the request names a known owning team.

use paved_policy_sdk::{Decision, Input, Policy, Violation, kind, label_path, pod_of};

/// The policy.
pub struct RequireTeamOwner;

/// The label when the setting `label` is absent: the one paved's golden path renders.
pub const DEFAULT_LABEL: &str = "paved.dev/team";

impl Policy for RequireTeamOwner {
    const NAME: &'static str = "require-team-owner";
    const DESCRIPTION: &'static str = "Every object and pod template carries the team label (default `paved.dev/team`) naming a known team, and so does the request.";

    fn evaluate(input: &Input) -> Result<Decision, String> {
        let label: String = input.setting_or("label", || DEFAULT_LABEL.to_string())?;
        let teams = input.string_list("teams")?;
        let pod_templates: bool = input.setting_or("pod_templates", || true)?;
        let known = |team: &str| teams.is_empty() || teams.iter().any(|t| t == team);
        let unknown_hint = || format!("use one of the teams {} (setting `teams`)", teams.join(", "));
        let mut decision = Decision::allow();

        let team = input.request.team.as_str();
        if team.is_empty() {
            decision.push(
                Violation::deny("require-team", "the request names no owning team")
                    .hint("deploy with --team TEAM, or set default_team in paved.toml"),
            );
        } else if !known(team) {
            decision.push(
                Violation::deny("unknown-team", format!("the request's team {team} is not a known team"))
                    .hint(unknown_hint()),
            );
        }

        let mut check = |value: Option<&str>, what: &str, object: usize, path: String| {
            let violation = match value {
                Some(v) if !v.is_empty() && known(v) => return,
                Some(v) if !v.is_empty() => {
                    Violation::deny("unknown-team", format!("{what} names the unknown team {v} ({label})"))
                        .hint(unknown_hint())
                }
                _ => Violation::deny("require-team-label", format!("{what} has no team label {label}")).hint(format!(
                    "label it {label}: <owning team>, e.g. {label}: {}",
                    if team.is_empty() { "platform" } else { team }
                )),
            };
            decision.push(violation.at(object as u32, path));
        };

        for (i, object) in input.objects()?.iter().enumerate() {
            let kind = kind(object);
            if kind.is_empty() {
                continue;
            }
            let value = object.get("metadata").and_then(|m| m.get("labels")).and_then(|l| l.get(&label));
            check(value.and_then(|v| v.as_str()), kind, i, label_path("metadata", &label));
            if !pod_templates {
                continue;
            }
            if let Some(pod) = pod_of(i, object).filter(|p| p.kind != "Pod") {
                check(pod.label(&label), &format!("the pod template of the {kind}"), i, pod.label_path(&label));
            }
        }
        Ok(decision)
    }
}

#[cfg(target_arch = "wasm32")]
paved_policy_sdk::export_policy!(RequireTeamOwner);

#[cfg(test)]
mod tests {
    use super::*;
    use paved_policy_sdk::testing::{self, TestRequest, workload};
    use paved_policy_sdk::{POD_BEARING_KINDS, Value, json};

    const DIR: &str = env!("CARGO_MANIFEST_DIR");

    fn eval(req: TestRequest) -> testing::Outcome {
        let out = req.evaluate::<RequireTeamOwner>();
        out.assert_well_formed();
        out
    }

    fn config_map(team: Option<&str>) -> Value {
        let mut o = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}});
        if let Some(t) = team {
            o["metadata"]["labels"] = json!({"paved.dev/team": t});
        }
        o
    }

    paved_policy_sdk::policy_tests!(RequireTeamOwner);

    #[test]
    fn golden_path_passes() {
        testing::check_golden_path::<RequireTeamOwner>(DIR);
    }

    #[test]
    fn objects_and_pod_templates_need_the_label() {
        for kind in POD_BEARING_KINDS {
            let ok = workload(kind, json!({}));
            assert!(eval(TestRequest::for_plugin(DIR).object(ok.clone())).allowed(), "{kind}");
            let mut bare = ok.clone();
            bare["metadata"]["labels"] = json!({});
            let out = eval(TestRequest::for_plugin(DIR).object(bare));
            assert_eq!(out.paths(), ["metadata.labels[\"paved.dev/team\"]"], "{kind}");
            if *kind != "Pod" {
                let mut template = ok.clone();
                let meta = pod_of(0, &ok).unwrap().metadata_path.replace('.', "/");
                template.pointer_mut(&format!("/{meta}")).unwrap()["labels"] = json!({});
                let out = eval(TestRequest::for_plugin(DIR).object(template.clone()));
                assert_eq!(out.codes(), ["require-team-label"], "{kind}");
                assert_eq!(
                    out.paths(),
                    [format!("{}.labels[\"paved.dev/team\"]", pod_of(0, &ok).unwrap().metadata_path)]
                );
                let off = TestRequest::for_plugin(DIR).setting("pod_templates", json!(false)).object(template);
                assert!(eval(off).allowed(), "{kind}");
            }
        }
        let out = eval(TestRequest::for_plugin(DIR).object(config_map(None)).object(config_map(Some(""))));
        assert_eq!(out.codes(), ["require-team-label"; 2]);
        assert_eq!(out.denials()[1].object, Some(1));
    }

    #[test]
    fn the_teams_setting() {
        let req = TestRequest::for_plugin(DIR).setting("teams", json!(["payments", "search"]));
        let out = eval(req.clone().team("payments").object(config_map(Some("platform"))));
        assert_eq!(out.codes(), ["unknown-team"]);
        assert!(out.denials()[0].hint.as_deref().unwrap().contains("payments, search"));
        let out = eval(req.clone().team("platform").object(config_map(Some("search"))));
        assert_eq!(out.codes(), ["unknown-team"]);
        assert_eq!(out.denials()[0].object, None);
        assert!(eval(req.team("search").object(config_map(Some("payments")))).allowed());
    }

    #[test]
    fn the_request_needs_a_team() {
        let out = eval(TestRequest::for_plugin(DIR).team(""));
        assert_eq!(out.codes(), ["require-team"]);
    }

    #[test]
    fn the_label_setting() {
        let mut o = config_map(None);
        o["metadata"]["labels"] = json!({"owner": "platform"});
        let req = TestRequest::for_plugin(DIR).setting("label", json!("owner")).object(o);
        assert!(eval(req).allowed());
    }
}
