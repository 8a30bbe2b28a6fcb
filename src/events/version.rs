//! What a receiver does with an envelope version it was not written for.

use super::error::EventError;

/// What a receiver does with the envelope's `api_version`: a plain value, checked after the
/// signature (a version never makes a forgery acceptable, nor a genuine delivery a forgery).
///
/// Versions are compared as exact strings.
///
/// | policy | listed version | other version | no version |
/// | --- | --- | --- | --- |
/// | [`AcceptAny`](Self::AcceptAny) (default) | accepted | accepted | accepted |
/// | [`Accept`](Self::Accept) | accepted | rejected | rejected |
/// | [`Warn`](Self::Warn) | accepted | accepted, logged at `warn` | accepted, logged at `warn` |
///
/// `Accept` is the rejecting policy: a version outside its list is answered `422
/// unsupported_api_version` (see [`EventErrorKind::UnsupportedApiVersion`] for why 422), so the
/// provider's dashboard shows the endpoint failing instead of the receiver misreading an
/// envelope it was not written for. List two versions during a cutover, while an old and a
/// new endpoint both deliver. `Warn` suits the weeks before such a cutover: nothing is refused,
/// and the log says which deliveries would be.
///
/// ```
/// use hookverify::events::{ApiVersionPolicy, VersionDecision};
///
/// let policy = ApiVersionPolicy::accept(["2025-06-01", "2026-01-01"]);
/// assert_eq!(policy.decide(Some("2026-01-01")), VersionDecision::Accept);
/// assert_eq!(policy.decide(Some("2024-01-01")), VersionDecision::Reject);
/// assert_eq!(policy.decide(None), VersionDecision::Reject);
///
/// let policy = ApiVersionPolicy::warn(["2026-01-01"]);
/// assert_eq!(policy.decide(Some("2024-01-01")), VersionDecision::Warn);
/// assert_eq!(ApiVersionPolicy::default().decide(Some("anything")), VersionDecision::Accept);
/// ```
///
/// [`EventErrorKind::UnsupportedApiVersion`]: super::EventErrorKind::UnsupportedApiVersion
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiVersionPolicy {
    /// Every version, and none, is accepted.
    #[default]
    AcceptAny,
    /// Only the listed versions are accepted; any other, or none, is rejected.
    Accept(Vec<String>),
    /// Every version is accepted; one not listed, or none, is logged at `warn`.
    Warn(Vec<String>),
}

impl ApiVersionPolicy {
    /// [`Accept`](Self::Accept) with these versions.
    pub fn accept<V: Into<String>>(versions: impl IntoIterator<Item = V>) -> Self {
        Self::Accept(versions.into_iter().map(Into::into).collect())
    }

    /// [`Warn`](Self::Warn) with these versions.
    pub fn warn<V: Into<String>>(versions: impl IntoIterator<Item = V>) -> Self {
        Self::Warn(versions.into_iter().map(Into::into).collect())
    }

    /// What to do with an envelope carrying `version` (`None`: it carries none).
    pub fn decide(&self, version: Option<&str>) -> VersionDecision {
        let listed = |versions: &[String]| {
            version.is_some_and(|version| versions.iter().any(|listed| listed == version))
        };
        match self {
            Self::AcceptAny => VersionDecision::Accept,
            Self::Accept(versions) if listed(versions) => VersionDecision::Accept,
            Self::Accept(_) => VersionDecision::Reject,
            Self::Warn(versions) if listed(versions) => VersionDecision::Accept,
            Self::Warn(_) => VersionDecision::Warn,
        }
    }

    /// `Ok` when `version` is accepted (with or without a warning),
    /// [`EventError::UnsupportedApiVersion`] when it is rejected.
    pub fn check(&self, version: Option<&str>) -> Result<VersionDecision, EventError> {
        match self.decide(version) {
            VersionDecision::Reject => Err(EventError::UnsupportedApiVersion {
                version: version.map(str::to_owned),
            }),
            accepted => Ok(accepted),
        }
    }
}

/// What [`ApiVersionPolicy::decide`] says about a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VersionDecision {
    /// Take the event.
    Accept,
    /// Take the event, and log at `warn` that its version was not expected.
    Warn,
    /// Refuse the event: `422 unsupported_api_version`.
    Reject,
}
