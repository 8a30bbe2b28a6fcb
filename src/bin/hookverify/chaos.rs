//! `hookverify send --chaos URL`: a conformance run against any receiver.
//!
//! Each check sends what a provider (or an attacker) would, once, and judges the answer. A
//! rejection means a 4xx; a 2xx to a forged, stale or unsigned delivery is a failure, and so is
//! a 5xx anywhere the provider would take it for an outage. Every check but the duplicates uses
//! a fresh delivery id and a fresh body, so that each one tests one thing.
//!
//! | check | sends | passes on |
//! | --- | --- | --- |
//! | `valid_accepted` | a signed, fresh delivery | 2xx |
//! | `duplicate_acknowledged` | the same id again, signed afresh (the provider's retry) | 2xx |
//! | `concurrent_duplicates` | 20 copies of one delivery at once | no 5xx, at least one 2xx |
//! | `tampered_body_rejected` | a body changed after signing | 4xx |
//! | `wrong_secret_rejected` | signed with another secret | 4xx |
//! | `missing_signature_rejected` | no signature header | 4xx |
//! | `stale_timestamp_rejected` | signed twice the tolerance ago | 4xx |
//! | `future_timestamp_rejected` | signed twice the tolerance ahead | 4xx |
//! | `replay_new_id_acknowledged` | the valid delivery's signed bytes under a fresh id | not 5xx |
//! | `oversized_body_rejected` | a signed body one byte over the limit | 4xx |
//! | `answers_within_timeout` | (every request above) | every answer within the timeout |
//!
//! Each request waits up to twice the timeout, so that a slow answer is judged on its status by
//! its own check and on its time by `answers_within_timeout`, one flaw reported once.
//!
//! Every signing method (`--scheme`) runs the same checks, each adapted to what the method
//! signs. A check that cannot apply passes, its detail saying why: the stale and future
//! timestamps for a method that signs none (`github`, `bearer`, `basic_auth`, `none`), the
//! tampered body for one that signs no body (`bearer`, `basic_auth`, `none`), the wrong secret
//! and the missing signature for `none`, and the replay under a fresh id for a method whose id
//! is signed (`standard_webhooks`) or absent (`stripe`, `slack`). With `none`, the report
//! warns loudly: the receiver accepts unsigned deliveries.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use bytes::Bytes;
use futures_util::future::join_all;
use hookverify::Method;
use http::{HeaderName, HeaderValue};
use serde_json::json;

use crate::send::{self, Attempt, Outcome, Signing, Target, human};
use crate::{Failure, samples, secrets};

/// Copies sent at once by `concurrent_duplicates`.
const CONCURRENT_COPIES: usize = 20;

/// The checks, in the order they run and are reported.
pub(crate) const CHECKS: [&str; 11] = [
    "valid_accepted",
    "duplicate_acknowledged",
    "concurrent_duplicates",
    "tampered_body_rejected",
    "wrong_secret_rejected",
    "missing_signature_rejected",
    "stale_timestamp_rejected",
    "future_timestamp_rejected",
    "replay_new_id_acknowledged",
    "oversized_body_rejected",
    "answers_within_timeout",
];

/// What the run assumes of the receiver.
#[derive(Debug)]
pub(crate) struct Config {
    /// Its tolerance window, in seconds.
    pub(crate) tolerance: u32,
    /// Its body limit, in bytes.
    pub(crate) max_body: u64,
    /// How long the provider waits for an answer.
    pub(crate) timeout: Duration,
    /// The sample event the bodies are made from.
    pub(crate) event: String,
    /// Print JSON rather than text.
    pub(crate) json: bool,
}

/// One check's verdict.
#[derive(Debug)]
struct Check {
    name: &'static str,
    ok: bool,
    detail: String,
}

/// Sends the checks' requests and keeps every attempt's time.
struct Run<'a> {
    target: &'a Target,
    config: &'a Config,
    /// How long a request may take before it is given up: twice the timeout.
    wait: Duration,
    /// Every request: the check it belongs to and what it got.
    log: Vec<(&'static str, Attempt)>,
}

impl Run<'_> {
    async fn post(
        &mut self,
        check: &'static str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Attempt {
        let attempt = self.target.post(headers, body, self.wait).await;
        self.log.push((check, attempt.clone()));
        attempt
    }

    fn body(&self) -> Result<Bytes, Failure> {
        samples::sample(&self.config.event, send::now())
            .map(Bytes::from)
            .map_err(Failure::runtime)
    }
}

/// `body` signed by `signer` as delivery `id`, `offset_seconds` from now.
fn signed(
    signer: &Signing,
    body: &[u8],
    id: &str,
    offset_seconds: i64,
) -> Result<send::SignedPairs, Failure> {
    send::sign(signer, body, id, &send::timestamp(offset_seconds)).map_err(Failure::runtime)
}

fn fresh_id() -> Result<String, Failure> {
    send::new_delivery_id().map_err(Failure::runtime)
}

/// A check that does not apply to the method: passed, with the reason.
fn not_applicable(name: &'static str, why: &str) -> Check {
    Check {
        name,
        ok: true,
        detail: format!("not applicable: {why}"),
    }
}

/// Why the method gives a receiver nothing to reject for a check, if it does not: the
/// tampered body, the wrong secret, the missing signature, the stale and future timestamps.
fn inapplicable(method: Method, check: &str) -> Option<String> {
    let name = method.name();
    match check {
        "tampered_body_rejected" if !method.signs_body() => Some(format!(
            "{name} signs no body; a changed body cannot be told from the original"
        )),
        "wrong_secret_rejected" | "missing_signature_rejected" if method == Method::None => {
            Some("none sends no signature; there is nothing to check".into())
        }
        "stale_timestamp_rejected" | "future_timestamp_rejected" if !method.has_timestamp() => {
            Some(format!(
                "{name} signs no timestamp; a replay is caught only by the receiver's dedupe"
            ))
        }
        _ => None,
    }
}

/// A secret for the same method that is not the configured one: a fresh one of the same kind
/// (an Ed25519 seed for a `v1a` signer).
fn other_secret(signer: &Signing) -> Result<Signing, Failure> {
    let secret = if signer.is_ed25519() {
        secrets::generate_ed25519_seed()
    } else {
        secrets::generate(signer.method())
    }
    .map_err(Failure::runtime)?;
    signer
        .with_secret(secret)
        .map_err(|error| Failure::runtime(error.to_string()))
}

pub(crate) async fn run(target: &Target, signer: &Signing, config: &Config) -> Result<(), Failure> {
    let method = signer.method();
    let mut run = Run {
        target,
        config,
        wait: config.timeout.saturating_mul(2),
        log: Vec::new(),
    };
    let mut checks = Vec::with_capacity(CHECKS.len());

    // valid_accepted, then the same id again as the provider's retry would send it.
    let id = fresh_id()?;
    let valid_body = run.body()?;
    let valid = signed(signer, &valid_body, &id, 0)?;
    let answer = run.post(CHECKS[0], valid.pairs(), valid_body.clone()).await;
    checks.push(expect_success(CHECKS[0], &answer, "a valid delivery"));

    let again = signed(signer, &valid_body, &id, 0)?;
    let answer = run.post(CHECKS[1], again.pairs(), valid_body.clone()).await;
    let mut check = expect_success(
        CHECKS[1],
        &answer,
        "a duplicate (the provider's retry of a delivery already accepted)",
    );
    if check.ok && !method.dedupes_on_id() {
        let _ = write!(
            check.detail,
            " ({method} sends no delivery id: a retry signed in another second is a new \
             message to the receiver; dedupe on the event id in the body)"
        );
    }
    checks.push(check);

    // concurrent_duplicates
    let copy_id = fresh_id()?;
    let copy_body = run.body()?;
    let copy = signed(signer, &copy_body, &copy_id, 0)?;
    let sends =
        (0..CONCURRENT_COPIES).map(|_| run.target.post(copy.pairs(), copy_body.clone(), run.wait));
    let answers = join_all(sends).await;
    run.log
        .extend(answers.iter().map(|attempt| (CHECKS[2], attempt.clone())));
    checks.push(concurrent(&answers));

    // tampered_body_rejected: signed, then one byte of the body changed.
    if let Some(why) = inapplicable(method, CHECKS[3]) {
        checks.push(not_applicable(CHECKS[3], &why));
    } else {
        checks.push(tampered(&mut run, signer).await?);
    }

    // wrong_secret_rejected
    if let Some(why) = inapplicable(method, CHECKS[4]) {
        checks.push(not_applicable(CHECKS[4], &why));
    } else {
        let other = other_secret(signer)?;
        let body = run.body()?;
        let forged = signed(&other, &body, &fresh_id()?, 0)?;
        let answer = run.post(CHECKS[4], forged.pairs(), body).await;
        checks.push(expect_rejection(
            CHECKS[4],
            &answer,
            "a delivery signed with another secret",
        ));
    }

    // missing_signature_rejected
    if let Some(why) = inapplicable(method, CHECKS[5]) {
        checks.push(not_applicable(CHECKS[5], &why));
    } else {
        let body = run.body()?;
        let unsigned = signed(signer, &body, &fresh_id()?, 0)?;
        let answer = run
            .post(CHECKS[5], &unsigned.without_signature(), body)
            .await;
        checks.push(expect_rejection(
            CHECKS[5],
            &answer,
            "a delivery without a signature",
        ));
    }

    // stale and future: well signed, twice the tolerance away.
    let away = i64::from(config.tolerance) * 2;
    for (name, offset, what) in [
        (
            CHECKS[6],
            -away,
            format!("a delivery signed {away} s ago (twice --tolerance)"),
        ),
        (
            CHECKS[7],
            away,
            format!("a delivery signed {away} s ahead (twice --tolerance)"),
        ),
    ] {
        if let Some(why) = inapplicable(method, name) {
            checks.push(not_applicable(name, &why));
            continue;
        }
        let body = run.body()?;
        let signed = signed(signer, &body, &fresh_id()?, offset)?;
        let answer = run.post(name, signed.pairs(), body).await;
        checks.push(expect_rejection(name, &answer, &what));
    }

    // replay_new_id_acknowledged: the valid delivery's exact signed bytes, a fresh id, where
    // the id is not signed.
    let replay = valid
        .with_delivery_id(&fresh_id()?)
        .map_err(Failure::runtime)?;
    match replay {
        _ if method == Method::StandardWebhooks => checks.push(not_applicable(
            CHECKS[8],
            "standard_webhooks signs the delivery id; a fresh id is a forged signature, which \
             wrong_secret_rejected and tampered_body_rejected cover",
        )),
        None => checks.push(not_applicable(
            CHECKS[8],
            &format!(
                "{} sends no delivery id header; a replay is the same message, which \
                 concurrent_duplicates covers",
                method.name()
            ),
        )),
        Some(replay) => {
            let answer = run.post(CHECKS[8], &replay, valid_body).await;
            checks.push(replay_check(&answer));
        }
    }

    // oversized_body_rejected
    let limit = usize::try_from(config.max_body)
        .map_err(|_| Failure::runtime("--max-body does not fit in memory here"))?;
    let big = samples::padded(&config.event, send::now(), limit + 1).map_err(Failure::runtime)?;
    let big = Bytes::from(big);
    let signed = signed(signer, &big, &fresh_id()?, 0)?;
    let answer = run.post(CHECKS[9], signed.pairs(), big).await;
    checks.push(expect_rejection(
        CHECKS[9],
        &answer,
        &format!(
            "a body of {} bytes (over the {limit}-byte limit)",
            limit + 1
        ),
    ));

    checks.push(within_timeout(&run.log, config.timeout));
    report(target, config, method, &checks)
}

/// `tampered_body_rejected`: signed, then one byte of the body changed.
async fn tampered(run: &mut Run<'_>, signer: &Signing) -> Result<Check, Failure> {
    let body = run.body()?;
    let signed = signed(signer, &body, &fresh_id()?, 0)?;
    let mut changed = body.to_vec();
    if let Some(last) = changed.last_mut() {
        *last ^= 0x01;
    }
    let answer = run.post(CHECKS[3], signed.pairs(), changed.into()).await;
    Ok(expect_rejection(
        CHECKS[3],
        &answer,
        "a body changed after signing",
    ))
}

/// What the report says loudly about the method, if anything.
fn warnings(method: Method) -> Vec<String> {
    match method {
        Method::None => vec![
            "--scheme none: the receiver accepts unsigned deliveries; anyone who can reach it \
             can send one, forged, stale or replayed. Only the dedupe and body limit were \
             checked"
                .into(),
        ],
        _ => Vec::new(),
    }
}

fn expect_success(name: &'static str, attempt: &Attempt, what: &str) -> Check {
    let ok = attempt.outcome.is_success();
    let detail = if ok {
        attempt.describe()
    } else {
        format!(
            "{what} must be acknowledged with 2xx; got {}",
            attempt.describe()
        )
    };
    Check { name, ok, detail }
}

fn expect_rejection(name: &'static str, attempt: &Attempt, what: &str) -> Check {
    let status = attempt.outcome.status();
    let ok = status.is_some_and(|status| status.is_client_error());
    let detail = match status {
        _ if ok => attempt.describe(),
        Some(status) if status.is_success() => {
            format!("{what} was accepted: {}", attempt.describe())
        }
        _ => format!(
            "{what} must be refused with 4xx; got {}",
            attempt.describe()
        ),
    };
    Check { name, ok, detail }
}

fn concurrent(answers: &[Attempt]) -> Check {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for answer in answers {
        *counts.entry(answer.outcome.key()).or_default() += 1;
    }
    let tally = counts
        .iter()
        .map(|(key, count)| format!("{key} x{count}"))
        .collect::<Vec<_>>()
        .join(", ");
    let broken = answers
        .iter()
        .filter(
            |a| !matches!(a.outcome, Outcome::Answered { status, .. } if !status.is_server_error()),
        )
        .count();
    let accepted = answers.iter().filter(|a| a.outcome.is_success()).count();
    let ok = broken == 0 && accepted > 0;
    let detail = if ok {
        format!("{CONCURRENT_COPIES} copies at once: {tally}")
    } else if accepted == 0 {
        format!("{CONCURRENT_COPIES} copies at once, none acknowledged with 2xx: {tally}")
    } else {
        format!(
            "{CONCURRENT_COPIES} copies at once, {broken} answered 5xx or not at all \
             (the provider would take it for an outage): {tally}"
        )
    };
    Check {
        name: CHECKS[2],
        ok,
        detail,
    }
}

fn replay_check(attempt: &Attempt) -> Check {
    let ok =
        matches!(attempt.outcome, Outcome::Answered { status, .. } if !status.is_server_error());
    let detail = if ok {
        attempt.describe()
    } else {
        format!(
            "the same signed bytes under a fresh id must be acknowledged (2xx) or refused \
             (4xx), never 5xx; got {}",
            attempt.describe()
        )
    };
    Check {
        name: CHECKS[8],
        ok,
        detail,
    }
}

fn within_timeout(log: &[(&'static str, Attempt)], timeout: Duration) -> Check {
    let late: Vec<String> = log
        .iter()
        .filter(|(_, attempt)| {
            attempt.latency > timeout || matches!(attempt.outcome, Outcome::TimedOut)
        })
        .map(|(check, attempt)| format!("{check}: {}", attempt.describe()))
        .collect();
    let slowest = log.iter().max_by_key(|(_, attempt)| attempt.latency);
    let detail = match (late.first(), slowest) {
        (Some(_), _) => format!(
            "{} of {} requests unanswered after {} (the provider gives up then and retries): {}",
            late.len(),
            log.len(),
            human(timeout),
            late.join("; ")
        ),
        (None, Some((check, attempt))) => format!(
            "{} requests, none still unanswered after {}; the slowest took {} ({check})",
            log.len(),
            human(timeout),
            human(attempt.latency)
        ),
        (None, None) => "no requests".into(),
    };
    Check {
        name: CHECKS[10],
        ok: late.is_empty(),
        detail,
    }
}

fn report(
    target: &Target,
    config: &Config,
    method: Method,
    checks: &[Check],
) -> Result<(), Failure> {
    let failed: Vec<&str> = checks.iter().filter(|c| !c.ok).map(|c| c.name).collect();
    let passed = checks.len() - failed.len();
    let warnings = warnings(method);
    let bad = Style::new().fg_color(Some(AnsiColor::Red.into())).bold();
    // On stderr in both forms, so that it is seen even when the JSON goes to a file.
    for warning in &warnings {
        anstream::eprintln!("{bad}warning:{bad:#} {warning}");
    }
    if config.json {
        let value = json!({
            "checks": checks
                .iter()
                .map(|c| json!({"name": c.name, "ok": c.ok, "detail": c.detail}))
                .collect::<Vec<_>>(),
            "passed": passed,
            "failed": failed.len(),
            "warnings": warnings,
        });
        println!("{value}");
    } else {
        let good = Style::new().fg_color(Some(AnsiColor::Green.into()));
        let mut text = String::new();
        let _ = writeln!(
            text,
            "chaos run against {} (scheme {method}, tolerance {} s, max body {} bytes, timeout {})",
            target.url(),
            config.tolerance,
            config.max_body,
            human(config.timeout),
        );
        for check in checks {
            let (style, mark) = if check.ok {
                (good, "ok  ")
            } else {
                (bad, "FAIL")
            };
            let _ = writeln!(
                text,
                "  {style}{mark}{style:#}  {:<28} {}",
                check.name, check.detail
            );
        }
        for warning in &warnings {
            let _ = writeln!(text, "{bad}WARNING{bad:#}  {warning}");
        }
        if failed.is_empty() {
            let _ = writeln!(text, "{good}all {passed} checks passed{good:#}");
        } else {
            let _ = writeln!(
                text,
                "{bad}{} of {} checks failed{bad:#}: {}",
                failed.len(),
                checks.len(),
                failed.join(", ")
            );
        }
        anstream::print!("{text}");
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::runtime(format!(
            "the receiver failed {}: {}",
            if failed.len() == 1 {
                "1 check".to_owned()
            } else {
                format!("{} checks", failed.len())
            },
            failed.join(", ")
        )))
    }
}
