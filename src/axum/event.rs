//! The extractor that hands a handler its verified delivery as a typed event.

use std::fmt;

use axum_core::extract::{FromRef, FromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;
use serde::de::DeserializeOwned;

use super::extract::VerifiedDelivery;
use super::rejection::plain;
use crate::events::{Acknowledged, Envelope, EventConfig, EventError, EventName, Received};

/// A delivery that [`VerifyLayer`](super::VerifyLayer) verified and claimed, read as an event:
/// the [`VerifiedDelivery`], its [`Envelope`], and the payload typed as `T` (by default a
/// [`serde_json::Value`]).
///
/// The body is read as JSON **whatever the request's `Content-Type`**, or without one: the
/// signature already proved who sent it, and `curl --data-binary` labels JSON
/// `application/x-www-form-urlencoded` (axum's `Json` answers such a request 415).
///
/// It takes an [`EventConfig`] from the router's state through [`FromRef`] and applies it in
/// this order:
///
/// 1. the envelope is parsed (`400 malformed_event` if it cannot be);
/// 2. its `api_version` is checked against the policy (`422 unsupported_api_version`);
/// 3. the filter decides: an event the receiver does not handle, and `webhook.test` by default,
///    is answered `200 acknowledged` and logged, **without running the handler**, so the
///    provider neither retries it nor counts it as a failure (the layer completes the claim, so
///    a later copy is a duplicate);
/// 4. the payload is typed as `T` (`422 payload_mismatch`).
///
/// Every refusal is an [`EventRejection`]. A refusal is a non-2xx, so the layer releases the
/// claim, and the same delivery is handled if it is sent again (after the receiver is fixed,
/// say). It reads no body (the layer kept it), so it may sit anywhere among the extractors.
/// Without the layer in front of the route it answers 500 (`verify_layer_missing`).
///
/// ```
/// use std::num::NonZeroUsize;
/// use axum::{Router, routing::post};
/// use hookverify::axum::{VerifiedEvent, VerifyLayer};
/// use hookverify::events::{ApiVersionPolicy, EventConfig, EventFilter, EventName};
/// use hookverify::{MemoryStore, Receiver, Verifier};
/// use serde::Deserialize;
///
/// #[derive(Deserialize)]
/// struct Turn {
///     thread_id: String,
///     turn_id: String,
/// }
///
/// async fn on_turn(event: VerifiedEvent<Turn>) -> &'static str {
///     let turn = event.payload();
///     println!("{} {} in {}", event.name(), turn.turn_id, turn.thread_id);
///     "ok"
/// }
///
/// let verifier = Verifier::builder().secret("current", "whsec_example").build()?;
/// let store = MemoryStore::new(NonZeroUsize::new(100_000).expect("non-zero"))?;
/// let events = EventConfig::new()
///     .filter(EventFilter::only([EventName::TurnCompleted, EventName::TurnFailed]))
///     .api_versions(ApiVersionPolicy::accept(["2026-01-01"]));
/// let app: Router = Router::new()
///     .route(
///         "/webhooks",
///         post(on_turn).route_layer(VerifyLayer::new(Receiver::new(verifier, store))),
///     )
///     .with_state(events);
/// # Ok::<(), hookverify::ConfigError>(())
/// ```
pub struct VerifiedEvent<T = serde_json::Value> {
    delivery: VerifiedDelivery,
    envelope: Envelope,
    payload: T,
}

impl<T> VerifiedEvent<T> {
    /// The verified delivery: id, signed timestamp, matched secret, raw body.
    pub fn delivery(&self) -> &VerifiedDelivery {
        &self.delivery
    }

    /// The parsed envelope.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The event's name.
    pub fn name(&self) -> &EventName {
        self.envelope.name()
    }

    /// The payload, typed.
    pub fn payload(&self) -> &T {
        &self.payload
    }

    /// Takes the payload.
    pub fn into_payload(self) -> T {
        self.payload
    }

    /// Takes the delivery, the envelope and the payload.
    pub fn into_parts(self) -> (VerifiedDelivery, Envelope, T) {
        (self.delivery, self.envelope, self.payload)
    }
}

impl<T: fmt::Debug> fmt::Debug for VerifiedEvent<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedEvent")
            .field("delivery", &self.delivery)
            .field("envelope", &self.envelope)
            .field("payload", &self.payload)
            .finish()
    }
}

impl<T: Clone> Clone for VerifiedEvent<T> {
    fn clone(&self) -> Self {
        Self {
            delivery: self.delivery.clone(),
            envelope: self.envelope.clone(),
            payload: self.payload.clone(),
        }
    }
}

impl<S, T> FromRequestParts<S> for VerifiedEvent<T>
where
    EventConfig: FromRef<S>,
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = EventRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let delivery = parts
            .extensions
            .get::<VerifiedDelivery>()
            .cloned()
            .ok_or(EventRejection::MissingLayer)?;
        let config = EventConfig::from_ref(state);
        // The span puts the delivery id on what is logged about the event.
        let span = tracing::debug_span!(
            target: "hookverify",
            "event",
            delivery_id = delivery.delivery_id()
        );
        span.in_scope(|| Self::take(&config, delivery))
    }
}

impl<T: DeserializeOwned> VerifiedEvent<T> {
    fn take(config: &EventConfig, delivery: VerifiedDelivery) -> Result<Self, EventRejection> {
        let envelope = match config.receive(delivery.body()) {
            Ok(Received::Handle(envelope)) => envelope,
            Ok(Received::Acknowledge { envelope, reason }) => {
                return Err(EventRejection::Acknowledged {
                    name: envelope.name().clone(),
                    reason,
                });
            }
            Err(error) => return Err(EventRejection::Event(error)),
        };
        // `receive` logged its own refusals; the payload's type is this extractor's.
        let payload = envelope.payload_as::<T>().map_err(|error| {
            tracing::warn!(
                target: "hookverify",
                kind = error.kind().as_str(),
                event = envelope.name().as_str(),
                event_id = envelope.id(),
                "event refused: {error}"
            );
            EventRejection::Event(error)
        })?;
        Ok(Self {
            delivery,
            envelope,
            payload,
        })
    }
}

/// Why [`VerifiedEvent`] did not hand the request to the handler, and the response it answers
/// with: a short `text/plain` body naming the kind only, the detail kept here for logs.
///
/// Not every case is a failure: [`Acknowledged`](Self::Acknowledged) answers 200, so that the
/// provider takes an event the receiver does not handle as delivered.
#[derive(Debug)]
#[non_exhaustive]
pub enum EventRejection {
    /// The route is not behind [`VerifyLayer`](super::VerifyLayer): 500
    /// `verify_layer_missing`, never an unverified pass.
    MissingLayer,
    /// The filter does not hand this event to the handler (or it is `webhook.test`): 200
    /// `acknowledged`.
    Acknowledged {
        /// The event's name.
        name: EventName,
        /// Why it is not handled.
        reason: Acknowledged,
    },
    /// The body is not an event the receiver can take: the error's
    /// [status](crate::events::EventErrorKind::status) (400 `malformed_event`, 422
    /// `payload_mismatch`, 422 `unsupported_api_version`).
    Event(EventError),
}

impl EventRejection {
    /// The status this rejection answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingLayer => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Acknowledged { .. } => StatusCode::OK,
            Self::Event(error) => error.kind().status(),
        }
    }

    /// The response body: `verify_layer_missing`, `acknowledged`, or the event error's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MissingLayer => "verify_layer_missing",
            Self::Acknowledged { .. } => "acknowledged",
            Self::Event(error) => error.kind().as_str(),
        }
    }
}

impl fmt::Display for EventRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingLayer => f.write_str("the route is not behind VerifyLayer"),
            Self::Acknowledged { name, reason } => {
                write!(f, "event {name} acknowledged without handling ({reason})")
            }
            Self::Event(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for EventRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Event(error) => Some(error),
            _ => None,
        }
    }
}

impl IntoResponse for EventRejection {
    fn into_response(self) -> Response {
        plain(self.status(), self.kind())
    }
}
