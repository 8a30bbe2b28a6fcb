//! Errors, split by cause: [`VerifyError`] for a request that did not verify, [`ReceiveError`]
//! for a delivery the receiver or the layer could not take (its body, the store, the claim), and
//! [`ConfigError`] for a configuration that cannot be built. [`ErrorKind`] names the kind of the
//! first two, with its HTTP status.

use std::fmt;

use http::{HeaderName, StatusCode};
use time::Duration;

use crate::store::StoreError;

/// The kind of a [`VerifyError`] or a [`ReceiveError`]: a stable name (the names the test
/// vectors use) and an HTTP status, fit for metrics and response bodies.
///
/// Non-exhaustive: a later version may add kinds (for new signing schemes, say). Each one comes
/// with its own [`status`](Self::status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// `missing_header` (400): a required header is absent.
    MissingHeader,
    /// `malformed_signature` (400): the signature header is repeated or not well formed.
    MalformedSignature,
    /// `signature_mismatch` (401): no carried signature matches a configured secret.
    SignatureMismatch,
    /// `malformed_timestamp` (400): the timestamp header is repeated or not well formed.
    MalformedTimestamp,
    /// `timestamp_out_of_tolerance` (401): the timestamp is outside the window.
    TimestampOutOfTolerance,
    /// `malformed_delivery_id` (400): the delivery id header is repeated or not well formed.
    MalformedDeliveryId,
    /// `body_too_large` (413): the body is longer than the limit.
    BodyTooLarge,
    /// `body_unreadable` (400): the body could not be read.
    BodyUnreadable,
    /// `body_timeout` (408): the body did not arrive in time.
    BodyTimeout,
    /// `store_unavailable` (503): the dedupe store did not answer.
    StoreUnavailable,
    /// `claim_lost` (500): the claim was taken over before it was completed.
    ClaimLost,
    /// `unknown_subscription` (404): no subscription answers to the request's key.
    UnknownSubscription,
    /// `source_unavailable` (503): the subscription source could not answer.
    SourceUnavailable,
}

impl ErrorKind {
    /// The stable name: `missing_header`, `malformed_signature`, `signature_mismatch`,
    /// `malformed_timestamp`, `timestamp_out_of_tolerance`, `malformed_delivery_id`,
    /// `body_too_large`, `body_unreadable`, `body_timeout`, `store_unavailable`, `claim_lost`,
    /// `unknown_subscription`, `source_unavailable`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MissingHeader => "missing_header",
            Self::MalformedSignature => "malformed_signature",
            Self::SignatureMismatch => "signature_mismatch",
            Self::MalformedTimestamp => "malformed_timestamp",
            Self::TimestampOutOfTolerance => "timestamp_out_of_tolerance",
            Self::MalformedDeliveryId => "malformed_delivery_id",
            Self::BodyTooLarge => "body_too_large",
            Self::BodyUnreadable => "body_unreadable",
            Self::BodyTimeout => "body_timeout",
            Self::StoreUnavailable => "store_unavailable",
            Self::ClaimLost => "claim_lost",
            Self::UnknownSubscription => "unknown_subscription",
            Self::SourceUnavailable => "source_unavailable",
        }
    }

    /// The HTTP status a receiver answers with: 400 for a missing or malformed header or an
    /// unreadable body, 401 for a mismatch or a timestamp outside the window, 413, 408, 503,
    /// and 500 for a lost claim (which only reaches a response through the caller's code).
    pub const fn status(self) -> StatusCode {
        match self {
            Self::MissingHeader
            | Self::MalformedSignature
            | Self::MalformedTimestamp
            | Self::MalformedDeliveryId
            | Self::BodyUnreadable => StatusCode::BAD_REQUEST,
            Self::SignatureMismatch | Self::TimestampOutOfTolerance => StatusCode::UNAUTHORIZED,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::StoreUnavailable | Self::SourceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::ClaimLost => StatusCode::INTERNAL_SERVER_ERROR,
            Self::UnknownSubscription => StatusCode::NOT_FOUND,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request did not verify: everything [`Verifier::verify`](crate::Verifier::verify) and
/// its streaming form can answer, and nothing else.
///
/// `Display` gives the detail an operator needs (which header, how far out of the window) and
/// never secret material or the expected signature.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// A required header is absent.
    MissingHeader {
        /// The header's name.
        header: HeaderName,
    },
    /// The signature header is repeated, too long, or not a list of `sha256=<64 hex digits>`.
    MalformedSignature {
        /// The header's name.
        header: HeaderName,
        /// What is wrong with it.
        reason: Malformed,
    },
    /// No carried signature matches any configured secret. Says nothing more, on purpose.
    SignatureMismatch,
    /// The timestamp header is repeated or is not Unix seconds, Unix milliseconds or RFC 3339.
    MalformedTimestamp {
        /// The header's name.
        header: HeaderName,
        /// What is wrong with it.
        reason: Malformed,
    },
    /// The timestamp is further from now than the tolerance: a replay, or a badly set clock.
    TimestampOutOfTolerance {
        /// How far the timestamp lies in the past (negative: in the future).
        drift: Duration,
        /// The configured tolerance.
        tolerance: Duration,
    },
    /// The delivery id header is repeated, empty, too long or not visible ASCII.
    MalformedDeliveryId {
        /// The header's name.
        header: HeaderName,
        /// What is wrong with it.
        reason: Malformed,
    },
}

impl VerifyError {
    /// The kind, for metrics, response bodies and the HTTP status.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::MissingHeader { .. } => ErrorKind::MissingHeader,
            Self::MalformedSignature { .. } => ErrorKind::MalformedSignature,
            Self::SignatureMismatch => ErrorKind::SignatureMismatch,
            Self::MalformedTimestamp { .. } => ErrorKind::MalformedTimestamp,
            Self::TimestampOutOfTolerance { .. } => ErrorKind::TimestampOutOfTolerance,
            Self::MalformedDeliveryId { .. } => ErrorKind::MalformedDeliveryId,
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingHeader { header } => write!(f, "missing header {header}"),
            Self::MalformedSignature { header, reason }
            | Self::MalformedTimestamp { header, reason }
            | Self::MalformedDeliveryId { header, reason } => {
                write!(f, "malformed header {header}: {reason}")
            }
            Self::SignatureMismatch => f.write_str("no signature matches a configured secret"),
            Self::TimestampOutOfTolerance { drift, tolerance } => {
                let direction = if drift.is_negative() {
                    "in the future"
                } else {
                    "in the past"
                };
                write!(
                    f,
                    "timestamp is {} {direction}, outside the tolerance of {tolerance}",
                    drift.abs()
                )
            }
        }
    }
}

impl std::error::Error for VerifyError {}

/// What is wrong with a malformed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Malformed {
    /// The header appears more than once (no value is picked).
    Repeated,
    /// The value is empty.
    Empty,
    /// The value is longer than allowed.
    TooLong {
        /// The most bytes allowed.
        limit: usize,
    },
    /// The signature header holds only separators.
    NoSignature,
    /// The signature header carries more than [`MAX_SIGNATURES`](crate::MAX_SIGNATURES), or
    /// more than 256 bytes of them (four Ed25519 signatures).
    TooManySignatures,
    /// A signature does not start with the method's prefix (`sha256=`, `v0=`, `v1,` ...).
    MissingPrefix {
        /// The prefix expected.
        prefix: &'static [u8],
    },
    /// A hex digest has the wrong number of digits for the method.
    DigestLength {
        /// The number of hex digits expected.
        digits: usize,
    },
    /// A digest holds a character that is not a hex digit.
    NotHex,
    /// A signature or credential is not valid base64.
    NotBase64,
    /// A base64 signature decodes to the wrong number of bytes for its version.
    SignatureLength {
        /// The number of bytes expected.
        bytes: usize,
    },
    /// The Stripe signature header has no `t=` timestamp, or more than one.
    NoTimestamp,
    /// The `Authorization` header does not use the method's scheme (`Bearer` or `Basic`).
    WrongAuthScheme {
        /// The scheme expected.
        expected: &'static str,
    },
    /// Basic credentials without the `:` between user and password.
    NotUserPassword,
    /// Digits only, but neither 1 to 11 of them (Unix seconds) nor 13 (milliseconds).
    NumericLength,
    /// Neither Unix seconds, Unix milliseconds nor RFC 3339.
    NotATimestamp,
    /// An RFC 3339 time whose UTC date lies past the years `time` represents.
    OutOfRange,
    /// A character outside visible ASCII (`!` to `~`).
    NotVisibleAscii,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Repeated => f.write_str("repeated"),
            Self::Empty => f.write_str("empty"),
            Self::TooLong { limit } => write!(f, "longer than {limit} bytes"),
            Self::NoSignature => f.write_str("no signature"),
            Self::TooManySignatures => write!(
                f,
                "more than {} signatures, or more than 256 bytes of them",
                crate::MAX_SIGNATURES
            ),
            Self::MissingPrefix { prefix } => {
                let prefix = String::from_utf8_lossy(prefix);
                write!(f, "a signature does not start with {prefix}")
            }
            Self::DigestLength { digits } => {
                write!(f, "the digest must be exactly {digits} hex digits")
            }
            Self::NotHex => f.write_str("the digest is not hex"),
            Self::NotBase64 => f.write_str("not valid base64"),
            Self::SignatureLength { bytes } => {
                write!(f, "the signature must decode to exactly {bytes} bytes")
            }
            Self::NoTimestamp => f.write_str("expected exactly one t=<unix seconds> entry"),
            Self::WrongAuthScheme { expected } => {
                write!(f, "expected the {expected} authorization scheme")
            }
            Self::NotUserPassword => f.write_str("expected base64 of user:password"),
            Self::NumericLength => {
                f.write_str("Unix seconds take 1 to 11 digits, milliseconds exactly 13")
            }
            Self::NotATimestamp => {
                f.write_str("neither Unix seconds, Unix milliseconds nor RFC 3339")
            }
            Self::OutOfRange => f.write_str("outside the range of dates supported"),
            Self::NotVisibleAscii => f.write_str("only visible ASCII characters are allowed"),
        }
    }
}

/// Why the [`Receiver`](crate::Receiver) or the Axum layer did not take a delivery: it did not
/// verify, or its body, the store or the claim failed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ReceiveError {
    /// The request did not verify. The receiver also answers this for a verified delivery
    /// without a delivery id (dedupe needs one), and for one whose timestamp left the window
    /// before the claim.
    Verify(VerifyError),
    /// The body is longer than the configured limit; reading stopped there.
    BodyTooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The body could not be read (the client went away, or the stream failed).
    BodyUnreadable,
    /// The body did not arrive in full within the body timeout.
    BodyTimeout {
        /// The timeout.
        limit: std::time::Duration,
    },
    /// The dedupe store did not answer: the delivery was not accepted (fail closed).
    StoreUnavailable(StoreError),
    /// The claim was lost before it could be completed: its lease ran out and another attempt
    /// took the delivery over, so it may have been handled twice.
    ClaimLost,
    /// No subscription answers to the request's key.
    UnknownSubscription,
    /// The subscription source could not answer: nothing is accepted unverified.
    SourceUnavailable(crate::SourceError),
}

impl ReceiveError {
    /// The kind, for metrics, response bodies and the HTTP status.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Verify(error) => error.kind(),
            Self::BodyTooLarge { .. } => ErrorKind::BodyTooLarge,
            Self::BodyUnreadable => ErrorKind::BodyUnreadable,
            Self::BodyTimeout { .. } => ErrorKind::BodyTimeout,
            Self::StoreUnavailable(_) => ErrorKind::StoreUnavailable,
            Self::ClaimLost => ErrorKind::ClaimLost,
            Self::UnknownSubscription => ErrorKind::UnknownSubscription,
            Self::SourceUnavailable(_) => ErrorKind::SourceUnavailable,
        }
    }
}

impl fmt::Display for ReceiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Verify(error) => error.fmt(f),
            Self::BodyTooLarge { limit } => {
                write!(f, "body longer than the limit of {limit} bytes")
            }
            Self::BodyUnreadable => f.write_str("the body could not be read"),
            Self::BodyTimeout { limit } => {
                write!(f, "the body did not arrive within {} ms", limit.as_millis())
            }
            Self::StoreUnavailable(error) => write!(f, "dedupe store unavailable: {error}"),
            Self::ClaimLost => f.write_str(
                "the claim was lost before completion: the delivery may have been handled twice",
            ),
            Self::UnknownSubscription => f.write_str("no subscription answers to this request"),
            Self::SourceUnavailable(error) => {
                write!(f, "the subscription source did not answer: {error}")
            }
        }
    }
}

impl std::error::Error for ReceiveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::StoreUnavailable(error) => Some(error),
            Self::SourceUnavailable(error) => Some(error),
            _ => None,
        }
    }
}

impl From<VerifyError> for ReceiveError {
    fn from(error: VerifyError) -> Self {
        Self::Verify(error)
    }
}

impl From<StoreError> for ReceiveError {
    fn from(error: StoreError) -> Self {
        Self::StoreUnavailable(error)
    }
}

/// Why a [`Verifier`](crate::Verifier), [`Signer`](crate::Signer), receiver or layer could not
/// be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// No secret was configured for a signing method: nothing could ever verify. Unsigned
    /// deliveries are accepted only by choosing [`Method::None`](crate::Method::None) by name.
    NoSecrets {
        /// The method that needs a secret.
        method: crate::Method,
    },
    /// A secret is empty: anyone could forge its signatures.
    EmptySecret {
        /// The secret's label.
        label: String,
    },
    /// A secret does not decode as its method reads secrets (it is never used raw instead).
    SecretEncoding {
        /// The secret's label.
        label: String,
        /// The method.
        method: crate::Method,
        /// The form the method expects.
        expected: &'static str,
    },
    /// A secret was given to `none`, which checks nothing: a sign of a configuration mistake.
    SecretWithoutSigning {
        /// The secret's label.
        label: String,
    },
    /// The header names give a header the method does not have (a timestamp header for
    /// Stripe, whose timestamp is inside its signature header, or for a method that signs none).
    HeaderNotUsed {
        /// The method.
        method: crate::Method,
        /// Which header: `"timestamp"`.
        header: &'static str,
    },
    /// The header names leave out a header the method needs (its timestamp, or the delivery
    /// id it dedupes on).
    MissingHeaderName {
        /// The method.
        method: crate::Method,
        /// Which header: `"timestamp"` or `"delivery id"`.
        header: &'static str,
    },
    /// Two secrets share a label, so a match could not say which one it was.
    DuplicateLabel {
        /// The repeated label.
        label: String,
    },
    /// The tolerance is negative.
    NegativeTolerance,
    /// A setting is outside the range that keeps the guarantees.
    OutOfRange {
        /// The setting's name.
        setting: &'static str,
        /// The range allowed.
        allowed: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSecrets { method } => write!(
                f,
                "no secret configured for {method}; to accept unsigned deliveries, choose the \
                 method none by name"
            ),
            Self::EmptySecret { label } => write!(
                f,
                "secret {label:?} is empty; to accept unsigned deliveries, choose the method \
                 none by name"
            ),
            Self::SecretEncoding {
                label,
                method,
                expected,
            } => write!(
                f,
                "secret {label:?} is not what {method} expects: {expected}"
            ),
            Self::SecretWithoutSigning { label } => write!(
                f,
                "secret {label:?} was given to the method none, which checks no signature; \
                 choose a signing method, or remove the secret"
            ),
            Self::HeaderNotUsed { method, header } => {
                write!(
                    f,
                    "{method} has no {header} header: leave it out of the header names"
                )
            }
            Self::MissingHeaderName { method, header } => {
                write!(
                    f,
                    "{method} needs a {header} header: name it in the header names"
                )
            }
            Self::DuplicateLabel { label } => {
                write!(f, "two secrets are labelled {label:?}")
            }
            Self::NegativeTolerance => f.write_str("the tolerance must not be negative"),
            Self::OutOfRange { setting, allowed } => {
                write!(f, "{setting} is out of range: allowed {allowed}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_keep_their_names_and_statuses() {
        let all = [
            (ErrorKind::MissingHeader, "missing_header", 400),
            (ErrorKind::MalformedSignature, "malformed_signature", 400),
            (ErrorKind::SignatureMismatch, "signature_mismatch", 401),
            (ErrorKind::MalformedTimestamp, "malformed_timestamp", 400),
            (
                ErrorKind::TimestampOutOfTolerance,
                "timestamp_out_of_tolerance",
                401,
            ),
            (ErrorKind::MalformedDeliveryId, "malformed_delivery_id", 400),
            (ErrorKind::BodyTooLarge, "body_too_large", 413),
            (ErrorKind::BodyUnreadable, "body_unreadable", 400),
            (ErrorKind::BodyTimeout, "body_timeout", 408),
            (ErrorKind::StoreUnavailable, "store_unavailable", 503),
            (ErrorKind::ClaimLost, "claim_lost", 500),
            (ErrorKind::UnknownSubscription, "unknown_subscription", 404),
            (ErrorKind::SourceUnavailable, "source_unavailable", 503),
        ];
        for (kind, name, status) in all {
            assert_eq!(kind.as_str(), name);
            assert_eq!(kind.to_string(), name);
            assert_eq!(kind.status().as_u16(), status, "{name}");
        }
    }

    #[test]
    fn a_receive_error_has_the_kind_of_the_verify_error_it_wraps() {
        let error = ReceiveError::from(VerifyError::SignatureMismatch);
        assert_eq!(error.kind(), ErrorKind::SignatureMismatch);
        assert_eq!(
            error.to_string(),
            VerifyError::SignatureMismatch.to_string()
        );
    }
}
