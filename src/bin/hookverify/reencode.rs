//! JSON bodies re-encoded the ways senders and frameworks write them, keys kept in their order:
//! what `verify --explain` tries when a body may have been parsed and re-serialized.
//!
//! The body is parsed into [`Json`], a tree that keeps object members in the order they came
//! (`serde_json::Value` sorts them unless its `preserve_order` feature is on, and turning that
//! feature on here would change the map type for the library too, every feature being shared),
//! then written back with `serde_json`'s serializer and a formatter per style.

use std::fmt;
use std::io;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Number;
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter};

/// A JSON value whose objects keep their members in order (duplicates included).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, value: bool) -> Result<Json, E> {
        Ok(Json::Bool(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Json, E> {
        Ok(Json::Number(value.into()))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Json, E> {
        Ok(Json::Number(value.into()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Json, E> {
        Number::from_f64(value)
            .map(Json::Number)
            .ok_or_else(|| E::custom("not a finite number"))
    }

    fn visit_str<E>(self, value: &str) -> Result<Json, E> {
        Ok(Json::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Json, E> {
        Ok(Json::String(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = Vec::new();
        while let Some(member) = map.next_entry()? {
            members.push(member);
        }
        Ok(Json::Object(members))
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Null => serializer.serialize_unit(),
            Self::Bool(value) => serializer.serialize_bool(*value),
            Self::Number(number) => number.serialize(serializer),
            Self::String(text) => serializer.serialize_str(text),
            Self::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Self::Object(members) => {
                let mut map = serializer.serialize_map(Some(members.len()))?;
                for (key, value) in members {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

/// One way of writing JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// No whitespace: `JSON.stringify(x)`, `serde_json::to_vec`, Go's `json.Marshal`.
    Compact,
    /// Pretty with this many spaces per level (`JSON.stringify(x, null, 2)`,
    /// `serde_json::to_vec_pretty` for 2, Python's `json.dumps(x, indent=4)` for 4).
    Pretty(usize),
    /// Pretty with a tab per level.
    Tabs,
    /// Python's `json.dumps(x)`: `", "` and `": "`, non-ASCII escaped as `\uXXXX`.
    Python,
    /// PHP's `json_encode($x)`: compact, `/` escaped as `\/`, non-ASCII as `\uXXXX`.
    Php,
}

impl Style {
    /// Every style, in the order they are tried.
    pub(crate) const ALL: [Self; 6] = [
        Self::Compact,
        Self::Pretty(2),
        Self::Pretty(4),
        Self::Tabs,
        Self::Python,
        Self::Php,
    ];

    /// How the style is named in an explanation.
    pub(crate) fn describe(self) -> String {
        match self {
            Self::Compact => "compact JSON".into(),
            Self::Pretty(spaces) => format!("pretty JSON ({spaces}-space indent)"),
            Self::Tabs => "pretty JSON (tab indent)".into(),
            Self::Python => {
                "JSON as Python's json.dumps writes it (\", \" and \": \", \\u escapes)".into()
            }
            Self::Php => "JSON as PHP's json_encode writes it (\\/ and \\u escapes)".into(),
        }
    }
}

/// `value` written in `style`.
pub(crate) fn encode(value: &Json, style: Style) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing to a `Vec` fails only if a formatter does, and these do not.
    let _ = match style {
        Style::Compact => write(value, &mut out, CompactFormatter),
        Style::Pretty(spaces) => {
            let indent = vec![b' '; spaces];
            write(value, &mut out, PrettyFormatter::with_indent(&indent))
        }
        Style::Tabs => write(value, &mut out, PrettyFormatter::with_indent(b"\t")),
        Style::Python => write(
            value,
            &mut out,
            Escaping {
                spaced: true,
                slashes: false,
            },
        ),
        Style::Php => write(
            value,
            &mut out,
            Escaping {
                spaced: false,
                slashes: true,
            },
        ),
    };
    out
}

fn write(value: &Json, out: &mut Vec<u8>, formatter: impl Formatter) -> serde_json::Result<()> {
    let mut serializer = serde_json::Serializer::with_formatter(out, formatter);
    value.serialize(&mut serializer)
}

/// The body parsed as JSON, or `None` if it is not JSON.
pub(crate) fn parse(body: &[u8]) -> Option<Json> {
    serde_json::from_slice(body).ok()
}

/// Compact JSON with non-ASCII characters escaped as `\uXXXX`, optionally `/` as `\/` (PHP) and
/// `", "` / `": "` separators (Python).
struct Escaping {
    spaced: bool,
    slashes: bool,
}

impl Formatter for Escaping {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        match (first, self.spaced) {
            (true, _) => Ok(()),
            (false, true) => writer.write_all(b", "),
            (false, false) => writer.write_all(b","),
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.begin_array_value(writer, first)
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(if self.spaced { b": " } else { b":" })
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut units = [0u16; 2];
        for c in fragment.chars() {
            if c == '/' && self.slashes {
                writer.write_all(b"\\/")?;
            } else if c.is_ascii() {
                writer.write_all(&[c as u8])?;
            } else {
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"type":"ping","data":{"z":1,"a":[1.5,-2,"é/x"],"m":null,"t":true}}"#;

    fn styled(style: Style) -> String {
        let value = parse(BODY.as_bytes()).expect("JSON");
        String::from_utf8(encode(&value, style)).expect("UTF-8")
    }

    #[test]
    fn keys_keep_their_order() {
        assert_eq!(styled(Style::Compact), BODY);
        assert_eq!(
            styled(Style::Pretty(2)),
            "{\n  \"type\": \"ping\",\n  \"data\": {\n    \"z\": 1,\n    \"a\": [\n      1.5,\n      \
             -2,\n      \"é/x\"\n    ],\n    \"m\": null,\n    \"t\": true\n  }\n}"
        );
        assert!(styled(Style::Pretty(4)).starts_with("{\n    \"type\": \"ping\",\n    \"data\""));
        assert!(styled(Style::Tabs).starts_with("{\n\t\"type\": \"ping\",\n\t\"data\""));
    }

    #[test]
    fn python_and_php() {
        assert_eq!(
            styled(Style::Python),
            r#"{"type": "ping", "data": {"z": 1, "a": [1.5, -2, "\u00e9/x"], "m": null, "t": true}}"#
        );
        assert_eq!(
            styled(Style::Php),
            r#"{"type":"ping","data":{"z":1,"a":[1.5,-2,"\u00e9\/x"],"m":null,"t":true}}"#
        );
        // Outside the BMP: a surrogate pair, as both write it.
        let value = parse("[\"😀\"]".as_bytes()).expect("JSON");
        assert_eq!(encode(&value, Style::Php), br#"["\ud83d\ude00"]"#);
    }

    #[test]
    fn not_json_is_none() {
        assert_eq!(parse(b"type=ping"), None);
        assert_eq!(parse(b""), None);
    }
}
