//! Slack: `X-Slack-Signature: v0=<hex>`, the HMAC-SHA256 of `v0:{timestamp}:{body}`, the
//! timestamp in `X-Slack-Request-Timestamp`. No delivery id header.

use http::HeaderName;

use super::{Alg, HeaderNames};
use crate::error::Malformed;
use crate::signature::Signatures;

pub(super) fn header_names() -> HeaderNames {
    HeaderNames {
        signature: HeaderName::from_static("x-slack-signature"),
        timestamp: Some(HeaderName::from_static("x-slack-request-timestamp")),
        delivery_id: None,
    }
}

pub(super) fn parse(value: &[u8], into: &mut Signatures) -> Result<(), Malformed> {
    into.parse_hex_list(value, b"v0=", Alg::HmacSha256, 32)
}
