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

    /// The credential header [default: the method's own, e.g. X-Agent-Signature; none has none]
    #[arg(long, value_name = "NAME", value_parser = parse_header_name)]
    signature_header: Option<HeaderName>,

    /// The timestamp header [default: the method's own, e.g. X-Agent-Timestamp; only for
    /// methods that send one in its own header: not stripe, github, bearer, basic_auth, none]
    #[arg(long, value_name = "NAME", value_parser = parse_header_name)]
    timestamp_header: Option<HeaderName>,

    /// The delivery id header [default: the method's own, e.g. X-Agent-Delivery-Id; stripe and
    /// slack send none]
    #[arg(long, value_name = "NAME", value_parser = parse_header_name)]
    id_header: Option<HeaderName>,
}

impl SchemeArgs {
    /// The header names, when any was given: `None` keeps the method's own (and, for Standard
    /// Webhooks, Svix's spelling beside them).
    ///
    /// Refuses a flag for a header the method does not have, rather than ignore it or, worse,
    /// require it: a `--timestamp-header` for Stripe would make the verifier demand that header
    /// (and window-check it instead of `t=`), so every genuine delivery would be refused.
    pub(crate) fn header_names(&self) -> Result<Option<HeaderNames>, String> {
        let method = self.scheme;
        let mut names = method.default_header_names();
        if self.signature_header.is_some() && method == Method::None {
            return Err(format!(
                "--signature-header: the method {method} reads no credential header"
            ));
        }
        if self.timestamp_header.is_some() && names.timestamp.is_none() {
            let why = match method {
                Method::Stripe => " (its timestamp is the t= inside Stripe-Signature)",
                _ => "",
            };
            return Err(format!(
                "--timestamp-header: the method {method} has no timestamp header{why}"
            ));
        }
        if self.id_header.is_some() && names.delivery_id.is_none() {
            return Err(format!(
                "--id-header: the method {method} carries no delivery id (it dedupes on the \
                 signed message)"
            ));
        }
        if self.signature_header.is_none()
            && self.timestamp_header.is_none()
            && self.id_header.is_none()
        {
            return Ok(None);
        }
        if let Some(name) = &self.signature_header {
            names.signature = name.clone();
        }
        if let Some(name) = &self.timestamp_header {
            names.timestamp = Some(name.clone());
        }
        if let Some(name) = &self.id_header {
            names.delivery_id = Some(name.clone());
        }
        Ok(Some(names))
    }
}

fn parse_method(name: &str) -> Result<Method, String> {
    name.parse()
        .map_err(|error: hookverify::UnknownMethod| error.to_string())
}

fn parse_header_name(name: &str) -> Result<HeaderName, String> {
    HeaderName::try_from(name).map_err(|_| format!("{name:?} is not a valid header name"))
}
