//! Validation: a [`DeployRequest`] plus the organisation's defaults become a [`ResolvedApp`].

use serde::{Deserialize, Serialize};

use crate::config::{AppDefaults, Environment, OrgConfig};
use crate::error::{Error, Result};
use crate::image::ImageRef;
use crate::names::{AppName, Team, to_dns_label};
use crate::quantity::{CpuQuantity, MemoryQuantity};
use crate::request::{Commit, Component, DeployRequest, EscapeHatch, ManifestFile};
use crate::secret::SecretBinding;

/// Resource requests and limits of the app container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// CPU request.
    pub cpu_request: CpuQuantity,
    /// CPU limit, if any.
    pub cpu_limit: Option<CpuQuantity>,
    /// Memory request.
    pub memory_request: MemoryQuantity,
    /// Memory limit.
    pub memory_limit: MemoryQuantity,
}

/// Autoscaling bounds of the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Autoscaling {
    /// `minReplicas`.
    pub min: u32,
    /// `maxReplicas`.
    pub max: u32,
    /// Target average CPU utilisation in percent.
    pub target_cpu_utilization: u8,
}

/// Everything a renderer needs: the request with every default filled in and every rule
/// checked. Building one is the *validate* step of the golden path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ResolvedApp {
    /// The app.
    pub app: AppName,
    /// The owning team.
    pub team: Team,
    /// The environment with its defaults.
    pub environment: Environment,
    /// The image.
    pub image: ImageRef,
    /// Replicas (the HPA's minimum when autoscaling is on).
    pub replicas: u32,
    /// Autoscaling, when the HPA is rendered.
    pub autoscaling: Option<Autoscaling>,
    /// Requests and limits.
    pub resources: Resources,
    /// The namespace of every namespaced object.
    pub namespace: String,
    /// The public host name, `{app}.{env}.{domain}`.
    pub host: String,
    /// The defaults every app shares (port, probe path, ingress class, …).
    pub defaults: AppDefaults,
    /// The default objects that are rendered.
    pub components: Vec<Component>,
    /// Overlays merged into the rendered objects.
    pub custom_manifests: Vec<ManifestFile>,
    /// Objects added to the release.
    pub extra_manifests: Vec<ManifestFile>,
    /// Environment variables from secret stores.
    pub secrets: Vec<SecretBinding>,
    /// How their values reach the app.
    pub secret_mode: crate::config::SecretMode,
    /// The Vault role of the Agent Injector (agent mode).
    pub vault_role: String,
    /// The IAM role of the app's service account for `aws-sm://` secrets in agent mode
    /// (`[secrets] aws_role_arn`, its placeholders replaced).
    pub aws_role_arn: Option<String>,
    /// Whether the AWS provider uses EKS Pod Identity.
    pub aws_pod_identity: bool,
    /// Every escape hatch used, as recorded in the release.
    pub escape_hatches: Vec<EscapeHatch>,
    /// What the app's escape hatches are granted beyond its namespace (its team's
    /// `[escape_hatches.grants]`, when the app is bound to the team).
    pub grants: Vec<String>,
    /// Commits shipped.
    pub commits: Vec<Commit>,
    /// What a workload file (Score) adds to the golden path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<crate::workload::Workload>,
}

impl ResolvedApp {
    /// Resolves and validates a request against the configuration.
    pub fn resolve(config: &OrgConfig, request: &DeployRequest) -> Result<Self> {
        let environment = config.environment(&request.environment)?;
        let env = &environment.config;
        let bound = config.apps.get(request.app.as_str()).and_then(|a| a.team.as_ref());
        if let (Some(bound), Some(asked)) = (bound, request.team.as_ref())
            && bound != asked
        {
            return Err(Error::invalid(
                "team",
                asked.as_str(),
                format!("app {} belongs to team {bound} ([apps.{}] team in paved.toml)", request.app, request.app),
                Some(format!("deploy it as team {bound}, or leave the team out")),
            ));
        }
        let team = config.team(request.team.as_ref().or(bound))?;
        let replicas = match request.replicas {
            Some(0) => {
                return Err(Error::invalid(
                    "replicas",
                    "0",
                    "must be at least 1",
                    Some("set `replicas` to 1 or more".into()),
                ));
            }
            Some(n) if n > env.max_replicas => {
                return Err(Error::invalid(
                    "replicas",
                    n.to_string(),
                    format!("is above the maximum of {} for {}", env.max_replicas, environment.name),
                    Some(format!(
                        "use at most {}, or raise environments.{}.max_replicas in paved.toml",
                        env.max_replicas, environment.name
                    )),
                ));
            }
            Some(n) => n,
            None if env.autoscaling.enabled && !request.overrides.disabled.contains(&Component::Hpa) => {
                env.autoscaling.min
            }
            None => env.replicas,
        };

        let o = &request.overrides;
        let d = &env.resources;
        let resources = Resources {
            cpu_request: o.cpu_request.clone().unwrap_or_else(|| d.cpu_request.clone()),
            cpu_limit: o.cpu_limit.clone().or_else(|| d.cpu_limit.clone()),
            memory_request: o.memory_request.clone().unwrap_or_else(|| d.memory_request.clone()),
            memory_limit: o.memory_limit.clone().unwrap_or_else(|| d.memory_limit.clone()),
        };
        if let Some(limit) = &resources.cpu_limit
            && limit.millis() < resources.cpu_request.millis()
        {
            return Err(below(
                "cpu",
                limit.as_str(),
                resources.cpu_request.as_str(),
                o.cpu_limit.is_some(),
                &environment.name,
            ));
        }
        if resources.memory_limit.bytes() < resources.memory_request.bytes() {
            return Err(below(
                "memory",
                resources.memory_limit.as_str(),
                resources.memory_request.as_str(),
                o.memory_limit.is_some(),
                &environment.name,
            ));
        }

        let mut components: Vec<Component> =
            Component::ALL.into_iter().filter(|c| !request.overrides.disabled.contains(c)).collect();
        if !env.autoscaling.enabled {
            components.retain(|c| *c != Component::Hpa);
        }
        if !env.monitoring {
            components.retain(|c| *c != Component::ServiceMonitor);
        }
        crate::observability::retain_configured(env, &mut components);
        let autoscaling = components.contains(&Component::Hpa).then(|| Autoscaling {
            min: replicas,
            max: env.autoscaling.max.max(replicas),
            target_cpu_utilization: env.autoscaling.target_cpu_utilization,
        });

        let namespace = config
            .app
            .namespace
            .replace("{app}", request.app.as_str())
            .replace("{team}", team.as_str())
            .replace("{env}", &environment.name);
        if crate::names::Team::new(namespace.clone()).is_err() {
            return Err(Error::invalid(
                "namespace",
                &namespace,
                "is not a valid namespace name (a DNS label of at most 63 characters)",
                Some(format!(
                    "use a shorter app name, or change app.namespace in paved.toml (e.g. \"{}\")",
                    to_dns_label(&namespace, false)
                )),
            ));
        }
        let host = format!("{}.{}.{}", request.app, environment.name, config.domain);
        let fill = |template: &str| {
            template
                .replace("{app}", request.app.as_str())
                .replace("{team}", team.as_str())
                .replace("{env}", &environment.name)
        };
        let vault_role = fill(&config.secrets.vault_role);
        let aws_role_arn = config.secrets.aws_role_arn.as_deref().map(fill);

        let secrets = app_secrets(config, request);
        for binding in &secrets {
            config.secrets.check_reference(&team, request.app.as_str(), &environment.name, &binding.reference)?;
        }
        // Escape hatches stay inside the app; what a grant lets out is recorded.
        let grants = config.grants_of_app(request.app.as_str(), &team).to_vec();
        let bounds = crate::containment::Bounds::new(
            request.app.as_str(),
            team.as_str(),
            &environment.name,
            &namespace,
            &grants,
        );
        let mut escape_hatches = o.escape_hatches();
        escape_hatches.extend(bounds.check(&o.extra_manifests, &o.custom_manifests)?);
        if let Some(w) = &request.workload {
            // A workload file's other containers ask for resources as the app container's
            // escape hatches do, so the organisation's bounds (policy on these names) see them.
            for s in &w.sidecars {
                let names = ["cpu-request", "cpu-limit", "memory-request", "memory-limit"];
                for (name, value) in names.into_iter().zip(&s.resources) {
                    if let Some(v) = value {
                        escape_hatches.push(EscapeHatch::new(name, v.as_str()));
                    }
                }
            }
            // Provisioned objects stay inside the app as extra manifests do.
            escape_hatches.extend(bounds.check(&w.objects, &[])?);
        }
        Ok(ResolvedApp {
            app: request.app.clone(),
            team,
            image: request.image.clone(),
            replicas,
            autoscaling,
            resources,
            namespace,
            host,
            defaults: config.app.clone(),
            components,
            custom_manifests: o.custom_manifests.clone(),
            extra_manifests: o.extra_manifests.clone(),
            secrets,
            secret_mode: config.secrets.mode,
            vault_role,
            aws_role_arn,
            aws_pod_identity: config.secrets.aws_pod_identity,
            escape_hatches,
            grants,
            commits: request.commits.clone(),
            workload: request.workload.clone(),
            environment,
        })
    }

    /// `true` when this default object is rendered.
    pub fn renders(&self, component: Component) -> bool {
        self.components.contains(&component)
    }

    /// The public URL, when an Ingress is rendered.
    pub fn url(&self) -> Option<String> {
        self.renders(Component::Ingress).then(|| format!("https://{}", self.host))
    }
}

/// The app's secrets from `[apps.NAME]` in paved.toml, then the request's (which win).
fn app_secrets(config: &OrgConfig, request: &DeployRequest) -> Vec<SecretBinding> {
    let mut out: Vec<SecretBinding> = config
        .apps
        .get(request.app.as_str())
        .map(|a| a.secrets.iter().map(|(env, r)| SecretBinding { env: env.clone(), reference: r.clone() }).collect())
        .unwrap_or_default();
    for b in &request.secrets {
        out.retain(|o| o.env != b.env);
        out.push(b.clone());
    }
    out
}

fn below(resource: &'static str, limit: &str, request: &str, limit_overridden: bool, env: &str) -> Error {
    let (field, request_term, limit_term) = match resource {
        "cpu" => ("cpu-limit", "`cpu_request`", "`cpu_limit`"),
        _ => ("memory-limit", "`memory_request`", "`memory_limit`"),
    };
    let hint = if limit_overridden {
        format!("raise {limit_term} to at least {request}, or lower {request_term}")
    } else {
        format!("the {env} default {resource} limit is {limit}: lower {request_term} or raise {limit_term} too")
    };
    Error::invalid(field, limit, format!("is below the {resource} request {request}"), Some(hint))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Overrides;

    fn request() -> DeployRequest {
        DeployRequest::new("my-service", "ghcr.io/company/my-service:v1.2.3", "production").unwrap()
    }

    #[test]
    fn defaults_fill_in() {
        let app = ResolvedApp::resolve(&OrgConfig::default(), &request()).unwrap();
        assert_eq!(app.replicas, 3);
        assert_eq!(app.autoscaling, Some(Autoscaling { min: 3, max: 10, target_cpu_utilization: 70 }));
        assert_eq!(app.namespace, "my-service-production");
        assert_eq!(app.url().as_deref(), Some("https://my-service.production.example.com"));
        assert_eq!(app.team.as_str(), "platform");
        assert_eq!(app.components.len(), 5);
        assert!(app.escape_hatches.is_empty());
        let dev =
            ResolvedApp::resolve(&OrgConfig::default(), &DeployRequest { environment: "dev".into(), ..request() })
                .unwrap();
        assert!(!dev.renders(Component::ServiceMonitor));
    }

    /// The observability components are rendered where the environment switches them on, and
    /// a request switches them off as recorded escape hatches.
    #[test]
    fn observability_components_follow_the_environment_and_the_request() {
        let c = OrgConfig::parse(
            "paved.toml",
            "[environments.production]\nmesh = \"linkerd\"\n[environments.production.dashboard]\nenabled = true\n\
             [environments.production.alerts]\nenabled = true\n[environments.production.tracing]\nenabled = true\n\
             endpoint = \"http://otel:4318\"\n",
        )
        .unwrap();
        let app = ResolvedApp::resolve(&c, &request()).unwrap();
        for component in [Component::Dashboard, Component::Alerts, Component::Tracing, Component::Mesh] {
            assert!(app.renders(component), "{component}");
            assert!(!ResolvedApp::resolve(&OrgConfig::default(), &request()).unwrap().renders(component));
        }
        let o = Overrides { disabled: vec![Component::Mesh, Component::Alerts], ..Overrides::default() };
        let app = ResolvedApp::resolve(&c, &request().with_overrides(o)).unwrap();
        assert!(!app.renders(Component::Mesh) && !app.renders(Component::Alerts) && app.renders(Component::Dashboard));
        let hatches: Vec<String> = app.escape_hatches.iter().map(ToString::to_string).collect();
        assert_eq!(hatches, ["no-alerts", "no-mesh"]);
        assert_eq!("dashbaord".parse::<Component>().unwrap_err().hint(), Some("did you mean \"dashboard\"?"));
    }

    /// Review of issue 18: an app bound to a team in paved.toml cannot be deployed as another
    /// team (which would read that team's secrets); the team `database` is reserved.
    #[test]
    fn an_app_bound_to_a_team_keeps_its_team() {
        let c = OrgConfig::parse("paved.toml", "[apps.my-service]\nteam = \"payments\"\n").unwrap();
        assert_eq!(ResolvedApp::resolve(&c, &request()).unwrap().team.as_str(), "payments");
        let as_search = request().with_team(Team::new("search").unwrap());
        let e = ResolvedApp::resolve(&c, &as_search).unwrap_err();
        assert!(e.to_string().contains("belongs to team payments"), "{e}");
        let mut r = request().with_team(Team::new("database").unwrap());
        r.secrets = vec!["X=vault://secret/database/payments/api/dev#host".parse().unwrap()];
        let e = ResolvedApp::resolve(&OrgConfig::default(), &r).unwrap_err();
        assert!(e.to_string().contains("reserved"), "{e}");
    }

    #[test]
    fn secrets_from_the_app_section_and_the_request() {
        let c = OrgConfig::parse(
            "paved.toml",
            "[secrets]\nteam_paths = [\"*\"]\n[apps.my-service]\nsecrets = { DB_PASSWORD = \"vault://secret/a#pw\", TOKEN = \"vault://secret/b#t\" }\n",
        )
        .unwrap();
        let mut r = request();
        r.secrets = vec!["TOKEN=vault://secret/c#t".parse().unwrap()];
        let a = ResolvedApp::resolve(&c, &r).unwrap();
        let got: Vec<String> = a.secrets.iter().map(|b| format!("{}={}", b.env, b.reference)).collect();
        assert_eq!(got, ["DB_PASSWORD=vault://secret/a#pw", "TOKEN=vault://secret/c#t"]);
        let e = OrgConfig::parse("paved.toml", "[apps.my-service]\nsecrets = { X = \"vualt://a#b\" }\n").unwrap_err();
        assert!(e.to_string().contains("vualt"), "{e}");
    }

    #[test]
    fn replicas_bounds() {
        let c = OrgConfig::default();
        let e = ResolvedApp::resolve(&c, &request().with_replicas(0)).unwrap_err();
        assert_eq!(e.hint(), Some("set `replicas` to 1 or more"));
        let e = ResolvedApp::resolve(&c, &request().with_replicas(51)).unwrap_err();
        assert!(e.to_string().contains("maximum of 50"), "{e}");
        let a = ResolvedApp::resolve(&c, &request().with_replicas(20)).unwrap();
        assert_eq!(a.autoscaling.map(|a| (a.min, a.max)), Some((20, 20)));
    }

    #[test]
    fn limits_below_requests() {
        let c = OrgConfig::default();
        let o = Overrides { cpu_request: Some(CpuQuantity::new("2").unwrap()), ..Overrides::default() };
        let e = ResolvedApp::resolve(&c, &request().with_overrides(o)).unwrap_err();
        assert!(e.to_string().contains("cpu-limit"), "{e}");
        assert!(e.hint().unwrap().contains("production default"), "{e:?}");
        let o = Overrides {
            memory_request: Some(MemoryQuantity::new("1Gi").unwrap()),
            memory_limit: Some(MemoryQuantity::new("512Mi").unwrap()),
            ..Overrides::default()
        };
        let e = ResolvedApp::resolve(&c, &request().with_overrides(o)).unwrap_err();
        assert_eq!(e.hint(), Some("raise `memory_limit` to at least 1Gi, or lower `memory_request`"));
        let o = Overrides { cpu_limit: Some(CpuQuantity::new("2000m").unwrap()), ..Overrides::default() };
        let a = ResolvedApp::resolve(&c, &request().with_overrides(o)).unwrap();
        assert_eq!(a.resources.cpu_limit.unwrap().millis(), 2000);
        assert_eq!(a.escape_hatches[0].to_string(), "cpu-limit=2000m");
    }

    #[test]
    fn disabled_components_and_long_namespaces() {
        let c = OrgConfig::default();
        let o = Overrides { disabled: vec![Component::Hpa, Component::Ingress], ..Overrides::default() };
        let a = ResolvedApp::resolve(&c, &request().with_overrides(o)).unwrap();
        assert_eq!(a.autoscaling, None);
        assert_eq!(a.replicas, 3);
        assert_eq!(a.url(), None);
        let long = DeployRequest::new(&"a".repeat(60), "nginx:1", "production").unwrap();
        let e = ResolvedApp::resolve(&c, &long).unwrap_err();
        assert!(e.to_string().contains("namespace"), "{e}");
    }
}
