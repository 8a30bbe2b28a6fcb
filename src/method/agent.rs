//! The provider's own methods, `hmac_sha256` and `hmac_sha1`: `X-Agent-Signature` carries a
//! list of `sha256=<hex>` (or `sha1=<hex>`) entries over `{timestamp}.{body}`.

use http::HeaderName;

use super::{Alg, HeaderNames};
use crate::error::Malformed;
use crate::signature::Signatures;

pub(super) fn header_names() -> HeaderNames {
    HeaderNames {
        signature: HeaderName::from_static("x-agent-signature"),
        timestamp: Some(HeaderName::from_static("x-agent-timestamp")),
        delivery_id: Some(HeaderName::from_static("x-agent-delivery-id")),
    }
}

/// One to eight entries separated by commas or spaces.
pub(super) fn parse(value: &[u8], alg: Alg, into: &mut Signatures) -> Result<(), Malformed> {
    match alg {
        Alg::HmacSha1 => into.parse_hex_list(value, b"sha1=", alg, 20),
        _ => into.parse_hex_list(value, b"sha256=", Alg::HmacSha256, 32),
    }
}
