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

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use bytes::Bytes;
use futures_util::future::join_all;
use hookverify::Signer;
use http::{HeaderName, HeaderValue};
use serde_json::json;

use crate::send::{self, Attempt, Outcome, Target, human};
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
    signer: &Signer,
    body: &[u8],
    id: &str,
    offset_seconds: i64,
) -> Result<send::SignedPairs, Failure> {
    send::sign(signer, body, id, &send::timestamp(offset_seconds)).map_err(Failure::runtime)
}

fn fresh_id() -> Result<String, Failure> {
    send::new_delivery_id().map_err(Failure::runtime)
}

pub(crate) async fn run(target: &Target, signer: &Signer, config: &Config) -> Result<(), Failure> {
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
    checks.push(expect_success(
        CHECKS[1],
        &answer,
        "a duplicate (the provider's retry of a delivery already accepted)",
    ));

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
    let tampered_body = run.body()?;
    let tampered = signed(signer, &tampered_body, &fresh_id()?, 0)?;
    let mut changed = tampered_body.to_vec();
    if let Some(last) = changed.last_mut() {
        *last ^= 0x01;
    }
    let answer = run.post(CHECKS[3], tampered.pairs(), changed.into()).await;
    checks.push(expect_rejection(
        CHECKS[3],
        &answer,
        "a body changed after signing",
    ));

    // wrong_secret_rejected
    let other = Signer::new(format!(
        "whsec_{}",
        secrets::random_hex(32).map_err(Failure::runtime)?
    ))
    .map_err(|error| Failure::runtime(error.to_string()))?;
    let body = run.body()?;
    let forged = signed(&other, &body, &fresh_id()?, 0)?;
    let answer = run.post(CHECKS[4], forged.pairs(), body).await;
    checks.push(expect_rejection(
        CHECKS[4],
        &answer,
        "a delivery signed with another secret",
    ));

    // missing_signature_rejected
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
        let body = run.body()?;
        let signed = signed(signer, &body, &fresh_id()?, offset)?;
        let answer = run.post(name, signed.pairs(), body).await;
        checks.push(expect_rejection(name, &answer, &what));
    }

    // replay_new_id_acknowledged: the valid delivery's exact signed bytes, a fresh id.
    let replay = valid
        .with_delivery_id(&fresh_id()?)
        .map_err(Failure::runtime)?;
    let answer = run.post(CHECKS[8], &replay, valid_body).await;
    checks.push(replay_check(&answer));

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
    report(target, config, &checks)
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

fn report(target: &Target, config: &Config, checks: &[Check]) -> Result<(), Failure> {
    let failed: Vec<&str> = checks.iter().filter(|c| !c.ok).map(|c| c.name).collect();
    let passed = checks.len() - failed.len();
    if config.json {
        let value = json!({
            "checks": checks
                .iter()
                .map(|c| json!({"name": c.name, "ok": c.ok, "detail": c.detail}))
                .collect::<Vec<_>>(),
            "passed": passed,
            "failed": failed.len(),
        });
        println!("{value}");
    } else {
        let good = Style::new().fg_color(Some(AnsiColor::Green.into()));
        let bad = Style::new().fg_color(Some(AnsiColor::Red.into())).bold();
        let mut text = String::new();
        let _ = writeln!(
            text,
            "chaos run against {} (tolerance {} s, max body {} bytes, timeout {})",
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
