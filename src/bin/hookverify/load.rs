//! `hookverify send --count N --concurrency C`: many deliveries, each at least once as the
//! provider sends it, C in flight at once; a progress bar on a terminal, then a summary on
//! stdout: the final status of each delivery counted, and the latency of every attempt
//! (p50, p99, max, from an HDR histogram).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::Failure;
use crate::send::{self, BodySource, Policy, Signing, Target, human};

/// Failed deliveries named in the summary, at most.
const FAILURES_SHOWN: usize = 10;

/// What to send.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) count: u64,
    pub(crate) concurrency: u32,
    /// One id for every delivery, or `None` for a fresh one each.
    pub(crate) id: Option<String>,
    pub(crate) source: BodySource,
    pub(crate) policy: Policy,
}

/// What the workers share.
struct Shared {
    target: Target,
    signer: Signing,
    plan: Plan,
    /// The number of the next delivery to send.
    next: AtomicU64,
    bar: ProgressBar,
}

/// What one worker saw; merged at the end.
struct Tally {
    /// Microseconds per attempt.
    latency: Histogram<u64>,
    /// Deliveries by their final outcome (`200`, `503`, `timeout`, `error`).
    finals: BTreeMap<String, u64>,
    attempts: u64,
    delivered: u64,
    /// The first few failures: `id: what the last attempt got`.
    failures: Vec<String>,
}

impl Tally {
    fn new() -> Result<Self, String> {
        // 1 us to an hour, 3 significant digits.
        let latency = Histogram::new_with_bounds(1, 3_600_000_000, 3)
            .map_err(|error| format!("could not make the latency histogram: {error}"))?;
        Ok(Self {
            latency,
            finals: BTreeMap::new(),
            attempts: 0,
            delivered: 0,
            failures: Vec::new(),
        })
    }

    fn merge(&mut self, other: Self) -> Result<(), String> {
        self.latency
            .add(&other.latency)
            .map_err(|error| format!("could not merge latencies: {error}"))?;
        for (key, count) in other.finals {
            *self.finals.entry(key).or_default() += count;
        }
        self.attempts += other.attempts;
        self.delivered += other.delivered;
        let room = FAILURES_SHOWN.saturating_sub(self.failures.len());
        self.failures.extend(other.failures.into_iter().take(room));
        Ok(())
    }
}

pub(crate) async fn run(target: Target, signer: Signing, plan: Plan) -> Result<(), Failure> {
    let workers = u64::from(plan.concurrency).min(plan.count);
    let bar = progress_bar(plan.count);
    println!(
        "POST {}: {} deliveries ({}), {workers} at a time",
        target.url(),
        plan.count,
        plan.source.describe(),
    );
    let shared = Arc::new(Shared {
        target,
        signer,
        plan,
        next: AtomicU64::new(0),
        bar,
    });

    let started = Instant::now();
    let handles: Vec<_> = (0..workers)
        .map(|_| tokio::spawn(worker(Arc::clone(&shared))))
        .collect();
    let mut total = Tally::new().map_err(Failure::runtime)?;
    for handle in handles {
        let tally = handle
            .await
            .map_err(|error| Failure::runtime(format!("a sender task failed: {error}")))?
            .map_err(Failure::runtime)?;
        total.merge(tally).map_err(Failure::runtime)?;
    }
    let elapsed = started.elapsed();
    shared.bar.finish_and_clear();

    print!("{}", summary(&total, shared.plan.count, elapsed));
    let failed = shared.plan.count - total.delivered;
    if failed == 0 {
        Ok(())
    } else {
        Err(Failure::runtime(format!(
            "{failed} of {} deliveries not delivered",
            shared.plan.count
        )))
    }
}

/// A bar on stderr when it is a terminal; nothing drawn otherwise.
fn progress_bar(count: u64) -> ProgressBar {
    if !send::stderr_is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(count), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:40} {pos}/{len} deliveries, {elapsed} (about {eta} left)",
    ) {
        bar.set_style(style);
    }
    bar
}

/// Takes delivery numbers until none is left.
async fn worker(shared: Arc<Shared>) -> Result<Tally, String> {
    let mut tally = Tally::new()?;
    let plan = &shared.plan;
    while shared.next.fetch_add(1, Ordering::Relaxed) < plan.count {
        let id = match &plan.id {
            Some(id) => id.clone(),
            None => send::new_delivery_id()?,
        };
        let body = plan.source.next()?;
        let attempts = send::deliver(
            &shared.target,
            &shared.signer,
            plan.policy,
            &id,
            body,
            |_, _, _| {},
        )
        .await?;
        for attempt in &attempts {
            let micros = u64::try_from(attempt.latency.as_micros()).unwrap_or(u64::MAX);
            tally.latency.saturating_record(micros.max(1));
        }
        tally.attempts += attempts.len() as u64;
        if let Some(last) = attempts.last() {
            *tally.finals.entry(last.outcome.key()).or_default() += 1;
            if last.outcome.is_success() {
                tally.delivered += 1;
            } else if tally.failures.len() < FAILURES_SHOWN {
                tally.failures.push(format!("{id}: {}", last.describe()));
            }
        }
        shared.bar.inc(1);
    }
    Ok(tally)
}

fn summary(total: &Tally, count: u64, elapsed: Duration) -> String {
    let rate = count as f64 / elapsed.as_secs_f64().max(1e-9);
    let micros = |value: u64| human(Duration::from_micros(value));
    let mut text = String::new();
    let _ = writeln!(
        text,
        "done in {}: {} delivered, {} not delivered ({rate:.1} deliveries/s)",
        human(elapsed),
        total.delivered,
        count - total.delivered,
    );
    let _ = writeln!(text, "final status:");
    for (key, count) in &total.finals {
        let _ = writeln!(text, "  {key:<7} {count}");
    }
    let _ = writeln!(
        text,
        "attempts: {} ({} retries)",
        total.attempts,
        total.attempts.saturating_sub(count)
    );
    let _ = writeln!(
        text,
        "latency per attempt: p50 {}, p99 {}, max {}",
        micros(total.latency.value_at_quantile(0.5)),
        micros(total.latency.value_at_quantile(0.99)),
        micros(total.latency.max()),
    );
    if !total.failures.is_empty() {
        let _ = writeln!(text, "not delivered (first {}):", total.failures.len());
        for failure in &total.failures {
            let _ = writeln!(text, "  {failure}");
        }
    }
    text
}
