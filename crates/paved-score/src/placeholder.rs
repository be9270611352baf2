//! Score placeholders: `${metadata.name}`, `${metadata.annotations.KEY}`, `${resources.NAME}`,
//! `${resources.NAME.OUTPUT}`; `$$` is a literal `$`, and `\.` a dot inside one part
//! (`${metadata.annotations.example\.com/owner}`), as score-go's substitution reads them.

use paved_core::SecretRef;

/// What a placeholder stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// Plain text.
    Text(String),
    /// A secret: only a reference ever reaches the objects.
    Secret(SecretRef),
}

/// A string after expansion: text and secret references, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Plain text.
    Text(String),
    /// A secret's reference.
    Secret(SecretRef),
}

/// Why a placeholder could not be expanded: the message and the hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// Splits a placeholder's inside at unescaped dots (`a.b\.c` → `["a", "b.c"]`).
pub fn split_parts(inner: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                chars.next();
                parts.last_mut().expect("one part").push('.');
            }
            '.' => parts.push(String::new()),
            c => parts.last_mut().expect("one part").push(c),
        }
    }
    parts
}

/// Expands every placeholder of `s` with `resolve`.
pub fn expand(
    s: &str,
    mut resolve: impl FnMut(&[String]) -> Result<Resolved, Unresolved>,
) -> Result<Vec<Segment>, Unresolved> {
    let mut out: Vec<Segment> = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        text.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            text.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            let Some(end) = r.find('}') else {
                return Err(Unresolved {
                    message: format!("placeholder {:?} has no closing `}}`", &rest[i..]),
                    hint: "close it, or write `$$` for a literal `$`".into(),
                });
            };
            let inner = &r[..end];
            if inner.is_empty() || !inner.chars().all(|c| c.is_ascii_alphanumeric() || "._-\\/".contains(c)) {
                return Err(Unresolved {
                    message: format!("placeholder ${{{inner}}} is not a reference"),
                    hint: "write ${metadata.name} or ${resources.NAME.OUTPUT}; `$$` is a literal `$`".into(),
                });
            }
            match resolve(&split_parts(inner))? {
                Resolved::Text(t) => text.push_str(&t),
                Resolved::Secret(r) => {
                    if !text.is_empty() {
                        out.push(Segment::Text(std::mem::take(&mut text)));
                    }
                    out.push(Segment::Secret(r));
                }
            }
            rest = &r[end + 1..];
        } else {
            text.push('$');
            rest = after;
        }
    }
    text.push_str(rest);
    if !text.is_empty() || out.is_empty() {
        out.push(Segment::Text(text));
    }
    Ok(out)
}

/// Looks `parts` up in a JSON value (`metadata`), which must end at a scalar.
pub fn lookup_json(root: &serde_json::Value, parts: &[String], prefix: &str) -> Result<String, Unresolved> {
    let mut v = root;
    for (i, p) in parts.iter().enumerate() {
        v = match v {
            serde_json::Value::Object(m) => m.get(p),
            serde_json::Value::Array(a) => p.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        }
        .ok_or_else(|| {
            let at = format!("{prefix}.{}", parts[..=i].join("."));
            let keys: Vec<&str> = match v {
                serde_json::Value::Object(m) => m.keys().map(String::as_str).collect(),
                _ => Vec::new(),
            };
            Unresolved {
                message: format!("${{{at}}} does not exist"),
                hint: if keys.is_empty() {
                    format!("check the path; {prefix} has no such key")
                } else {
                    paved_core::suggest::hint_for(p, keys.iter().copied())
                },
            }
        })?;
    }
    match v {
        serde_json::Value::String(s) => Ok(s.clone()),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        _ => Err(Unresolved {
            message: format!("${{{prefix}.{}}} is not a single value", parts.join(".")),
            hint: "reference a string, number or boolean".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(parts: &[String]) -> Result<Resolved, Unresolved> {
        Ok(Resolved::Text(format!("<{}>", parts.join("|"))))
    }

    #[test]
    fn forms() {
        let t = |s: &str| expand(s, text).unwrap();
        assert_eq!(t("plain"), [Segment::Text("plain".into())]);
        assert_eq!(t(""), [Segment::Text(String::new())]);
        assert_eq!(t("${metadata.name}"), [Segment::Text("<metadata|name>".into())]);
        assert_eq!(
            t("a-${resources.db.host}:${resources.db.port}"),
            [Segment::Text("a-<resources|db|host>:<resources|db|port>".into())]
        );
        assert_eq!(t("$${literal} and $$"), [Segment::Text("${literal} and $".into())]);
        assert_eq!(t("cost $5"), [Segment::Text("cost $5".into())]);
        assert_eq!(
            t(r"${metadata.annotations.example\.com/owner}"),
            [Segment::Text("<metadata|annotations|example.com/owner>".into())]
        );
        assert!(expand("${unclosed", text).unwrap_err().message.contains("no closing"));
        assert!(expand("${a b}", text).unwrap_err().message.contains("not a reference"));
        assert!(expand("${}", text).is_err());
    }

    #[test]
    fn secrets_split_the_text() {
        let secret: SecretRef = "vault://secret/database/t/s/e#password".parse().unwrap();
        let s2 = secret.clone();
        let segs =
            expand("postgres://u:${resources.db.password}@h", move |_| Ok(Resolved::Secret(s2.clone()))).unwrap();
        assert_eq!(segs, [Segment::Text("postgres://u:".into()), Segment::Secret(secret), Segment::Text("@h".into())]);
    }

    #[test]
    fn json_lookup() {
        let m = serde_json::json!({"name": "web", "annotations": {"a.b/c": "x"}, "n": 3, "o": {}});
        assert_eq!(lookup_json(&m, &["name".into()], "metadata").unwrap(), "web");
        assert_eq!(lookup_json(&m, &["annotations".into(), "a.b/c".into()], "metadata").unwrap(), "x");
        assert_eq!(lookup_json(&m, &["n".into()], "metadata").unwrap(), "3");
        let e = lookup_json(&m, &["nam".into()], "metadata").unwrap_err();
        assert!(e.message.contains("${metadata.nam} does not exist") && e.hint.contains("\"name\""), "{e:?}");
        assert!(lookup_json(&m, &["o".into()], "metadata").is_err());
    }
}
