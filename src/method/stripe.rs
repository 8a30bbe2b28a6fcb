//! Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...][,v0=<hex>]`, the HMAC-SHA256 of
//! `{t}.{body}`. Any `v1` may match; `v0` (test mode's legacy scheme) and unknown keys are
//! ignored. No delivery id header.

use http::HeaderName;

use super::{Alg, HeaderNames};
use crate::error::Malformed;
use crate::signature::Signatures;

pub(super) fn header_names() -> HeaderNames {
    HeaderNames {
        signature: HeaderName::from_static("stripe-signature"),
        timestamp: None,
        delivery_id: None,
    }
}

/// Comma-separated `key=value` pairs: exactly one `t`, one to eight `v1`. Answers the `t`.
pub(super) fn parse<'a>(
    value: &'a [u8],
    signatures: &mut Signatures,
) -> Result<&'a [u8], Malformed> {
    let mut timestamp = None;
    for pair in value.split(|&byte| byte == b',') {
        let pair = pair.trim_ascii();
        if let Some(seconds) = pair.strip_prefix(b"t=") {
            if timestamp.replace(seconds).is_some() {
                return Err(Malformed::NoTimestamp);
            }
        } else if let Some(digits) = pair.strip_prefix(b"v1=") {
            signatures.push_hex(Alg::HmacSha256, digits, 32)?;
        }
    }
    let timestamp = timestamp.ok_or(Malformed::NoTimestamp)?;
    if signatures.is_empty() {
        return Err(Malformed::NoSignature);
    }
    Ok(timestamp)
}
