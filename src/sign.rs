//! The signing side, for tests (yours and this crate's) and the `sign` command: the headers any
//! method's provider would send.

use std::fmt;
use std::sync::Arc;

use base64_simd::STANDARD;
use ed25519_dalek::Signer as _;
use http::header::InvalidHeaderValue;
use http::{HeaderMap, HeaderName, HeaderValue};
use zeroize::Zeroizing;

use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;
use crate::method::{HeaderNames, Method};
use crate::secret::{KeyedSecret, Secret};
use crate::signature::Tag;

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
///
/// Any method, with the secret read as the receiving side reads it, except for Standard
/// Webhooks' `v1a`, which signs with a private key `whsk_<base64 of the 32-byte seed>`:
///
/// ```
/// use hookverify::{Method, Signer, Verifier};
///
/// let signer = Signer::for_method(Method::StandardWebhooks, "whsk_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")?;
/// let public_key = signer.public_key().expect("an Ed25519 signer");
/// let verifier = Verifier::builder()
///     .method(Method::StandardWebhooks)
///     .secret("ed25519", public_key)
///     .build()?;
/// let headers = signer.sign("msg_1", b"{}").header_map()?;
/// assert_eq!(verifier.verify(&headers, b"{}")?.secret_label(), "ed25519");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Signer {
    method: Method,
    key: SigningKey,
    clock: Arc<dyn Clock>,
    names: HeaderNames,
}

enum SigningKey {
    /// The HMAC methods: the same keyed state a verifier holds.
    Keyed(KeyedSecret),
    Ed25519(ed25519_dalek::SigningKey),
    /// A bearer token or `user:password`, sent as is.
    Credential(Zeroizing<String>),
    Nothing,
}

impl Signer {
    /// An `hmac_sha256` signer keyed with `secret`'s bytes, on the system clock and the default
    /// header names.
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self, ConfigError> {
        Self::for_method(Method::HmacSha256, secret)
    }

    /// A signer for `method`. `none` takes an empty secret; `bearer` a token and `basic_auth`
    /// `user:password`, each visible ASCII; Standard Webhooks `whsec_…` (`v1`) or `whsk_…`
    /// (`v1a`).
    pub fn for_method(method: Method, secret: impl Into<Vec<u8>>) -> Result<Self, ConfigError> {
        let secret = Zeroizing::new(secret.into());
        let label = "signer";
        let encoding = |expected| ConfigError::SecretEncoding {
            label: label.into(),
            method,
            expected,
        };
        let key = match method {
            Method::None if secret.is_empty() => SigningKey::Nothing,
            Method::None => {
                return Err(ConfigError::SecretWithoutSigning {
                    label: label.into(),
                });
            }
            Method::Bearer | Method::BasicAuth => {
                let expected = match method {
                    Method::Bearer => "a token of visible ASCII characters",
                    _ => "user:password, in visible ASCII characters",
                };
                let text = String::from_utf8(secret.to_vec())
                    .ok()
                    .filter(|text| text.bytes().all(|b| b.is_ascii_graphic()))
                    .map(Zeroizing::new)
                    .ok_or_else(|| encoding(expected))?;
                if text.is_empty() {
                    return Err(ConfigError::EmptySecret {
                        label: label.into(),
                    });
                }
                if method == Method::BasicAuth && !text.contains(':') {
                    return Err(encoding(expected));
                }
                SigningKey::Credential(text)
            }
            Method::StandardWebhooks if secret.starts_with(b"whsk_") => {
                let seed: Zeroizing<[u8; 32]> = STANDARD
                    .decode_to_vec(&secret[5..])
                    .ok()
                    .map(Zeroizing::new)
                    // Exactly the seed: a longer value is not silently cut to its first 32 bytes.
                    .and_then(|bytes| <[u8; 32]>::try_from(&bytes[..]).ok())
                    .map(Zeroizing::new)
                    .ok_or_else(|| encoding("whsk_<base64 of a 32-byte Ed25519 seed>"))?;
                SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed))
            }
            _ => {
                let keyed = Secret::new(label, secret.to_vec()).into_keyed(method)?;
                // A `whpk_` public key verifies but cannot sign.
                if keyed.mac_tag([b""; 4], b"").is_none() {
                    return Err(encoding("whsec_<base64>, or whsk_<base64> to sign v1a"));
                }
                SigningKey::Keyed(keyed)
            }
        };
        Ok(Self {
            method,
            key,
            clock: Arc::new(SystemClock),
            names: method.default_header_names(),
        })
    }

    /// Where the timestamp of [`sign`](Self::sign) comes from.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The header names to emit (default: the method's own).
    #[must_use]
    pub fn header_names(mut self, names: HeaderNames) -> Self {
        self.names = names;
        self
    }

    /// For an Ed25519 signer, the public key a receiver verifies with: `whpk_<base64>`.
    pub fn public_key(&self) -> Option<String> {
        match &self.key {
            SigningKey::Ed25519(key) => Some(format!(
                "whpk_{}",
                STANDARD.encode_to_string(key.verifying_key().as_bytes())
            )),
            _ => None,
        }
    }

    /// Signs `body` at the clock's current time, in Unix seconds.
    pub fn sign(&self, delivery_id: &str, body: &[u8]) -> SignedHeaders {
        let now = self.clock.now().unix_timestamp().to_string();
        self.sign_with_timestamp(delivery_id, &now, body)
    }

    /// Signs `body` with the timestamp text given, used as is (any form, even an invalid one,
    /// so that tests can build bad requests too). Methods without a delivery id or a timestamp
    /// ignore the ones given.
    pub fn sign_with_timestamp(
        &self,
        delivery_id: &str,
        timestamp: &str,
        body: &[u8],
    ) -> SignedHeaders {
        let method = self.method;
        let prefix = method.signed_prefix(delivery_id.as_bytes(), timestamp.as_bytes());
        let hex = |tag: Option<Tag>| {
            tag.map(|tag| hex::encode(tag.as_bytes()))
                .unwrap_or_default()
        };
        let signature = match &self.key {
            SigningKey::Keyed(keyed) => {
                let tag = keyed.mac_tag(prefix, body);
                match method {
                    Method::HmacSha1 => format!("sha1={}", hex(tag)),
                    Method::Stripe => format!("t={timestamp},v1={}", hex(tag)),
                    Method::Slack => format!("v0={}", hex(tag)),
                    Method::StandardWebhooks => format!(
                        "v1,{}",
                        tag.map(|tag| STANDARD.encode_to_string(tag.as_bytes()))
                            .unwrap_or_default()
                    ),
                    _ => format!("sha256={}", hex(tag)),
                }
            }
            SigningKey::Ed25519(key) => {
                let message: Vec<u8> = prefix
                    .concat()
                    .into_iter()
                    .chain(body.iter().copied())
                    .collect();
                format!(
                    "v1a,{}",
                    STANDARD.encode_to_string(key.sign(&message).to_bytes())
                )
            }
            SigningKey::Credential(credential) if method == Method::BasicAuth => {
                format!("Basic {}", STANDARD.encode_to_string(credential.as_bytes()))
            }
            SigningKey::Credential(credential) => format!("Bearer {}", credential.as_str()),
            SigningKey::Nothing => String::new(),
        };

        let mut headers = Vec::with_capacity(3);
        if method != Method::None {
            headers.push((self.names.signature.clone(), signature.clone()));
        }
        let signs_timestamp = method.has_timestamp();
        if let (Some(name), true) = (&self.names.timestamp, signs_timestamp) {
            headers.push((name.clone(), timestamp.to_owned()));
        }
        let sends_id = self.names.delivery_id.is_some();
        if let Some(name) = &self.names.delivery_id {
            headers.push((name.clone(), delivery_id.to_owned()));
        }
        SignedHeaders {
            sensitive: (method != Method::None).then(|| self.names.signature.clone()),
            headers,
            signature,
            timestamp: if signs_timestamp {
                timestamp.to_owned()
            } else {
                String::new()
            },
            delivery_id: if sends_id {
                delivery_id.to_owned()
            } else {
                String::new()
            },
        }
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("method", &self.method)
            .field("secret", &"<redacted>")
            .field("clock", &self.clock)
            .field("header_names", &self.names)
            .finish()
    }
}

/// The headers of a signed delivery.
#[derive(Clone)]
pub struct SignedHeaders {
    headers: Vec<(HeaderName, String)>,
    /// The credential header, marked sensitive in [`header_map`](Self::header_map).
    sensitive: Option<HeaderName>,
    signature: String,
    timestamp: String,
    delivery_id: String,
}

impl SignedHeaders {
    /// The credential header's value (`sha256=<hex>`, `t=…,v1=…`, `Bearer …`); empty for
    /// `none`.
    pub fn signature(&self) -> &str {
        &self.signature
    }

    /// The signed timestamp; empty for methods that sign none.
    pub fn timestamp(&self) -> &str {
        &self.timestamp
    }

    /// The delivery id header's value; empty for methods that send none.
    pub fn delivery_id(&self) -> &str {
        &self.delivery_id
    }

    /// The headers as name/value pairs: the credential, the timestamp, the delivery id, each
    /// when the method sends it.
    pub fn pairs(&self) -> impl Iterator<Item = (&HeaderName, &str)> {
        self.headers
            .iter()
            .map(|(name, value)| (name, value.as_str()))
    }

    /// The headers as a map; fails only if a value given to the signer (the delivery id or the
    /// timestamp) cannot be an HTTP header value.
    pub fn header_map(&self) -> Result<HeaderMap, InvalidHeaderValue> {
        let mut map = HeaderMap::with_capacity(self.headers.len());
        for (name, value) in self.pairs() {
            let mut value = HeaderValue::from_str(value)?;
            value.set_sensitive(Some(name) == self.sensitive.as_ref());
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
