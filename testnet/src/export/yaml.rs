//! YAML for the exports, written so that YAML 1.1 parsers read it as YAML 1.2 ones do.
//! Kubernetes (go-yaml v2) still reads `off`, `yes` or `y` as booleans and `1_000` or `12:30`
//! as numbers: a command line `--retarget off` would reach the container as `false`. Strings
//! are written plain only when no parser could take them for anything else, double-quoted
//! (JSON escapes, which YAML shares) otherwise, and as literal blocks when they span lines.

use std::fmt::Write as _;

use serde_json::Value;

/// `value` as a YAML document.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => mapping(map, 0, &mut out),
        Value::Array(items) if !items.is_empty() => sequence(items, 0, &mut out),
        scalar => {
            out.push_str(&inline(scalar));
            out.push('\n');
        }
    }
    out
}

/// Whether a string reads as itself, unquoted, in YAML 1.1 and 1.2 alike.
fn plain_is_safe(text: &str) -> bool {
    const WORDS: [&str; 11] = [
        "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", "",
    ];
    // `--flag`: a dash starts a plain scalar when no space follows it.
    let first = text.strip_prefix("--").unwrap_or(text).chars().next();
    first.is_some_and(|c| c.is_ascii_alphabetic() || c == '/')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-'))
        && !WORDS.contains(&text.to_ascii_lowercase().as_str())
        && !text.to_ascii_lowercase().starts_with(".inf")
        && !text.to_ascii_lowercase().starts_with(".nan")
}

fn quoted(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

/// A scalar (or empty collection) on one line.
fn inline(value: &Value) -> String {
    match value {
        Value::String(text) if plain_is_safe(text) => text.clone(),
        Value::String(text) => quoted(text),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        other => other.to_string(),
    }
}

/// A string of several lines as a literal block (`|` keeps one final newline, `|-` none);
/// `None` when a literal block cannot hold it exactly.
fn block(text: &str, indent: usize) -> Option<String> {
    let body = text.strip_suffix('\n');
    let (header, body) = match body {
        Some(body) if !body.ends_with('\n') => ("|", body),
        Some(_) => return None,
        None => ("|-", text),
    };
    let unsafe_line = |line: &str| line.ends_with([' ', '\t']) || line.contains('\t');
    if !body.contains('\n') || body.starts_with([' ', '\n']) || body.lines().any(unsafe_line) {
        return None;
    }
    let pad = " ".repeat(indent);
    let mut out = format!("{header}\n");
    for line in body.split('\n') {
        if line.is_empty() {
            out.push('\n');
        } else {
            let _ = writeln!(out, "{pad}{line}");
        }
    }
    Some(out)
}

/// After `key:` or `-`: the value inline, as a block, or on the following lines.
fn value_after(value: &Value, indent: usize, out: &mut String) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            mapping(map, indent + 2, out);
        }
        // A mapping's sequence lines up with its key, as kubectl writes it.
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            sequence(items, indent, out);
        }
        Value::String(text) => match block(text, indent + 2) {
            Some(block) => {
                out.push(' ');
                out.push_str(&block);
            }
            None => {
                let _ = writeln!(out, " {}", inline(value));
            }
        },
        scalar => {
            let _ = writeln!(out, " {}", inline(scalar));
        }
    }
}

fn mapping(map: &serde_json::Map<String, Value>, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for (key, value) in map {
        let key = if plain_is_safe(key) {
            key.clone()
        } else {
            quoted(key)
        };
        let _ = write!(out, "{pad}{key}:");
        value_after(value, indent, out);
    }
}

fn sequence(items: &[Value], indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for item in items {
        let mut nested = String::new();
        match item {
            Value::Object(map) if !map.is_empty() => mapping(map, indent + 2, &mut nested),
            Value::Array(inner) if !inner.is_empty() => sequence(inner, indent + 2, &mut nested),
            _ => {}
        }
        match item {
            // The item's first line goes after the dash; the rest line up under it.
            _ if !nested.is_empty() => {
                out.push_str(&pad);
                out.push_str("- ");
                out.push_str(&nested[indent + 2..]);
            }
            other => {
                out.push_str(&pad);
                out.push('-');
                value_after(other, indent, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn words_and_numbers_a_yaml_1_1_parser_would_convert_are_quoted() {
        let text = to_string(&json!([
            "off",
            "On",
            "y",
            "NO",
            "null",
            "1_000",
            "12:30",
            "0x1f",
            "012",
            "1e3",
            ".inf",
            "",
            "- x",
            "a: b",
            "#c",
            "run",
            "/ip4/0.0.0.0/tcp/1",
            "quarry.dev/node",
            "--listen",
            "--1",
            "-x"
        ]));
        assert_eq!(
            text,
            "- \"off\"\n- \"On\"\n- \"y\"\n- \"NO\"\n- \"null\"\n- \"1_000\"\n- \"12:30\"\n- \"0x1f\"\n\
             - \"012\"\n- \"1e3\"\n- \".inf\"\n- \"\"\n- \"- x\"\n- \"a: b\"\n- \"#c\"\n- run\n\
             - /ip4/0.0.0.0/tcp/1\n- quarry.dev/node\n- --listen\n- \"--1\"\n- \"-x\"\n"
        );
    }

    #[test]
    fn nesting_empty_collections_and_blocks_are_laid_out_as_kubernetes_writes_them() {
        let value = json!({
            "spec": {"containers": [{"name": "a", "args": ["x", 1, true]}, {"name": "b"}]},
            "data": {"params.toml": "name = \"x\"\nport = 1\n", "trim": "a\nb"},
            "empty": {}, "none": [], "nested": [[1, 2], {}],
        });
        assert_eq!(
            to_string(&value),
            "spec:\n  containers:\n  - name: a\n    args:\n    - x\n    - 1\n    - true\n  - name: b\n\
             data:\n  params.toml: |\n    name = \"x\"\n    port = 1\n  trim: |-\n    a\n    b\n\
             empty: {}\nnone: []\nnested:\n- - 1\n  - 2\n- {}\n"
        );
    }
}
