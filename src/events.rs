//! Typed events (feature `events`): what a verified body says.
//!
//! - [`EventName`]: the default provider's twenty event names, and any other name kept as it
//!   came ([`EventName::Unknown`], never an error).
//! - [`Envelope`]: a lenient parse of a JSON body into the event's name, id, creation time,
//!   `api_version` and raw payload, which [`Envelope::payload_as`] types; where each field sits
//!   is an [`EnvelopeFormat`] of JSON pointers.
//! - [`EventFilter`]: the names a receiver handles; the others are acknowledged with a 2xx
//!   (so that the provider does not retry them) and logged, `webhook.test` included by
//!   default.
//! - [`ApiVersionPolicy`]: what to do with an envelope version the receiver was not written
//!   for, apart from whether the signature is valid.
//! - [`EventConfig`]: the three together, applied to a body by [`EventConfig::receive`]; with
//!   the `axum` feature, the [`VerifiedEvent`](../axum/struct.VerifiedEvent.html) extractor applies it
//!   behind [`VerifyLayer`](../axum/struct.VerifyLayer.html).
//!
//! Everything here reads a body that was already verified: parse after the signature check,
//! never before (the HMAC covers the raw bytes, not their parse).
//!
//! # Status codes
//!
//! | outcome | status | kind |
//! | --- | --- | --- |
//! | event handled | the handler's | |
//! | event not handled by the filter, or `webhook.test` | 200 | `acknowledged` |
//! | body not JSON, no event name, a field of the wrong type | 400 | `malformed_event` |
//! | payload not of the type asked for | 422 | `payload_mismatch` |
//! | `api_version` refused by the policy | 422 | `unsupported_api_version` |
//!
//! Why 422 for a refused version: see [`EventErrorKind::UnsupportedApiVersion`].

mod config;
mod envelope;
mod error;
mod filter;
mod name;
mod pointer;
mod version;

pub use config::{EventConfig, Received};
pub use envelope::{CreatedAt, Envelope, EnvelopeFormat};
pub use error::{EventError, EventErrorKind, InvalidPointer};
pub use filter::{Acknowledged, EventFilter, FilterDecision};
pub use name::EventName;
pub use version::{ApiVersionPolicy, VersionDecision};
