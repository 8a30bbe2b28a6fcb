//! The envelope around an event: its name, id, time, version and payload, found by pointer.

use std::fmt;

use serde::Deserialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::error::{EventError, InvalidPointer};
use super::name::EventName;
use super::pointer::Pointer;

/// Where each field of the envelope sits in the body, as JSON pointers (RFC 6901).
///
/// The defaults are the default provider's: name `/type`, id `/id`, created time
/// `/created_at`, version `/api_version`, payload `/data`. The empty pointer designates the
/// whole body (for providers whose body is the payload itself).
///
/// ```
/// use hookverify::events::{Envelope, EnvelopeFormat};
///
/// // A provider that nests its metadata and sends the payload beside it.
/// let format = EnvelopeFormat::default()
///     .name("/meta/event")?
///     .id("/meta/id")?
///     .created("/meta/ts")?
///     .payload("/object")?;
/// let body = br#"{"meta":{"event":"flow_run_failed","id":"ev_9","ts":1764000000},"object":{}}"#;
/// let envelope = Envelope::parse_with(body, &format)?;
/// assert_eq!(envelope.name().as_str(), "flow_run_failed");
/// assert_eq!(envelope.id(), Some("ev_9"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeFormat {
    name: Pointer,
    id: Pointer,
    created: Pointer,
    api_version: Pointer,
    payload: Pointer,
}

impl Default for EnvelopeFormat {
    fn default() -> Self {
        Self {
            name: Pointer::member("type"),
            id: Pointer::member("id"),
            created: Pointer::member("created_at"),
            api_version: Pointer::member("api_version"),
            payload: Pointer::member("data"),
        }
    }
}

impl EnvelopeFormat {
    /// Where the event name is (default `/type`). A body without one is
    /// [`EventError::MissingName`].
    pub fn name(mut self, pointer: &str) -> Result<Self, InvalidPointer> {
        self.name = Pointer::parse("name", pointer)?;
        Ok(self)
    }

    /// Where the event id is (default `/id`).
    pub fn id(mut self, pointer: &str) -> Result<Self, InvalidPointer> {
        self.id = Pointer::parse("id", pointer)?;
        Ok(self)
    }

    /// Where the event's creation time is (default `/created_at`).
    pub fn created(mut self, pointer: &str) -> Result<Self, InvalidPointer> {
        self.created = Pointer::parse("created", pointer)?;
        Ok(self)
    }

    /// Where the envelope's version is (default `/api_version`).
    pub fn api_version(mut self, pointer: &str) -> Result<Self, InvalidPointer> {
        self.api_version = Pointer::parse("api_version", pointer)?;
        Ok(self)
    }

    /// Where the payload is (default `/data`; `""` for the whole body).
    pub fn payload(mut self, pointer: &str) -> Result<Self, InvalidPointer> {
        self.payload = Pointer::parse("payload", pointer)?;
        Ok(self)
    }

    /// The name's pointer, as configured.
    pub fn name_pointer(&self) -> &str {
        self.name.as_str()
    }

    /// The payload's pointer, as configured.
    pub fn payload_pointer(&self) -> &str {
        self.payload.as_str()
    }

    /// The `api_version`'s pointer, as configured.
    pub fn api_version_pointer(&self) -> &str {
        self.api_version.as_str()
    }
}

/// A lenient reading of an event body: the name is required, everything else is taken where
/// present.
///
/// - **name**: a string (any string: unknown names are kept, see [`EventName`]). Absent or
///   `null` is [`EventError::MissingName`]; any other type is [`EventError::InvalidField`].
/// - **id**, **api_version**: a string, or a number kept as written (`2` gives `"2"`).
/// - **created**: a string or a number, kept as written, and read as a time when it is
///   RFC 3339 or Unix seconds (see [`CreatedAt`]).
/// - **payload**: any JSON value, kept as raw text.
///
/// An optional field that is absent or `null` is `None`; one of another type (an object where
/// the id should be) is [`EventError::InvalidField`] rather than silently dropped. Members the
/// format does not name are ignored. Parsing never panics, whatever the body.
///
/// The payload is kept as [`RawValue`], the exact text of the body, rather than a
/// `serde_json::Value` tree: [`payload_as`](Self::payload_as) then types it straight from the
/// text (numbers keep every digit, key order and duplicates do not matter, and no tree is built
/// only to be converted again), and the envelope holds one copy of the payload's bytes instead
/// of a tree several times larger. `payload_as::<serde_json::Value>()` still gives a tree when
/// one is wanted.
///
/// ```
/// use hookverify::events::{Envelope, EventName};
/// use serde::Deserialize;
///
/// #[derive(Deserialize)]
/// struct ThreadCompleted {
///     thread_id: String,
///     turns: u32,
/// }
///
/// let body = br#"{
///     "type": "thread.completed",
///     "id": "evt_01",
///     "created_at": "2025-11-24T16:00:00Z",
///     "data": {"thread_id": "th_7", "turns": 3}
/// }"#;
/// let envelope = Envelope::parse(body)?;
/// assert_eq!(*envelope.name(), EventName::ThreadCompleted);
/// assert_eq!(envelope.id(), Some("evt_01"));
/// let created = envelope.created().and_then(|created| created.at());
/// assert_eq!(created.map(|at| at.unix_timestamp()), Some(1_764_000_000));
/// assert_eq!(envelope.api_version(), None);
///
/// let thread: ThreadCompleted = envelope.payload_as()?;
/// assert_eq!((thread.thread_id.as_str(), thread.turns), ("th_7", 3));
/// # Ok::<(), hookverify::events::EventError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Envelope {
    name: EventName,
    id: Option<String>,
    created: Option<CreatedAt>,
    api_version: Option<String>,
    payload: Payload,
}

/// The payload, or where it was looked for (for the error that asks for it).
#[derive(Debug, Clone)]
enum Payload {
    Present(Box<RawValue>),
    Missing { pointer: Box<str> },
}

impl Envelope {
    /// Parses `body` with the default provider's format ([`EnvelopeFormat::default`]).
    pub fn parse(body: &[u8]) -> Result<Self, EventError> {
        Self::parse_with(body, &EnvelopeFormat::default())
    }

    /// Parses `body` with the fields where `format` says.
    pub fn parse_with(body: &[u8], format: &EnvelopeFormat) -> Result<Self, EventError> {
        // JSON is UTF-8 (RFC 8259); a leading byte order mark is tolerated, as the RFC allows.
        let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
        let text = std::str::from_utf8(body).map_err(|error| EventError::NotJson {
            reason: format!("not UTF-8 (at byte {})", error.valid_up_to()),
        })?;
        let document: &RawValue = serde_json::from_str(text).map_err(not_json)?;
        let find = |pointer: &Pointer| -> Result<Option<Field<'_>>, EventError> {
            match pointer.resolve(document).map_err(not_json)? {
                None => Ok(None),
                Some(raw) => Field::read(raw).map_err(not_json),
            }
        };

        let name = match find(&format.name)? {
            Some(Field::String(name)) => EventName::from(name),
            None => {
                return Err(EventError::MissingName {
                    pointer: format.name.as_str().to_owned(),
                });
            }
            Some(_) => return Err(invalid("name", &format.name, "a string")),
        };
        let id = find(&format.id)?
            .map(|field| field.into_text("id", &format.id))
            .transpose()?;
        let created = find(&format.created)?
            .map(|field| field.into_text("created", &format.created))
            .transpose()?
            .map(CreatedAt::new);
        let api_version = find(&format.api_version)?
            .map(|field| field.into_text("api_version", &format.api_version))
            .transpose()?;
        let payload = match format.payload.resolve(document).map_err(not_json)? {
            Some(raw) if raw.get() != "null" => Payload::Present(raw.to_owned()),
            _ => Payload::Missing {
                pointer: format.payload.as_str().into(),
            },
        };
        Ok(Self {
            name,
            id,
            created,
            api_version,
            payload,
        })
    }

    /// The event's name.
    pub fn name(&self) -> &EventName {
        &self.name
    }

    /// The event's id, if the body carries one. It is the provider's id for the event, which
    /// is not the delivery id of the request that carried it (a retry has another delivery id
    /// at some providers, the same event id at all).
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// When the provider says the event happened, if the body says.
    pub fn created(&self) -> Option<&CreatedAt> {
        self.created.as_ref()
    }

    /// The envelope's version, if the body carries one.
    pub fn api_version(&self) -> Option<&str> {
        self.api_version.as_deref()
    }

    /// The payload's raw JSON text, if the body has one (absent or `null` is `None`).
    pub fn payload(&self) -> Option<&RawValue> {
        match &self.payload {
            Payload::Present(raw) => Some(raw),
            Payload::Missing { .. } => None,
        }
    }

    /// The payload, typed as `T`.
    ///
    /// An absent payload types as JSON `null`: `Option<T>` gives `None` and `()` succeeds,
    /// while a type that needs a value gives [`EventError::MissingPayload`]. A payload of
    /// another shape gives [`EventError::Payload`]. `T` may borrow from the envelope.
    pub fn payload_as<'a, T: Deserialize<'a>>(&'a self) -> Result<T, EventError> {
        match &self.payload {
            Payload::Present(raw) => {
                serde_json::from_str(raw.get()).map_err(|error| EventError::Payload {
                    reason: error.to_string(),
                })
            }
            Payload::Missing { pointer } => {
                serde_json::from_str("null").map_err(|_| EventError::MissingPayload {
                    pointer: pointer.as_ref().to_owned(),
                })
            }
        }
    }
}

/// When the provider says the event happened: the value exactly as sent, and the instant it
/// denotes when it is an RFC 3339 date and time or Unix seconds.
///
/// ```
/// use hookverify::events::Envelope;
///
/// let envelope = Envelope::parse(br#"{"type":"agent.created","created_at":1764000000}"#)?;
/// let created = envelope.created().expect("present");
/// assert_eq!(created.raw(), "1764000000");
/// assert_eq!(created.at().map(|at| at.unix_timestamp()), Some(1_764_000_000));
///
/// let envelope = Envelope::parse(br#"{"type":"agent.created","created_at":"yesterday"}"#)?;
/// let created = envelope.created().expect("present");
/// assert_eq!((created.raw(), created.at()), ("yesterday", None));
/// # Ok::<(), hookverify::events::EventError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct CreatedAt {
    raw: String,
    at: Option<OffsetDateTime>,
}

impl CreatedAt {
    fn new(raw: String) -> Self {
        let at = parse_time(&raw);
        Self { raw, at }
    }

    /// The value as sent: a string's text, or a number as written.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The instant, when the value is RFC 3339 (with the offset it was sent in) or Unix
    /// seconds (a number, possibly with a fraction, or a string of digits); `None` for any
    /// other form or a time outside the years 1 to 9999.
    pub fn at(&self) -> Option<OffsetDateTime> {
        self.at
    }
}

impl fmt::Debug for CreatedAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedAt")
            .field("raw", &self.raw)
            .field("at", &self.at)
            .finish()
    }
}

/// RFC 3339, or Unix seconds written as digits (with a sign and a fraction when a number).
fn parse_time(raw: &str) -> Option<OffsetDateTime> {
    if let Ok(at) = OffsetDateTime::parse(raw, &Rfc3339) {
        return Some(at);
    }
    // Rust's number parsers also take `+5`, `inf` and `NaN`, which are not Unix seconds.
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    if !digits.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
        return None;
    }
    if let Ok(seconds) = raw.parse::<i64>() {
        return OffsetDateTime::from_unix_timestamp(seconds).ok();
    }
    // A JSON number with a fraction or an exponent. Only finite values in `time`'s range come
    // out; the cast saturates, and the range check refuses the saturated ends.
    let seconds: f64 = raw.parse().ok()?;
    if !seconds.is_finite() {
        return None;
    }
    let nanos = (seconds * 1e9).round() as i128;
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

/// A field's value, read just enough to tell its type.
enum Field<'a> {
    String(String),
    Number(&'a str),
    Other,
}

impl<'a> Field<'a> {
    /// `None` for `null`, which counts as absent.
    fn read(raw: &'a RawValue) -> Result<Option<Self>, serde_json::Error> {
        let text = raw.get();
        Ok(match text.as_bytes().first() {
            Some(b'n') => None,
            Some(b'"') => Some(Self::String(serde_json::from_str(text)?)),
            Some(b'-' | b'0'..=b'9') => Some(Self::Number(text)),
            _ => Some(Self::Other),
        })
    }

    /// A string's text or a number as written; any other type is an error.
    fn into_text(self, field: &'static str, pointer: &Pointer) -> Result<String, EventError> {
        match self {
            Self::String(text) => Ok(text),
            Self::Number(text) => Ok(text.to_owned()),
            Self::Other => Err(invalid(field, pointer, "a string or a number")),
        }
    }
}

fn invalid(field: &'static str, pointer: &Pointer, expected: &'static str) -> EventError {
    EventError::InvalidField {
        field,
        pointer: pointer.as_str().to_owned(),
        expected,
    }
}

fn not_json(error: serde_json::Error) -> EventError {
    EventError::NotJson {
        reason: error.to_string(),
    }
}
