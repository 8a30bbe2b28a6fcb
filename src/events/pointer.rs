//! JSON pointers (RFC 6901) resolved over raw JSON text, without building a tree.

use std::fmt;

use serde::Deserializer as _;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::error::InvalidPointer;

/// A parsed JSON pointer: its text as configured and its reference tokens, unescaped.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Pointer {
    text: Box<str>,
    tokens: Box<[Box<str>]>,
}

impl Pointer {
    /// Parses `text`: empty (the whole document) or `/`-separated tokens, where `~` appears
    /// only as `~0` (a `~`) or `~1` (a `/`).
    pub(crate) fn parse(field: &'static str, text: &str) -> Result<Self, InvalidPointer> {
        let invalid = || InvalidPointer {
            field,
            pointer: text.to_owned(),
        };
        let tokens = match text.strip_prefix('/') {
            None if text.is_empty() => Vec::new(),
            None => return Err(invalid()),
            Some(rest) => rest
                .split('/')
                .map(|token| unescape(token).ok_or_else(invalid))
                .collect::<Result<_, _>>()?,
        };
        Ok(Self {
            text: text.into(),
            tokens: tokens.into(),
        })
    }

    /// The pointer to the member `name` of the root object (`name` holds no `~` or `/`).
    pub(crate) fn member(name: &str) -> Self {
        Self {
            text: format!("/{name}").into(),
            tokens: Box::new([name.into()]),
        }
    }

    /// The pointer as configured.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// The value the pointer designates in `document`, or `None` when there is none (a member
    /// or index that is absent, or a step into a string, number, boolean or null).
    ///
    /// Each step reads one object or array and skips the values it does not need, so a lookup
    /// costs one pass over the part of the document before and around the value. A member
    /// repeated in an object resolves to its last occurrence, as in `serde_json::Value`.
    pub(crate) fn resolve<'a>(
        &self,
        document: &'a RawValue,
    ) -> Result<Option<&'a RawValue>, serde_json::Error> {
        let mut current = document;
        for token in &self.tokens {
            let mut deserializer = serde_json::Deserializer::from_str(current.get());
            match deserializer.deserialize_any(Step { token })? {
                Some(next) => current = next,
                None => return Ok(None),
            }
        }
        Ok(Some(current))
    }
}

impl fmt::Debug for Pointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

/// `~1` to `/` and `~0` to `~`; `None` for any other `~`.
fn unescape(token: &str) -> Option<Box<str>> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out.into())
}

/// One step of a pointer: the member named `token` of an object, or the element at index
/// `token` of an array.
struct Step<'t> {
    token: &'t str,
}

impl<'de> Visitor<'de> for Step<'_> {
    type Value = Option<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        // Every member is read (the parser requires it), and the last match wins.
        while let Some(matches) = map.next_key_seed(KeyIs(self.token))? {
            if matches {
                found = Some(map.next_value::<&'de RawValue>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let wanted = array_index(self.token);
        let mut found = None;
        let mut index = 0usize;
        loop {
            if Some(index) == wanted {
                match seq.next_element::<&'de RawValue>()? {
                    Some(value) => found = Some(value),
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            index = index.saturating_add(1);
        }
        Ok(found)
    }

    // A step into a scalar designates nothing.
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// An array index token: `0`, or digits without a leading zero (RFC 6901). `-` (past the end)
/// and anything else designate no element.
fn array_index(token: &str) -> Option<usize> {
    let digits = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    if !digits || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse().ok()
}

/// Reads an object key and answers whether it equals the token, without allocating when the
/// key has no escapes.
struct KeyIs<'t>(&'t str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(pointer: &str, json: &str) -> Option<String> {
        let document: &RawValue = serde_json::from_str(json).expect("json");
        Pointer::parse("test", pointer)
            .expect("pointer")
            .resolve(document)
            .expect("resolve")
            .map(|value| value.get().to_owned())
    }

    #[test]
    fn resolves_members_indices_and_escapes() {
        let json = r#"{"a":{"b":[10,{"c/d":1,"e~f":2}]},"":3," ":4}"#;
        assert_eq!(resolve("", json).as_deref(), Some(json));
        assert_eq!(resolve("/a/b/0", json).as_deref(), Some("10"));
        assert_eq!(resolve("/a/b/1/c~1d", json).as_deref(), Some("1"));
        assert_eq!(resolve("/a/b/1/e~0f", json).as_deref(), Some("2"));
        assert_eq!(resolve("/", json).as_deref(), Some("3"));
        assert_eq!(resolve("/ ", json).as_deref(), Some("4"));
        assert_eq!(resolve("/a/b/2", json), None);
        assert_eq!(resolve("/a/b/01", json), None);
        assert_eq!(resolve("/a/b/-", json), None);
        assert_eq!(resolve("/a/b/0/x", json), None);
        assert_eq!(resolve("/missing", json), None);
    }

    #[test]
    fn a_repeated_member_resolves_to_the_last() {
        assert_eq!(
            resolve("/type", r#"{"type":"a","type":"b"}"#).as_deref(),
            Some(r#""b""#)
        );
    }

    #[test]
    fn escaped_keys_match_their_unescaped_text() {
        assert_eq!(
            resolve("/t\u{e9}", r#"{"t\u00e9":1}"#).as_deref(),
            Some("1")
        );
    }

    #[test]
    fn rejects_malformed_pointers() {
        for bad in ["type", "/a~", "/a~2", "~1"] {
            assert!(Pointer::parse("test", bad).is_err(), "{bad}");
        }
    }
}
