//! The verifier: headers first, then the window, then the HMAC.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hmac::Mac;
use http::{HeaderMap, HeaderName};
use time::{Duration, OffsetDateTime};

use crate::clock::{Clock, SystemClock};
use crate::delivery::{DeliveryId, Verified};
use crate::error::{ConfigError, Error};
use crate::scheme::{HeaderNames, Scheme};
use crate::secret::{KeyedSecret, Secret};
use crate::signature::{Candidates, Carried, Signatures, Tag};
use crate::stream::BodyVerifier;
use crate::timestamp::{self, MAX_TIMESTAMP_LEN, UnixNanos};

/// The default tolerance: five minutes either way.
pub const DEFAULT_TOLERANCE: Duration = Duration::seconds(300);

/// The largest tolerance accepted: a day. Beyond it a captured request stays replayable for
/// longer than any store is asked to remember it.
pub const MAX_TOLERANCE: Duration = Duration::days(1);

/// Checks that a delivery is genuine (its signature matches a configured secret) and fresh (its
/// timestamp is inside the tolerance window).
///
/// Cheap to clone (one `Arc`); build it once and share it. Every secret is keyed once, at
/// [`build`](VerifierBuilder::build); [`verify`](Verifier::verify) does not allocate.
///
/// ```
/// use hookverify::{Signer, Verifier};
///
/// let verifier = Verifier::builder().secret("current", "whsec_example").build()?;
/// let headers = Signer::new("whsec_example")?.sign("dlv_1", b"{}").header_map()?;
/// let verified = verifier.verify(&headers, b"{}")?;
/// assert_eq!(verified.secret_label(), "current");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    secrets: Box<[KeyedSecret]>,
    tolerance: Duration,
    /// The tolerance in nanoseconds, as the window check compares it.
    tolerance_nanos: u128,
    clock: Arc<dyn Clock>,
    scheme: Scheme,
    /// Index of the secret that matched last: tried first, since during a rotation most
    /// deliveries are signed with the same one.
    last_match: AtomicUsize,
}

/// The three header values, for callers that do not hold an [`http::HeaderMap`].
///
/// Rejecting a repeated header is then the caller's job: pass the value only if it occurred
/// once.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeaderValues<'a> {
    /// The signature header's value.
    pub signature: Option<&'a [u8]>,
    /// The timestamp header's value, exactly as received.
    pub timestamp: Option<&'a [u8]>,
    /// The delivery id header's value.
    pub delivery_id: Option<&'a [u8]>,
}

/// A request whose headers passed the cheap checks (present, well formed, inside the window).
///
/// Owns what it needs, so the body can be read afterwards; finish with
/// [`Verifier::verify_body`]. Nothing here is trusted until then.
#[derive(Clone)]
pub struct Precheck {
    signatures: Signatures,
    timestamp_raw: [u8; MAX_TIMESTAMP_LEN],
    timestamp_len: usize,
    timestamp: UnixNanos,
    delivery_id: Option<DeliveryId>,
}

/// What [`Verifier::check`] passed, still borrowed from the headers.
struct Checked<'a> {
    signatures: Carried<'a>,
    timestamp_raw: &'a [u8],
    timestamp: UnixNanos,
    /// Validated.
    delivery_id: Option<&'a [u8]>,
}

/// Header maps with at most this many values are scanned once for the three names; larger
/// ones are looked up by name. Hashing a name costs about as much as comparing eight.
const SCAN_LIMIT: usize = 24;

impl Precheck {
    /// The delivery id header, if present (unverified until the body is).
    pub fn delivery_id(&self) -> Option<&DeliveryId> {
        self.delivery_id.as_ref()
    }

    /// The timestamp header, parsed (unverified until the body is).
    pub fn timestamp(&self) -> OffsetDateTime {
        self.timestamp.to_datetime()
    }

    pub(crate) fn unix_nanos(&self) -> UnixNanos {
        self.timestamp
    }

    pub(crate) fn timestamp_raw(&self) -> &[u8] {
        &self.timestamp_raw[..self.timestamp_len]
    }

    pub(crate) fn signatures(&self) -> &Signatures {
        &self.signatures
    }
}

impl fmt::Debug for Precheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Precheck")
            .field("delivery_id", &self.delivery_id)
            .field("timestamp", &self.timestamp())
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Starts a configuration with the defaults: `X-Agent-*` headers, a 300 s tolerance, the
    /// system clock, and no secret yet.
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder::default()
    }

    /// Verifies a request from its headers and its raw body bytes (as received: never a
    /// re-encoded or decoded form).
    ///
    /// The result borrows the delivery id from `headers` and the label from the verifier.
    pub fn verify<'a>(
        &'a self,
        headers: &'a HeaderMap,
        body: &[u8],
    ) -> Result<Verified<'a>, Error> {
        self.verify_values(self.header_values(headers)?, body)
    }

    /// [`verify`](Self::verify) over plain header values.
    pub fn verify_values<'a>(
        &'a self,
        values: HeaderValues<'a>,
        body: &[u8],
    ) -> Result<Verified<'a>, Error> {
        // Borrowed all the way, the result too: nothing is copied out of the headers.
        let checked = self.check(values)?;
        let (index, tag) = self.find_match(&checked.signatures, checked.timestamp_raw, body)?;
        Ok(self.verified(
            index,
            tag,
            checked.delivery_id,
            checked.timestamp,
            checked.timestamp_raw,
        ))
    }

    /// The checks that need no body: headers present, single and well formed, timestamp inside
    /// the window. Run it before reading the body, so that a stale or malformed request costs
    /// nothing more.
    pub fn precheck(&self, headers: &HeaderMap) -> Result<Precheck, Error> {
        self.precheck_values(self.header_values(headers)?)
    }

    /// [`precheck`](Self::precheck) over plain header values.
    pub fn precheck_values(&self, values: HeaderValues<'_>) -> Result<Precheck, Error> {
        let checked = self.check(values)?;
        // `timestamp::parse` rejected anything longer than the buffer.
        let mut raw = [0; MAX_TIMESTAMP_LEN];
        raw[..checked.timestamp_raw.len()].copy_from_slice(checked.timestamp_raw);
        Ok(Precheck {
            signatures: checked.signatures.to_signatures(),
            timestamp_raw: raw,
            timestamp_len: checked.timestamp_raw.len(),
            timestamp: checked.timestamp,
            delivery_id: checked.delivery_id.map(DeliveryId::from_checked),
        })
    }

    /// Checks the body of a prechecked request against the configured secrets, the one that
    /// matched last first. The body is hashed once per secret tried.
    ///
    /// The result does not depend on that order: when the carried signatures match several
    /// secrets, the label reported is that of the first one configured.
    pub fn verify_body<'a>(
        &'a self,
        precheck: &'a Precheck,
        body: &[u8],
    ) -> Result<Verified<'a>, Error> {
        let (index, tag) = self.find_match(&precheck.signatures, precheck.timestamp_raw(), body)?;
        Ok(self.verified(
            index,
            tag,
            precheck.delivery_id.as_ref().map(DeliveryId::as_bytes),
            precheck.timestamp,
            precheck.timestamp_raw(),
        ))
    }

    /// The three header values, each of which may occur at most once.
    #[inline(always)]
    fn header_values<'a>(&self, headers: &'a HeaderMap) -> Result<HeaderValues<'a>, Error> {
        let names = &self.inner.scheme.names;
        let wanted = [&names.signature, &names.timestamp, &names.delivery_id];
        let mut found: [Option<&[u8]>; 3] = [None; 3];
        let mut repeated = [false; 3];
        if headers.len() <= SCAN_LIMIT {
            // One pass, comparing names: cheaper than hashing three names into a small map.
            for (name, value) in headers {
                if let Some(slot) = wanted.iter().position(|wanted| *wanted == name) {
                    repeated[slot] |= found[slot].is_some();
                    found[slot] = Some(value.as_bytes());
                }
            }
        } else {
            for (slot, name) in wanted.into_iter().enumerate() {
                let mut values = headers.get_all(name).iter();
                found[slot] = values.next().map(http::HeaderValue::as_bytes);
                repeated[slot] = values.next().is_some();
            }
        }
        let reason = "repeated";
        if repeated[0] {
            return Err(Error::MalformedSignature {
                header: names.signature.clone(),
                reason,
            });
        }
        if repeated[1] {
            return Err(Error::MalformedTimestamp {
                header: names.timestamp.clone(),
                reason,
            });
        }
        if repeated[2] {
            return Err(Error::MalformedDeliveryId {
                header: names.delivery_id.clone(),
                reason,
            });
        }
        let [signature, timestamp, delivery_id] = found;
        Ok(HeaderValues {
            signature,
            timestamp,
            delivery_id,
        })
    }

    /// Presence, form and window, in that order; borrows from the headers.
    #[inline(always)]
    fn check<'a>(&self, values: HeaderValues<'a>) -> Result<Checked<'a>, Error> {
        let names = &self.inner.scheme.names;
        let missing = |header: &HeaderName| Error::MissingHeader {
            header: header.clone(),
        };
        let signature = values.signature.ok_or_else(|| missing(&names.signature))?;
        let timestamp_raw = values.timestamp.ok_or_else(|| missing(&names.timestamp))?;

        let signatures = self
            .inner
            .scheme
            .parse_signatures(signature)
            .map_err(|reason| Error::MalformedSignature {
                header: names.signature.clone(),
                reason,
            })?;
        let timestamp =
            timestamp::parse(timestamp_raw).map_err(|reason| Error::MalformedTimestamp {
                header: names.timestamp.clone(),
                reason,
            })?;
        if let Some(id) = values.delivery_id {
            DeliveryId::check(id).map_err(|reason| Error::MalformedDeliveryId {
                header: names.delivery_id.clone(),
                reason,
            })?;
        }

        self.check_window(timestamp)?;
        Ok(Checked {
            signatures,
            timestamp_raw,
            timestamp,
            delivery_id: values.delivery_id,
        })
    }

    /// The secret whose tag one of the carried signatures matches, trying the one that matched
    /// last first; remembers it for next time.
    #[inline(always)]
    fn find_match(
        &self,
        signatures: &impl Candidates,
        timestamp_raw: &[u8],
        body: &[u8],
    ) -> Result<(usize, Tag), Error> {
        let secrets = &self.inner.secrets;
        let matching = |index: usize| {
            let tag = self.tag(&secrets[index], timestamp_raw, body);
            signatures.matches(&tag).then_some((index, tag))
        };
        // Always in range: only the index of a secret that matched is ever stored.
        let hint = self.inner.last_match.load(Ordering::Relaxed);
        let found = match matching(hint) {
            // One carried signature: no earlier secret matches it too. Two secrets can only agree
            // on a MAC if their keys are equivalent, and then the earlier one matched every
            // delivery the later one did, so the hint never rests on the later one.
            Some(found) if signatures.count() == 1 => Some(found),
            // Several: an earlier secret may match another one, and it takes precedence.
            Some(found) => (0..hint).find_map(matching).or(Some(found)),
            None => (0..secrets.len())
                .filter(|&index| index != hint)
                .find_map(matching),
        };
        let (index, tag) = found.ok_or(Error::SignatureMismatch)?;
        if index != hint {
            self.inner.last_match.store(index, Ordering::Relaxed);
        }
        Ok((index, tag))
    }

    /// The result for the secret at `index`.
    #[inline(always)]
    pub(crate) fn verified<'a>(
        &'a self,
        index: usize,
        tag: Tag,
        delivery_id: Option<&'a [u8]>,
        timestamp: UnixNanos,
        timestamp_raw: &'a [u8],
    ) -> Verified<'a> {
        Verified::new(
            delivery_id,
            timestamp,
            timestamp_raw,
            &self.inner.secrets[index].label,
            tag,
        )
    }

    /// Checks a verified delivery's timestamp against the window again, now: a body may arrive
    /// long after the headers were checked.
    pub(crate) fn check_window(&self, timestamp: UnixNanos) -> Result<(), Error> {
        let drift = timestamp::drift(self.inner.clock.unix_nanos(), timestamp.0);
        if timestamp::within(drift, self.inner.tolerance_nanos) {
            Ok(())
        } else {
            Err(Error::TimestampOutOfTolerance {
                drift: timestamp::drift_duration(drift),
                tolerance: self.inner.tolerance,
            })
        }
    }

    /// Starts verifying a body that arrives in chunks (see [`BodyVerifier`]).
    pub fn stream(&self, precheck: Precheck) -> BodyVerifier {
        BodyVerifier::new(self, precheck)
    }

    pub(crate) fn keyed_secrets(&self) -> &[KeyedSecret] {
        &self.inner.secrets
    }

    pub(crate) fn scheme(&self) -> &Scheme {
        &self.inner.scheme
    }

    /// Remembers which secret matched, to try it first next time.
    pub(crate) fn note_match(&self, index: usize) {
        if self.inner.last_match.load(Ordering::Relaxed) != index {
            self.inner.last_match.store(index, Ordering::Relaxed);
        }
    }

    /// The tolerance window, either way.
    pub fn tolerance(&self) -> Duration {
        self.inner.tolerance
    }

    /// The clock the window is checked against.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The configured header names.
    pub fn header_names(&self) -> &HeaderNames {
        &self.inner.scheme.names
    }

    #[inline(always)]
    fn tag(&self, secret: &KeyedSecret, timestamp: &[u8], body: &[u8]) -> Tag {
        let mut mac = secret.mac();
        self.inner.scheme.begin_message(&mut mac, timestamp);
        mac.update(body);
        Tag::from_bytes(mac.finalize().into_bytes().into())
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels: Vec<&str> = self.inner.secrets.iter().map(|s| &*s.label).collect();
        f.debug_struct("Verifier")
            .field("secrets", &labels)
            .field("tolerance", &self.inner.tolerance)
            .field("clock", &self.inner.clock)
            .field("header_names", &self.inner.scheme.names)
            .finish()
    }
}

/// Configuration for a [`Verifier`].
#[derive(Debug)]
pub struct VerifierBuilder {
    secrets: Vec<Secret>,
    tolerance: Duration,
    clock: Arc<dyn Clock>,
    names: HeaderNames,
}

impl Default for VerifierBuilder {
    fn default() -> Self {
        Self {
            secrets: Vec::new(),
            tolerance: DEFAULT_TOLERANCE,
            clock: Arc::new(SystemClock),
            names: HeaderNames::default(),
        }
    }
}

impl VerifierBuilder {
    /// Adds a secret. Add several during a rotation: a delivery signed with any of them
    /// verifies, and the result names the one that matched.
    #[must_use]
    pub fn secret(mut self, label: impl Into<Arc<str>>, value: impl Into<Vec<u8>>) -> Self {
        self.secrets.push(Secret::new(label, value));
        self
    }

    /// Adds secrets built elsewhere.
    #[must_use]
    pub fn secrets(mut self, secrets: impl IntoIterator<Item = Secret>) -> Self {
        self.secrets.extend(secrets);
        self
    }

    /// How far a timestamp may be from now, either way (default 300 s, bounds included).
    #[must_use]
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Where "now" comes from (default: the system clock).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The header names (default `X-Agent-Signature`, `X-Agent-Timestamp`,
    /// `X-Agent-Delivery-Id`).
    #[must_use]
    pub fn header_names(mut self, names: HeaderNames) -> Self {
        self.names = names;
        self
    }

    /// Keys every secret and checks the configuration.
    pub fn build(self) -> Result<Verifier, ConfigError> {
        if self.secrets.is_empty() {
            return Err(ConfigError::NoSecrets);
        }
        if self.tolerance.is_negative() {
            return Err(ConfigError::NegativeTolerance);
        }
        if self.tolerance > MAX_TOLERANCE {
            return Err(ConfigError::OutOfRange {
                setting: "tolerance",
                allowed: "from 0 to 1 day".into(),
            });
        }
        let mut keyed: Vec<KeyedSecret> = Vec::with_capacity(self.secrets.len());
        for secret in self.secrets {
            if keyed.iter().any(|k| *k.label == *secret.label()) {
                return Err(ConfigError::DuplicateLabel {
                    label: secret.label().to_owned(),
                });
            }
            keyed.push(secret.into_keyed()?);
        }
        Ok(Verifier {
            inner: Arc::new(Inner {
                secrets: keyed.into_boxed_slice(),
                tolerance: self.tolerance,
                tolerance_nanos: self.tolerance.whole_nanoseconds().unsigned_abs(),
                clock: self.clock,
                scheme: Scheme::agent(self.names),
                last_match: AtomicUsize::new(0),
            }),
        })
    }
}
