//! The signing scheme: where the signature and timestamp come from, how the signed bytes are
//! framed, how the tag is encoded.
//!
//! Only the provider's default scheme exists today. The verifier asks the scheme for each of
//! these steps, so another scheme is a new value here, not a change to the verifier.

use hmac::Mac;
use http::HeaderName;

use crate::error::Malformed;
use crate::secret::HmacSha256;
use crate::signature::Signatures;
use crate::store::MessageDigest;

/// The names of the three headers a delivery carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderNames {
    /// The signature list, default `X-Agent-Signature`.
    pub signature: HeaderName,
    /// The signed timestamp, default `X-Agent-Timestamp`.
    pub timestamp: HeaderName,
    /// The delivery id, default `X-Agent-Delivery-Id`.
    pub delivery_id: HeaderName,
}

impl Default for HeaderNames {
    fn default() -> Self {
        Self {
            signature: HeaderName::from_static("x-agent-signature"),
            timestamp: HeaderName::from_static("x-agent-timestamp"),
            delivery_id: HeaderName::from_static("x-agent-delivery-id"),
        }
    }
}

/// How the signed message is laid out around the body.
#[derive(Debug, Clone, Copy)]
enum Framing {
    /// `{timestamp}.{body}`, the timestamp exactly as sent.
    TimestampDotBody,
}

/// A complete description of how deliveries are signed.
#[derive(Debug, Clone)]
pub(crate) struct Scheme {
    pub(crate) names: HeaderNames,
    signature_prefix: &'static [u8],
    framing: Framing,
}

impl Scheme {
    /// The provider's scheme: `sha256=<hex>` over `{timestamp}.{body}`.
    pub(crate) fn agent(names: HeaderNames) -> Self {
        Self {
            names,
            signature_prefix: b"sha256=",
            framing: Framing::TimestampDotBody,
        }
    }

    /// Parses the signature header.
    pub(crate) fn parse_signatures(&self, value: &[u8]) -> Result<Signatures, Malformed> {
        Signatures::parse(value, self.signature_prefix)
    }

    /// Feeds what precedes the body into a keyed MAC.
    pub(crate) fn begin_message(&self, mac: &mut HmacSha256, timestamp: &[u8]) {
        match self.framing {
            Framing::TimestampDotBody => {
                mac.update(timestamp);
                mac.update(b".");
            }
        }
    }

    /// The digest of the signed bytes: the message key that dedupe remembers.
    pub(crate) fn message_digest(&self, timestamp: &[u8], body: &[u8]) -> MessageDigest {
        match self.framing {
            Framing::TimestampDotBody => MessageDigest::of(&[timestamp, b".", body]),
        }
    }

    /// Writes a tag as the header carries it.
    pub(crate) fn encode_signature(&self, tag: &[u8; 32]) -> String {
        let mut out = String::with_capacity(self.signature_prefix.len() + 64);
        out.push_str(std::str::from_utf8(self.signature_prefix).unwrap_or_default());
        out.push_str(&hex::encode(tag));
        out
    }
}
