//! `bearer` and `basic_auth`: the `Authorization` header carries the secret itself, and `none`,
//! which carries nothing. The delivery id comes in `X-Agent-Delivery-Id`.
//!
//! The presented credential is reduced to its SHA-256 digest before any comparison, so the
//! comparison takes the same time whatever the lengths of the two sides.

use base64_simd::{Out, STANDARD};
use http::HeaderName;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{Alg, HeaderNames};
use crate::error::Malformed;
use crate::signature::{MAX_SIGNATURE_HEADER_LEN, Signatures};

pub(super) fn header_names() -> HeaderNames {
    HeaderNames {
        signature: http::header::AUTHORIZATION,
        timestamp: None,
        delivery_id: Some(HeaderName::from_static("x-agent-delivery-id")),
    }
}

/// `Bearer <token>`.
pub(super) fn parse_bearer(value: &[u8], into: &mut Signatures) -> Result<(), Malformed> {
    let token = credential(value, "Bearer")?;
    digest(token, into)
}

/// `Basic <base64 of user:password>`.
pub(super) fn parse_basic(value: &[u8], into: &mut Signatures) -> Result<(), Malformed> {
    let encoded = credential(value, "Basic")?;
    let mut decoded = Zeroizing::new([0u8; MAX_SIGNATURE_HEADER_LEN]);
    let len = STANDARD
        .decoded_length(encoded)
        .map_err(|_| Malformed::NotBase64)?;
    // No longer than the header it came from.
    let out = decoded.get_mut(..len).ok_or(Malformed::NotBase64)?;
    let pair = STANDARD
        .decode(encoded, Out::from_slice(out))
        .map_err(|_| Malformed::NotBase64)?;
    if !pair.contains(&b':') {
        return Err(Malformed::NotUserPassword);
    }
    digest(pair, into)
}

/// The credential after the scheme's name (compared without regard to case, as HTTP asks) and
/// the spaces that follow it.
fn credential<'a>(value: &'a [u8], scheme: &'static str) -> Result<&'a [u8], Malformed> {
    let wrong = Malformed::WrongAuthScheme { expected: scheme };
    let (name, rest) = value.split_at_checked(scheme.len()).ok_or(wrong)?;
    if !name.eq_ignore_ascii_case(scheme.as_bytes()) || rest.first() != Some(&b' ') {
        return Err(wrong);
    }
    let credential = rest.trim_ascii();
    if credential.is_empty() {
        return Err(Malformed::Empty);
    }
    Ok(credential)
}

fn digest(credential: &[u8], into: &mut Signatures) -> Result<(), Malformed> {
    into.push(Alg::TokenDigest, |out| {
        out[..32].copy_from_slice(&Sha256::digest(credential));
        Ok(32)
    })
}
