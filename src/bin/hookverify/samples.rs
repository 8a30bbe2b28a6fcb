//! Sample bodies for `send --event`: the default provider's 20 event names, each with a
//! plausible payload in the provider's envelope.
//!
//! ```json
//! {"id":"evt_…","type":"thread.completed","created_at":"2026-11-24T22:16:48Z",
//!  "api_version":"2026-11-01","data":{…}}
//! ```
//!
//! Every call draws fresh object ids, so two samples never have the same bytes (a receiver
//! that dedupes on the signed bytes sees two deliveries, not a replay).

use hookverify::events::EventName;
use hookverify::time::format_description::well_known::Rfc3339;
use hookverify::time::{Duration, OffsetDateTime};
use serde_json::{Value, json};

use crate::secrets;

/// `--event`: one of the default provider's names ([`EventName::KNOWN`]).
pub(crate) fn parse_event(name: &str) -> Result<String, String> {
    if name
        .parse::<EventName>()
        .is_ok_and(|event| event.is_known())
    {
        return Ok(name.to_owned());
    }
    let known: Vec<&str> = EventName::KNOWN.iter().map(EventName::as_str).collect();
    Err(format!(
        "no sample for {name:?}; the provider's events are {}",
        known.join(", ")
    ))
}

/// The provider's API version the samples are written for.
const API_VERSION: &str = "2026-11-01";

/// A fresh sample body for `event` (one of [`EventName::KNOWN`]), created at `now`. Fails only
/// if the system has no random bytes to give, or for a name not among them.
pub(crate) fn sample(event: &str, now: OffsetDateTime) -> Result<Vec<u8>, String> {
    let ids = Ids::new()?;
    let data = data(event, &ids, now).ok_or_else(|| format!("no sample for event {event:?}"))?;
    let envelope = json!({
        "id": ids.evt,
        "type": event,
        "created_at": rfc3339(now),
        "api_version": API_VERSION,
        "data": data,
    });
    Ok(envelope.to_string().into_bytes())
}

/// A sample of `event` exactly `len` bytes long: the envelope with a `padding` string in
/// `data` (or, for a length under the envelope's own, `len` bytes of `x`).
pub(crate) fn padded(event: &str, now: OffsetDateTime, len: usize) -> Result<Vec<u8>, String> {
    let mut value: Value = serde_json::from_slice(&sample(event, now)?)
        .map_err(|error| format!("sample {event}: {error}"))?;
    value["data"]["padding"] = Value::from("");
    let base = value.to_string().len();
    if len < base {
        return Ok(vec![b'x'; len]);
    }
    value["data"]["padding"] = Value::from("x".repeat(len - base));
    Ok(value.to_string().into_bytes())
}

/// The object ids one sample refers to, drawn together so that they agree across its fields.
struct Ids {
    evt: String,
    agent: String,
    thread: String,
    turn: String,
    message: String,
    approval: String,
    schedule: String,
    connection: String,
    user: String,
}

impl Ids {
    fn new() -> Result<Self, String> {
        // One draw, cut into pieces: 9 ids of 12 hex digits each.
        let hex = secrets::random_hex(9 * 6)?;
        let part = |index: usize| &hex[index * 12..(index + 1) * 12];
        Ok(Self {
            evt: format!("evt_{}", part(0)),
            agent: format!("agt_{}", part(1)),
            thread: format!("thr_{}", part(2)),
            turn: format!("turn_{}", part(3)),
            message: format!("msg_{}", part(4)),
            approval: format!("apr_{}", part(5)),
            schedule: format!("sch_{}", part(6)),
            connection: format!("conn_{}", part(7)),
            user: format!("usr_{}", part(8)),
        })
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    // Whole seconds, as the provider writes them.
    let at = at.replace_nanosecond(0).unwrap_or(at);
    at.format(&Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// The `data` object of each event; `None` for a name that is not one.
fn data(event: &str, ids: &Ids, now: OffsetDateTime) -> Option<Value> {
    let earlier = |seconds: i64| rfc3339(now - Duration::seconds(seconds));
    let later = |seconds: i64| rfc3339(now + Duration::seconds(seconds));
    let agent = || {
        json!({
            "id": ids.agent,
            "name": "Support triage",
            "model": "agent-large-2026-10",
            "instructions": "Label incoming tickets and draft a first reply.",
            "tools": ["search_tickets", "send_email"],
            "created_at": earlier(86_400),
        })
    };
    let usage = json!({"input_tokens": 18_432, "output_tokens": 1_207});
    Some(match event {
        "agent.created" => json!({ "agent": agent() }),
        "agent.updated" => json!({
            "agent": agent(),
            "changed_fields": ["instructions", "tools"],
            "updated_by": ids.user,
        }),
        "agent.deleted" => json!({ "agent_id": ids.agent, "deleted_by": ids.user }),
        "thread.created" => json!({
            "thread": {
                "id": ids.thread,
                "agent_id": ids.agent,
                "status": "queued",
                "metadata": {"ticket": "SUP-4821"},
                "created_at": rfc3339(now),
            }
        }),
        "thread.status.changed" => json!({
            "thread_id": ids.thread,
            "agent_id": ids.agent,
            "previous_status": "queued",
            "status": "running",
        }),
        "thread.completed" => json!({
            "thread_id": ids.thread,
            "agent_id": ids.agent,
            "status": "completed",
            "turns": 4,
            "duration_ms": 41_870,
            "usage": usage,
        }),
        "thread.failed" => json!({
            "thread_id": ids.thread,
            "agent_id": ids.agent,
            "status": "failed",
            "error": {"code": "tool_timeout", "message": "search_tickets did not answer within 60 s"},
        }),
        "turn.created" => json!({
            "turn": {
                "id": ids.turn,
                "thread_id": ids.thread,
                "index": 3,
                "input": {"role": "user", "text": "Can you check the refund status?"},
                "created_at": rfc3339(now),
            }
        }),
        "turn.completed" => json!({
            "turn_id": ids.turn,
            "thread_id": ids.thread,
            "index": 3,
            "duration_ms": 9_310,
            "usage": usage,
        }),
        "turn.failed" => json!({
            "turn_id": ids.turn,
            "thread_id": ids.thread,
            "index": 3,
            "error": {"code": "rate_limited", "message": "model capacity exceeded, retry later"},
        }),
        "message.created" => json!({
            "message": {
                "id": ids.message,
                "thread_id": ids.thread,
                "turn_id": ids.turn,
                "role": "assistant",
                "content": [{
                    "type": "text",
                    "text": "The refund was issued on Monday; it should reach the card within 5 business days.",
                }],
                "created_at": rfc3339(now),
            }
        }),
        "approval.requested" => json!({
            "approval": {
                "id": ids.approval,
                "thread_id": ids.thread,
                "agent_id": ids.agent,
                "tool": "send_email",
                "arguments": {"to": "customer@example.com", "subject": "Your refund"},
                "expires_at": later(3_600),
            }
        }),
        "approval.resolved" => json!({
            "approval_id": ids.approval,
            "thread_id": ids.thread,
            "decision": "denied",
            "resolved_by": ids.user,
            "comment": "Wrong customer address",
        }),
        "approval.granted" => json!({
            "approval_id": ids.approval,
            "thread_id": ids.thread,
            "granted_by": ids.user,
            "scope": "once",
        }),
        "schedule.created" => json!({
            "schedule": {
                "id": ids.schedule,
                "agent_id": ids.agent,
                "cron": "0 9 * * 1-5",
                "timezone": "Europe/Paris",
                "next_run_at": later(43_200),
            }
        }),
        "schedule.deleted" => json!({
            "schedule_id": ids.schedule,
            "agent_id": ids.agent,
            "deleted_by": ids.user,
        }),
        "schedule.triggered" => json!({
            "schedule_id": ids.schedule,
            "agent_id": ids.agent,
            "thread_id": ids.thread,
            "scheduled_for": rfc3339(now),
        }),
        "connection.attached" => json!({
            "connection": {
                "id": ids.connection,
                "agent_id": ids.agent,
                "provider": "github",
                "scopes": ["repo:read", "issues:write"],
                "attached_by": ids.user,
            }
        }),
        "connection.detached" => json!({
            "connection_id": ids.connection,
            "agent_id": ids.agent,
            "provider": "github",
            "reason": "revoked",
        }),
        "webhook.test" => json!({
            "message": "A test delivery: if you can read this, your endpoint received it.",
        }),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_has_a_sample_in_the_envelope() -> Result<(), String> {
        let now = OffsetDateTime::from_unix_timestamp(1_764_000_000).map_err(|e| e.to_string())?;
        for event in EventName::KNOWN.iter().map(EventName::as_str) {
            let body = sample(event, now)?;
            let value: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            assert_eq!(value["type"], event);
            assert_eq!(value["api_version"], API_VERSION);
            assert_eq!(value["created_at"], "2025-11-24T16:00:00Z");
            assert!(
                value["id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with("evt_"))
            );
            assert!(
                value["data"].as_object().is_some_and(|d| !d.is_empty()),
                "{event}"
            );
        }
        assert!(sample("thread.done", now).is_err());
        Ok(())
    }

    #[test]
    fn padded_samples_have_the_length_asked() -> Result<(), String> {
        let now = OffsetDateTime::from_unix_timestamp(1_764_000_000).map_err(|e| e.to_string())?;
        for len in [0, 10, 400, 1024 * 1024 + 1] {
            assert_eq!(padded("thread.completed", now, len)?.len(), len);
        }
        let big = padded("thread.completed", now, 4096)?;
        let value: Value = serde_json::from_slice(&big).map_err(|e| e.to_string())?;
        assert_eq!(value["type"], "thread.completed");
        Ok(())
    }

    #[test]
    fn samples_differ() -> Result<(), String> {
        let now = OffsetDateTime::from_unix_timestamp(1_764_000_000).map_err(|e| e.to_string())?;
        assert_ne!(sample("webhook.test", now)?, sample("webhook.test", now)?);
        Ok(())
    }
}
