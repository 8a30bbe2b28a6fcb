//! GitHub: `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the body alone, and the
//! delivery id in `X-GitHub-Delivery`. No timestamp is signed.

use http::HeaderName;

use super::{Alg, HeaderNames};
use crate::error::Malformed;
use crate::signature::Signatures;

pub(super) fn header_names() -> HeaderNames {
    HeaderNames {
        signature: HeaderName::from_static("x-hub-signature-256"),
        timestamp: None,
        delivery_id: Some(HeaderName::from_static("x-github-delivery")),
    }
}

pub(super) fn parse(value: &[u8], into: &mut Signatures) -> Result<(), Malformed> {
    into.parse_hex_list(value, b"sha256=", Alg::HmacSha256, 32)
}
