//! "Did you mean …?" suggestions for names the user mistyped.

/// Well-known abbreviations of environment names, tried before string similarity.
const ALIASES: &[(&str, &str)] = &[
    ("prod", "production"),
    ("prd", "production"),
    ("live", "production"),
    ("stg", "staging"),
    ("stage", "staging"),
    ("development", "dev"),
    ("develop", "dev"),
    ("test", "staging"),
];

/// The candidate closest to `input`, if one is close enough to be worth suggesting.
///
/// Tries, in order: a case-insensitive exact match, a well-known alias (`prod` →
/// `production`), a prefix match, then Jaro–Winkler similarity ≥ 0.8.
///
/// ```
/// use paved_core::suggest::did_you_mean;
/// let envs = ["dev", "staging", "production"];
/// assert_eq!(did_you_mean("prod", envs), Some("production"));
/// assert_eq!(did_you_mean("stagin", envs), Some("staging"));
/// assert_eq!(did_you_mean("xyz", envs), None);
/// ```
pub fn did_you_mean<'a, I>(input: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let candidates: Vec<&'a str> = candidates.into_iter().collect();
    let lower = input.to_ascii_lowercase();
    if let Some(c) = candidates.iter().find(|c| c.eq_ignore_ascii_case(input)) {
        return Some(c);
    }
    if let Some((_, target)) = ALIASES.iter().find(|(alias, _)| *alias == lower)
        && let Some(c) = candidates.iter().find(|c| *c == target)
    {
        return Some(c);
    }
    if lower.len() >= 2
        && let Some(c) = candidates.iter().find(|c| c.starts_with(&lower))
    {
        return Some(c);
    }
    candidates
        .iter()
        .map(|c| (c, strsim::jaro_winkler(&lower, c)))
        .filter(|(_, score)| *score >= 0.8)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| *c)
}

/// A hint sentence: `did you mean "x"?` or, without a close match, the list of valid names.
pub fn hint_for<'a, I>(input: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str> + Clone,
{
    match did_you_mean(input, candidates.clone()) {
        Some(best) => format!("did you mean \"{best}\"?"),
        None => {
            let all: Vec<String> = candidates.into_iter().map(|c| format!("\"{c}\"")).collect();
            format!("expected one of {}", all.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_typos() {
        let envs = ["dev", "staging", "production"];
        assert_eq!(did_you_mean("PRODUCTION", envs), Some("production"));
        assert_eq!(did_you_mean("stage", envs), Some("staging"));
        assert_eq!(did_you_mean("producton", envs), Some("production"));
        assert_eq!(did_you_mean("qa", envs), None);
        assert_eq!(hint_for("qa", envs), r#"expected one of "dev", "staging", "production""#);
        assert_eq!(hint_for("prod", envs), r#"did you mean "production"?"#);
    }
}
