//! Typed events: the names, the envelope, the filter and the version policy, then the
//! `VerifiedEvent` extractor behind the real layer on 127.0.0.1, signed requests sent with a
//! real HTTP client.

#[path = "common/post.rs"]
mod post;

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use hookverify::axum::{VerifiedEvent, VerifyLayer};
use hookverify::events::{
    Acknowledged, ApiVersionPolicy, Envelope, EnvelopeFormat, EventConfig, EventError,
    EventErrorKind, EventFilter, EventName, FilterDecision, Received, VersionDecision,
};
use hookverify::{ManualClock, MemoryStore, Receiver, Signer, Verifier};
use http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use tower::ServiceExt;

/// The default provider's names, written out here rather than taken from the crate, so that a
/// typo in the crate fails.
const PROVIDER_NAMES: [&str; 20] = [
    "agent.created",
    "agent.updated",
    "agent.deleted",
    "thread.created",
    "thread.status.changed",
    "thread.completed",
    "thread.failed",
    "turn.created",
    "turn.completed",
    "turn.failed",
    "message.created",
    "approval.requested",
    "approval.resolved",
    "approval.granted",
    "schedule.created",
    "schedule.deleted",
    "schedule.triggered",
    "connection.attached",
    "connection.detached",
    "webhook.test",
];

// ---- names ----

#[test]
fn every_provider_name_round_trips_through_text_and_serde() {
    let known: Vec<&str> = EventName::KNOWN.iter().map(EventName::as_str).collect();
    assert_eq!(known, PROVIDER_NAMES);
    for text in PROVIDER_NAMES {
        let name: EventName = text.parse().unwrap_or_else(|never| match never {});
        assert!(name.is_known(), "{text}");
        assert!(
            !matches!(name, EventName::Unknown(_)),
            "{text} parsed as Unknown"
        );
        assert_eq!(name.as_str(), text);
        assert_eq!(name.to_string(), text);
        assert_eq!(EventName::from(text.to_owned()), name);

        let json = serde_json::to_string(&name).expect("serialize");
        assert_eq!(json, format!("\"{text}\""));
        let back: EventName = serde_json::from_str(&json).expect("deserialize");
        assert!(!matches!(back, EventName::Unknown(_)), "{text}");
        assert_eq!(back, name);
    }
    assert_eq!(
        "thread.status.changed".parse::<EventName>(),
        Ok(EventName::ThreadStatusChanged)
    );
    assert_eq!(EventName::from("webhook.test"), EventName::WebhookTest);
}

#[test]
fn an_unknown_name_is_kept_exactly_as_it_came() {
    for text in [
        "search_completed",
        "flow_run_failed",
        "wallet.balance_low",
        "Thread.Completed",
        "thread.completed ",
        "",
        "caf\u{e9}.ouvert",
    ] {
        let name = EventName::from(text);
        assert_eq!(name, EventName::Unknown(text.to_owned()), "{text:?}");
        assert!(!name.is_known());
        assert_eq!(name.as_str(), text);
        let json = serde_json::to_string(&name).expect("serialize");
        let back: EventName = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, EventName::Unknown(text.to_owned()));
    }
    // Not a string: serde refuses it, rather than inventing a name.
    assert!(serde_json::from_str::<EventName>("42").is_err());
}

// ---- envelope ----

#[derive(Debug, Deserialize, PartialEq)]
struct ThreadCompleted {
    thread_id: String,
    turns: u32,
    tokens: u64,
}

#[test]
fn the_default_format_reads_every_field() {
    let body = br#"{
        "id": "evt_01",
        "type": "thread.completed",
        "created_at": "2025-11-24T17:00:00+01:00",
        "api_version": "2026-01-01",
        "data": {"thread_id": "th_7", "turns": 3, "tokens": 18446744073709551615},
        "extra": [1, 2, 3]
    }"#;
    let envelope = Envelope::parse(body).expect("envelope");
    assert_eq!(*envelope.name(), EventName::ThreadCompleted);
    assert_eq!(envelope.id(), Some("evt_01"));
    let created = envelope.created().expect("created");
    assert_eq!(created.raw(), "2025-11-24T17:00:00+01:00");
    assert_eq!(
        created.at().map(|at| at.unix_timestamp()),
        Some(1_764_000_000)
    );
    assert_eq!(envelope.api_version(), Some("2026-01-01"));
    assert_eq!(
        envelope.payload().map(|raw| raw.get()),
        Some(r#"{"thread_id": "th_7", "turns": 3, "tokens": 18446744073709551615}"#)
    );
    // Typed straight from the text: the largest u64 keeps every digit.
    assert_eq!(
        envelope.payload_as::<ThreadCompleted>().expect("typed"),
        ThreadCompleted {
            thread_id: "th_7".into(),
            turns: 3,
            tokens: u64::MAX,
        }
    );
}

#[test]
fn custom_pointers_find_fields_anywhere() {
    let format = EnvelopeFormat::default()
        .name("/meta/event~1name")
        .and_then(|f| f.id("/meta/ids/1"))
        .and_then(|f| f.created("/meta/at"))
        .and_then(|f| f.api_version("/meta/v"))
        .and_then(|f| f.payload("/body"))
        .expect("pointers");
    let body = br#"{
        "type": "decoy",
        "meta": {"event/name": "flow_run_failed", "ids": ["x", 12345], "at": 1764000000.5, "v": 2},
        "body": {"flow": "nightly"}
    }"#;
    let envelope = Envelope::parse_with(body, &format).expect("envelope");
    assert_eq!(
        *envelope.name(),
        EventName::Unknown("flow_run_failed".into())
    );
    // Numbers are kept as written.
    assert_eq!(envelope.id(), Some("12345"));
    assert_eq!(envelope.api_version(), Some("2"));
    let created = envelope.created().expect("created");
    assert_eq!(created.raw(), "1764000000.5");
    assert_eq!(
        created.at().map(|at| at.unix_timestamp_nanos()),
        Some(1_764_000_000_500_000_000)
    );
    assert_eq!(
        envelope.payload().map(|raw| raw.get()),
        Some(r#"{"flow": "nightly"}"#)
    );

    // The empty pointer is the whole body, for providers whose body is the payload.
    let whole = EnvelopeFormat::default().payload("").expect("pointer");
    let envelope = Envelope::parse_with(br#"{"type":"a","n":1}"#, &whole).expect("envelope");
    assert_eq!(
        envelope.payload().map(|raw| raw.get()),
        Some(r#"{"type":"a","n":1}"#)
    );

    for bad in ["type", "/a~2", "/~"] {
        let error = EnvelopeFormat::default().name(bad).expect_err(bad);
        assert_eq!((error.field(), error.pointer()), ("name", bad));
    }
}

#[test]
fn missing_or_null_optional_fields_are_none() {
    for body in [
        &br#"{"type":"turn.created"}"#[..],
        br#"{"type":"turn.created","id":null,"created_at":null,"api_version":null,"data":null}"#,
    ] {
        let envelope = Envelope::parse(body).expect("envelope");
        assert_eq!(*envelope.name(), EventName::TurnCreated);
        assert_eq!(envelope.id(), None);
        assert!(envelope.created().is_none());
        assert_eq!(envelope.api_version(), None);
        assert!(envelope.payload().is_none());
        // An absent payload types as null: `Option` says so, a struct says what is missing.
        assert_eq!(envelope.payload_as::<Option<ThreadCompleted>>(), Ok(None));
        let error = envelope
            .payload_as::<ThreadCompleted>()
            .expect_err("no payload");
        assert_eq!(
            error,
            EventError::MissingPayload {
                pointer: "/data".into()
            }
        );
        assert_eq!(error.kind(), EventErrorKind::PayloadMismatch);
    }
}

#[test]
fn a_missing_name_is_a_typed_error() {
    for body in [
        &br#"{"id":"evt_1","data":{}}"#[..],
        br#"{"type":null}"#,
        b"[]",
        b"\"thread.completed\"",
    ] {
        let error = Envelope::parse(body).expect_err("no name");
        assert_eq!(
            error,
            EventError::MissingName {
                pointer: "/type".into()
            }
        );
        assert_eq!(error.kind().as_str(), "malformed_event");
        assert_eq!(error.kind().status(), StatusCode::BAD_REQUEST);
        assert_eq!(error.to_string(), r#"no event name at "/type""#);
    }
    // A custom pointer is named in the error.
    let format = EnvelopeFormat::default().name("/event").expect("pointer");
    assert_eq!(
        Envelope::parse_with(br#"{"type":"agent.created"}"#, &format).expect_err("no name"),
        EventError::MissingName {
            pointer: "/event".into()
        }
    );
    // A name of another type is not "missing".
    assert!(matches!(
        Envelope::parse(br#"{"type":7}"#),
        Err(EventError::InvalidField { field: "name", .. })
    ));
    assert!(matches!(
        Envelope::parse(br#"{"type":"a","id":{"n":1}}"#),
        Err(EventError::InvalidField { field: "id", .. })
    ));
}

#[test]
fn a_payload_of_another_shape_is_a_payload_error() {
    let envelope =
        Envelope::parse(br#"{"type":"thread.completed","data":{"thread_id":5}}"#).expect("ok");
    let error = envelope
        .payload_as::<ThreadCompleted>()
        .expect_err("mismatch");
    assert!(matches!(error, EventError::Payload { .. }), "{error:?}");
    assert_eq!(error.kind().as_str(), "payload_mismatch");
    assert_eq!(error.kind().status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[test]
fn created_time_forms() {
    let at = |value: &str| {
        let body = format!(r#"{{"type":"a","created_at":{value}}}"#);
        let envelope = Envelope::parse(body.as_bytes()).expect("envelope");
        let created = envelope.created().expect("created").clone();
        (
            created.raw().to_owned(),
            created.at().map(|at| at.unix_timestamp()),
        )
    };
    let secs = Some(1_764_000_000);
    assert_eq!(at(r#""2025-11-24T16:00:00Z""#).1, secs);
    assert_eq!(at(r#""1764000000""#).1, secs);
    assert_eq!(at("1764000000").1, secs);
    assert_eq!(at("1.764e9").1, secs);
    assert_eq!(at("-1").1, Some(-1));
    // Kept as sent, not read as a time.
    assert_eq!(at(r#""yesterday""#), ("yesterday".into(), None));
    assert_eq!(at(r#""+1764000000""#).1, None);
    assert_eq!(at(r#""NaN""#).1, None);
    assert_eq!(at("1e300").1, None);
    assert_eq!(at("99999999999999999999").1, None);
    assert!(matches!(
        Envelope::parse(br#"{"type":"a","created_at":true}"#),
        Err(EventError::InvalidField {
            field: "created",
            ..
        })
    ));
}

#[test]
fn hostile_bodies_are_errors_never_panics() {
    let deep = "[".repeat(200_000);
    let deep_object = format!("{}1{}", r#"{"type":"a","data":"#, "]".repeat(10));
    let bodies: Vec<&[u8]> = vec![
        b"",
        b"   ",
        b"not json",
        b"{\"type\":\"a\"} trailing",
        b"\xff\xfe{}",
        b"{\"type\":\"\xc3\x28\"}",
        b"{\"type\":\"a\",",
        deep.as_bytes(),
        deep_object.as_bytes(),
    ];
    for body in bodies {
        let error = Envelope::parse(body).expect_err("not an envelope");
        assert_eq!(error.kind(), EventErrorKind::MalformedEvent, "{error}");
    }
    // Deep nesting inside an otherwise valid body is skipped, not recursed into.
    let nested = format!(
        r#"{{"skip":{}{},"type":"a"}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(
        Envelope::parse(nested.as_bytes())
            .expect("envelope")
            .name()
            .as_str(),
        "a"
    );
    // A byte order mark is tolerated.
    assert!(Envelope::parse(b"\xEF\xBB\xBF{\"type\":\"a\"}").is_ok());
}

proptest::proptest! {
    #[test]
    fn any_bytes_parse_without_panicking(body in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
        let _ = Envelope::parse(&body);
    }

    #[test]
    fn any_name_string_is_kept(name in ".*") {
        let body = serde_json::json!({"type": name, "data": {}}).to_string();
        let envelope = Envelope::parse(body.as_bytes()).expect("envelope");
        proptest::prop_assert_eq!(envelope.name().as_str(), name.as_str());
    }
}

// ---- filter and policy ----

#[test]
fn the_filter_handles_what_it_lists_and_acknowledges_the_rest() {
    let default = EventFilter::default();
    assert_eq!(
        default.decide(&EventName::AgentCreated),
        FilterDecision::Handle
    );
    assert_eq!(
        default.decide(&"search_completed".into()),
        FilterDecision::Handle
    );
    assert_eq!(
        default.decide(&EventName::WebhookTest),
        FilterDecision::Acknowledge {
            reason: Acknowledged::TestEvent
        }
    );
    assert!(
        default
            .clone()
            .handle_test_events(true)
            .handles(&EventName::WebhookTest)
    );

    let only = EventFilter::only(["turn.failed", "wallet.balance_low"]);
    assert!(only.handles(&EventName::TurnFailed));
    assert!(only.handles(&"wallet.balance_low".into()));
    assert_eq!(
        only.decide(&EventName::TurnCompleted),
        FilterDecision::Acknowledge {
            reason: Acknowledged::NotHandled
        }
    );
    assert!(!only.handles(&EventName::WebhookTest));
    assert!(EventFilter::only([EventName::WebhookTest]).handles(&EventName::WebhookTest));
}

#[test]
fn the_version_policy_decides_apart_from_anything_else() {
    let accept = ApiVersionPolicy::accept(["2025-06-01", "2026-01-01"]);
    assert_eq!(accept.decide(Some("2025-06-01")), VersionDecision::Accept);
    assert_eq!(accept.decide(Some("2026-01-01")), VersionDecision::Accept);
    assert_eq!(accept.decide(Some("2026-01-01 ")), VersionDecision::Reject);
    assert_eq!(accept.decide(None), VersionDecision::Reject);
    let error = accept.check(Some("2024-01-01")).expect_err("rejected");
    assert_eq!(
        error,
        EventError::UnsupportedApiVersion {
            version: Some("2024-01-01".into())
        }
    );
    assert_eq!(error.kind().as_str(), "unsupported_api_version");

    let warn = ApiVersionPolicy::warn(["2026-01-01"]);
    assert_eq!(warn.decide(Some("2026-01-01")), VersionDecision::Accept);
    assert_eq!(warn.decide(Some("2024-01-01")), VersionDecision::Warn);
    assert_eq!(warn.decide(None), VersionDecision::Warn);
    assert_eq!(warn.check(Some("2024-01-01")), Ok(VersionDecision::Warn));

    assert_eq!(ApiVersionPolicy::default(), ApiVersionPolicy::AcceptAny);
    assert_eq!(
        ApiVersionPolicy::AcceptAny.decide(None),
        VersionDecision::Accept
    );
}

#[test]
fn the_version_is_checked_before_the_filter() {
    let config = EventConfig::new()
        .filter(EventFilter::only([EventName::TurnCompleted]))
        .api_versions(ApiVersionPolicy::accept(["2026-01-01"]));
    // Not handled, but of a refused version: refused, so the change shows at once.
    let error = config
        .receive(br#"{"type":"agent.created","api_version":"2024-01-01"}"#)
        .expect_err("refused");
    assert_eq!(error.kind(), EventErrorKind::UnsupportedApiVersion);
    assert!(matches!(
        config.receive(br#"{"type":"agent.created","api_version":"2026-01-01"}"#),
        Ok(Received::Acknowledge {
            reason: Acknowledged::NotHandled,
            ..
        })
    ));
}

// ---- over real TCP ----

const SECRET: &str = "whsec_events_test";
const NOW: i64 = 1_764_000_000;

struct Setup {
    signer: Signer,
    layer: VerifyLayer<MemoryStore>,
}

fn setup() -> Setup {
    let clock = Arc::new(ManualClock::from_unix(NOW).expect("in range"));
    let verifier = Verifier::builder()
        .secret("current", SECRET)
        .clock(Arc::clone(&clock))
        .build()
        .expect("verifier");
    let store = MemoryStore::with_clock(
        NonZeroUsize::new(10_000).expect("non-zero"),
        Arc::clone(&clock),
    )
    .expect("capacity");
    let signer = Signer::new(SECRET)
        .expect("signer")
        .clock(Arc::clone(&clock));
    Setup {
        signer,
        layer: VerifyLayer::new(Receiver::new(verifier, store)),
    }
}

#[derive(Debug, Deserialize)]
struct Turn {
    turn_id: String,
}

/// A router whose handler counts its runs and answers with the event's name and turn id.
fn app(setup: &Setup, config: EventConfig, runs: &Arc<AtomicUsize>) -> Router {
    let runs = Arc::clone(runs);
    Router::new()
        .route(
            "/hook",
            post(move |event: VerifiedEvent<Turn>| async move {
                runs.fetch_add(1, Ordering::SeqCst);
                format!(
                    "handled {} {} {}",
                    event.name(),
                    event.payload().turn_id,
                    event.delivery().delivery_id()
                )
            }),
        )
        .layer(setup.layer.clone())
        .with_state(config)
}

async fn post_to(
    addr: SocketAddr,
    headers: &HeaderMap,
    content_type: Option<&'static str>,
    body: &[u8],
) -> (StatusCode, String) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = Request::post(format!("http://{addr}/hook"))
        .body(Full::new(Bytes::copy_from_slice(body)))
        .expect("request");
    request.headers_mut().extend(headers.clone());
    if let Some(content_type) = content_type {
        request
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    let response = client.request(request).await.expect("response");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn signed(setup: &Setup, id: &str, body: &[u8]) -> HeaderMap {
    setup.signer.sign(id, body).header_map().expect("headers")
}

#[tokio::test]
async fn the_extractor_reads_json_whatever_the_content_type() {
    let s = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let addr = post::serve(app(&s, EventConfig::new(), &runs)).await;
    let content_types = [
        Some("application/json"),
        // What `curl --data-binary` sends.
        Some("application/x-www-form-urlencoded"),
        Some("text/plain"),
        None,
    ];
    for (i, content_type) in content_types.into_iter().enumerate() {
        let body = format!(r#"{{"type":"turn.completed","data":{{"turn_id":"tu_{i}"}}}}"#);
        let id = format!("dlv_ct_{i}");
        let reply = post_to(
            addr,
            &signed(&s, &id, body.as_bytes()),
            content_type,
            body.as_bytes(),
        )
        .await;
        assert_eq!(
            reply,
            (
                StatusCode::OK,
                format!("handled turn.completed tu_{i} {id}")
            ),
            "{content_type:?}"
        );
    }
    assert_eq!(runs.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn an_unsubscribed_event_is_acknowledged_without_running_the_handler() {
    let s = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let config = EventConfig::new().filter(EventFilter::only([EventName::TurnCompleted]));
    let addr = post::serve(app(&s, config, &runs)).await;

    let other = br#"{"type":"agent.created","data":{"agent_id":"ag_1"}}"#;
    let headers = signed(&s, "dlv_other", other);
    let reply = post_to(addr, &headers, None, other).await;
    assert_eq!(reply, (StatusCode::OK, "acknowledged".into()));
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    // The acknowledgement completed the claim: the provider's copy is a duplicate.
    let again = post_to(addr, &headers, None, other).await;
    assert_eq!(again, (StatusCode::OK, "duplicate".into()));

    let wanted = br#"{"type":"turn.completed","data":{"turn_id":"tu_9"}}"#;
    let reply = post_to(addr, &signed(&s, "dlv_wanted", wanted), None, wanted).await;
    assert_eq!(
        reply,
        (
            StatusCode::OK,
            "handled turn.completed tu_9 dlv_wanted".into()
        )
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn webhook_test_is_acknowledged_by_default_and_handled_when_asked() {
    let s = setup();
    let body = br#"{"type":"webhook.test","data":{"turn_id":"tu_test"}}"#;

    let runs = Arc::new(AtomicUsize::new(0));
    let addr = post::serve(app(&s, EventConfig::new(), &runs)).await;
    let reply = post_to(addr, &signed(&s, "dlv_test_1", body), None, body).await;
    assert_eq!(reply, (StatusCode::OK, "acknowledged".into()));
    assert_eq!(runs.load(Ordering::SeqCst), 0);

    let config = EventConfig::new().filter(EventFilter::all().handle_test_events(true));
    let handled_runs = Arc::new(AtomicUsize::new(0));
    let addr = post::serve(app(&setup(), config, &handled_runs)).await;
    let reply = post_to(addr, &signed(&s, "dlv_test_2", body), None, body).await;
    assert_eq!(
        reply,
        (
            StatusCode::OK,
            "handled webhook.test tu_test dlv_test_2".into()
        )
    );
    assert_eq!(handled_runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_version_outside_the_accept_list_is_422_and_the_claim_released() {
    let s = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let config = EventConfig::new().api_versions(ApiVersionPolicy::accept(["2026-01-01"]));
    let addr = post::serve(app(&s, config, &runs)).await;

    let old = br#"{"type":"turn.completed","api_version":"2024-01-01","data":{"turn_id":"tu_1"}}"#;
    let headers = signed(&s, "dlv_old", old);
    let reply = post_to(addr, &headers, None, old).await;
    assert_eq!(
        reply,
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported_api_version".into()
        )
    );
    // Released, not completed: sent again (from the provider's dashboard, once the receiver
    // accepts the version), the delivery is processed again rather than called a duplicate.
    let again = post_to(addr, &headers, None, old).await;
    assert_eq!(
        again,
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported_api_version".into()
        )
    );
    // An envelope without a version is refused too.
    let none = br#"{"type":"turn.completed","data":{"turn_id":"tu_2"}}"#;
    let reply = post_to(addr, &signed(&s, "dlv_none", none), None, none).await;
    assert_eq!(reply.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(runs.load(Ordering::SeqCst), 0);

    let current =
        br#"{"type":"turn.completed","api_version":"2026-01-01","data":{"turn_id":"tu_3"}}"#;
    let reply = post_to(addr, &signed(&s, "dlv_current", current), None, current).await;
    assert_eq!(
        reply,
        (
            StatusCode::OK,
            "handled turn.completed tu_3 dlv_current".into()
        )
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_signature_is_judged_before_the_version() {
    let s = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let config = EventConfig::new().api_versions(ApiVersionPolicy::accept(["2026-01-01"]));
    let addr = post::serve(app(&s, config, &runs)).await;
    let signed_body =
        br#"{"type":"turn.completed","api_version":"2026-01-01","data":{"turn_id":"a"}}"#;
    let forged = br#"{"type":"turn.completed","api_version":"2024-01-01","data":{"turn_id":"a"}}"#;
    let reply = post_to(addr, &signed(&s, "dlv_forged", signed_body), None, forged).await;
    assert_eq!(
        reply,
        (StatusCode::UNAUTHORIZED, "signature_mismatch".into())
    );
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn malformed_events_and_payloads_are_refused_with_their_kind() {
    let s = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let addr = post::serve(app(&s, EventConfig::new(), &runs)).await;
    let cases: [(&[u8], StatusCode, &str); 3] = [
        (
            b"turn completed",
            StatusCode::BAD_REQUEST,
            "malformed_event",
        ),
        (
            br#"{"data":{"turn_id":"x"}}"#,
            StatusCode::BAD_REQUEST,
            "malformed_event",
        ),
        (
            br#"{"type":"turn.completed","data":{"turn":"x"}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "payload_mismatch",
        ),
    ];
    for (i, (body, status, kind)) in cases.into_iter().enumerate() {
        let reply = post_to(addr, &signed(&s, &format!("dlv_bad_{i}"), body), None, body).await;
        assert_eq!(reply, (status, kind.to_owned()), "case {i}");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn without_the_layer_the_extractor_answers_500() {
    let app: Router = Router::new()
        .route("/hook", post(|_: VerifiedEvent| async { "never" }))
        .with_state(EventConfig::new());
    let body = br#"{"type":"turn.completed","data":{}}"#;
    let response = app
        .oneshot(
            Request::post("/hook")
                .body(axum::body::Body::from(&body[..]))
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let text = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(&text[..], b"verify_layer_missing");
}
