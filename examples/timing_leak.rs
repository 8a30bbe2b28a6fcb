//! A timing-leak check of the signature comparison, in the style of dudect (Reparaz, Balasch and
//! Verbauwhede, "Dude, is my code constant time?", 2017). Not a test and not a CI gate: a noisy
//! machine can only make it less sensitive, and a busy one can make it flaky.
//!
//! Two classes of requests differ only in secret-dependent bytes: the same body, timestamp and
//! delivery id, carrying a signature that is wrong in its first byte (class 0) or in its last
//! byte (class 1). Both flip the low bit of the byte, so the hex digit that changes stays a digit
//! or a letter and the header parser takes the same branches for both. The classes are
//! interleaved at random (xorshift64), each call to the verifier is timed with
//! `std::time::Instant`, the pooled measurements are cropped above several percentiles as dudect
//! does, and Welch's t-statistic compares the two classes under each crop. |t| < 4.5 under every
//! crop is the customary "no leak detected".
//!
//! Both classes use one header map: before each call (outside the timing) the correct signature
//! is copied into one buffer, the class's single wrong digit is written over it, and the map's
//! signature value is replaced by a fresh copy of that buffer. No memory is touched for one class
//! and not the other, because that alone is measurable: with one header map per class an A/A run
//! (identical bytes in both classes) reached |t| = 18, with one source string per class 9.
//!
//! A third run, A/A, gives both classes the same bytes (wrong in the first byte): it shows what
//! |t| this harness reaches on this machine when there is nothing to find.
//!
//! The same harness also runs a positive control: a verifier written here that decodes the same
//! header, computes the same HMAC and compares the 32 bytes with a short-circuiting loop. That
//! one leaks (class 0 exits at the first byte, class 1 at the last), and the harness must say so,
//! or its silence about the real comparison means nothing.
//!
//! A fourth run times only the header checks (`Verifier::precheck`: the signature header parsed
//! and decoded, no HMAC, no comparison) on the same two classes. The classes' headers differ in
//! which digit is wrong, which is public; a |t| there that matches the first run's says the
//! difference lies in handling those bytes (or in the harness), not in the comparison.
//!
//! Run: `cargo run --release --example timing_leak [-- SAMPLES [SEED]]` (default 2,000,000
//! samples in each of the four runs, about 1,000,000 per class).

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use hmac::{Hmac, KeyInit, Mac};
use hookverify::{ManualClock, Signer, Verifier};
use http::{HeaderMap, HeaderValue};
use sha2::Sha256;

const KEY: &[u8] = b"timing-leak-key-4f1d2c9a7b3e11d0";
const TIMESTAMP: &str = "1764000000";
const DELIVERY_ID: &str = "dlv_timing_0001";
const BODY: &[u8] = br#"{"event":"delivery.created","id":"evt_0001","amount":4200}"#;

const SIGNATURE_HEADER: &str = "x-agent-signature";
const TIMESTAMP_HEADER: &str = "x-agent-timestamp";
const PREFIX: &[u8] = b"sha256=";

const DEFAULT_SAMPLES: usize = 2_000_000;
const WARM_UP: usize = 50_000;
const THRESHOLD: f64 = 4.5;

/// Upper crops, as fractions of the pooled distribution; `1.0` keeps everything.
const CROPS: [f64; 7] = [0.50, 0.75, 0.90, 0.95, 0.99, 0.999, 1.0];

/// xorshift64 (Marsaglia): enough to interleave the classes unpredictably for the CPU.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Running mean and variance (Welford).
#[derive(Default, Clone, Copy)]
struct Moments {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Moments {
    fn push(&mut self, x: f64) {
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
    }

    fn variance(&self) -> f64 {
        if self.n < 2 {
            0.0
        } else {
            self.m2 / (self.n - 1) as f64
        }
    }
}

/// Welch's t-statistic of two samples.
fn welch_t(a: &Moments, b: &Moments) -> f64 {
    let se = (a.variance() / a.n as f64 + b.variance() / b.n as f64).sqrt();
    if se == 0.0 {
        0.0
    } else {
        (a.mean - b.mean) / se
    }
}

/// The measurements of one run: the class and the time in nanoseconds of each call.
struct Samples {
    class: Vec<u8>,
    nanos: Vec<u64>,
    accepted: usize,
}

/// What makes a class: the position and the value of its one wrong digit in the signature
/// header (otherwise the correct one).
type Classes = [(usize, u8); 2];

/// Calls `target` `count` times with the classes' signatures, picked at random, timing each call.
fn measure(
    count: usize,
    seed: u64,
    correct: &HeaderMap,
    classes: &Classes,
    mut target: impl FnMut(&HeaderMap, &[u8]) -> bool,
) -> Samples {
    let mut rng = XorShift::new(seed);
    let mut headers = correct.clone();
    let correct_signature = correct
        .get(SIGNATURE_HEADER)
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    let mut buffer = correct_signature.clone();
    // The same reads and writes for either class; only the values written differ.
    let mut set_class = |headers: &mut HeaderMap, class: usize| {
        buffer.copy_from_slice(&correct_signature);
        let (position, digit) = classes[class];
        if let Some(byte) = buffer.get_mut(position) {
            *byte = digit;
        }
        if let Ok(mut value) = HeaderValue::from_bytes(&buffer) {
            value.set_sensitive(true);
            headers.insert(SIGNATURE_HEADER, value);
        }
    };
    // Warm the caches and the branch predictors; these are not kept.
    for _ in 0..WARM_UP {
        set_class(&mut headers, (rng.next() >> 63) as usize);
        black_box(target(black_box(&headers), black_box(BODY)));
    }
    let mut samples = Samples {
        class: Vec::with_capacity(count),
        nanos: Vec::with_capacity(count),
        accepted: 0,
    };
    for _ in 0..count {
        let class = (rng.next() >> 63) as usize;
        set_class(&mut headers, class);
        let start = Instant::now();
        let accepted = target(black_box(&headers), black_box(BODY));
        let elapsed = start.elapsed();
        black_box(accepted);
        samples.class.push(class as u8);
        samples
            .nanos
            .push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
        samples.accepted += usize::from(accepted);
    }
    samples
}

/// One row of the report: the t-statistic under one crop.
struct Crop {
    percentile: f64,
    threshold_ns: u64,
    moments: [Moments; 2],
    t: f64,
}

fn analyse(samples: &Samples) -> Vec<Crop> {
    let mut sorted = samples.nanos.clone();
    sorted.sort_unstable();
    let last = sorted.len().saturating_sub(1);
    CROPS
        .iter()
        .map(|&percentile| {
            let index = ((last as f64) * percentile).round() as usize;
            let threshold_ns = sorted.get(index.min(last)).copied().unwrap_or(u64::MAX);
            let mut moments = [Moments::default(); 2];
            for (&class, &nanos) in samples.class.iter().zip(&samples.nanos) {
                if nanos <= threshold_ns {
                    moments[usize::from(class)].push(nanos as f64);
                }
            }
            let t = welch_t(&moments[0], &moments[1]);
            Crop {
                percentile,
                threshold_ns,
                moments,
                t,
            }
        })
        .collect()
}

/// Prints the report of one run and returns the largest |t| over the crops.
fn report(name: &str, samples: &Samples) -> f64 {
    let crops = analyse(samples);
    let total = [0u8, 1].map(|c| samples.class.iter().filter(|&&k| k == c).count());
    println!("== {name}");
    println!(
        "   samples: {} (class 0: {}; class 1: {}); accepted: {}",
        samples.nanos.len(),
        total[0],
        total[1],
        samples.accepted
    );
    println!("   crop     <= ns      n0        n1      mean0 ns  mean1 ns        |t|");
    let mut max_t: f64 = 0.0;
    for crop in &crops {
        let label = if crop.percentile >= 1.0 {
            "none".to_owned()
        } else {
            format!("p{}", crop.percentile * 100.0)
        };
        println!(
            "   {label:<6} {:>8} {:>9} {:>9} {:>9.1} {:>9.1} {:>10.2}",
            crop.threshold_ns,
            crop.moments[0].n,
            crop.moments[1].n,
            crop.moments[0].mean,
            crop.moments[1].mean,
            crop.t.abs()
        );
        max_t = max_t.max(crop.t.abs());
    }
    let verdict = if max_t < THRESHOLD {
        "no leak detected"
    } else {
        "LEAK DETECTED"
    };
    println!("   max |t| = {max_t:.2}: {verdict} (threshold {THRESHOLD})");
    max_t
}

/// A verifier with the flaw this check exists to catch: same header decoding and HMAC as the
/// real one, then a comparison that stops at the first differing byte.
struct LeakyVerifier {
    keyed: Hmac<Sha256>,
}

impl LeakyVerifier {
    fn verify(&self, headers: &HeaderMap, body: &[u8]) -> bool {
        let (Some(signature), Some(timestamp)) =
            (headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER))
        else {
            return false;
        };
        let Some(digits) = signature.as_bytes().strip_prefix(PREFIX) else {
            return false;
        };
        let mut carried = [0u8; 32];
        if hex::decode_to_slice(digits, &mut carried).is_err() {
            return false;
        }
        let mut mac = self.keyed.clone();
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        let computed: [u8; 32] = mac.finalize().into_bytes().into();
        short_circuit_eq(&carried, &computed)
    }
}

/// `==` over the bytes, returning at the first difference. The `black_box` keeps the compiler
/// from turning the loop into a fixed-length block compare, which would hide the leak.
fn short_circuit_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    for (x, y) in a.iter().zip(b) {
        if black_box(*x) != black_box(*y) {
            return false;
        }
    }
    true
}

/// The correctly signed headers, and the two classes: the correct signature with byte 0
/// (class 0) or byte 31 (class 1) flipped, each as the one header digit that changes.
fn classes(signer: &Signer) -> Result<(HeaderMap, Classes), String> {
    let signed = signer.sign_with_timestamp(DELIVERY_ID, TIMESTAMP, BODY);
    let correct = signed.header_map().map_err(|e| e.to_string())?;
    let header = signed.signature().as_bytes();
    let digits = header
        .strip_prefix(PREFIX)
        .ok_or("the signer's header has no sha256= prefix")?;
    let mut tag = [0u8; 32];
    hex::decode_to_slice(digits, &mut tag).map_err(|e| e.to_string())?;
    let with_flipped = |byte: usize| -> Result<(usize, u8), String> {
        let mut wrong = tag;
        wrong[byte] ^= 0x01;
        let wrong = format!("sha256={}", hex::encode(wrong));
        let mut changed = header
            .iter()
            .zip(wrong.as_bytes())
            .enumerate()
            .filter(|(_, (a, b))| a != b);
        match (changed.next(), changed.next()) {
            (Some((position, (_, &digit))), None) => Ok((position, digit)),
            _ => Err("flipping one bit should change exactly one hex digit".to_owned()),
        }
    };
    Ok((correct, [with_flipped(0)?, with_flipped(31)?]))
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let samples = match args.next().map(|s| s.replace('_', "").parse::<usize>()) {
        None => DEFAULT_SAMPLES,
        Some(Ok(n)) if n >= 1000 => n,
        Some(_) => {
            eprintln!("usage: timing_leak [SAMPLES (>= 1000) [SEED]]");
            return ExitCode::from(2);
        }
    };
    let seed = match args.next().map(|s| s.parse::<u64>()) {
        None => 0x9e37_79b9_7f4a_7c15,
        Some(Ok(seed)) => seed,
        Some(Err(_)) => {
            eprintln!("usage: timing_leak [SAMPLES (>= 1000) [SEED]]");
            return ExitCode::from(2);
        }
    };

    let Some(clock) = ManualClock::from_unix(1_764_000_000) else {
        eprintln!("the fixed clock is out of range");
        return ExitCode::FAILURE;
    };
    let verifier = match Verifier::builder()
        .secret("current", KEY)
        .clock(clock)
        .build()
    {
        Ok(verifier) => verifier,
        Err(e) => {
            eprintln!("configuration: {e}");
            return ExitCode::FAILURE;
        }
    };
    let signer = match Signer::new(KEY) {
        Ok(signer) => signer,
        Err(e) => {
            eprintln!("signer: {e}");
            return ExitCode::FAILURE;
        }
    };
    let leaky = match Hmac::<Sha256>::new_from_slice(KEY) {
        Ok(keyed) => LeakyVerifier { keyed },
        Err(e) => {
            eprintln!("hmac: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (correct, classes) = match classes(&signer) {
        Ok(built) => built,
        Err(e) => {
            eprintln!("building the classes: {e}");
            return ExitCode::FAILURE;
        }
    };

    // Sanity: both verifiers accept the correct signature and reject both classes.
    let mut sane = verifier.verify(&correct, BODY).is_ok() && leaky.verify(&correct, BODY);
    for &(position, digit) in &classes {
        let mut signature = correct
            .get(SIGNATURE_HEADER)
            .map(|v| v.as_bytes().to_vec())
            .unwrap_or_default();
        if let Some(byte) = signature.get_mut(position) {
            *byte = digit;
        }
        let mut headers = correct.clone();
        match HeaderValue::from_bytes(&signature) {
            Ok(value) => {
                headers.insert(SIGNATURE_HEADER, value);
                sane &= verifier.verify(&headers, BODY).is_err() && !leaky.verify(&headers, BODY);
            }
            Err(_) => sane = false,
        }
    }
    if !sane {
        eprintln!(
            "sanity check failed: a verifier accepts a wrong signature or rejects the right one"
        );
        return ExitCode::FAILURE;
    }

    println!(
        "dudect-style timing check: {samples} samples per run, seed {seed}, body {} B",
        BODY.len()
    );
    let real = measure(samples, seed, &correct, &classes, |headers, body| {
        verifier.verify(headers, body).is_ok()
    });
    let real_t = report(
        "hookverify Verifier::verify: class 0 wrong in the first byte, class 1 in the last",
        &real,
    );
    drop(real);
    let same = [classes[0], classes[0]];
    let aa = measure(samples, seed, &correct, &same, |headers, body| {
        verifier.verify(headers, body).is_ok()
    });
    let aa_t = report(
        "A/A, hookverify Verifier::verify: both classes wrong in the first byte (nothing to find)",
        &aa,
    );
    drop(aa);
    // The same classes through the header checks alone (`precheck`: parsing and decoding the
    // signature header, no HMAC and no comparison). What separates the classes here is how
    // public header bytes are handled, not secret material: the baseline for the first run.
    let parse_only = measure(samples, seed, &correct, &classes, |headers, _| {
        verifier.precheck(headers).is_ok()
    });
    let parse_t = report(
        "header checks only, Verifier::precheck (no HMAC, no comparison); classes as above",
        &parse_only,
    );
    drop(parse_only);
    let control = measure(samples, seed, &correct, &classes, |headers, body| {
        leaky.verify(headers, body)
    });
    let control_t = report(
        "positive control: same decoding and HMAC, short-circuiting compare; classes as above",
        &control,
    );

    println!();
    println!(
        "max |t|: hookverify {real_t:.2}; A/A {aa_t:.2}; header checks only {parse_t:.2}; \
         leaky control {control_t:.2} (threshold {THRESHOLD})"
    );
    if control_t < THRESHOLD {
        println!(
            "the control's leak was NOT detected: this run is too noisy or too short to say \
             anything about hookverify; rerun with more samples on a quieter machine"
        );
    }
    if aa_t >= THRESHOLD {
        println!(
            "the A/A run crossed the threshold with nothing to find: on this machine |t| up to \
             about {aa_t:.0} is the harness's own noise, not a leak"
        );
    }
    ExitCode::SUCCESS
}
