//! How hints name things, and how a front end puts them in its own words.
//!
//! Every front end (the CLI, Python, an HTTP server) shows the same hints, so library hints
//! speak the library's terms and never a front end's flags or commands:
//! - request fields, options and parameters by their snake_case names in backticks:
//!   `` `replicas` ``, `` `custom_manifests` ``, `` `force_conflicts` ``, `` `kubeconfig` ``;
//!   configuration keys as they are written in `paved.toml` (`[secrets] mode = "sync"`);
//! - operations by the library call that does them, in backticks: `` `Platform::status` ``,
//!   `` `SecretStore::put` ``, `` `paved_policy::toolchain::build` ``.
//!
//! A front end translates these terms with [`translate`] and a table of its own: the CLI turns
//! `` `replicas` `` into `` `--replicas` `` and `` `Platform::status` `` into `` `paved status` ``.
//!
//! ```
//! use paved_core::hint::translate;
//!
//! const CLI: &[(&str, &str)] = &[("`replicas`", "`--replicas`"), ("`Platform::status`", "`paved status`")];
//! assert_eq!(translate("set `replicas` to 1 or more", CLI), "set `--replicas` to 1 or more");
//! assert_eq!(translate("see `status`", CLI), "see `status`"); // not a term of the table
//! ```

use std::borrow::Cow;

/// A count with its noun: `1 warning`, `2 warnings` (nouns with a regular plural).
///
/// ```
/// assert_eq!(paved_core::hint::plural(1, "warning"), "1 warning");
/// assert_eq!(paved_core::hint::plural(0, "policy"), "0 policies");
/// ```
pub fn plural(n: impl TryInto<u64>, noun: &str) -> String {
    let n = n.try_into().unwrap_or(u64::MAX);
    match (n, noun.strip_suffix('y')) {
        (1, _) => format!("1 {noun}"),
        (_, Some(stem)) if !stem.ends_with(['a', 'e', 'o', 'u']) => format!("{n} {stem}ies"),
        _ => format!("{n} {noun}s"),
    }
}

/// Replaces every term of `table` (`(library term, front-end term)`) found in `text`, scanning
/// once from left to right and preferring the longest term at each position, so a replacement
/// is never translated again. Returns `text` unchanged (borrowed) when it holds no term.
pub fn translate<'a>(text: &'a str, table: &[(&str, &str)]) -> Cow<'a, str> {
    if !table.iter().any(|(from, _)| !from.is_empty() && text.contains(from)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let longest = table
            .iter()
            .filter(|(from, _)| !from.is_empty() && rest.starts_with(from))
            .max_by_key(|(from, _)| from.len());
        match longest {
            Some((from, to)) => {
                out.push_str(to);
                rest = &rest[from.len()..];
            }
            None => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::translate;

    const TABLE: &[(&str, &str)] = &[
        ("`context`", "<context>"),
        ("`auto_rollback` off", "<rollback off>"),
        ("`auto_rollback`", "<rollback>"),
        ("<context>", "NEVER"),
    ];

    #[test]
    fn terms_are_translated_once_longest_first() {
        assert_eq!(translate("check the `context`", TABLE), "check the <context>");
        assert_eq!(translate("(`auto_rollback` off): ✓ `auto_rollback`", TABLE), "(<rollback off>): ✓ <rollback>");
        assert!(matches!(translate("nothing here: context", TABLE), std::borrow::Cow::Borrowed(_)));
        assert_eq!(translate("", TABLE), "");
    }
}
