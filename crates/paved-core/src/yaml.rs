//! A YAML emitter for JSON values, safe for every YAML reader Kubernetes tooling uses.
//!
//! General-purpose YAML libraries emit YAML 1.2, where `on`, `yes` or `0777` are plain
//! strings; but `kubectl`, kustomize, Helm and Argo CD read YAML with YAML 1.1 rules, where
//! they are booleans and octal numbers. This emitter quotes every string that any of those
//! readers could take for something else, and writes block style like `kubectl get -o yaml`.

use serde_json::Value;

/// The value as a YAML document (block style, two-space indent, ending in a newline).
///
/// ```
/// let v = serde_json::json!({"data": {"FEATURE": "on", "port": "8080", "cpu": "250m"}, "list": [1, {"a": true}]});
/// assert_eq!(paved_core::yaml::to_string(&v), "data:\n  FEATURE: 'on'\n  cpu: 250m\n  port: '8080'\nlist:\n- 1\n- a: true\n");
/// ```
pub fn to_string(value: &Value) -> String {
    let mut out = String::with_capacity(1024);
    write(&mut out, value);
    out
}

/// Appends the value as a YAML document to `out`.
pub fn write(out: &mut String, value: &Value) {
    match value {
        Value::Object(m) if !m.is_empty() => write_map(out, m, 0),
        Value::Array(a) if !a.is_empty() => write_seq(out, a, 0),
        scalar => {
            write_scalar(out, scalar, 0);
            out.push('\n');
        }
    }
}

fn indent(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

fn is_container(v: &Value) -> bool {
    matches!(v, Value::Object(m) if !m.is_empty()) || matches!(v, Value::Array(a) if !a.is_empty())
}

fn write_map(out: &mut String, map: &serde_json::Map<String, Value>, level: usize) {
    let mut first = true;
    for (k, v) in map {
        if !first {
            indent(out, level);
        }
        first = false;
        write_string(out, k, level);
        out.push(':');
        match v {
            Value::Object(m) if !m.is_empty() => {
                out.push('\n');
                indent(out, level + 2);
                write_map(out, m, level + 2);
            }
            // Sequences in mappings are not indented, like kubectl writes them.
            Value::Array(a) if !a.is_empty() => {
                out.push('\n');
                indent(out, level);
                write_seq(out, a, level);
            }
            scalar => {
                out.push(' ');
                write_scalar(out, scalar, level + 2);
                out.push('\n');
            }
        }
    }
}

fn write_seq(out: &mut String, items: &[Value], level: usize) {
    let mut first = true;
    for item in items {
        if !first {
            indent(out, level);
        }
        first = false;
        out.push_str("- ");
        if is_container(item) {
            match item {
                Value::Object(m) => write_map(out, m, level + 2),
                Value::Array(a) => write_seq(out, a, level + 2),
                _ => unreachable!("checked by is_container"),
            }
        } else {
            write_scalar(out, item, level + 2);
            out.push('\n');
        }
    }
}

fn write_scalar(out: &mut String, v: &Value, level: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(out, s, level),
        Value::Object(_) => out.push_str("{}"),
        Value::Array(_) => out.push_str("[]"),
    }
}

/// Words that YAML 1.1 (and so kubectl, kustomize, Helm) reads as booleans or null.
const SPECIAL_WORDS: &[&str] = &[
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE", "on",
    "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL", "~", "<<", "=",
];

/// `true` when a plain (unquoted) scalar would read back as this exact string in both YAML
/// 1.1 and 1.2.
fn plain_is_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else { return false };
    // Fast path for the common case: names, paths, label keys.
    let b = s.as_bytes();
    if (b[0].is_ascii_alphabetic() || b[0] == b'/')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'/' | b'.' | b'_' | b'-'))
    {
        return b.len() > 5 || !SPECIAL_WORDS.contains(&s);
    }
    if SPECIAL_WORDS.contains(&s) || s.starts_with(' ') || s.ends_with(' ') || s.ends_with(':') {
        return false;
    }
    let dash_word = first == '-' && s.len() > 1 && !b[1].is_ascii_whitespace() && !looks_numeric(s);
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) && !dash_word {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.chars().any(|c| c.is_control() || c == '\u{feff}') {
        return false;
    }
    if s.starts_with('.')
        && (s.len() > 1
            && (s[1..].starts_with(|c: char| c.is_ascii_digit())
                || ["inf", "Inf", "INF", "nan", "NaN", "NAN"].contains(&&s[1..])))
    {
        return false;
    }
    !looks_numeric(s)
}

/// Conservatively: anything starting like a number and made only of characters numbers,
/// dates and sexagesimals use (`1`, `0777`, `1e3`, `2001-12-14`, `10:30`, `0x1F`, `-.5`).
fn looks_numeric(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let starts_numeric = body.starts_with(|c: char| c.is_ascii_digit()) || (body.starts_with('.') && body.len() > 1);
    starts_numeric && body.chars().all(|c| c.is_ascii_hexdigit() || "xXoO_.:+-eE ".contains(c) || c == 'T' || c == 'Z')
}

fn write_string(out: &mut String, s: &str, level: usize) {
    if plain_is_safe(s) {
        out.push_str(s);
    } else if s.contains('\n') && literal_is_safe(s) {
        write_literal(out, s, level);
    } else if !s.chars().any(|c| c.is_control() || c == '\u{feff}') {
        out.push('\'');
        out.push_str(&s.replace('\'', "''"));
        out.push('\'');
    } else {
        // JSON string escapes are valid YAML double-quoted escapes.
        out.push_str(&serde_json::to_string(s).expect("strings serialize"));
    }
}

fn literal_is_safe(s: &str) -> bool {
    !s.starts_with([' ', '\n']) && !s.chars().any(|c| (c.is_control() && c != '\n') || c == '\u{feff}')
}

fn write_literal(out: &mut String, s: &str, level: usize) {
    let trailing = s.len() - s.trim_end_matches('\n').len();
    out.push_str(match trailing {
        0 => "|-",
        1 => "|",
        _ => "|+",
    });
    for line in s.trim_end_matches('\n').split('\n') {
        out.push('\n');
        if !line.is_empty() {
            indent(out, level);
            out.push_str(line);
        }
    }
    for _ in 1..trailing {
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_that_yaml_1_1_would_misread_are_quoted() {
        for s in [
            "on",
            "off",
            "yes",
            "no",
            "y",
            "N",
            "true",
            "null",
            "~",
            "1",
            "0777",
            "1e3",
            "0x1F",
            "2001-12-14",
            "10:30",
            "-1",
            "+1",
            ".5",
            ".inf",
            "",
            " x",
            "x ",
            "a: b",
            "a #b",
            "- x",
            "-",
            "*x",
            "&x",
            "!x",
            "%x",
            "@x",
            "'x",
            "\"x",
            "{x",
            "[x",
            "#x",
            "x:",
            "?x",
            "|",
            ">",
        ] {
            let y = to_string(&json!({ "k": s }));
            let back: Value = serde_yaml_ng::from_str(&y).unwrap();
            assert_eq!(back["k"], s, "{s:?} -> {y}");
            assert!(y.starts_with("k: '") || y.starts_with("k: \""), "{s:?} must be quoted: {y}");
        }
    }

    #[test]
    fn ordinary_strings_stay_plain() {
        for s in [
            "250m",
            "512Mi",
            "25%",
            "v1.2.3",
            "apps/v1",
            "ghcr.io/company/my-service:v1.2.3",
            "/healthz",
            "-x",
            "RuntimeDefault",
            "a-b",
        ] {
            assert_eq!(to_string(&json!({ "k": s })), format!("k: {s}\n"));
        }
    }

    #[test]
    fn round_trips() {
        let v = json!({
            "a": {"b": [1, 2.5, true, null, {"c": "d", "e": []}, [], {}], "f": {}},
            "script": "#!/bin/sh\necho 'hi'\n",
            "nochomp": "a\nb",
            "keep": "a\n\n",
            "ctl": "tab\there",
            "quote": "it's",
            "unicode": "héllo",
            "nested": [[1, 2], [{"x": "y"}]],
        });
        let y = to_string(&v);
        let back: Value = serde_yaml_ng::from_str(&y).unwrap();
        assert_eq!(back, v, "{y}");
        assert!(y.contains("script: |\n  #!/bin/sh\n  echo 'hi'\n"), "{y}");
    }
}
