//! The verifier: headers first, then the window, then the HMAC.

use std::fmt;
use std::sync::Arc;

use http::{HeaderMap, HeaderName};
use time::{Duration, OffsetDateTime};

use crate::clock::{Clock, SystemClock};
use crate::delivery::DeliveryId;
use crate::error::{ConfigError, Malformed, VerifyError};
use crate::method::{HeaderNames, Method};
use crate::secret::{BodyCheck, KeyedSecret, Secret};
use crate::signature::{Signatures, Tag};
use crate::timestamp::{self, Timestamp};
use crate::verified::Verified;

/// The default tolerance: five minutes either way.
pub const DEFAULT_TOLERANCE: Duration = Duration::seconds(300);

/// The largest tolerance accepted: a day. Beyond it a captured request stays replayable for
/// longer than any store is asked to remember it.
pub const MAX_TOLERANCE: Duration = Duration::days(1);

/// Checks that a delivery is genuine (its signature matches a configured secret) and fresh (its
/// timestamp is inside the tolerance window), for one signing [`Method`].
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
    method: Method,
    names: HeaderNames,
    /// Svix's spelling of Standard Webhooks' headers, read when the primary ones are absent.
    alias: Option<HeaderNames>,
}

/// The three header values, for callers that do not hold an [`http::HeaderMap`] (only those the
/// method uses are read).
///
/// Rejecting a repeated header is then the caller's job: pass the value only if it occurred
/// once.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeaderValues<'a> {
    /// The credential header's value (the signature list, or `Authorization`).
    pub signature: Option<&'a [u8]>,
    /// The timestamp header's value, exactly as received.
    pub timestamp: Option<&'a [u8]>,
    /// The delivery id header's value.
    pub delivery_id: Option<&'a [u8]>,
}

/// A request whose headers passed the checks that need no body: present, single, well formed,
/// a timestamp inside the window, and for the methods that sign no body, the credential.
///
/// Owns what it needs, so the body can be read afterwards; feed it to a
/// [`BodyVerifier`](crate::BodyVerifier). Nothing here is trusted until the body verified.
#[derive(Clone)]
pub struct Precheck {
    signatures: Signatures,
    timestamp: Option<Timestamp>,
    delivery_id: Option<DeliveryId>,
    /// For the methods that sign no body: the secret the credential matched.
    matched: Option<usize>,
}

/// What [`Verifier::check`] found in the headers, the delivery id still borrowed from them:
/// `verify` copies it once, into its result.
struct Checked<'a> {
    timestamp: Option<Timestamp>,
    delivery_id: Option<&'a [u8]>,
    matched: Option<usize>,
}

impl Precheck {
    /// The delivery id header, if present (unverified until the body is).
    pub fn delivery_id(&self) -> Option<&DeliveryId> {
        self.delivery_id.as_ref()
    }

    fn id(&self) -> Option<&[u8]> {
        self.delivery_id.as_ref().map(DeliveryId::as_bytes)
    }

    /// The timestamp, parsed, in UTC (unverified until the body is); `None` for methods
    /// without one.
    pub fn timestamp(&self) -> Option<OffsetDateTime> {
        self.timestamp.as_ref().map(Timestamp::at)
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
    /// Starts a configuration with the defaults: the `hmac_sha256` method and its `X-Agent-*`
    /// headers, a 300 s tolerance, the system clock, and no secret yet.
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder::default()
    }

    /// Verifies a request from its headers and its raw body bytes (as received: never a
    /// re-encoded or decoded form).
    ///
    /// The checks run cheapest first: headers present, single and well formed, the timestamp
    /// inside the window, and only then the signature, once per secret in configuration order
    /// until one matches.
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
        let mut signatures = Signatures::default();
        let checked = self.check(values, &mut signatures)?;
        let (id, timestamp) = (checked.delivery_id, checked.timestamp.as_ref());
        if let Some(secret) = checked.matched {
            return Ok(self.verified(id, timestamp, secret, None));
        }
        let prefix = self.signed_prefix(id, timestamp);
        for (index, secret) in self.inner.secrets.iter().enumerate() {
            if let Some(tag) = secret.check_message(prefix, body, &signatures) {
                return Ok(self.verified(id, timestamp, index, Some(tag)));
            }
        }
        Err(VerifyError::SignatureMismatch)
    }

    /// The checks that need no body: headers present, single and well formed, timestamp inside
    /// the window, and for the methods that sign no body, the credential itself. Run it before
    /// reading the body, so that a stale, malformed or (for a token) unauthorized request costs
    /// nothing more; then hand the body to a [`BodyVerifier`](crate::BodyVerifier).
    pub fn precheck(&self, headers: &HeaderMap) -> Result<Precheck, VerifyError> {
        let mut signatures = Signatures::default();
        let checked = self.check(self.header_values(headers)?, &mut signatures)?;
        Ok(Precheck {
            signatures,
            timestamp: checked.timestamp,
            delivery_id: checked.delivery_id.map(DeliveryId::from_checked),
            matched: checked.matched,
        })
    }

    /// The checks of the signed bytes, with the index of the secret each belongs to, in
    /// configuration order, each already fed what the method signs before the body: the body
    /// goes in next. None for the methods that sign no body.
    pub(crate) fn body_checks<'a>(
        &'a self,
        precheck: &'a Precheck,
    ) -> impl Iterator<Item = (usize, BodyCheck)> + 'a {
        let prefix = self.signed_prefix(precheck.id(), precheck.timestamp.as_ref());
        self.inner
            .secrets
            .iter()
            .enumerate()
            .flat_map(move |(index, secret)| {
                secret
                    .body_checks(prefix, &precheck.signatures)
                    .map(move |check| (index, check))
            })
    }

    /// What the method signs before the body, from the request's own id and timestamp.
    fn signed_prefix<'a>(
        &self,
        id: Option<&'a [u8]>,
        timestamp: Option<&'a Timestamp>,
    ) -> [&'a [u8]; 4] {
        let timestamp = timestamp.map_or(&[][..], Timestamp::raw);
        self.inner
            .method
            .signed_prefix(id.unwrap_or_default(), timestamp)
    }

    /// The end of a streamed body: the delivery verified with the first secret one of the
    /// checks (each fed the whole body) matches.
    pub(crate) fn first_match(
        &self,
        precheck: &Precheck,
        checks: impl IntoIterator<Item = (usize, BodyCheck)>,
    ) -> Result<Verified, VerifyError> {
        let (id, timestamp) = (precheck.id(), precheck.timestamp.as_ref());
        if let Some(secret) = precheck.matched {
            return Ok(self.verified(id, timestamp, secret, None));
        }
        for (secret, check) in checks {
            if let Some(tag) = check.verdict(&precheck.signatures) {
                return Ok(self.verified(id, timestamp, secret, Some(tag)));
            }
        }
        Err(VerifyError::SignatureMismatch)
    }

    #[inline]
    fn verified(
        &self,
        id: Option<&[u8]>,
        timestamp: Option<&Timestamp>,
        secret: usize,
        tag: Option<Tag>,
    ) -> Verified {
        let label = self
            .inner
            .secrets
            .get(secret)
            .map(|secret| Arc::clone(&secret.label))
            .unwrap_or_else(|| Arc::from(""));
        Verified::new(
            self.inner.method,
            id.map(DeliveryId::from_checked),
            timestamp.copied(),
            label,
            tag,
        )
    }

    /// The header values the method reads, each of which may occur at most once; for Standard
    /// Webhooks, Svix's names when the request carries no `webhook-signature`.
    fn header_values<'a>(&self, headers: &'a HeaderMap) -> Result<HeaderValues<'a>, VerifyError> {
        let values = self.lookup(&self.inner.names, headers)?;
        match &self.inner.alias {
            Some(alias) if values.signature.is_none() => self.lookup(alias, headers),
            _ => Ok(values),
        }
    }

    /// One pass over the headers, comparing names: three lookups by name would hash each
    /// name, which costs more than comparing it with the dozen names a request carries. The
    /// HTTP server bounds their number.
    fn lookup<'a>(
        &self,
        names: &HeaderNames,
        headers: &'a HeaderMap,
    ) -> Result<HeaderValues<'a>, VerifyError> {
        let signature = (self.inner.method != Method::None).then_some(&names.signature);
        let wanted = [
            signature,
            names.timestamp.as_ref(),
            names.delivery_id.as_ref(),
        ];
        let mut found: [Option<&[u8]>; 3] = [None; 3];
        let mut repeated = [false; 3];
        for (name, value) in headers {
            if let Some(slot) = wanted.iter().position(|wanted| *wanted == Some(name)) {
                repeated[slot] |= found[slot].is_some();
                found[slot] = Some(value.as_bytes());
            }
        }
        if let Some(slot) = repeated.iter().position(|&repeated| repeated) {
            let header = wanted[slot].cloned().unwrap_or(names.signature.clone());
            let reason = Malformed::Repeated;
            return Err(match slot {
                0 => VerifyError::MalformedSignature { header, reason },
                1 => VerifyError::MalformedTimestamp { header, reason },
                _ => VerifyError::MalformedDeliveryId { header, reason },
            });
        }
        let [signature, timestamp, delivery_id] = found;
        Ok(HeaderValues {
            signature,
            timestamp,
            delivery_id,
        })
    }

    /// Presence, form, window and (for the methods that sign no body) the credential, in that
    /// order.
    #[inline]
    fn check<'a>(
        &self,
        values: HeaderValues<'a>,
        signatures: &mut Signatures,
    ) -> Result<Checked<'a>, VerifyError> {
        let method = self.inner.method;
        let names = &self.inner.names;
        let missing = |header: &HeaderName| VerifyError::MissingHeader {
            header: header.clone(),
        };
        let signature = match method {
            Method::None => None,
            _ => Some(values.signature.ok_or_else(|| missing(&names.signature))?),
        };
        let timestamp = match (&names.timestamp, method.has_timestamp()) {
            (Some(header), true) => {
                Some((header, values.timestamp.ok_or_else(|| missing(header))?))
            }
            _ => None,
        };

        let signed_timestamp = match signature {
            Some(value) => method
                .parse_credentials(value, signatures)
                .map_err(|reason| VerifyError::MalformedSignature {
                    header: names.signature.clone(),
                    reason,
                })?,
            None => None,
        };
        // Stripe's timestamp is inside the signature header.
        let timestamp = timestamp.or(signed_timestamp.map(|value| (&names.signature, value)));
        let timestamp = timestamp
            .map(|(header, value)| {
                Timestamp::parse(value).map_err(|reason| VerifyError::MalformedTimestamp {
                    header: header.clone(),
                    reason,
                })
            })
            .transpose()?;
        let delivery_id = match (&names.delivery_id, values.delivery_id) {
            (Some(header), Some(value)) => {
                DeliveryId::check(value).map_err(|reason| VerifyError::MalformedDeliveryId {
                    header: header.clone(),
                    reason,
                })?;
                Some(value)
            }
            _ => None,
        };

        if let Some(timestamp) = &timestamp {
            self.check_window(timestamp.unix_nanos())?;
        }
        let matched = match method.signs_body() {
            true => None,
            false => Some(
                self.inner
                    .secrets
                    .iter()
                    .position(|secret| secret.matches_credential(signatures))
                    .ok_or(VerifyError::SignatureMismatch)?,
            ),
        };
        Ok(Checked {
            timestamp,
            delivery_id,
            matched,
        })
    }

    /// Checks a timestamp against the window, now. The receiver asks again at the claim: a
    /// body may arrive long after its headers were checked.
    pub(crate) fn check_window(&self, unix_nanos: i128) -> Result<(), VerifyError> {
        let now = self.inner.clock.unix_nanos();
        let tolerance = self.inner.tolerance;
        // In nanoseconds: the drift as a `Duration` (a division) is built only for the error.
        let nanos = now.saturating_sub(unix_nanos).unsigned_abs();
        if nanos <= tolerance.whole_nanoseconds().unsigned_abs() {
            Ok(())
        } else {
            let drift = timestamp::drift(now, unix_nanos);
            Err(VerifyError::TimestampOutOfTolerance { drift, tolerance })
        }
    }

    /// A delivery without the id its method dedupes on: the id header is missing. (`build`
    /// refuses header names without one for such a method.)
    pub(crate) fn missing_delivery_id(&self) -> VerifyError {
        let names = &self.inner.names;
        VerifyError::MissingHeader {
            header: names.delivery_id.clone().unwrap_or(names.signature.clone()),
        }
    }

    /// The signing method.
    pub fn method(&self) -> Method {
        self.inner.method
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
        &self.inner.names
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels: Vec<&str> = self.inner.secrets.iter().map(|s| &*s.label).collect();
        f.debug_struct("Verifier")
            .field("method", &self.inner.method)
            .field("secrets", &labels)
            .field("tolerance", &self.inner.tolerance)
            .field("clock", &self.inner.clock)
            .field("header_names", &self.inner.names)
            .finish()
    }
}

/// Configuration for a [`Verifier`].
#[derive(Debug)]
pub struct VerifierBuilder {
    secrets: Vec<Secret>,
    tolerance: Duration,
    clock: Arc<dyn Clock>,
    method: Method,
    names: Option<HeaderNames>,
}

impl Default for VerifierBuilder {
    fn default() -> Self {
        Self {
            secrets: Vec::new(),
            tolerance: DEFAULT_TOLERANCE,
            clock: Arc::new(SystemClock),
            method: Method::default(),
            names: None,
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

    /// The signing method (default [`Method::HmacSha256`]). Secrets are read as it says; see
    /// [`Secret`].
    #[must_use]
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// The header names (default: the method's own, [`Method::default_header_names`]).
    #[must_use]
    pub fn header_names(mut self, names: HeaderNames) -> Self {
        self.names = Some(names);
        self
    }

    /// Keys every secret and checks the configuration.
    pub fn build(self) -> Result<Verifier, ConfigError> {
        let method = self.method;
        if self.tolerance.is_negative() {
            return Err(ConfigError::NegativeTolerance);
        }
        if self.tolerance > MAX_TOLERANCE {
            return Err(ConfigError::OutOfRange {
                setting: "tolerance",
                allowed: "from 0 to 1 day".into(),
            });
        }
        let alias = match self.names {
            Some(_) => None,
            None => method.alias_header_names(),
        };
        let names = self.names.unwrap_or_else(|| method.default_header_names());
        let missing = |header| ConfigError::MissingHeaderName { method, header };
        let timestamp_header = method.has_timestamp() && method != Method::Stripe;
        match (timestamp_header, &names.timestamp) {
            (true, None) => return Err(missing("timestamp")),
            (false, Some(_)) => {
                return Err(ConfigError::HeaderNotUsed {
                    method,
                    header: "timestamp",
                });
            }
            _ => {}
        }
        if method.dedupes_on_id() && names.delivery_id.is_none() {
            return Err(missing("delivery id"));
        }
        let secrets = match (method, self.secrets.first()) {
            (Method::None, Some(secret)) => {
                return Err(ConfigError::SecretWithoutSigning {
                    label: secret.label().to_owned(),
                });
            }
            (Method::None, None) => vec![KeyedSecret::unsigned()],
            (_, None) => return Err(ConfigError::NoSecrets { method }),
            (_, Some(_)) => {
                let mut keyed: Vec<KeyedSecret> = Vec::with_capacity(self.secrets.len());
                for secret in self.secrets {
                    if keyed.iter().any(|k| *k.label == *secret.label()) {
                        return Err(ConfigError::DuplicateLabel {
                            label: secret.label().to_owned(),
                        });
                    }
                    keyed.push(secret.into_keyed(method)?);
                }
                keyed
            }
        };
        Ok(Verifier {
            inner: Arc::new(Inner {
                secrets: secrets.into_boxed_slice(),
                tolerance: self.tolerance,
                clock: self.clock,
                method,
                names,
                alias,
            }),
        })
    }
}
