//! The template language: placeholders and blocks between `<%` and `%>`, chosen so that
//! neither GitHub's `${{ … }}` nor GitLab's `$VAR` needs escaping.
//!
//! | tag | meaning |
//! |---|---|
//! | `<% name %>` | the value `name` |
//! | `<% for name %>` … `<% end %>` | the body once per item of the list `name`; an item's values are in scope |
//! | `<% if name %>` … `<% end %>` | the body when `name` is a non-empty list or value |
//! | `<% unless name %>` … `<% end %>` | the body when it is not |
//!
//! A line that holds only a block tag (`for`, `if`, `unless`, `end`) disappears entirely, so
//! blocks do not leave blank lines. Values are never templates themselves: what a value holds
//! is copied as it is, and every value paved offers is safe to copy (see
//! [`Value`]).
//!
//! ```
//! use paved_pipeline::engine::{Scope, Value, render};
//! let mut scope = Scope::new();
//! scope.insert("app", Value::name("checkout").unwrap());
//! let envs = ["staging", "production"].map(|e| Scope::from([("env", Value::name(e).unwrap())]));
//! scope.insert("deploy", Value::List(envs.to_vec()));
//! let out = render("t.yml", "app: <% app %>\n<% for deploy %>\n- <% env %>\n<% end %>\n", &scope).unwrap();
//! assert_eq!(out, "app: checkout\n- staging\n- production\n");
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use paved_core::platform_file::is_safe_name;
use paved_core::{Error, Result};

/// Values by name.
pub type Scope = BTreeMap<&'static str, Value>;

/// A value a template can use.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Value {
    /// Text copied as it is: built only by the constructors below, which admit nothing that
    /// could end a YAML scalar or start a shell word of its own.
    Text(String),
    /// A list of scopes, for `for`, `if` and `unless`.
    List(Vec<Scope>),
}

impl Value {
    /// A name (DNS label: lowercase letters, digits, `-`), as a plain YAML scalar.
    pub fn name(name: &str) -> Result<Value> {
        if is_safe_name(name) {
            Ok(Value::Text(name.to_string()))
        } else {
            Err(Error::invalid(
                "name",
                name,
                "is not a DNS label",
                Some("use lowercase letters, digits and '-'".to_string()),
            ))
        }
    }

    /// Names separated by single spaces (a shell word list); empty for none.
    pub fn names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Value> {
        let names = names.into_iter().map(|n| Value::name(n).map(|_| n)).collect::<Result<Vec<_>>>()?;
        Ok(Value::Text(names.join(" ")))
    }

    /// A version (`0.1.0`, `1.2.3-rc.1`): ASCII letters, digits, `.`, `-` and `+`.
    pub fn version(version: &str) -> Result<Value> {
        let ok = !version.is_empty()
            && version.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'));
        if ok {
            Ok(Value::Text(version.to_string()))
        } else {
            Err(Error::invalid("version", version, "is not a version", None))
        }
    }

    /// Any one-line text as a double-quoted YAML scalar (JSON string escapes are YAML's).
    pub fn quoted(text: &str) -> Value {
        let mut out = String::with_capacity(text.len() + 2);
        out.push('"');
        for c in text.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                    out.push_str(&format!("\\u{:04x}", u32::from(c)))
                }
                c => out.push(c),
            }
        }
        out.push('"');
        Value::Text(out)
    }

    /// `true` for a non-empty list or text.
    fn truthy(&self) -> bool {
        match self {
            Value::Text(t) => !t.is_empty(),
            Value::List(l) => !l.is_empty(),
        }
    }
}

/// One parsed tag or run of text.
#[derive(Debug)]
enum Node<'t> {
    Text(&'t str),
    Value { name: &'t str, line: usize },
    Block { kind: BlockKind, name: &'t str, line: usize, body: Vec<Node<'t>> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    For,
    If,
    Unless,
}

/// Renders `template` (read from `path`, named in errors) with `scope`.
///
/// Errors are [`Error::Manifest`] at the template's line: an unknown value (with a
/// did-you-mean hint), an unknown or unclosed tag, a `for` over text.
pub fn render(path: impl AsRef<Path>, template: &str, scope: &Scope) -> Result<String> {
    let path = path.as_ref();
    let nodes = parse(path, template)?;
    let mut out = String::with_capacity(template.len() + 512);
    let mut scopes = vec![scope];
    emit(path, &nodes, &mut scopes, &mut out)?;
    Ok(out)
}

fn template_error(path: &Path, line: usize, message: String, hint: String) -> Error {
    Error::Manifest { path: path.to_path_buf(), line: Some(line), message, hint: Some(hint) }
}

/// An open block: its kind and name (none for the root), its line, its body so far.
type Open<'t> = (Option<(BlockKind, &'t str)>, usize, Vec<Node<'t>>);

/// Splits the template into nodes, dropping the lines that hold only a block tag.
fn parse<'t>(path: &Path, template: &'t str) -> Result<Vec<Node<'t>>> {
    // Each open block (the root at the bottom) with the nodes of its body so far.
    let mut stack: Vec<Open<'t>> = vec![(None, 0, Vec::new())];
    let mut line = 1;
    let mut rest = template;
    let mut at_line_start = true;
    while !rest.is_empty() {
        let Some(start) = rest.find("<%") else {
            stack.last_mut().expect("root").2.push(Node::Text(rest));
            break;
        };
        let Some(len) = rest[start..].find("%>") else {
            return Err(template_error(
                path,
                line + rest[..start].matches('\n').count(),
                "a tag opened with `<%` is not closed".into(),
                "close it with `%>`".into(),
            ));
        };
        let tag_line = line + rest[..start].matches('\n').count();
        let inner = rest[start + 2..start + len].trim();
        let end = start + len + 2;
        let mut words = inner.split_whitespace();
        let (first, second, extra) = (words.next(), words.next(), words.next());
        let block = match (first, second, extra) {
            (Some("for"), Some(n), None) => Some(Some((BlockKind::For, n))),
            (Some("if"), Some(n), None) => Some(Some((BlockKind::If, n))),
            (Some("unless"), Some(n), None) => Some(Some((BlockKind::Unless, n))),
            (Some("end"), None, None) => Some(None),
            (Some(n), None, None) if is_identifier(n) => None,
            _ => {
                return Err(template_error(
                    path,
                    tag_line,
                    format!("`<% {inner} %>` is not a tag"),
                    "write `<% name %>`, `<% for name %>`, `<% if name %>`, `<% unless name %>` or `<% end %>`".into(),
                ));
            }
        };
        // A block tag alone on its line takes the whole line with it.
        let (text_end, resume) = match block {
            Some(_) => standalone(rest, at_line_start, start, end).unwrap_or((start, end)),
            None => (start, end),
        };
        let text = &rest[..text_end];
        if !text.is_empty() {
            stack.last_mut().expect("root").2.push(Node::Text(text));
        }
        match block {
            None => {
                stack.last_mut().expect("root").2.push(Node::Value { name: first.unwrap_or_default(), line: tag_line })
            }
            Some(Some(open)) => stack.push((Some(open), tag_line, Vec::new())),
            Some(None) => {
                if stack.len() == 1 {
                    return Err(template_error(
                        path,
                        tag_line,
                        "`<% end %>` closes no block".into(),
                        "remove it, or open a block before it".into(),
                    ));
                }
                let (open, open_line, body) = stack.pop().expect("checked");
                let (kind, name) = open.expect("only the root has none");
                stack.last_mut().expect("root").2.push(Node::Block { kind, name, line: open_line, body });
            }
        }
        line += rest[..resume].matches('\n').count();
        at_line_start = rest[..resume].ends_with('\n');
        rest = &rest[resume..];
    }
    if stack.len() > 1 {
        let (open, open_line, _) = stack.pop().expect("checked");
        let (_, name) = open.expect("only the root has none");
        return Err(template_error(
            path,
            open_line,
            format!("the block `{name}` opened here is not closed"),
            "add `<% end %>` after its body".into(),
        ));
    }
    Ok(stack.pop().expect("root").2)
}

/// When the tag at `start..end` is alone on its line (only spaces around it), the range to
/// cut: from the line's start to after its newline. `at_line_start`: `rest` starts a line.
fn standalone(rest: &str, at_line_start: bool, start: usize, end: usize) -> Option<(usize, usize)> {
    let line_start = match rest[..start].rfind('\n') {
        Some(i) => i + 1,
        None if at_line_start => 0,
        None => return None,
    };
    if !rest[line_start..start].chars().all(|c| c == ' ' || c == '\t') {
        return None;
    }
    let after = &rest[end..];
    let line_end = after.find('\n').map_or(after.len(), |i| i + 1);
    if !after[..line_end].trim().is_empty() {
        return None;
    }
    Some((line_start, end + line_end))
}

fn is_identifier(s: &str) -> bool {
    s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn lookup<'s>(scopes: &[&'s Scope], name: &str) -> Option<&'s Value> {
    scopes.iter().rev().find_map(|s| s.get(name))
}

fn unknown(path: &Path, line: usize, name: &str, scopes: &[&Scope]) -> Error {
    let mut known: Vec<&str> = scopes.iter().flat_map(|s| s.keys().copied()).collect();
    known.sort_unstable();
    known.dedup();
    template_error(
        path,
        line,
        format!("`{name}` is not a value of pipeline templates"),
        paved_core::suggest::hint_for(name, known.iter().copied()),
    )
}

fn emit(path: &Path, nodes: &[Node<'_>], scopes: &mut Vec<&Scope>, out: &mut String) -> Result<()> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Value { name, line } => match lookup(scopes, name) {
                Some(Value::Text(t)) => out.push_str(t),
                Some(Value::List(_)) => {
                    return Err(template_error(
                        path,
                        *line,
                        format!("`{name}` is a list"),
                        format!("go through it with `<% for {name} %>` … `<% end %>`"),
                    ));
                }
                None => return Err(unknown(path, *line, name, scopes)),
            },
            Node::Block { kind, name, line, body } => {
                let value = lookup(scopes, name).ok_or_else(|| unknown(path, *line, name, scopes))?;
                match kind {
                    BlockKind::If | BlockKind::Unless => {
                        if value.truthy() == (*kind == BlockKind::If) {
                            emit(path, body, scopes, out)?;
                        }
                    }
                    BlockKind::For => {
                        let Value::List(items) = value else {
                            return Err(template_error(
                                path,
                                *line,
                                format!("`{name}` is not a list"),
                                format!("use `<% {name} %>` or `<% if {name} %>`"),
                            ));
                        };
                        for item in items {
                            scopes.push(item);
                            let r = emit(path, body, scopes, out);
                            scopes.pop();
                            r?;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        let envs = ["staging", "production"]
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let mut s = Scope::from([("env", Value::name(e).unwrap())]);
                s.insert("first", Value::Text(if i == 0 { "yes".into() } else { String::new() }));
                s
            })
            .collect();
        Scope::from([
            ("app", Value::name("checkout").unwrap()),
            ("tests", Value::quoted("npm test -- --grep \"a b\"")),
            ("deploy", Value::List(envs)),
            ("none", Value::List(vec![])),
        ])
    }

    #[test]
    fn values_blocks_and_standalone_lines() {
        let t = "name: <% app %> # ${{ github.sha }}\nrun: <% tests %>\njobs:\n  <% for deploy %>\n  <% env %>:\n    <% if first %>\n    first: true\n    <% end %>\n    <% unless first %>\n    needs: x\n    <% end %>\n  <% end %>\n<% if none %>never\n<% end %>end\n";
        let out = render("t.yml", t, &scope()).unwrap();
        assert_eq!(render("t", "a: <% app %> <% if app %>\nb<% end %>\n", &scope()).unwrap(), "a: checkout \nb\n");
        assert_eq!(
            out,
            "name: checkout # ${{ github.sha }}\nrun: \"npm test -- --grep \\\"a b\\\"\"\njobs:\n  staging:\n    first: true\n  production:\n    needs: x\nend\n"
        );
        let back: serde_yaml_ng::Value = serde_yaml_ng::from_str(out.lines().nth(1).unwrap()).unwrap();
        assert_eq!(back["run"], "npm test -- --grep \"a b\"");
    }

    #[test]
    fn errors_name_the_line_and_suggest() {
        let e = render("t.yml", "a: 1\nb: <% ap %>\n", &scope()).unwrap_err();
        assert_eq!(e.to_string(), "t.yml:2: `ap` is not a value of pipeline templates");
        assert_eq!(e.hint(), Some("did you mean \"app\"?"));
        assert_eq!(e.kind(), paved_core::ErrorKind::InvalidInput);
        let e = render("t.yml", "a\n<% for deploy %>\nx\n", &scope()).unwrap_err();
        assert_eq!(e.to_string(), "t.yml:2: the block `deploy` opened here is not closed");
        let e = render("t.yml", "<% end %>\n", &scope()).unwrap_err();
        assert!(e.to_string().contains("closes no block"), "{e}");
        let e = render("t.yml", "a\n\nb <% app", &scope()).unwrap_err();
        assert_eq!(e.to_string(), "t.yml:3: a tag opened with `<%` is not closed");
        let e = render("t.yml", "<% app | upper %>", &scope()).unwrap_err();
        assert!(e.to_string().contains("is not a tag"), "{e}");
        let e = render("t.yml", "<% for app %>x<% end %>", &scope()).unwrap_err();
        assert!(e.to_string().contains("is not a list"), "{e}");
        let e = render("t.yml", "<% deploy %>", &scope()).unwrap_err();
        assert!(e.to_string().contains("is a list"), "{e}");
        // Item values are out of scope after their block.
        let e = render("t.yml", "<% for deploy %><% end %><% env %>", &scope()).unwrap_err();
        assert!(e.to_string().contains("`env` is not a value"), "{e}");
    }

    #[test]
    fn values_cannot_carry_yaml_or_shell_syntax() {
        for bad in ["a b", "a\nb", "a:b", "$(id)", "A", "-a", "a;b", "", "a'b"] {
            assert!(Value::name(bad).is_err(), "{bad:?}");
        }
        assert!(Value::names(["staging", "prod uction"]).is_err());
        assert_eq!(Value::names(["staging", "production"]).unwrap(), Value::Text("staging production".into()));
        assert!(Value::version("1.0; rm").is_err());
        let Value::Text(q) = Value::quoted("a\"b\\c\u{7}d\ne: x\u{2028}y") else { unreachable!() };
        assert!(!q.contains('\n') && !q.contains('\u{2028}'), "{q}");
        let back: String = serde_yaml_ng::from_str(&q).unwrap();
        assert_eq!(back, "a\"b\\c\u{7}d\ne: x\u{2028}y");
        // Values are copied, never expanded as templates.
        let s = Scope::from([("t", Value::quoted("<% app %>")), ("app", Value::name("x").unwrap())]);
        assert_eq!(render("t", "<% t %>", &s).unwrap(), "\"<% app %>\"");
    }
}
