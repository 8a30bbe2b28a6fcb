//! Axum and tower integration (feature `axum`).
//!
//! - [`VerifyLayer`]: a tower layer that verifies, dedupes and guards a handler. It rejects on
//!   headers alone before reading the body, reads the body up to a limit, verifies it, claims
//!   the delivery, runs the inner service, then completes the claim on a 2xx and releases it on
//!   anything else (an error, a non-2xx, a panic, a timeout, a dropped future).
//! - [`VerifiedDelivery`]: the extractor that hands the handler what the layer verified: the
//!   delivery id, timestamp, matched secret label and the raw body.
//! - [`VerifiedPayload`]: verification without the layer (no dedupe), for apps that only need to
//!   know a request is genuine and fresh; it reaches the [`Verifier`](crate::Verifier) through
//!   the router's state.
//! - [`VerifiedEvent`](struct.VerifiedEvent.html) (feature `events`): the verified delivery
//!   read as a typed event, whatever the request's content type, with an event filter and an
//!   `api_version` policy; its refusals (and the 200 that acknowledges an event not handled)
//!   are an [`EventRejection`](enum.EventRejection.html).
//! - [`Rejection`]: what the layer and [`VerifiedPayload`] answer when a request is refused.
//!
//! # Status codes
//!
//! | outcome | status | handler runs |
//! | --- | --- | --- |
//! | verified and fresh, handler returns 2xx | handler's | yes, then the claim completes |
//! | handler returns an error or a non-2xx, panics, times out or is cancelled | handler's (500 on a panic, 503 on a timeout) | yes, then the claim is released |
//! | duplicate of a completed delivery, or a replay of accepted bytes | 200 (a policy: see below) | no |
//! | duplicate of a delivery in flight | 429 with `Retry-After` (a policy: see below) | no |
//! | missing or malformed header, unreadable body | 400 | no |
//! | signature mismatch, timestamp outside the window | 401 | no |
//! | body over the limit (default 1 MiB) | 413, before reading the rest | no |
//! | body not received within the body timeout (default 10 s) | 408, and the connection is closed | no |
//! | store unavailable or too slow | 503 | no |
//!
//! The duplicate answers are defaults: [`VerifyLayer::duplicate_status`] sets another status
//! per kind, within what the provider reads right (a retried status for a delivery in flight,
//! one it does not retry for a completed delivery or a replay).
//!
//! Rejection bodies name the error kind only (`signature_mismatch`, …): no drift figures, no
//! hint that helps probing. The detail goes to `tracing` (target `hookverify`) and to the
//! layer's [`on_reject`](VerifyLayer::on_reject) hook.
//!
//! Why 429 for a delivery in flight: the provider retries a non-2xx, so if the first attempt
//! fails after all, its claim is released and the retry is handled: nothing is lost. A 200
//! would make the provider drop a delivery that may yet fail.
//!
//! # Deployment caveat
//!
//! The provider gives up on an attempt after 10 s and retries once, 1 s later. Keep the
//! handler timeout under 10 s and the lease (default 30 s) above the handler timeout, so that a
//! live handler never loses its claim to the retry.

mod body;
#[cfg(feature = "events")]
mod event;
mod extract;
mod layer;
mod rejection;
mod service;

#[cfg(feature = "events")]
pub use event::{EventRejection, VerifiedEvent};
pub use extract::{ClientAddr, MissingLayer, VerifiedDelivery, VerifiedPayload};
pub use layer::{DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_BODY, SubscriptionKey, VerifyLayer};
pub use rejection::Rejection;
pub use service::{Verify, VerifyFuture};
