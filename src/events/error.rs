//! Why an event could not be taken, and why an envelope format could not be built.

use std::fmt;

use http::StatusCode;

/// The kind of an [`EventError`]: a stable name and an HTTP status, for metrics and response
/// bodies.
///
/// Every event error concerns a delivery that already verified: the body is genuinely the
/// provider's, so none of these says anything about the signature, and none is answered before
/// the signature was checked.
///
/// Non-exhaustive: a later version may add kinds, each with its own [`status`](Self::status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventErrorKind {
    /// `malformed_event` (400): the body is not JSON, has no event name, or a field has the
    /// wrong type.
    MalformedEvent,
    /// `payload_mismatch` (422): the payload is not the type the receiver asked for.
    PayloadMismatch,
    /// `unsupported_api_version` (422): the envelope's `api_version` is not one the receiver's
    /// [`ApiVersionPolicy`](super::ApiVersionPolicy) accepts.
    ///
    /// Why 422: the provider marks the delivery failed (so its dashboard shows the endpoint
    /// failing, and the delivery can be sent again from there once the receiver is updated),
    /// and it does not retry a 4xx other than 429. A retry would be wasted: a version is
    /// stamped on the endpoint and does not change between two attempts a second apart, so a
    /// 5xx or a 429 would only double the failures. 422 rather than 400 because the request
    /// is well formed and genuine, only not processable by this receiver, and so that it reads
    /// apart from the 400s of malformed headers; 401 is never used, since the version has no
    /// bearing on the signature.
    UnsupportedApiVersion,
}

impl EventErrorKind {
    /// The stable name: `malformed_event`, `payload_mismatch`, `unsupported_api_version`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MalformedEvent => "malformed_event",
            Self::PayloadMismatch => "payload_mismatch",
            Self::UnsupportedApiVersion => "unsupported_api_version",
        }
    }

    /// The HTTP status: 400 for a malformed event, 422 for a payload mismatch or an
    /// unsupported version (see [`UnsupportedApiVersion`](Self::UnsupportedApiVersion) for
    /// why).
    pub const fn status(self) -> StatusCode {
        match self {
            Self::MalformedEvent => StatusCode::BAD_REQUEST,
            Self::PayloadMismatch | Self::UnsupportedApiVersion => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
}

impl fmt::Display for EventErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a verified body could not be taken as an event.
///
/// `Display` names the problem and where it sits (the JSON pointer); it may quote the body's
/// own values (a version, a type mismatch), never anything secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventError {
    /// The body is not a JSON document (nor UTF-8, which JSON requires).
    NotJson {
        /// What the parser found wrong, and where.
        reason: String,
    },
    /// No event name at the name's pointer (absent or `null`).
    MissingName {
        /// The pointer where the name was looked for.
        pointer: String,
    },
    /// A field is present with a type it cannot have (a name that is not a string, an id that
    /// is an object, …).
    InvalidField {
        /// Which field: `name`, `id`, `created`, `api_version`.
        field: &'static str,
        /// The pointer where it sits.
        pointer: String,
        /// What it may be.
        expected: &'static str,
    },
    /// The payload was asked for as a type, but the body has none at the payload's pointer
    /// (and the type does not accept `null`).
    MissingPayload {
        /// The pointer where the payload was looked for.
        pointer: String,
    },
    /// The payload is not of the type asked for.
    Payload {
        /// What the parser found wrong, and where (in the payload's text).
        reason: String,
    },
    /// The `api_version` is not accepted by the policy, or is absent where the policy needs
    /// one.
    UnsupportedApiVersion {
        /// The version the body carries, if any.
        version: Option<String>,
    },
}

impl EventError {
    /// The kind, for metrics, response bodies and the HTTP status.
    pub fn kind(&self) -> EventErrorKind {
        match self {
            Self::NotJson { .. } | Self::MissingName { .. } | Self::InvalidField { .. } => {
                EventErrorKind::MalformedEvent
            }
            Self::MissingPayload { .. } | Self::Payload { .. } => EventErrorKind::PayloadMismatch,
            Self::UnsupportedApiVersion { .. } => EventErrorKind::UnsupportedApiVersion,
        }
    }
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotJson { reason } => write!(f, "the body is not JSON: {reason}"),
            Self::MissingName { pointer } => write!(f, "no event name at {pointer:?}"),
            Self::InvalidField {
                field,
                pointer,
                expected,
            } => write!(f, "the {field} at {pointer:?} is not {expected}"),
            Self::MissingPayload { pointer } => write!(f, "no payload at {pointer:?}"),
            Self::Payload { reason } => {
                write!(f, "the payload is not of the expected type: {reason}")
            }
            Self::UnsupportedApiVersion {
                version: Some(version),
            } => write!(f, "api_version {version:?} is not accepted"),
            Self::UnsupportedApiVersion { version: None } => {
                f.write_str("no api_version, and the policy accepts only listed versions")
            }
        }
    }
}

impl std::error::Error for EventError {}

/// A pointer given to [`EnvelopeFormat`](super::EnvelopeFormat) is not a JSON pointer
/// (RFC 6901): it must be empty (the whole body) or start with `/`, and `~` may appear only as
/// `~0` (a `~`) or `~1` (a `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPointer {
    pub(crate) field: &'static str,
    pub(crate) pointer: String,
}

impl InvalidPointer {
    /// Which field it was given for: `name`, `id`, `created`, `api_version`, `payload`.
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// The pointer as given.
    pub fn pointer(&self) -> &str {
        &self.pointer
    }
}

impl fmt::Display for InvalidPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the {} pointer {:?} is not a JSON pointer: it must be empty or start with `/`, \
             with `~` only in `~0` or `~1`",
            self.field, self.pointer
        )
    }
}

impl std::error::Error for InvalidPointer {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_keep_their_names_and_statuses() {
        let all = [
            (EventErrorKind::MalformedEvent, "malformed_event", 400),
            (EventErrorKind::PayloadMismatch, "payload_mismatch", 422),
            (
                EventErrorKind::UnsupportedApiVersion,
                "unsupported_api_version",
                422,
            ),
        ];
        for (kind, name, status) in all {
            assert_eq!(kind.as_str(), name);
            assert_eq!(kind.to_string(), name);
            assert_eq!(kind.status().as_u16(), status, "{name}");
        }
    }
}
