//! The signing side, for tests (yours and this crate's) and the `sign` command.

use std::fmt;
use std::sync::Arc;

use hmac::Mac;
use http::header::InvalidHeaderValue;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;
use crate::scheme::{HeaderNames, Scheme};
use crate::secret::{KeyedSecret, Secret};

/// Produces the headers a provider would send for a body.
///
/// ```
/// use hookverify::Signer;
///
/// let signed = Signer::new("whsec_example")?.sign_with_timestamp("dlv_1", "1764000000", b"{}");
/// assert!(signed.signature().starts_with("sha256="));
/// assert_eq!(signed.timestamp(), "1764000000");
/// # Ok::<(), hookverify::ConfigError>(())
/// ```
pub struct Signer {
    secret: KeyedSecret,
    clock: Arc<dyn Clock>,
    scheme: Scheme,
}

impl Signer {
    /// A signer keyed with `secret`'s bytes, on the system clock and the default header names.
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self, ConfigError> {
        Ok(Self {
            secret: Secret::new("signer", secret).into_keyed()?,
            clock: Arc::new(SystemClock),
            scheme: Scheme::agent(HeaderNames::default()),
        })
    }

    /// Where the timestamp of [`sign`](Self::sign) comes from.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The header names to emit.
    #[must_use]
    pub fn header_names(mut self, names: HeaderNames) -> Self {
        self.scheme = Scheme::agent(names);
        self
    }

    /// Signs `body` at the clock's current time, in Unix seconds.
    pub fn sign(&self, delivery_id: &str, body: &[u8]) -> SignedHeaders {
        let now = self.clock.now().unix_timestamp().to_string();
        self.sign_with_timestamp(delivery_id, &now, body)
    }

    /// Signs `body` with the timestamp text given, used as is (any form, even an invalid one,
    /// so that tests can build bad requests too).
    pub fn sign_with_timestamp(
        &self,
        delivery_id: &str,
        timestamp: &str,
        body: &[u8],
    ) -> SignedHeaders {
        let mut mac = self.secret.mac();
        self.scheme.begin_message(&mut mac, timestamp.as_bytes());
        mac.update(body);
        let tag: [u8; 32] = mac.finalize().into_bytes().into();
        SignedHeaders {
            signature: self.scheme.encode_signature(&tag),
            timestamp: timestamp.to_owned(),
            delivery_id: delivery_id.to_owned(),
            names: self.scheme.names.clone(),
        }
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("secret", &"<redacted>")
            .field("clock", &self.clock)
            .field("header_names", &self.scheme.names)
            .finish()
    }
}

/// The three header values of a signed delivery.
#[derive(Clone)]
pub struct SignedHeaders {
    signature: String,
    timestamp: String,
    delivery_id: String,
    names: HeaderNames,
}

impl SignedHeaders {
    /// The signature header's value (`sha256=<hex>`).
    pub fn signature(&self) -> &str {
        &self.signature
    }

    /// The timestamp header's value.
    pub fn timestamp(&self) -> &str {
        &self.timestamp
    }

    /// The delivery id header's value.
    pub fn delivery_id(&self) -> &str {
        &self.delivery_id
    }

    /// The headers as name/value pairs, in the order signature, timestamp, delivery id.
    pub fn pairs(&self) -> [(&HeaderName, &str); 3] {
        [
            (&self.names.signature, &self.signature),
            (&self.names.timestamp, &self.timestamp),
            (&self.names.delivery_id, &self.delivery_id),
        ]
    }

    /// The headers as a map; fails only if a value given to the signer (the delivery id or the
    /// timestamp) cannot be an HTTP header value.
    pub fn header_map(&self) -> Result<HeaderMap, InvalidHeaderValue> {
        let mut map = HeaderMap::with_capacity(3);
        for (name, value) in self.pairs() {
            let mut value = HeaderValue::from_str(value)?;
            value.set_sensitive(name == self.names.signature);
            map.insert(name.clone(), value);
        }
        Ok(map)
    }
}

impl fmt::Debug for SignedHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedHeaders")
            .field("signature", &"<redacted>")
            .field("timestamp", &self.timestamp)
            .field("delivery_id", &self.delivery_id)
            .finish()
    }
}
