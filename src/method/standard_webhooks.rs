//! Standard Webhooks (and Svix): `webhook-signature` carries space-separated
//! `v1,<base64 HMAC-SHA256>` and `v1a,<base64 Ed25519>` entries over `{id}.{timestamp}.{body}`;
//! the id and timestamp come in `webhook-id` and `webhook-timestamp` (or their `svix-` names).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderName;

use super::{Alg, HeaderNames};
use crate::error::Malformed;
use crate::signature::{self, Signatures};

pub(super) fn header_names() -> HeaderNames {
    HeaderNames {
        signature: HeaderName::from_static("webhook-signature"),
        timestamp: Some(HeaderName::from_static("webhook-timestamp")),
        delivery_id: Some(HeaderName::from_static("webhook-id")),
    }
}

pub(super) fn svix_header_names() -> HeaderNames {
    HeaderNames {
        signature: HeaderName::from_static("svix-signature"),
        timestamp: Some(HeaderName::from_static("svix-timestamp")),
        delivery_id: Some(HeaderName::from_static("svix-id")),
    }
}

/// Entries of other versions are skipped, as the specification asks: a sender may add a
/// version this receiver does not know beside one it does.
pub(super) fn parse(value: &[u8], signatures: &mut Signatures) -> Result<(), Malformed> {
    for entry in signature::entries(value, b' ', b' ') {
        let (version, encoded) = entry
            .iter()
            .position(|&byte| byte == b',')
            .map(|comma| (&entry[..comma], &entry[comma + 1..]))
            .ok_or(Malformed::MissingPrefix { prefix: b"v1," })?;
        let (alg, len) = match version {
            b"v1" => (Alg::HmacSha256, 32),
            b"v1a" => (Alg::Ed25519, 64),
            _ => continue,
        };
        signatures.push(alg, |out| {
            // Room for the decoder's estimate (three bytes per four characters) of a
            // well-formed entry; anything longer is the wrong length anyway.
            let mut decoded = [0u8; 72];
            let written = STANDARD
                .decode_slice(encoded, &mut decoded)
                .map_err(|_| Malformed::NotBase64)?;
            if written != len {
                return Err(Malformed::SignatureLength { bytes: len });
            }
            out[..len].copy_from_slice(&decoded[..len]);
            Ok(len)
        })?;
    }
    if signatures.is_empty() {
        return Err(Malformed::NoSignature);
    }
    Ok(())
}
