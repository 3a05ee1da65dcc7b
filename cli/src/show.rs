//! How keys and values are shown: plain text for people and pipes, JSON
//! for programs.
//!
//! A value is read as an `rmpv::Value`, which any stored kind decodes into:
//! text as `String`, bytes as `Binary`, integers and floats as numbers, and
//! MessagePack values as themselves. Pickles never get this far: the library
//! refuses them with its own error.

use std::io::{self, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use diskq::Key;
use rmpv::Value;
use serde_json::{Map, Value as Json, json};

/// The kind of a stored value, as `--json` output names it.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "text",
        Value::Binary(_) => "bytes",
        Value::Integer(_) => "int",
        Value::F64(x) if !x.is_nan() => "float",
        // NaN floats, bools, nil, arrays, maps, and integers past i64 that
        // diskq stores as MessagePack.
        _ => "msgpack",
    }
}

/// Writes a value as the plain output shows it: text and bytes exactly as
/// stored (no newline added, so `get > file` gives back what `set -`
/// stored), numbers and MessagePack values (as JSON) on one line.
pub fn write_value(out: &mut dyn Write, value: &Value) -> io::Result<()> {
    match value {
        Value::String(s) => out.write_all(s.as_bytes()),
        Value::Binary(b) => out.write_all(b),
        Value::Integer(n) => writeln!(out, "{n}"),
        Value::F64(x) => writeln!(out, "{x:?}"),
        Value::F32(x) => writeln!(out, "{x:?}"),
        other => writeln!(out, "{}", msgpack_json(other)),
    }
}

/// A value in `--json` output: its kind and the value, with bytes as base64.
pub fn value_json(key: &Key, value: &Value) -> Json {
    let shown = match value {
        Value::Binary(b) => Json::String(BASE64.encode(b)),
        other => msgpack_json(other),
    };
    json!({ "key": key_json(key), "kind": kind(value), "value": shown })
}

/// A key as plain output shows it: text as it is, numbers as numbers, bytes
/// as a `b"..."` literal, composite keys as JSON.
pub fn key_text(key: &Key) -> String {
    match key {
        Key::Text(s) => s.clone(),
        Key::Int(n) => n.to_string(),
        Key::Float(x) => format!("{x:?}"),
        Key::Encoded(_) => match key.decode::<Value>() {
            Ok(v) => msgpack_json(&v).to_string(),
            Err(_) => key.to_string(),
        },
        Key::Bytes(_) => key.to_string(),
    }
}

/// A key as `keys` lists it, one a line, so that no two kinds look alike:
///
/// - an integer as its digits (`42`), a float always with a point or an
///   exponent (`42.0`, `1e300`, `NaN`, `inf`);
/// - text as it is, unless it could be read as another kind or a line
///   would not show it: then as a JSON string (`"42"`, `"NaN"`, `""`,
///   `"a\nb"`, `"[1]"`, `" padded"`);
/// - bytes as a `b"..."` literal;
/// - a composite key as JSON when it is an array or an object (`["user",7]`),
///   else as `msgpack:` and its JSON (`msgpack:"x"`).
pub fn key_line(key: &Key) -> String {
    match key {
        Key::Text(s) if text_is_ambiguous(s) => Json::String(s.clone()).to_string(),
        Key::Encoded(_) => match key.decode::<Value>() {
            Ok(v @ (Value::Array(_) | Value::Map(_))) => msgpack_json(&v).to_string(),
            Ok(v) => format!("msgpack:{}", msgpack_json(&v)),
            Err(_) => key.to_string(),
        },
        other => key_text(other),
    }
}

/// True when text shown as it is could be taken for another kind of key,
/// or for other text.
fn text_is_ambiguous(s: &str) -> bool {
    s.is_empty()
        || s.parse::<f64>().is_ok()
        || s.parse::<i64>().is_ok()
        || s.trim() != s
        || s.chars().any(char::is_control)
        || ["\"", "b\"", "[", "{", "msgpack:", "encoded("]
            .iter()
            .any(|p| s.starts_with(p))
        || ["true", "false", "null"].contains(&s)
}

/// A key in `--json` output: text and numbers as themselves, bytes as
/// `{"bytes": base64}`, composite keys as `{"encoded": json}`.
pub fn key_json(key: &Key) -> Json {
    match key {
        Key::Text(s) => Json::String(s.clone()),
        Key::Int(n) => Json::from(*n),
        Key::Float(x) => Json::from(*x),
        Key::Bytes(b) => json!({ "bytes": BASE64.encode(b) }),
        Key::Encoded(b) => match key.decode::<Value>() {
            Ok(v) => json!({ "encoded": msgpack_json(&v) }),
            Err(_) => json!({ "encoded_bytes": BASE64.encode(b) }),
        },
    }
}

/// A MessagePack value as JSON: maps with non-text keys get their keys as
/// JSON text, binary as an array of byte values (as serde shows a
/// `Vec<u8>`), NaN and infinities as null, extensions as
/// `{"ext": type, "data": [...]}`.
pub fn msgpack_json(value: &Value) -> Json {
    match value {
        Value::Nil => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Integer(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Json::from(i),
            (None, Some(u)) => Json::from(u),
            (None, None) => Json::Null,
        },
        Value::F32(x) => Json::from(f64::from(*x)),
        Value::F64(x) => Json::from(*x),
        Value::String(s) => Json::String(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        Value::Binary(b) => Json::Array(b.iter().map(|&byte| Json::from(byte)).collect()),
        Value::Array(items) => Json::Array(items.iter().map(msgpack_json).collect()),
        Value::Map(pairs) => {
            let mut map = Map::new();
            for (k, v) in pairs {
                let name = match k {
                    Value::String(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
                    other => msgpack_json(other).to_string(),
                };
                map.insert(name, msgpack_json(v));
            }
            Json::Object(map)
        }
        Value::Ext(kind, data) => json!({ "ext": kind, "data": data }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        write_value(&mut out, value).expect("writes to memory");
        out
    }

    #[test]
    fn text_and_bytes_are_written_as_they_are() {
        assert_eq!(plain(&Value::from("héllo")), "héllo".as_bytes());
        assert_eq!(plain(&Value::Binary(vec![0, 255, 10])), [0, 255, 10]);
    }

    #[test]
    fn numbers_are_numbers_and_msgpack_is_json() {
        assert_eq!(plain(&Value::from(-12)), b"-12\n");
        assert_eq!(plain(&Value::F64(2.5)), b"2.5\n");
        assert_eq!(plain(&Value::F64(1e300)), b"1e300\n");
        let page = Value::Map(vec![
            (Value::from("url"), Value::from("/")),
            (Value::from("ok"), Value::Boolean(true)),
        ]);
        assert_eq!(plain(&page), b"{\"ok\":true,\"url\":\"/\"}\n");
        assert_eq!(kind(&page), "msgpack");
        assert_eq!(kind(&Value::F64(f64::NAN)), "msgpack");
        assert_eq!(msgpack_json(&Value::from(u64::MAX)), json!(u64::MAX));
        let odd_keys = Value::Map(vec![(Value::from(1), Value::Binary(vec![1, 2]))]);
        assert_eq!(msgpack_json(&odd_keys), json!({ "1": [1, 2] }));
    }

    #[test]
    fn json_values_name_their_kind_and_encode_bytes() {
        let key = Key::from("k");
        assert_eq!(
            value_json(&key, &Value::Binary(b"hi".to_vec())),
            json!({ "key": "k", "kind": "bytes", "value": "aGk=" })
        );
        assert_eq!(
            value_json(&Key::Int(5), &Value::F64(0.5)),
            json!({ "key": 5, "kind": "float", "value": 0.5 })
        );
    }

    #[test]
    fn listed_keys_of_different_kinds_never_look_alike() {
        assert_eq!(key_line(&Key::Int(42)), "42");
        assert_eq!(key_line(&Key::from("42")), "\"42\"");
        assert_eq!(key_line(&Key::Float(42.0)), "42.0");
        assert_eq!(key_line(&Key::from("42.0")), "\"42.0\"");
        assert_eq!(key_line(&Key::from("page:1")), "page:1", "plain text stays plain");
        assert_eq!(key_line(&Key::from("jobs-500000000000000")), "jobs-500000000000000");
        for text in [
            "",
            " x",
            "a\nb",
            "NaN",
            "inf",
            "-1e5",
            "\"q\"",
            "[1]",
            "{}",
            "true",
            "b\"x\"",
            "msgpack:1",
        ] {
            let shown = key_line(&Key::from(text));
            assert_eq!(
                serde_json::from_str::<String>(&shown).ok().as_deref(),
                Some(text),
                "{text:?} as {shown}"
            );
        }
        assert_eq!(key_line(&Key::from(&b"42"[..])), "b\"42\"");
        assert_eq!(key_line(&Key::encode(&("user", 7)).expect("encodes")), "[\"user\",7]");
        assert_eq!(key_line(&Key::encode("42").expect("encodes")), "msgpack:\"42\"");
    }

    #[test]
    fn keys_of_every_kind() {
        assert_eq!(key_text(&Key::from("a b")), "a b");
        assert_eq!(key_text(&Key::Int(500000000000000)), "500000000000000");
        assert_eq!(key_text(&Key::Float(-1.5)), "-1.5");
        assert_eq!(key_text(&Key::from(&b"\x00bin"[..])), "b\"\\x00bin\"");
        let composite = Key::encode(&("user", 7)).expect("encodes");
        assert_eq!(key_text(&composite), "[\"user\",7]");
        assert_eq!(key_json(&composite), json!({ "encoded": ["user", 7] }));
        assert_eq!(key_json(&Key::from(&b"hi"[..])), json!({ "bytes": "aGk=" }));
    }
}
