//! Standard Webhooks (and Svix): `webhook-signature` carries space-separated
//! `v1,<base64 HMAC-SHA256>` and `v1a,<base64 Ed25519>` entries over `{id}.{timestamp}.{body}`;
//! the id and timestamp come in `webhook-id` and `webhook-timestamp` (or their `svix-` names).

use base64_simd::{Out, STANDARD};
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
            let decoded_len = STANDARD
                .decoded_length(encoded)
                .map_err(|_| Malformed::NotBase64)?;
            let out = out
                .get_mut(..len)
                .filter(|_| decoded_len == len)
                .ok_or(Malformed::SignatureLength { bytes: len })?;
            STANDARD
                .decode(encoded, Out::from_slice(out))
                .map_err(|_| Malformed::NotBase64)?;
            Ok(len)
        })?;
    }
    if signatures.is_empty() {
        return Err(Malformed::NoSignature);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use proptest::prelude::*;

    use super::*;

    /// The signature `parse` decodes from `encoded`, if it accepts it.
    fn decoded(encoded: &str) -> Option<Vec<u8>> {
        let mut signatures = Signatures::default();
        parse(format!("v1,{encoded}").as_bytes(), &mut signatures).ok()?;
        signatures.of(Alg::HmacSha256).next().map(<[u8]>::to_vec)
    }

    /// What the `base64` crate's strict standard engine decodes, when it is a 32-byte tag.
    fn reference(encoded: &str) -> Option<Vec<u8>> {
        let engine = base64::engine::general_purpose::STANDARD;
        engine
            .decode(encoded)
            .ok()
            .filter(|bytes| bytes.len() == 32)
    }

    proptest! {
        /// The vectorized decoder accepts exactly the padded, canonical encodings the `base64`
        /// crate accepts, and decodes them to the same bytes: arbitrary text, and encodings of
        /// random bytes with one character changed.
        #[test]
        fn decodes_exactly_what_the_reference_decodes(text in "[A-Za-z0-9+/=_-]{0,90}") {
            prop_assert_eq!(decoded(&text), reference(&text));
        }

        #[test]
        fn near_encodings_decode_as_the_reference_does(
            bytes in proptest::collection::vec(any::<u8>(), 30..35),
            at in any::<prop::sample::Index>(),
            with in "[A-Za-z0-9+/=_.]",
        ) {
            let mut text = base64::engine::general_purpose::STANDARD.encode(&bytes);
            prop_assert_eq!(decoded(&text), reference(&text));
            let at = at.index(text.len());
            text.replace_range(at..=at, &with);
            prop_assert_eq!(decoded(&text), reference(&text));
        }
    }
}
