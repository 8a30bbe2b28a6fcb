//! Event names: the default provider's, and any other kept as it came.

use std::borrow::Borrow;
use std::convert::Infallible;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::{Serialize, Serializer};

/// The name of an event: one of the default provider's twenty, or [`Unknown`](Self::Unknown)
/// with any other name exactly as it came.
///
/// Parsing never fails: other providers send other names (`search_completed`,
/// `flow_run_failed`, `wallet.balance_low`, …), and a name this crate does not know is data,
/// not an error. Serde reads and writes it as a plain string.
///
/// Equality and hashing go by the name's text, so `Unknown("thread.completed".into())` equals
/// [`ThreadCompleted`](Self::ThreadCompleted): code that builds names by hand, or that was
/// written before a later version of this crate learnt a name, compares as expected. Build
/// names with [`parse`](str::parse) or [`From`] rather than `Unknown` directly.
///
/// Non-exhaustive: the provider may add events, and a later version of this crate names them
/// (until then they arrive as `Unknown`). A `match` needs a wildcard arm; compare with
/// [`as_str`](Self::as_str) to stay independent of which names are known.
///
/// ```
/// use hookverify::events::EventName;
///
/// let name: EventName = "thread.completed".parse().unwrap_or_else(|never| match never {});
/// assert_eq!(name, EventName::ThreadCompleted);
/// assert_eq!(name.to_string(), "thread.completed");
///
/// let other = EventName::from("wallet.balance_low");
/// assert_eq!(other, EventName::Unknown("wallet.balance_low".into()));
/// assert!(!other.is_known());
/// assert_eq!(other.as_str(), "wallet.balance_low");
///
/// let json = serde_json::to_string(&EventName::TurnFailed)?;
/// assert_eq!(json, r#""turn.failed""#);
/// assert_eq!(serde_json::from_str::<EventName>(&json)?, EventName::TurnFailed);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum EventName {
    /// `agent.created`
    AgentCreated,
    /// `agent.updated`
    AgentUpdated,
    /// `agent.deleted`
    AgentDeleted,
    /// `thread.created`
    ThreadCreated,
    /// `thread.status.changed`
    ThreadStatusChanged,
    /// `thread.completed`
    ThreadCompleted,
    /// `thread.failed`
    ThreadFailed,
    /// `turn.created`
    TurnCreated,
    /// `turn.completed`
    TurnCompleted,
    /// `turn.failed`
    TurnFailed,
    /// `message.created`
    MessageCreated,
    /// `approval.requested`
    ApprovalRequested,
    /// `approval.resolved`
    ApprovalResolved,
    /// `approval.granted`
    ApprovalGranted,
    /// `schedule.created`
    ScheduleCreated,
    /// `schedule.deleted`
    ScheduleDeleted,
    /// `schedule.triggered`
    ScheduleTriggered,
    /// `connection.attached`
    ConnectionAttached,
    /// `connection.detached`
    ConnectionDetached,
    /// `webhook.test`: sent only by the provider's test endpoint, never subscribable, so no
    /// subscription asks for it. [`EventFilter`](super::EventFilter) acknowledges it without
    /// running the handler unless told otherwise.
    WebhookTest,
    /// Any other name, exactly as it came (never an error).
    Unknown(String),
}

impl EventName {
    /// The default provider's twenty names, in the order its documentation lists them.
    pub const KNOWN: [EventName; 20] = [
        Self::AgentCreated,
        Self::AgentUpdated,
        Self::AgentDeleted,
        Self::ThreadCreated,
        Self::ThreadStatusChanged,
        Self::ThreadCompleted,
        Self::ThreadFailed,
        Self::TurnCreated,
        Self::TurnCompleted,
        Self::TurnFailed,
        Self::MessageCreated,
        Self::ApprovalRequested,
        Self::ApprovalResolved,
        Self::ApprovalGranted,
        Self::ScheduleCreated,
        Self::ScheduleDeleted,
        Self::ScheduleTriggered,
        Self::ConnectionAttached,
        Self::ConnectionDetached,
        Self::WebhookTest,
    ];

    /// The name as the provider sends it: `thread.completed`, or an unknown name as it came.
    pub fn as_str(&self) -> &str {
        match self {
            Self::AgentCreated => "agent.created",
            Self::AgentUpdated => "agent.updated",
            Self::AgentDeleted => "agent.deleted",
            Self::ThreadCreated => "thread.created",
            Self::ThreadStatusChanged => "thread.status.changed",
            Self::ThreadCompleted => "thread.completed",
            Self::ThreadFailed => "thread.failed",
            Self::TurnCreated => "turn.created",
            Self::TurnCompleted => "turn.completed",
            Self::TurnFailed => "turn.failed",
            Self::MessageCreated => "message.created",
            Self::ApprovalRequested => "approval.requested",
            Self::ApprovalResolved => "approval.resolved",
            Self::ApprovalGranted => "approval.granted",
            Self::ScheduleCreated => "schedule.created",
            Self::ScheduleDeleted => "schedule.deleted",
            Self::ScheduleTriggered => "schedule.triggered",
            Self::ConnectionAttached => "connection.attached",
            Self::ConnectionDetached => "connection.detached",
            Self::WebhookTest => "webhook.test",
            Self::Unknown(name) => name,
        }
    }

    /// Whether the name is one of [`KNOWN`](Self::KNOWN) (also for an `Unknown` built by hand
    /// around a known name).
    pub fn is_known(&self) -> bool {
        known(self.as_str()).is_some()
    }
}

/// The known variant named `name`, if any.
fn known(name: &str) -> Option<EventName> {
    EventName::KNOWN
        .iter()
        .find(|candidate| candidate.as_str() == name)
        .cloned()
}

impl From<&str> for EventName {
    fn from(name: &str) -> Self {
        known(name).unwrap_or_else(|| Self::Unknown(name.to_owned()))
    }
}

impl From<String> for EventName {
    /// Keeps the string's allocation for an unknown name.
    fn from(name: String) -> Self {
        known(&name).unwrap_or(Self::Unknown(name))
    }
}

impl FromStr for EventName {
    type Err = Infallible;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Ok(Self::from(name))
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for EventName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

// Equality and hashing by the text, so that `Unknown` around a known name is that name (see the
// type's docs); `Borrow<str>` then lets a set of names be searched with a `&str`.
impl PartialEq for EventName {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for EventName {}

impl Hash for EventName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl Borrow<str> for EventName {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for EventName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for EventName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for EventName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_string(NameVisitor)
    }
}

struct NameVisitor;

impl Visitor<'_> for NameVisitor {
    type Value = EventName;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event name (a string)")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
        Ok(EventName::from(name))
    }

    fn visit_string<E: de::Error>(self, name: String) -> Result<Self::Value, E> {
        Ok(EventName::from(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_are_distinct_and_none_is_unknown() {
        let mut names: Vec<&str> = EventName::KNOWN.iter().map(EventName::as_str).collect();
        assert!(EventName::KNOWN.iter().all(EventName::is_known));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EventName::KNOWN.len());
    }

    #[test]
    fn an_unknown_built_around_a_known_name_is_that_name() {
        let by_hand = EventName::Unknown("turn.created".into());
        assert_eq!(by_hand, EventName::TurnCreated);
        assert!(by_hand.is_known());
        let set: std::collections::HashSet<EventName> = [EventName::TurnCreated].into();
        assert!(set.contains(&by_hand));
        assert!(set.contains("turn.created"));
    }
}
