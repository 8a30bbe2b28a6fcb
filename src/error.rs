//! Errors, split by cause: [`Error`] for a rejected request, [`ConfigError`] for a verifier or
//! signer that cannot be built.

use std::fmt;

use http::HeaderName;
use time::Duration;

use crate::store::StoreError;

/// Why a request was rejected.
///
/// [`Error::kind`] gives a stable name for each variant (the names the test vectors use), fit
/// for metrics and for response bodies. `Display` gives the detail an operator needs (which
/// header, how far out of the window) and never secret material or the expected signature.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
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
        reason: &'static str,
    },
    /// No carried signature matches any configured secret. Says nothing more, on purpose.
    SignatureMismatch,
    /// The timestamp header is repeated or is not Unix seconds, Unix milliseconds or RFC 3339.
    MalformedTimestamp {
        /// The header's name.
        header: HeaderName,
        /// What is wrong with it.
        reason: &'static str,
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
        reason: &'static str,
    },
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
}

impl Error {
    /// A stable, short name for the kind of error: `missing_header`, `malformed_signature`,
    /// `signature_mismatch`, `malformed_timestamp`, `timestamp_out_of_tolerance`,
    /// `malformed_delivery_id`, `body_too_large`, `body_unreadable`, `store_unavailable`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MissingHeader { .. } => "missing_header",
            Self::MalformedSignature { .. } => "malformed_signature",
            Self::SignatureMismatch => "signature_mismatch",
            Self::MalformedTimestamp { .. } => "malformed_timestamp",
            Self::TimestampOutOfTolerance { .. } => "timestamp_out_of_tolerance",
            Self::MalformedDeliveryId { .. } => "malformed_delivery_id",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::BodyUnreadable => "body_unreadable",
            Self::BodyTimeout { .. } => "body_timeout",
            Self::StoreUnavailable(_) => "store_unavailable",
            Self::ClaimLost => "claim_lost",
        }
    }
}

impl fmt::Display for Error {
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
                    "timestamp is {} {direction}, outside the tolerance of {}",
                    drift.abs(),
                    tolerance
                )
            }
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
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::StoreUnavailable(error) => Some(error),
            _ => None,
        }
    }
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        Self::StoreUnavailable(error)
    }
}

/// Why a [`Verifier`](crate::Verifier) or [`Signer`](crate::Signer) could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// No secret was configured: nothing could ever verify.
    NoSecrets,
    /// A secret is empty: anyone could forge its signatures.
    EmptySecret {
        /// The secret's label.
        label: String,
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
            Self::NoSecrets => f.write_str("no secret configured"),
            Self::EmptySecret { label } => write!(f, "secret {label:?} is empty"),
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
