//! The `[admission]` section of `paved.toml`: how the webhook maps namespaces to environments,
//! what it does when it cannot decide in time, and where it runs.

use std::collections::BTreeMap;
use std::time::Duration;

use paved_core::{Error, FailurePolicy, OrgConfig, Result};
use serde::Deserialize;

/// The webhook's settings (`[admission]`; every key optional).
///
/// ```toml
/// [admission]
/// failure_policy = "fail"          # over the limit, past the deadline, or a crash: deny
/// timeout_seconds = 10             # the API server's webhook timeout (1–30)
/// max_concurrent = 64              # evaluations at once; more wait until the deadline
/// default_environment = "production"
/// exclude_namespaces = ["kube-system", "kube-public", "kube-node-lease"]
/// [admission.namespaces]           # namespace pattern → environment (`*` matches any run)
/// "payments-*" = "production"
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdmissionSettings {
    /// What a request the webhook cannot decide gets: over the concurrency limit, past the
    /// deadline, or an internal error. Also the `failurePolicy` of the rendered webhook
    /// configurations.
    pub failure_policy: FailurePolicy,
    /// The API server's timeout for the webhook (`timeoutSeconds`, 1–30): every decision is
    /// made within [`deadline`](Self::deadline), below it.
    pub timeout_seconds: u32,
    /// Evaluations that run at once; further requests wait for a slot until the deadline.
    pub max_concurrent: usize,
    /// Namespace patterns (`*` matches any run of characters) → environment. The longest
    /// matching pattern wins; a namespace no pattern matches is matched against `app.namespace`
    /// (`{app}-{env}` by default), then gets `default_environment`.
    pub namespaces: BTreeMap<String, String>,
    /// The environment of a namespace nothing else maps, and of cluster-scoped objects
    /// (default: `production`, the strictest; required when the organisation has none).
    pub default_environment: Option<String>,
    /// Namespaces the webhook is never called for (the rendered `namespaceSelector`) and
    /// allows if it is; its own namespace is always excluded.
    pub exclude_namespaces: Vec<String>,
    /// The namespace it is installed in.
    pub namespace: String,
    /// The name of its Deployment, Service and webhook configurations.
    pub name: String,
    /// Namespace patterns → environment, in the order they are tried (derived at load from
    /// `namespaces`, then `app.namespace` with each environment).
    #[serde(skip)]
    routes: Vec<(String, String)>,
    /// The environment when no route matches (`default_environment`, else `production`).
    #[serde(skip)]
    fallback: String,
}

impl Default for AdmissionSettings {
    fn default() -> Self {
        AdmissionSettings {
            failure_policy: FailurePolicy::Fail,
            timeout_seconds: 10,
            max_concurrent: 64,
            namespaces: BTreeMap::new(),
            default_environment: None,
            exclude_namespaces: vec!["kube-system".into(), "kube-public".into(), "kube-node-lease".into()],
            namespace: "paved-system".into(),
            name: "paved-admission".into(),
            routes: Vec::new(),
            fallback: "production".into(),
        }
    }
}

impl AdmissionSettings {
    /// The `[admission]` section of a configuration (defaults when absent), checked: the
    /// environments it names exist (with a did-you-mean), the timeout is one the API server
    /// accepts.
    pub fn from_config(config: &OrgConfig) -> Result<Self> {
        let mut settings: AdmissionSettings = config.section(&["admission"])?.unwrap_or_default();
        let envs = || config.environments.keys().map(String::as_str);
        for (pattern, env) in settings
            .namespaces
            .iter()
            .map(|(p, e)| (p.as_str(), e))
            .chain(settings.default_environment.iter().map(|e| ("", e)))
        {
            if !config.environments.contains_key(env) {
                let field = if pattern.is_empty() {
                    "admission.default_environment".to_string()
                } else {
                    format!("admission.namespaces.{pattern:?}")
                };
                return Err(Error::invalid(
                    field,
                    env.as_str(),
                    "is not an environment of this organisation",
                    Some(paved_core::suggest::hint_for(env, envs())),
                ));
            }
        }
        if settings.default_environment.is_none() && !config.environments.contains_key("production") {
            return Err(Error::invalid(
                "admission.default_environment",
                "(unset)",
                "is needed: this organisation has no `production` environment for namespaces nothing maps",
                Some(format!(
                    "set [admission] default_environment to the strictest of {}",
                    config.environments.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
                )),
            ));
        }
        if !(1..=30).contains(&settings.timeout_seconds) {
            return Err(Error::invalid(
                "admission.timeout_seconds",
                settings.timeout_seconds.to_string(),
                "is outside the 1–30 seconds the API server accepts for a webhook",
                Some("use e.g. 10 (the Kubernetes default)".into()),
            ));
        }
        if settings.max_concurrent == 0 {
            return Err(Error::invalid(
                "admission.max_concurrent",
                "0",
                "lets no request be evaluated",
                Some("use e.g. 64".into()),
            ));
        }
        for name in [&settings.namespace, &settings.name] {
            if paved_core::names::Team::new(name.clone()).is_err() {
                return Err(Error::invalid(
                    "admission",
                    name.as_str(),
                    "is not a DNS label (namespace and name must be)",
                    Some("use lowercase letters, digits and '-', at most 63 characters".into()),
                ));
            }
        }
        settings.routes = settings.routes_of(config);
        settings.fallback = settings.default_environment.clone().unwrap_or_else(|| "production".into());
        Ok(settings)
    }

    /// The namespace patterns to try, in order: `namespaces`, the most specific first (the
    /// longest without its `*`), then the `app.namespace` template with each environment, the
    /// longest environment name first (`staging` before `stage`).
    fn routes_of(&self, config: &OrgConfig) -> Vec<(String, String)> {
        let mut routes: Vec<(String, String)> = self.namespaces.iter().map(|(p, e)| (p.clone(), e.clone())).collect();
        routes.sort_by_key(|(pattern, _)| std::cmp::Reverse(pattern.replace('*', "").len()));
        let template = config.app.namespace.replace("{app}", "*").replace("{team}", "*");
        if template.contains("{env}") {
            let mut envs: Vec<&String> = config.environments.keys().collect();
            envs.sort_by_key(|e| std::cmp::Reverse(e.len()));
            routes.extend(envs.into_iter().map(|env| (template.replace("{env}", env), env.clone())));
        }
        routes
    }

    /// How long one decision may take: the webhook timeout less a margin for the network and
    /// the API server (a quarter of it, at least 200 ms), so that the answer, not the API
    /// server's timeout, decides.
    pub fn deadline(&self) -> Duration {
        let timeout = Duration::from_secs(u64::from(self.timeout_seconds));
        timeout - (timeout / 4).max(Duration::from_millis(200))
    }

    /// Whether the webhook leaves a namespace alone: its own and `exclude_namespaces`.
    pub fn excluded(&self, namespace: &str) -> bool {
        namespace == self.namespace || self.exclude_namespaces.iter().any(|n| n == namespace)
    }

    /// The environment of an object in `namespace` (`None`: cluster-scoped), as plan time
    /// would see it: the longest matching `namespaces` pattern, else the `app.namespace`
    /// template with each environment in turn, else `default_environment` (or `production`).
    pub fn environment_of(&self, namespace: Option<&str>) -> String {
        namespace
            .and_then(|ns| self.routes.iter().find(|(pattern, _)| glob(pattern, ns)))
            .map_or_else(|| self.fallback.clone(), |(_, env)| env.clone())
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters (none included).
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> OrgConfig {
        OrgConfig::parse("paved.toml", text).unwrap()
    }

    #[test]
    fn globs() {
        assert!(glob("payments-*", "payments-prod"));
        assert!(glob("*-production", "my-service-production"));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxc"));
        assert!(!glob("ab*ba", "aba"), "the prefix and suffix may not overlap");
        assert!(glob("exact", "exact") && !glob("exact", "exactly"));
    }

    #[test]
    fn namespaces_map_to_environments() {
        let c = config("[admission.namespaces]\n\"payments-*\" = \"production\"\n\"payments-test-*\" = \"dev\"\n");
        let s = AdmissionSettings::from_config(&c).unwrap();
        assert_eq!(s.environment_of(Some("payments-test-1")), "dev", "the longest pattern wins");
        assert_eq!(s.environment_of(Some("payments-api")), "production");
        // The app.namespace template ({app}-{env}).
        assert_eq!(s.environment_of(Some("my-service-staging")), "staging");
        assert_eq!(s.environment_of(Some("checkout-dev")), "dev");
        // Nothing maps it, and cluster-scoped objects: the strictest environment.
        assert_eq!(s.environment_of(Some("random")), "production");
        assert_eq!(s.environment_of(None), "production");
    }

    #[test]
    fn unknown_environments_and_keys_are_refused_with_hints() {
        let c = config("[admission.namespaces]\n\"payments-*\" = \"prodution\"\n");
        let e = AdmissionSettings::from_config(&c).unwrap_err();
        assert_eq!(e.kind(), paved_core::ErrorKind::InvalidInput);
        assert_eq!(e.hint(), Some("did you mean \"production\"?"));
        let c = config("[admission]\ntimeout_second = 5\n");
        let e = AdmissionSettings::from_config(&c).unwrap_err();
        assert!(e.hint().unwrap().contains("timeout_seconds"), "{e}");
        let c = config("[admission]\ntimeout_seconds = 31\n");
        assert!(AdmissionSettings::from_config(&c).unwrap_err().to_string().contains("1–30"));
    }

    #[test]
    fn the_deadline_stays_below_the_webhook_timeout() {
        let mut s = AdmissionSettings::default();
        assert_eq!(s.deadline(), Duration::from_millis(7500));
        s.timeout_seconds = 1;
        assert_eq!(s.deadline(), Duration::from_millis(750));
    }
}
