//! Names paved gives AWS resources: derived deterministically from the request, within the
//! services' limits, never shared by two requests, and tagged with their owner.

use paved_core::DatabaseRequest;
use sha2::{Digest, Sha256};

/// The most characters of an RDS or DocumentDB identifier (instances and clusters).
pub const IDENTIFIER_MAX: usize = 63;

/// The tag that marks what paved created.
pub const MANAGED_BY: (&str, &str) = ("managed-by", "paved");
/// The tag of the owning team.
pub const TEAM_TAG: &str = "paved.dev/team";
/// The tag of the service.
pub const SERVICE_TAG: &str = "paved.dev/service";
/// The tag of the environment.
pub const ENVIRONMENT_TAG: &str = "paved.dev/environment";

/// The identifier of the database of `request`: `{team}-{service}-{env}-{hash}`, where the
/// hash (8 hex digits of SHA-256 over the three names) keeps two requests apart even when
/// their names join to the same text (`a-b`/`c` and `a`/`b-c`). Longer than 63 characters,
/// the names are cut and the hash stays. Letters, digits and single hyphens, starting with a
/// letter, as RDS and DocumentDB require.
pub fn identifier(request: &DatabaseRequest) -> String {
    identifier_with(request, "")
}

/// The identifier of the first instance of a cluster of `request` (DocumentDB): the cluster's
/// [`identifier`] with `-1`, within the same limit.
pub fn instance_identifier(request: &DatabaseRequest) -> String {
    identifier_with(request, "-1")
}

fn identifier_with(request: &DatabaseRequest, suffix: &str) -> String {
    let hash = short_hash(request);
    let mut base = format!("{}-{}-{}", request.team, request.service, request.environment).to_ascii_lowercase();
    base.retain(|c| c.is_ascii_alphanumeric() || c == '-');
    // No double hyphens anywhere (an RDS rule), none at the start or end.
    let mut clean = String::with_capacity(base.len());
    for c in base.chars() {
        if c == '-' && (clean.is_empty() || clean.ends_with('-')) {
            continue;
        }
        clean.push(c);
    }
    if !clean.starts_with(|c: char| c.is_ascii_alphabetic()) {
        clean.insert_str(0, "db-");
    }
    let room = IDENTIFIER_MAX - hash.len() - 1 - suffix.len();
    clean.truncate(room);
    let clean = clean.trim_end_matches('-');
    format!("{clean}-{hash}{suffix}")
}

/// The database name inside the instance: the [`identifier`] with underscores, as PostgreSQL
/// and MySQL accept it (letters, digits, underscores; at most 63), so no two requests' databases
/// share a name anywhere.
pub fn database_name(request: &DatabaseRequest) -> String {
    identifier(request).replace('-', "_")
}

/// The tags of everything paved creates for `request`.
pub fn tags(request: &DatabaseRequest) -> Vec<(String, String)> {
    vec![
        (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
        (TEAM_TAG.to_string(), request.team.to_string()),
        (SERVICE_TAG.to_string(), request.service.to_string()),
        (ENVIRONMENT_TAG.to_string(), request.environment.clone()),
    ]
}

/// Whether `tags` (key, value pairs of a resource) mark it as paved's for exactly `request`.
pub fn owned_by<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>, request: &DatabaseRequest) -> bool {
    let tags: Vec<(&str, &str)> = tags.into_iter().collect();
    let want = self::tags(request);
    want.iter().all(|(k, v)| tags.iter().any(|(tk, tv)| tk == k && tv == v))
}

/// Who a resource's tags say owns it, for messages (`team payments, service x, env y`, or
/// `not paved`).
pub fn owner<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let tags: Vec<(&str, &str)> = tags.into_iter().collect();
    let get = |k: &str| tags.iter().find(|(tk, _)| *tk == k).map(|(_, v)| *v);
    match get(MANAGED_BY.0) {
        Some(MANAGED_BY_VALUE) => format!(
            "team {}, service {}, environment {}",
            get(TEAM_TAG).unwrap_or("?"),
            get(SERVICE_TAG).unwrap_or("?"),
            get(ENVIRONMENT_TAG).unwrap_or("?")
        ),
        _ => "not created by paved (no managed-by = paved tag)".into(),
    }
}

const MANAGED_BY_VALUE: &str = MANAGED_BY.1;

/// Refuses a resource (`what`, e.g. `RDS instance x`) whose `tags` do not mark it as paved's
/// for exactly `request`: it is never adopted, reported or deleted.
pub fn check_owned(what: &str, tags: &[(String, String)], request: &DatabaseRequest) -> paved_core::Result<()> {
    let tags: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    if owned_by(tags.iter().copied(), request) {
        return Ok(());
    }
    Err(paved_core::Error::Conflict {
        what: what.to_string(),
        message: format!(
            "exists and is not paved's for team {}, service {}, environment {} ({}): it is never adopted or deleted",
            request.team,
            request.service,
            request.environment,
            owner(tags.iter().copied())
        ),
        hint: Some("rename or remove it, or ask for the database under another service name".into()),
    })
}

/// The error for a `[databases.NAME] subnet_group` that does not exist in the region.
pub(crate) fn missing_subnet_group(server: &str, group: &str) -> paved_core::Error {
    paved_core::Error::Config {
        path: "paved.toml".into(),
        line: None,
        message: format!(
            "[databases.{server}] subnet_group = {group:?}: there is no such DB subnet group in the region"
        ),
        hint: Some("create it (aws rds create-db-subnet-group) or name an existing one; nothing was created".into()),
    }
}

fn short_hash(request: &DatabaseRequest) -> String {
    let mut h = Sha256::new();
    // NUL separators: no two different triples hash the same text.
    for part in [request.team.as_str(), request.service.as_str(), request.environment.as_str()] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().take(4).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(team: &str, service: &str, env: &str) -> DatabaseRequest {
        DatabaseRequest::new(team, service, "postgres", env, "small").unwrap()
    }

    fn valid(id: &str) -> bool {
        id.len() <= IDENTIFIER_MAX
            && id.starts_with(|c: char| c.is_ascii_alphabetic())
            && !id.ends_with('-')
            && !id.contains("--")
            && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    }

    #[test]
    fn identifiers_are_deterministic_valid_and_never_shared() {
        let a = identifier(&req("payments", "payment-service", "staging"));
        assert_eq!(a, identifier(&req("payments", "payment-service", "staging")));
        assert!(a.starts_with("payments-payment-service-staging-") && valid(&a), "{a}");
        // Names that join to the same text still differ.
        let b = identifier(&req("a-b", "c", "dev"));
        let c = identifier(&req("a", "b-c", "dev"));
        assert_ne!(b, c);
        assert!(valid(&b) && valid(&c));
        // Long names are cut, the hash stays, and two long names differing at the end differ.
        let long = "x".repeat(50);
        let d = identifier(&req("payments", &format!("{long}-one"), "production"));
        let e = identifier(&req("payments", &format!("{long}-two"), "production"));
        assert!(valid(&d) && valid(&e) && d.len() == IDENTIFIER_MAX, "{d}");
        assert_ne!(d, e);
        // A cut that ends on a hyphen does not leave a double hyphen.
        let f = identifier(&req("payments", &format!("{}-{}", "y".repeat(44), "z".repeat(10)), "dev"));
        assert!(valid(&f), "{f}");
        let i = instance_identifier(&req("payments", &format!("{long}-one"), "production"));
        assert!(valid(&i) && i.ends_with("-1") && i != d, "{i}");
    }

    #[test]
    fn database_names_are_sql_identifiers() {
        let name = database_name(&req("payments", "payment-service", "dev"));
        assert!(name.starts_with("payments_payment_service_dev_") && name.len() <= 63, "{name}");
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{name}");
    }

    fn as_ref(t: &[(String, String)]) -> Vec<(&str, &str)> {
        t.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    #[test]
    fn ownership_needs_every_tag_to_match() {
        let r = req("payments", "api", "dev");
        let tags = tags(&r);
        assert!(owned_by(as_ref(&tags), &r));
        assert!(!owned_by(as_ref(&tags), &req("billing", "api", "dev")));
        assert!(!owned_by(as_ref(&tags[1..]), &r), "without managed-by it is not paved's");
        assert!(owner(as_ref(&tags)).contains("team payments"));
        assert!(owner([("Name", "x")]).contains("not created by paved"));
    }
}
