//! The signing method options that `serve` and `sign` share: `--scheme NAME` and the header
//! names, each defaulting to the method's own.

use axum::http::HeaderName;
use clap::Args;
use hookverify::{HeaderNames, Method};

/// How deliveries are signed.
#[derive(Debug, Clone, Args)]
pub(crate) struct SchemeArgs {
    /// The signing method: hmac_sha256, hmac_sha1 (legacy), bearer, basic_auth, none (unsigned:
    /// anyone can send), standard_webhooks, stripe, github or slack. The secret is read as the
    /// method says: the token for bearer, user:password for basic_auth, whsec_… (v1) or
    /// whpk_… (v1a Ed25519 public key) for standard_webhooks; none takes no secret
    #[arg(long, default_value = "hmac_sha256", value_name = "NAME", value_parser = parse_method)]
    pub(crate) scheme: Method,

    /// The credential header [default: the method's own, e.g. X-Agent-Signature]
    #[arg(long, value_name = "NAME", value_parser = parse_header_name)]
    signature_header: Option<HeaderName>,

    /// The timestamp header [default: the method's own, e.g. X-Agent-Timestamp]
    #[arg(long, value_name = "NAME", value_parser = parse_header_name)]
    timestamp_header: Option<HeaderName>,

    /// The delivery id header [default: the method's own, e.g. X-Agent-Delivery-Id]
    #[arg(long, value_name = "NAME", value_parser = parse_header_name)]
    id_header: Option<HeaderName>,
}

impl SchemeArgs {
    /// The header names, when any was given: `None` keeps the method's own (and, for Standard
    /// Webhooks, Svix's spelling beside them).
    pub(crate) fn header_names(&self) -> Option<HeaderNames> {
        if self.signature_header.is_none()
            && self.timestamp_header.is_none()
            && self.id_header.is_none()
        {
            return None;
        }
        let mut names = self.scheme.default_header_names();
        if let Some(name) = &self.signature_header {
            names.signature = name.clone();
        }
        if let Some(name) = &self.timestamp_header {
            names.timestamp = Some(name.clone());
        }
        if let Some(name) = &self.id_header {
            names.delivery_id = Some(name.clone());
        }
        Some(names)
    }
}

fn parse_method(name: &str) -> Result<Method, String> {
    name.parse()
        .map_err(|error: hookverify::UnknownMethod| error.to_string())
}

fn parse_header_name(name: &str) -> Result<HeaderName, String> {
    HeaderName::try_from(name).map_err(|_| format!("{name:?} is not a valid header name"))
}
