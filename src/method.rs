//! Signing methods: which headers a delivery carries, which bytes are signed and how the
//! signature is encoded, and which keys dedupe remembers.
//!
//! Every method is a configuration of the one core: the verifier asks the method to parse the
//! credential header and to lay out the bytes before the body, and runs the same
//! constant-time comparison, window check and stores for all of them.

mod agent;
mod github;
mod slack;
mod standard_webhooks;
mod stripe;
mod token;

use std::fmt;
use std::str::FromStr;

use http::HeaderName;

use crate::error::Malformed;
use crate::signature::{MAX_SIGNATURE_HEADER_LEN, Signatures};

/// How deliveries are signed (or authenticated), by the names the subscription APIs and
/// `serve --scheme` use.
///
/// | name | credential | signed bytes | dedupe keys |
/// | --- | --- | --- | --- |
/// | `hmac_sha256` (default) | `X-Agent-Signature: sha256=<hex>` | `{timestamp}.{body}` | delivery id + message |
/// | `hmac_sha1` (legacy) | `X-Agent-Signature: sha1=<hex>` | `{timestamp}.{body}` | delivery id + message |
/// | `bearer` | `Authorization: Bearer <token>` | nothing: the token equals the secret | delivery id |
/// | `basic_auth` | `Authorization: Basic base64(user:password)` | nothing | delivery id |
/// | `none` | nothing | nothing | delivery id |
/// | `standard_webhooks` | `webhook-signature: v1,<base64>` or `v1a,<base64>` | `{id}.{timestamp}.{body}` | delivery id (it is signed) |
/// | `stripe` | `Stripe-Signature: t=<unix>,v1=<hex>` | `{t}.{body}` | message |
/// | `github` | `X-Hub-Signature-256: sha256=<hex>` | `{body}` | delivery id + message |
/// | `slack` | `X-Slack-Signature: v0=<hex>` | `v0:{timestamp}:{body}` | message |
///
/// What each method does not protect against:
///
/// - `bearer`, `basic_auth` and `none` sign nothing and carry no timestamp: a captured request
///   can be sent again under a new delivery id, and dedupe (on the id alone) cannot tell. Use
///   them only over TLS, and only where the provider offers nothing better.
/// - `github` signs no timestamp: replay protection rests on the store alone, for as long as it
///   remembers a delivery (its retention).
/// - `stripe` and `slack` carry no delivery id header: dedupe rests on the message key, so a
///   retry signed again with a new timestamp is a new message. Dedupe on the event's own id in
///   the body (Stripe's `evt_…`) in your handler where a retry must not run twice.
///
/// ```
/// use hookverify::Method;
///
/// let method: Method = "standard_webhooks".parse()?;
/// assert_eq!(method, Method::StandardWebhooks);
/// assert_eq!(method.to_string(), "standard_webhooks");
/// # Ok::<(), hookverify::UnknownMethod>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Method {
    /// HMAC-SHA256 over `{timestamp}.{body}`, hex: the provider's default.
    #[default]
    HmacSha256,
    /// HMAC-SHA1 over `{timestamp}.{body}`, hex. Legacy: choose it only for a provider that
    /// still sends it.
    HmacSha1,
    /// A bearer token equal to the secret, compared as SHA-256 digests so that its length does
    /// not leak.
    Bearer,
    /// HTTP Basic credentials equal to the secret `user:password`, compared as digests.
    BasicAuth,
    /// Unsigned deliveries, accepted as they come. Only ever chosen by name.
    None,
    /// Standard Webhooks (and Svix): `v1` HMAC-SHA256 with `whsec_` secrets and `v1a` Ed25519
    /// with `whpk_` public keys, over `{id}.{timestamp}.{body}`.
    StandardWebhooks,
    /// Stripe: HMAC-SHA256 over `{t}.{body}`, keyed by the `whsec_…` string's bytes.
    Stripe,
    /// GitHub: HMAC-SHA256 over the body alone.
    GitHub,
    /// Slack: HMAC-SHA256 over `v0:{timestamp}:{body}`.
    Slack,
}

/// A name that is not one of [`Method::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownMethod;

impl fmt::Display for UnknownMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown signing method; expected one of ")?;
        for (i, method) in Method::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(method.name())?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownMethod {}

/// The algorithm of a carried signature, and of the key that checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alg {
    HmacSha256,
    HmacSha1,
    Ed25519,
    /// A SHA-256 digest of a presented token or `user:password`.
    TokenDigest,
}

impl Method {
    /// Every method, in the order of the table above.
    pub const ALL: [Self; 9] = [
        Self::HmacSha256,
        Self::HmacSha1,
        Self::Bearer,
        Self::BasicAuth,
        Self::None,
        Self::StandardWebhooks,
        Self::Stripe,
        Self::GitHub,
        Self::Slack,
    ];

    /// The name: `hmac_sha256`, `hmac_sha1`, `bearer`, `basic_auth`, `none`,
    /// `standard_webhooks`, `stripe`, `github` or `slack`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::HmacSha256 => "hmac_sha256",
            Self::HmacSha1 => "hmac_sha1",
            Self::Bearer => "bearer",
            Self::BasicAuth => "basic_auth",
            Self::None => "none",
            Self::StandardWebhooks => "standard_webhooks",
            Self::Stripe => "stripe",
            Self::GitHub => "github",
            Self::Slack => "slack",
        }
    }

    /// The header names the provider sends.
    pub fn default_header_names(self) -> HeaderNames {
        match self {
            Self::HmacSha256 | Self::HmacSha1 => agent::header_names(),
            Self::Bearer | Self::BasicAuth | Self::None => token::header_names(),
            Self::StandardWebhooks => standard_webhooks::header_names(),
            Self::Stripe => stripe::header_names(),
            Self::GitHub => github::header_names(),
            Self::Slack => slack::header_names(),
        }
    }

    /// Whether deliveries carry a signed timestamp, checked against the tolerance window.
    pub const fn has_timestamp(self) -> bool {
        matches!(
            self,
            Self::HmacSha256 | Self::HmacSha1 | Self::StandardWebhooks | Self::Stripe | Self::Slack
        )
    }

    /// Whether the body is signed. The other methods check only a header, before the body.
    pub const fn signs_body(self) -> bool {
        !matches!(self, Self::Bearer | Self::BasicAuth | Self::None)
    }

    /// Whether dedupe claims the delivery id (which is then required).
    pub const fn dedupes_on_id(self) -> bool {
        !matches!(self, Self::Stripe | Self::Slack)
    }

    /// Whether dedupe claims the message key, a digest of the signed bytes: for signing methods
    /// whose delivery id is not signed (a replay under a fresh id), or absent.
    pub const fn dedupes_on_message(self) -> bool {
        matches!(
            self,
            Self::HmacSha256 | Self::HmacSha1 | Self::Stripe | Self::GitHub | Self::Slack
        )
    }

    /// The header names of Svix's own spelling, accepted beside the Standard Webhooks ones.
    pub(crate) fn alias_header_names(self) -> Option<HeaderNames> {
        match self {
            Self::StandardWebhooks => Some(standard_webhooks::svix_header_names()),
            _ => None,
        }
    }

    /// Parses the credential header, at most [`MAX_SIGNATURE_HEADER_LEN`] bytes, into
    /// `signatures`; answers the timestamp the header itself carries (Stripe's `t`).
    pub(crate) fn parse_credentials<'a>(
        self,
        value: &'a [u8],
        signatures: &mut Signatures,
    ) -> Result<Option<&'a [u8]>, Malformed> {
        if value.len() > MAX_SIGNATURE_HEADER_LEN {
            return Err(Malformed::TooLong {
                limit: MAX_SIGNATURE_HEADER_LEN,
            });
        }
        match self {
            Self::HmacSha256 => agent::parse(value, Alg::HmacSha256, signatures)?,
            Self::HmacSha1 => agent::parse(value, Alg::HmacSha1, signatures)?,
            Self::Bearer => token::parse_bearer(value, signatures)?,
            Self::BasicAuth => token::parse_basic(value, signatures)?,
            Self::None => {}
            Self::StandardWebhooks => standard_webhooks::parse(value, signatures)?,
            Self::Stripe => return stripe::parse(value, signatures).map(Some),
            Self::GitHub => github::parse(value, signatures)?,
            Self::Slack => slack::parse(value, signatures)?,
        }
        Ok(None)
    }

    /// The signed bytes that come before the body, in pieces: the delivery id and timestamp
    /// exactly as sent.
    pub(crate) fn signed_prefix<'a>(self, id: &'a [u8], timestamp: &'a [u8]) -> [&'a [u8]; 4] {
        match self {
            Self::HmacSha256 | Self::HmacSha1 | Self::Stripe => [timestamp, b".", b"", b""],
            Self::StandardWebhooks => [id, b".", timestamp, b"."],
            Self::Slack => [b"v0:", timestamp, b":", b""],
            Self::GitHub | Self::Bearer | Self::BasicAuth | Self::None => [b""; 4],
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = UnknownMethod;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|method| method.name() == name)
            .ok_or(UnknownMethod)
    }
}

/// The names of the headers a delivery carries. Each method has its own defaults
/// ([`Method::default_header_names`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderNames {
    /// The credential: the signature list, or `Authorization` (unused by `none`).
    pub signature: HeaderName,
    /// The signed timestamp, for methods that send one in its own header.
    pub timestamp: Option<HeaderName>,
    /// The delivery id, for methods that send one.
    pub delivery_id: Option<HeaderName>,
}

impl Default for HeaderNames {
    /// The provider's: `X-Agent-Signature`, `X-Agent-Timestamp`, `X-Agent-Delivery-Id`.
    fn default() -> Self {
        agent::header_names()
    }
}
