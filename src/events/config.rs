//! The envelope format, the filter and the version policy together, applied to a body.

use std::sync::Arc;

use super::envelope::{Envelope, EnvelopeFormat};
use super::error::EventError;
use super::filter::{Acknowledged, EventFilter, FilterDecision};
use super::version::{ApiVersionPolicy, VersionDecision};

/// How a receiver takes events: where the envelope's fields are ([`EnvelopeFormat`]), which
/// versions it accepts ([`ApiVersionPolicy`]) and which events it handles ([`EventFilter`]).
///
/// Cheap to clone (the settings are shared), so it can sit in an Axum router's state, where
/// [`VerifiedEvent`](../axum/struct.VerifiedEvent.html) finds it.
///
/// ```
/// use hookverify::events::{ApiVersionPolicy, EventConfig, EventFilter, EventName, Received};
///
/// let config = EventConfig::new()
///     .filter(EventFilter::only([EventName::TurnCompleted]))
///     .api_versions(ApiVersionPolicy::accept(["2026-01-01"]));
///
/// let body = br#"{"type":"turn.completed","api_version":"2026-01-01","data":{}}"#;
/// assert!(matches!(config.receive(body)?, Received::Handle(_)));
///
/// let body = br#"{"type":"agent.created","api_version":"2026-01-01","data":{}}"#;
/// assert!(matches!(config.receive(body)?, Received::Acknowledge { .. }));
///
/// let body = br#"{"type":"turn.completed","api_version":"2024-01-01","data":{}}"#;
/// let error = config.receive(body).expect_err("a version not accepted");
/// assert_eq!(error.kind().as_str(), "unsupported_api_version");
/// assert_eq!(error.kind().status().as_u16(), 422);
/// # Ok::<(), hookverify::events::EventError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct EventConfig {
    settings: Arc<Settings>,
}

#[derive(Debug, Clone, Default)]
struct Settings {
    format: EnvelopeFormat,
    filter: EventFilter,
    versions: ApiVersionPolicy,
}

impl EventConfig {
    /// The default provider's format, every event handled but `webhook.test`, any version
    /// accepted.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where the envelope's fields are.
    #[must_use]
    pub fn format(mut self, format: EnvelopeFormat) -> Self {
        Arc::make_mut(&mut self.settings).format = format;
        self
    }

    /// Which events are handled; the others are acknowledged.
    #[must_use]
    pub fn filter(mut self, filter: EventFilter) -> Self {
        Arc::make_mut(&mut self.settings).filter = filter;
        self
    }

    /// Which envelope versions are accepted.
    #[must_use]
    pub fn api_versions(mut self, policy: ApiVersionPolicy) -> Self {
        Arc::make_mut(&mut self.settings).versions = policy;
        self
    }

    /// The envelope format.
    pub fn envelope_format(&self) -> &EnvelopeFormat {
        &self.settings.format
    }

    /// The event filter.
    pub fn event_filter(&self) -> &EventFilter {
        &self.settings.filter
    }

    /// The version policy.
    pub fn api_version_policy(&self) -> &ApiVersionPolicy {
        &self.settings.versions
    }

    /// Takes a verified body: parses its envelope, checks its version, then asks the filter.
    ///
    /// The version comes before the filter: an envelope of a version the receiver was not
    /// written for is refused whatever its name (the name itself may sit elsewhere in that
    /// version), so a version change shows on the provider's dashboard at the first delivery.
    ///
    /// Logs (target `hookverify`) every error it returns and an unexpected version at `warn`,
    /// an acknowledged event at `info` with its name, id and why. Call it only on a body whose
    /// signature was verified.
    pub fn receive(&self, body: &[u8]) -> Result<Received, EventError> {
        let received = self.take(body);
        if let Err(error) = &received {
            tracing::warn!(
                target: "hookverify",
                kind = error.kind().as_str(),
                "event refused: {error}"
            );
        }
        received
    }

    fn take(&self, body: &[u8]) -> Result<Received, EventError> {
        let settings = &*self.settings;
        let envelope = Envelope::parse_with(body, &settings.format)?;
        let version = envelope.api_version();
        if settings.versions.check(version)? == VersionDecision::Warn {
            tracing::warn!(
                target: "hookverify",
                event = envelope.name().as_str(),
                event_id = envelope.id(),
                api_version = version,
                "event accepted with an api_version outside the expected list"
            );
        }
        match settings.filter.decide(envelope.name()) {
            FilterDecision::Handle => Ok(Received::Handle(envelope)),
            FilterDecision::Acknowledge { reason } => {
                tracing::info!(
                    target: "hookverify",
                    event = envelope.name().as_str(),
                    event_id = envelope.id(),
                    reason = reason.as_str(),
                    "event acknowledged without handling"
                );
                Ok(Received::Acknowledge { envelope, reason })
            }
        }
    }
}

/// What [`EventConfig::receive`] makes of a body.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Received {
    /// An event to handle.
    Handle(Envelope),
    /// An event to acknowledge with a 2xx without handling it (already logged).
    Acknowledge {
        /// The event.
        envelope: Envelope,
        /// Why it is not handled.
        reason: Acknowledged,
    },
}
