//! Which events a receiver handles, and what happens to the others.

use std::collections::HashSet;
use std::fmt;

use super::name::EventName;

/// The event names a receiver handles. Every other event is to be acknowledged with a 2xx and
/// logged, not handled: a non-2xx would make the provider retry an event the receiver will
/// never want, and mark the endpoint failing for it.
///
/// By default every name is handled except `webhook.test`, which the provider sends only from
/// its test endpoint (no subscription asks for it) and which is acknowledged, so that the
/// provider's "send test event" button succeeds without running the handler.
///
/// ```
/// use hookverify::events::{Acknowledged, EventFilter, EventName, FilterDecision};
///
/// let filter = EventFilter::only([EventName::ThreadCompleted, EventName::ThreadFailed]);
/// assert_eq!(filter.decide(&EventName::ThreadFailed), FilterDecision::Handle);
/// assert_eq!(
///     filter.decide(&EventName::AgentCreated),
///     FilterDecision::Acknowledge { reason: Acknowledged::NotHandled },
/// );
/// assert_eq!(
///     filter.decide(&EventName::WebhookTest),
///     FilterDecision::Acknowledge { reason: Acknowledged::TestEvent },
/// );
///
/// // Names of another provider, as plain strings.
/// let filter = EventFilter::only(["search_completed", "flow_run_failed"]);
/// assert!(filter.handles(&"flow_run_failed".into()));
///
/// // Everything, `webhook.test` included.
/// let everything = EventFilter::all().handle_test_events(true);
/// assert!(everything.handles(&EventName::WebhookTest));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter {
    /// `None`: every name.
    names: Option<HashSet<EventName>>,
    test_events: bool,
}

impl Default for EventFilter {
    fn default() -> Self {
        Self::all()
    }
}

impl EventFilter {
    /// Handles every event, except `webhook.test` (acknowledged; see
    /// [`handle_test_events`](Self::handle_test_events)).
    pub fn all() -> Self {
        Self {
            names: None,
            test_events: false,
        }
    }

    /// Handles only the events named (known or not); acknowledges the others. Naming
    /// `webhook.test` here handles it too, as [`handle_test_events`](Self::handle_test_events)
    /// would.
    pub fn only<N: Into<EventName>>(names: impl IntoIterator<Item = N>) -> Self {
        let names: HashSet<EventName> = names.into_iter().map(Into::into).collect();
        let test_events = names.contains(&EventName::WebhookTest);
        Self {
            names: Some(names),
            test_events,
        }
    }

    /// Whether `webhook.test` is handled (`true`) or acknowledged without the handler (`false`,
    /// the default).
    #[must_use]
    pub fn handle_test_events(mut self, handle: bool) -> Self {
        self.test_events = handle;
        self
    }

    /// What to do with an event named `name`.
    pub fn decide(&self, name: &EventName) -> FilterDecision {
        if *name == EventName::WebhookTest {
            return if self.test_events {
                FilterDecision::Handle
            } else {
                FilterDecision::Acknowledge {
                    reason: Acknowledged::TestEvent,
                }
            };
        }
        match &self.names {
            Some(names) if !names.contains(name) => FilterDecision::Acknowledge {
                reason: Acknowledged::NotHandled,
            },
            _ => FilterDecision::Handle,
        }
    }

    /// Whether an event named `name` is handled.
    pub fn handles(&self, name: &EventName) -> bool {
        self.decide(name) == FilterDecision::Handle
    }
}

/// What [`EventFilter::decide`] says about an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FilterDecision {
    /// Run the handler.
    Handle,
    /// Answer with a 2xx without running the handler, and log why.
    Acknowledge {
        /// Why the event is not handled.
        reason: Acknowledged,
    },
}

/// Why an event is acknowledged without being handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Acknowledged {
    /// `not_handled`: the filter does not list the event's name.
    NotHandled,
    /// `test_event`: `webhook.test`, from the provider's test endpoint.
    TestEvent,
}

impl Acknowledged {
    /// The stable name: `not_handled` or `test_event`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotHandled => "not_handled",
            Self::TestEvent => "test_event",
        }
    }
}

impl fmt::Display for Acknowledged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
