//! The verifier: headers first, then the window, then the HMAC.

use std::fmt;
use std::sync::Arc;

use hmac::Mac;
use http::{HeaderMap, HeaderName};
use time::{Duration, OffsetDateTime};

use crate::clock::{Clock, SystemClock};
use crate::delivery::DeliveryId;
use crate::error::{ConfigError, Malformed, VerifyError};
use crate::scheme::{HeaderNames, Scheme};
use crate::secret::{HmacSha256, KeyedSecret, Secret};
use crate::signature::{Signatures, Tag};
use crate::timestamp::{self, Timestamp};
use crate::verified::Verified;

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
/// Two ways in, one check underneath: [`verify`](Self::verify) for a body already in memory,
/// and [`precheck`](Self::precheck) then a [`BodyVerifier`](crate::BodyVerifier) for a body
/// that arrives in chunks.
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
    clock: Arc<dyn Clock>,
    scheme: Scheme,
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

/// A request whose headers passed the checks that need no body: present, single, well formed,
/// and a timestamp inside the window.
///
/// Owns what it needs, so the body can be read afterwards; feed it to a
/// [`BodyVerifier`](crate::BodyVerifier). Nothing here is trusted until the body verified.
#[derive(Clone)]
pub struct Precheck {
    signatures: Signatures,
    timestamp: Timestamp,
    delivery_id: Option<DeliveryId>,
}

impl Precheck {
    /// The delivery id header, if present (unverified until the body is).
    pub fn delivery_id(&self) -> Option<&DeliveryId> {
        self.delivery_id.as_ref()
    }

    /// The timestamp header, parsed, in UTC (unverified until the body is).
    pub fn timestamp(&self) -> OffsetDateTime {
        self.timestamp.at()
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
    /// The checks run cheapest first: headers present, single and well formed, the timestamp
    /// inside the window, and only then the HMAC, once per secret in configuration order until
    /// one matches.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<Verified, VerifyError> {
        self.verify_values(self.header_values(headers)?, body)
    }

    /// [`verify`](Self::verify) over plain header values, for servers that do not use `http`
    /// (`verify` itself reads the three values out of the map, then calls this).
    pub fn verify_values(
        &self,
        values: HeaderValues<'_>,
        body: &[u8],
    ) -> Result<Verified, VerifyError> {
        let precheck = self.check(values)?;
        let tags = self.begin_messages(&precheck).map(|mut mac| {
            mac.update(body);
            Tag::from_mac(mac)
        });
        self.matching_secret(&precheck, tags)
    }

    /// The checks that need no body: headers present, single and well formed, timestamp inside
    /// the window. Run it before reading the body, so that a stale or malformed request costs
    /// nothing more; then hand the body to a [`BodyVerifier`](crate::BodyVerifier).
    pub fn precheck(&self, headers: &HeaderMap) -> Result<Precheck, VerifyError> {
        self.check(self.header_values(headers)?)
    }

    /// One MAC per configured secret, in configuration order, each keyed and already fed what
    /// the scheme puts before the body: the body goes in next.
    pub(crate) fn begin_messages(&self, precheck: &Precheck) -> impl Iterator<Item = HmacSha256> {
        self.inner.secrets.iter().map(|secret| {
            let mut mac = secret.mac();
            self.inner
                .scheme
                .begin_message(&mut mac, precheck.timestamp.raw());
            mac
        })
    }

    /// The step both ways in share: takes the tags of the whole message under each configured
    /// secret, in configuration order (computed lazily: the rest are not needed once one
    /// matches), and verifies the delivery with the first one that a carried signature equals.
    #[inline]
    pub(crate) fn matching_secret(
        &self,
        precheck: &Precheck,
        tags: impl IntoIterator<Item = Tag>,
    ) -> Result<Verified, VerifyError> {
        for (secret, tag) in self.inner.secrets.iter().zip(tags) {
            if precheck.signatures.contains(&tag) {
                return Ok(Verified::new(
                    precheck.delivery_id,
                    precheck.timestamp,
                    Arc::clone(&secret.label),
                    tag,
                ));
            }
        }
        Err(VerifyError::SignatureMismatch)
    }

    /// The three header values, each of which may occur at most once.
    ///
    /// One pass over the headers, comparing names: three lookups by name would hash each
    /// name, which costs more than comparing it with the dozen names a request carries. The
    /// HTTP server bounds their number.
    fn header_values<'a>(&self, headers: &'a HeaderMap) -> Result<HeaderValues<'a>, VerifyError> {
        let names = &self.inner.scheme.names;
        let wanted = [&names.signature, &names.timestamp, &names.delivery_id];
        let mut found: [Option<&[u8]>; 3] = [None; 3];
        let mut repeated = [false; 3];
        for (name, value) in headers {
            if let Some(slot) = wanted.iter().position(|wanted| *wanted == name) {
                repeated[slot] |= found[slot].is_some();
                found[slot] = Some(value.as_bytes());
            }
        }
        let reason = Malformed::Repeated;
        if repeated[0] {
            let header = names.signature.clone();
            return Err(VerifyError::MalformedSignature { header, reason });
        }
        if repeated[1] {
            let header = names.timestamp.clone();
            return Err(VerifyError::MalformedTimestamp { header, reason });
        }
        if repeated[2] {
            let header = names.delivery_id.clone();
            return Err(VerifyError::MalformedDeliveryId { header, reason });
        }
        let [signature, timestamp, delivery_id] = found;
        Ok(HeaderValues {
            signature,
            timestamp,
            delivery_id,
        })
    }

    /// Presence, form and window, in that order.
    #[inline]
    fn check(&self, values: HeaderValues<'_>) -> Result<Precheck, VerifyError> {
        let names = &self.inner.scheme.names;
        let missing = |header: &HeaderName| VerifyError::MissingHeader {
            header: header.clone(),
        };
        let signature = values.signature.ok_or_else(|| missing(&names.signature))?;
        let timestamp = values.timestamp.ok_or_else(|| missing(&names.timestamp))?;

        let signatures = self
            .inner
            .scheme
            .parse_signatures(signature)
            .map_err(|reason| VerifyError::MalformedSignature {
                header: names.signature.clone(),
                reason,
            })?;
        let timestamp =
            Timestamp::parse(timestamp).map_err(|reason| VerifyError::MalformedTimestamp {
                header: names.timestamp.clone(),
                reason,
            })?;
        let delivery_id = values
            .delivery_id
            .map(DeliveryId::parse)
            .transpose()
            .map_err(|reason| VerifyError::MalformedDeliveryId {
                header: names.delivery_id.clone(),
                reason,
            })?;

        self.check_window(timestamp.unix_nanos())?;
        Ok(Precheck {
            signatures,
            timestamp,
            delivery_id,
        })
    }

    /// Checks a timestamp against the window, now. The receiver asks again at the claim: a
    /// body may arrive long after its headers were checked.
    pub(crate) fn check_window(&self, unix_nanos: i128) -> Result<(), VerifyError> {
        let drift = timestamp::drift(self.inner.clock.unix_nanos(), unix_nanos);
        let tolerance = self.inner.tolerance;
        if drift.abs() <= tolerance {
            Ok(())
        } else {
            Err(VerifyError::TimestampOutOfTolerance { drift, tolerance })
        }
    }

    pub(crate) fn scheme(&self) -> &Scheme {
        &self.inner.scheme
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

    /// How far a timestamp may be from now, either way, bounds included: 0 to
    /// [`MAX_TOLERANCE`] (a day), default 300 s.
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
                clock: self.clock,
                scheme: Scheme::agent(self.names),
            }),
        })
    }
}
