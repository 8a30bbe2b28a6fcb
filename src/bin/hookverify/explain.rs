//! What `verify` runs: the verification itself, each check with its outcome, and when the
//! signature does not match, the likely cause, found by trying the common mistakes one at a time
//! and keeping those that reproduce the signature.
//!
//! Every check and every try goes through the library: a variant is a [`Verifier`] built for it
//! (another method, a transformed secret, a clock at the signed time) and called on a variant of
//! the request (a transformed body, another timestamp, the carried signature in another
//! method's header). Nothing here computes a MAC or compares tags. Nothing here prints a secret
//! or a signature either: a secret is named by its label, a header by its name.
//!
//! | cause | tried |
//! | --- | --- |
//! | `clock_skew` | the delivery at the signed time: the signature is good, only the window failed |
//! | `secret_whitespace` | the configured secret trimmed, or with a newline, CRLF or space added |
//! | `secret_encoding` | the key base64- or hex-decoded, or used as a string where it was decoded |
//! | `body_reformatted_json` | the body re-encoded as compact, pretty (2, 4, tab), Python, PHP JSON |
//! | `trailing_newline` | the body with its final newline removed, or with one added |
//! | `crlf_newlines` | the body with CRLF line ends as LF, or LF as CRLF |
//! | `timestamp_unit` | the timestamp in seconds where milliseconds were sent, or the reverse |
//! | `other_scheme` | the signature checked as another method's (body only, `v0:{ts}:`, `{id}.{ts}.`, …) |
//! | `wrong_secret` | none of the above reproduces it |

use std::fmt::Write as _;

use base64_simd::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use hookverify::time::format_description::well_known::Rfc3339;
use hookverify::time::{Duration, OffsetDateTime};
use hookverify::{
    ConfigError, DeliveryId, HeaderNames, MAX_TOLERANCE, Malformed, ManualClock, Method, Precheck,
    Secret, Signer, Verified, VerifyError,
};
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::reencode::{self, Style};
use crate::secrets;

/// Bodies up to this size are tried with every millisecond of the signed second when the
/// timestamp may have been signed in milliseconds (1000 tries); larger ones with `…000` only.
const SUB_SECOND_TRIES_UP_TO: usize = 64 * 1024;

/// The methods whose signature is an HMAC (or Ed25519) over bytes that include the body.
const SIGNING_METHODS: [Method; 6] = [
    Method::HmacSha256,
    Method::HmacSha1,
    Method::StandardWebhooks,
    Method::Stripe,
    Method::GitHub,
    Method::Slack,
];

/// A configured secret: its label and its value, kept as given (surrounding whitespace
/// included: finding it is one of the causes).
pub(crate) struct SecretValue {
    pub(crate) label: String,
    pub(crate) value: zeroize::Zeroizing<Vec<u8>>,
}

impl SecretValue {
    fn secret(&self) -> Secret {
        Secret::new(self.label.as_str(), self.value.to_vec())
    }

    pub(crate) fn has_surrounding_whitespace(&self) -> bool {
        self.value.trim_ascii().len() != self.value.len()
    }

    /// An Ed25519 public key (Standard Webhooks' `v1a`): no HMAC key to transform.
    fn is_public_key(&self) -> bool {
        self.value.starts_with(b"whpk_")
    }
}

/// What to verify, and against what.
pub(crate) struct Input<'a> {
    pub(crate) method: Method,
    /// The header names given on the command line, if any.
    pub(crate) names: Option<HeaderNames>,
    pub(crate) secrets: &'a [SecretValue],
    pub(crate) now: OffsetDateTime,
    pub(crate) tolerance: Duration,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: &'a [u8],
}

/// One check and its outcome.
#[derive(Debug)]
pub(crate) struct Check {
    pub(crate) name: &'static str,
    pub(crate) ok: bool,
    pub(crate) detail: String,
}

/// A likely cause, by its code, with what reproduced the signature.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Cause {
    pub(crate) code: &'static str,
    pub(crate) detail: String,
}

/// The outcome of `verify`.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) result: Result<Verified, VerifyError>,
    pub(crate) checks: Vec<Check>,
    pub(crate) causes: Vec<Cause>,
    /// How many variants were verified in the search for the cause.
    pub(crate) tried: usize,
}

/// Verifies the delivery; with `explain`, also runs every check and, if it did not verify,
/// searches for the cause. Fails only when the configuration cannot be built (a usage error).
pub(crate) fn run(input: &Input<'_>, explain: bool) -> Result<Report, ConfigError> {
    let verifier = build_verifier(
        input.method,
        input.names.clone(),
        input.secrets.iter().map(SecretValue::secret),
        input.now,
        input.tolerance,
    )?;
    let result = verifier.verify(input.headers, input.body);
    let mut report = Report {
        result,
        checks: Vec::new(),
        causes: Vec::new(),
        tried: 0,
    };
    if explain {
        Explainer::new(input).explain(&mut report);
    }
    Ok(report)
}

fn build_verifier(
    method: Method,
    names: Option<HeaderNames>,
    secrets: impl IntoIterator<Item = Secret>,
    at: OffsetDateTime,
    tolerance: Duration,
) -> Result<hookverify::Verifier, ConfigError> {
    let mut builder = hookverify::Verifier::builder()
        .method(method)
        .secrets(secrets)
        .clock(ManualClock::new(at))
        .tolerance(tolerance);
    if let Some(names) = names {
        builder = builder.header_names(names);
    }
    builder.build()
}

/// What the header probes found about the request.
#[derive(Default)]
struct Facts {
    /// The timestamp as sent (for Stripe, `t=` of the signature header).
    timestamp_raw: Option<String>,
    /// The instant it denotes.
    signed_at: Option<OffsetDateTime>,
    /// The delivery id as sent.
    delivery_id: Option<String>,
}

/// A header probe's verdict on one header's form.
enum Form {
    /// Well formed; the precheck, when it got that far.
    Good(Option<Box<Precheck>>),
    /// Well formed, and the timestamp lies this far in the past (outside even a day's window).
    Drift(Duration),
    Bad(VerifyError),
}

struct Explainer<'a> {
    input: &'a Input<'a>,
    /// The header names the request uses: the given ones, the method's own, or for Standard
    /// Webhooks Svix's when the request carries those.
    names: HeaderNames,
}

impl<'a> Explainer<'a> {
    fn new(input: &'a Input<'a>) -> Self {
        let method = input.method;
        let mut names = input
            .names
            .clone()
            .unwrap_or_else(|| method.default_header_names());
        if input.names.is_none()
            && method == Method::StandardWebhooks
            && !input.headers.contains_key(&names.signature)
            && input.headers.contains_key("svix-signature")
        {
            names = HeaderNames {
                signature: HeaderName::from_static("svix-signature"),
                timestamp: Some(HeaderName::from_static("svix-timestamp")),
                delivery_id: Some(HeaderName::from_static("svix-id")),
            };
        }
        Self { input, names }
    }

    fn explain(&self, report: &mut Report) {
        let method = self.input.method;
        let mut facts = Facts::default();
        let checks = &mut report.checks;
        checks.push(self.secrets_check());
        if method != Method::None {
            checks.push(self.signature_header_check(&mut facts));
        }
        if method.has_timestamp() {
            checks.push(self.timestamp_header_check(&mut facts));
        }
        if let Some(check) = self.delivery_id_check(&mut facts) {
            checks.push(check);
        }
        if method.has_timestamp() {
            checks.push(self.window_check(&facts));
        }

        let mut search = Search {
            explainer: self,
            facts: &facts,
            at: facts.signed_at.unwrap_or(self.input.now),
            causes: Vec::new(),
            tried: 0,
        };
        let signature = match &report.result {
            Ok(verified) => Check {
                name: "signature",
                ok: true,
                detail: match method {
                    Method::None => "none: unsigned, nothing to check; anyone can send such a \
                                     delivery"
                        .into(),
                    _ => format!(
                        "matches secret \"{}\"{}",
                        verified.secret_label(),
                        self.of_configured()
                    ),
                },
            },
            Err(VerifyError::TimestampOutOfTolerance { drift, tolerance }) => {
                match search.at_signed_time() {
                    Some(label) => {
                        let beyond = drift.abs() - *tolerance;
                        search.add(
                            "clock_skew",
                            format!(
                                "the signature is good (secret \"{label}\"); only the window \
                                 failed: the timestamp is {} {}, {} beyond the tolerance of {}. \
                                 Check the clocks of the sender and of this machine (NTP), or \
                                 whether the delivery waited in a queue; a replayed capture \
                                 looks the same",
                                human(drift.abs()),
                                if drift.is_negative() {
                                    "in the future"
                                } else {
                                    "in the past"
                                },
                                human(beyond),
                                human(*tolerance)
                            ),
                        );
                        Check {
                            name: "signature",
                            ok: true,
                            detail: format!(
                                "matches secret \"{label}\" at the signed time (only the window \
                                 failed)"
                            ),
                        }
                    }
                    None => {
                        search.run(true);
                        Check {
                            name: "signature",
                            ok: false,
                            detail: format!(
                                "no configured secret matches, even at the signed time{}",
                                self.tried_labels()
                            ),
                        }
                    }
                }
            }
            Err(VerifyError::SignatureMismatch) => {
                search.run(true);
                let what = if method.signs_body() {
                    "no configured secret matches"
                } else {
                    "the credential is none of the configured secrets"
                };
                Check {
                    name: "signature",
                    ok: false,
                    detail: format!("{what}{}", self.tried_labels()),
                }
            }
            Err(error) => {
                // A signature header absent or in another form may be another method's; a
                // repeated one is a request to refuse, whatever it carries.
                let about_signature = match error {
                    VerifyError::MissingHeader { header } => *header == self.names.signature,
                    VerifyError::MalformedSignature { reason, .. } => {
                        *reason != Malformed::Repeated
                    }
                    _ => false,
                };
                if about_signature {
                    search.run(false);
                }
                Check {
                    name: "signature",
                    ok: false,
                    detail: format!("not checked: {error}"),
                }
            }
        };
        checks.push(signature);
        report.tried = search.tried;
        report.causes = search.causes;
    }

    fn of_configured(&self) -> String {
        match self.input.secrets.len() {
            0 | 1 => String::new(),
            n => format!(" (of {n} configured)"),
        }
    }

    fn tried_labels(&self) -> String {
        let labels: Vec<String> = self
            .input
            .secrets
            .iter()
            .map(|s| format!("\"{}\"", s.label))
            .collect();
        format!(" (tried {})", labels.join(", "))
    }

    fn secrets_check(&self) -> Check {
        let secrets = self.input.secrets;
        if self.input.method == Method::None {
            return Check {
                name: "secrets",
                ok: true,
                detail: "none: no secret (deliveries are not signed)".into(),
            };
        }
        let labels: Vec<&str> = secrets.iter().map(|s| s.label.as_str()).collect();
        let padded: Vec<String> = secrets
            .iter()
            .filter(|s| s.has_surrounding_whitespace())
            .map(|s| format!("\"{}\"", s.label))
            .collect();
        let mut detail = format!("{} configured: {}", secrets.len(), labels.join(", "));
        if !padded.is_empty() {
            let _ = write!(
                detail,
                "; {} {} surrounding whitespace (a newline from a file or a paste?)",
                padded.join(", "),
                if padded.len() == 1 { "has" } else { "have" }
            );
        }
        Check {
            name: "secrets",
            ok: padded.is_empty(),
            detail,
        }
    }

    /// How many times the request carries `name`, as a check detail when it is not once.
    fn occurrences(&self, name: &HeaderName) -> Result<&HeaderValue, String> {
        let mut values = self.input.headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (None, _) => Err(format!("{name}: absent")),
            (Some(value), None) => Ok(value),
            (Some(_), Some(_)) => Err(format!(
                "{name}: repeated ({} times); a receiver never picks one",
                self.input.headers.get_all(name).iter().count()
            )),
        }
    }

    /// A request whose headers are all well formed (signed with a throwaway secret, now), with
    /// the request's own occurrences of `name` in place of its own: what a precheck says of it
    /// is about that header alone.
    fn probe(&self, name: &HeaderName) -> Option<Form> {
        let method = self.input.method;
        let secret = secrets::generate(method).ok()?;
        let signer = Signer::for_method(method, secret.clone())
            .ok()?
            .header_names(self.names.clone());
        let now = self.input.now.unix_timestamp().to_string();
        let mut headers = signer
            .sign_with_timestamp("probe", &now, b"")
            .header_map()
            .ok()?;
        headers.remove(name);
        for value in self.input.headers.get_all(name) {
            headers.append(name.clone(), value.clone());
        }
        let verifier = build_verifier(
            method,
            Some(self.names.clone()),
            [Secret::new("probe", secret)],
            self.input.now,
            MAX_TOLERANCE,
        )
        .ok()?;
        Some(match verifier.precheck(&headers) {
            Ok(precheck) => Form::Good(Some(Box::new(precheck))),
            Err(VerifyError::TimestampOutOfTolerance { drift, .. }) => Form::Drift(drift),
            Err(VerifyError::SignatureMismatch) => Form::Good(None),
            Err(error) => Form::Bad(error),
        })
    }

    /// Records the timestamp a probe read.
    fn note_timestamp(&self, form: &Form, facts: &mut Facts) {
        facts.signed_at = match form {
            Form::Good(Some(precheck)) => precheck.timestamp(),
            Form::Drift(drift) => Some(self.input.now - *drift),
            _ => facts.signed_at,
        };
    }

    fn signature_header_check(&self, facts: &mut Facts) -> Check {
        let name = &self.names.signature;
        let fail = |detail| Check {
            name: "signature_header",
            ok: false,
            detail,
        };
        let value = match self.occurrences(name) {
            Ok(value) => value,
            Err(detail) => return fail(detail),
        };
        match self.probe(name) {
            Some(Form::Bad(error)) => fail(error.to_string()),
            form => {
                let mut detail = format!("{name}: present, well formed");
                if self.input.method == Method::Stripe {
                    facts.timestamp_raw = carried(value.as_bytes()).timestamp;
                    if let Some(form) = &form {
                        self.note_timestamp(form, facts);
                    }
                    let _ = write!(detail, ", with the timestamp (t=)");
                }
                Check {
                    name: "signature_header",
                    ok: true,
                    detail,
                }
            }
        }
    }

    fn timestamp_header_check(&self, facts: &mut Facts) -> Check {
        let check = |ok, detail| Check {
            name: "timestamp_header",
            ok,
            detail,
        };
        let Some(name) = self
            .names
            .timestamp
            .clone()
            .filter(|_| self.input.method != Method::Stripe)
        else {
            // Stripe's is inside the signature header, read with it.
            return match (&facts.timestamp_raw, facts.signed_at) {
                (Some(raw), Some(at)) => check(
                    true,
                    format!("t={raw} in {} ({})", self.names.signature, rfc3339(at)),
                ),
                _ => check(false, format!("no readable t= in {}", self.names.signature)),
            };
        };
        let value = match self.occurrences(&name) {
            Ok(value) => value,
            Err(detail) => return check(false, detail),
        };
        match self.probe(&name) {
            Some(Form::Bad(error)) => check(false, error.to_string()),
            Some(form) => {
                self.note_timestamp(&form, facts);
                facts.timestamp_raw = value.to_str().ok().map(str::to_owned);
                let text = facts.timestamp_raw.clone().unwrap_or_default();
                let at = facts.signed_at.map(rfc3339).unwrap_or_default();
                check(true, format!("{name}: {text} ({at})"))
            }
            None => check(true, format!("{name}: present")),
        }
    }

    fn delivery_id_check(&self, facts: &mut Facts) -> Option<Check> {
        let name = self.names.delivery_id.as_ref()?;
        let check = |ok, detail| {
            Some(Check {
                name: "delivery_id_header",
                ok,
                detail,
            })
        };
        let value = match self.occurrences(name) {
            Ok(value) => value,
            Err(detail) if self.input.headers.contains_key(name) => return check(false, detail),
            Err(_) if self.input.method == Method::StandardWebhooks => {
                return check(false, format!("{name}: absent (it is signed)"));
            }
            Err(_) => {
                return check(
                    true,
                    format!(
                        "{name}: absent; the signature does not need it, but a receiver that \
                         dedupes on it (serve) answers 400 missing_header"
                    ),
                );
            }
        };
        match DeliveryId::parse(value.as_bytes()) {
            Ok(id) => {
                facts.delivery_id = Some(id.as_str().to_owned());
                check(true, format!("{name}: {}", id.as_str()))
            }
            Err(reason) => check(false, format!("malformed header {name}: {reason}")),
        }
    }

    fn window_check(&self, facts: &Facts) -> Check {
        let tolerance = self.input.tolerance;
        let Some(at) = facts.signed_at else {
            return Check {
                name: "timestamp_window",
                ok: false,
                detail: "not checked: no readable timestamp".into(),
            };
        };
        let drift = self.input.now - at;
        let ok = drift.abs() <= tolerance;
        let when = if drift.is_negative() {
            format!("{} in the future", human(drift.abs()))
        } else {
            format!("{} ago", human(drift))
        };
        let detail = if ok {
            format!(
                "signed {when}, inside the tolerance of {}",
                human(tolerance)
            )
        } else {
            format!(
                "signed {when}, {} beyond the tolerance of {}",
                human(drift.abs() - tolerance),
                human(tolerance)
            )
        };
        Check {
            name: "timestamp_window",
            ok,
            detail,
        }
    }
}

/// What a credential header carries, read leniently to try it in other forms: every hex or
/// base64 token that decodes to a 20-, 32- or 64-byte tag, and a `t=` value.
#[derive(Debug, Default, PartialEq, Eq)]
struct Carried {
    tags: Vec<Vec<u8>>,
    timestamp: Option<String>,
}

fn carried(value: &[u8]) -> Carried {
    let mut found = Carried::default();
    let text = String::from_utf8_lossy(value);
    for token in text.split(|c: char| c == ',' || c.is_ascii_whitespace()) {
        if let Some(t) = token.strip_prefix("t=") {
            found.timestamp.get_or_insert_with(|| t.to_owned());
            continue;
        }
        let after_equals = token.split_once('=').map(|(_, rest)| rest);
        for candidate in [Some(token), after_equals].into_iter().flatten() {
            let decoded =
                if candidate.len() % 2 == 0 && candidate.bytes().all(|b| b.is_ascii_hexdigit()) {
                    hex::decode(candidate).ok()
                } else {
                    STANDARD.decode_to_vec(candidate).ok()
                };
            if let Some(tag) = decoded.filter(|tag| matches!(tag.len(), 20 | 32 | 64))
                && !found.tags.contains(&tag)
            {
                found.tags.push(tag);
            }
        }
    }
    found
}

/// The credential header `method` sends for `tag` (signed at `timestamp`, for Stripe).
fn credential(method: Method, tag: &[u8], timestamp: &str) -> Option<String> {
    let hex = hex::encode(tag);
    Some(match (method, tag.len()) {
        (Method::HmacSha256 | Method::GitHub, 32) => format!("sha256={hex}"),
        (Method::HmacSha1, 20) => format!("sha1={hex}"),
        (Method::Slack, 32) => format!("v0={hex}"),
        (Method::Stripe, 32) => format!("t={timestamp},v1={hex}"),
        (Method::StandardWebhooks, 32) => format!("v1,{}", STANDARD.encode_to_string(tag)),
        (Method::StandardWebhooks, 64) => format!("v1a,{}", STANDARD.encode_to_string(tag)),
        _ => return None,
    })
}

/// What `method` signs, in words.
fn framing(method: Method) -> &'static str {
    match method {
        Method::HmacSha256 => "`{timestamp}.{body}` (HMAC-SHA256)",
        Method::HmacSha1 => "`{timestamp}.{body}` (HMAC-SHA1)",
        Method::StandardWebhooks => "`{id}.{timestamp}.{body}`",
        Method::Stripe => "`{t}.{body}`",
        Method::GitHub => "the body alone",
        Method::Slack => "`v0:{timestamp}:{body}`",
        _ => "nothing",
    }
}

/// Whether two methods sign the same bytes with the same algorithm (`hmac_sha256` and
/// `stripe`): one cannot be told from the other by its signature.
fn same_signed_bytes(a: Method, b: Method) -> bool {
    let sha256_dot = |m| matches!(m, Method::HmacSha256 | Method::Stripe);
    sha256_dot(a) && sha256_dot(b)
}

/// The HMAC key `method` derives from a secret's value, if it keys an HMAC.
fn hmac_key(method: Method, value: &[u8]) -> Option<Vec<u8>> {
    match method {
        Method::StandardWebhooks => STANDARD.decode_to_vec(value.strip_prefix(b"whsec_")?).ok(),
        Method::HmacSha256 | Method::HmacSha1 | Method::Stripe | Method::GitHub | Method::Slack => {
            Some(value.to_vec())
        }
        _ => None,
    }
}

/// The secret value from which `method` derives the HMAC key `key`.
fn secret_for_key(method: Method, key: &[u8]) -> Option<Vec<u8>> {
    match method {
        Method::StandardWebhooks => {
            Some(format!("whsec_{}", STANDARD.encode_to_string(key)).into_bytes())
        }
        Method::HmacSha256 | Method::HmacSha1 | Method::Stripe | Method::GitHub | Method::Slack => {
            Some(key.to_vec())
        }
        _ => None,
    }
}

/// `text` decoded as base64, in any of the common alphabets and paddings.
fn base64_decoded(text: &[u8]) -> Option<Vec<u8>> {
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode_to_vec(text).ok())
        .filter(|key| !key.is_empty())
}

/// The search for the cause: each try a verifier and a request, one thing changed.
struct Search<'a> {
    explainer: &'a Explainer<'a>,
    facts: &'a Facts,
    /// The clock of every try: the signed time when the request has one, so that the window
    /// never hides a match (and the tolerance is a day, for the timestamp tries).
    at: OffsetDateTime,
    causes: Vec<Cause>,
    tried: usize,
}

impl Search<'_> {
    fn input(&self) -> &Input<'_> {
        self.explainer.input
    }

    fn add(&mut self, code: &'static str, detail: String) {
        let cause = Cause { code, detail };
        if !self.causes.contains(&cause) {
            self.causes.push(cause);
        }
    }

    /// Whether `secrets` verify `headers` and `body` under `method` (the given header names, or
    /// the method's own and aliases): the label of the secret that matched.
    fn attempt(
        &mut self,
        method: Method,
        names: Option<HeaderNames>,
        secrets: Vec<Secret>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Option<String> {
        self.tried += 1;
        let verifier = build_verifier(method, names, secrets, self.at, MAX_TOLERANCE).ok()?;
        verifier
            .verify(headers, body)
            .ok()
            .map(|verified| verified.secret_label().to_owned())
    }

    /// The request as it is, with the configured method and secrets.
    fn attempt_as_configured(&mut self, headers: &HeaderMap, body: &[u8]) -> Option<String> {
        let secrets = self.configured();
        let method = self.input().method;
        let names = Some(self.explainer.names.clone());
        self.attempt(method, names, secrets, headers, body)
    }

    fn configured(&self) -> Vec<Secret> {
        self.input()
            .secrets
            .iter()
            .map(SecretValue::secret)
            .collect()
    }

    /// The delivery verified at its signed time: the label that matched, if one did.
    fn at_signed_time(&mut self) -> Option<String> {
        let input = self.explainer.input;
        self.attempt_as_configured(input.headers, input.body)
    }

    /// Tries every likely mistake; with `mismatch` (the signature was checked and did not
    /// match), `wrong_secret` when none reproduces it.
    fn run(&mut self, mismatch: bool) {
        let method = self.input().method;
        if method == Method::None {
            return;
        }
        if mismatch {
            self.secret_whitespace();
            if method.signs_body() {
                self.secret_encoding();
                self.body_variants();
                self.timestamp_unit();
            }
        }
        if method.signs_body() {
            self.other_framing();
        }
        self.other_headers();
        if mismatch && self.causes.is_empty() {
            let labels = self.explainer.tried_labels();
            let tried = self.tried;
            self.add(
                "wrong_secret",
                format!(
                    "no configured secret{labels} reproduces the signature, nor any of the \
                     {tried} likely mistakes tried (reformatted JSON, newlines, whitespace or \
                     encoding of the secret, timestamp unit, other methods' framing): the \
                     delivery was signed with another secret. Check that the secret is this \
                     endpoint's (each subscription has its own; test and live differ) and \
                     whether it was rotated (pass the old and the new one, each with --secret \
                     LABEL=...)"
                ),
            );
        }
    }

    fn secret_whitespace(&mut self) {
        let input = self.explainer.input;
        for secret in input.secrets.iter().filter(|s| !s.is_public_key()) {
            let label = secret.label.as_str();
            let value = &secret.value[..];
            let trimmed = value.trim_ascii();
            if trimmed.len() != value.len() {
                if !trimmed.is_empty()
                    && self
                        .with_secret(Secret::new(label, trimmed.to_vec()))
                        .is_some()
                {
                    self.add(
                        "secret_whitespace",
                        format!(
                            "the configured secret \"{label}\" has surrounding whitespace (a \
                             newline from the file or the paste it came from); the provider \
                             signed without it: remove it"
                        ),
                    );
                }
                continue;
            }
            let variants: [(&[u8], &[u8], &str); 5] = [
                (b"", b"\n", "a trailing newline"),
                (b"", b"\r\n", "a trailing CRLF"),
                (b"", b" ", "a trailing space"),
                (b" ", b"", "a leading space"),
                (b"\n", b"", "a leading newline"),
            ];
            for (before, after, what) in variants {
                let padded = [before, value, after].concat();
                if self.with_secret(Secret::new(label, padded)).is_some() {
                    self.add(
                        "secret_whitespace",
                        format!(
                            "the provider signed with secret \"{label}\" plus {what}: the \
                             signing side's copy of the secret carries it (read from a file or \
                             pasted with it); remove it there"
                        ),
                    );
                }
            }
        }
    }

    /// The request as it is, with `secret` alone.
    fn with_secret(&mut self, secret: Secret) -> Option<String> {
        let input = self.explainer.input;
        let names = Some(self.explainer.names.clone());
        self.attempt(input.method, names, vec![secret], input.headers, input.body)
    }

    fn secret_encoding(&mut self) {
        let input = self.explainer.input;
        let method = input.method;
        for secret in input.secrets.iter().filter(|s| !s.is_public_key()) {
            let label = secret.label.as_str();
            let value = &secret.value[..];
            let mut keys: Vec<(Vec<u8>, String)> = Vec::new();
            if method == Method::StandardWebhooks {
                keys.push((
                    value.to_vec(),
                    "the whole secret string (whsec_ included) as the HMAC key, as Stripe \
                     does, where Standard Webhooks keys it with the base64-decoded bytes after \
                     whsec_"
                        .into(),
                ));
                if let Some(rest) = value.strip_prefix(b"whsec_") {
                    keys.push((
                        rest.to_vec(),
                        "the text after whsec_ as the HMAC key without base64-decoding it".into(),
                    ));
                }
            } else {
                if let Some(key) = value.strip_prefix(b"whsec_").and_then(base64_decoded) {
                    keys.push((
                        key,
                        format!(
                            "the base64-decoded bytes after whsec_ as the HMAC key (the \
                             Standard Webhooks convention), where {method} keys it with the \
                             secret string as is"
                        ),
                    ));
                }
                if let Some(key) = base64_decoded(value) {
                    keys.push((
                        key,
                        format!(
                            "the secret base64-decoded as the HMAC key, where {method} keys it \
                             with the secret string as is"
                        ),
                    ));
                }
                if value.len() >= 32
                    && value.len() % 2 == 0
                    && let Ok(key) = hex::decode(value)
                {
                    keys.push((
                        key,
                        format!(
                            "the secret hex-decoded as the HMAC key, where {method} keys it \
                             with the secret string as is"
                        ),
                    ));
                }
            }
            for (key, how) in keys {
                let Some(candidate) = secret_for_key(method, &key) else {
                    continue;
                };
                if self.with_secret(Secret::new(label, candidate)).is_some() {
                    self.add(
                        "secret_encoding",
                        format!("secret \"{label}\" matches when the provider uses {how}"),
                    );
                }
            }
        }
    }

    fn body_variants(&mut self) {
        let input = self.explainer.input;
        let body = input.body;
        // The simplest explanation first: a candidate already tried (a JSON re-encoding that
        // only drops a final newline, PHP's style on a body without `/` or non-ASCII) is not
        // tried again under a second cause.
        let mut tries: Vec<(&'static str, Vec<u8>, String)> = Vec::new();
        let added = "the signature matches the body without its final newline: one was added \
                     after signing (an editor, echo, a file saved by hand, a logging pipeline)";
        let lost = "the signature matches the body with a final newline: the provider sent \
                    one, and it was lost (trimmed by a framework, or by `$(...)` in a shell)";
        if let Some(stripped) = body.strip_suffix(b"\r\n") {
            tries.push((
                "trailing_newline",
                stripped.to_vec(),
                added.replace("newline", "CRLF"),
            ));
        } else if let Some(stripped) = body.strip_suffix(b"\n") {
            tries.push(("trailing_newline", stripped.to_vec(), added.into()));
        } else {
            tries.push(("trailing_newline", [body, b"\n"].concat(), lost.into()));
            tries.push(("trailing_newline", [body, b"\r\n"].concat(), lost.into()));
        }
        if body.windows(2).any(|pair| pair == b"\r\n") {
            tries.push((
                "crlf_newlines",
                replace(body, b"\r\n", b"\n"),
                "the signature matches the body with LF line ends where it has CRLF: they were \
                 converted after signing (a text-mode transfer, git autocrlf, an editor)"
                    .into(),
            ));
        } else if body.contains(&b'\n') {
            tries.push((
                "crlf_newlines",
                replace(body, b"\n", b"\r\n"),
                "the signature matches the body with CRLF line ends where it has LF: they were \
                 converted after signing (a text-mode transfer, git, an editor)"
                    .into(),
            ));
        }
        if let Some(value) = reencode::parse(body) {
            for style in Style::ALL {
                let encoded = reencode::encode(&value, style);
                for newline in [false, true] {
                    let mut candidate = encoded.clone();
                    if newline {
                        candidate.push(b'\n');
                    }
                    let with = if newline { " and a final newline" } else { "" };
                    tries.push((
                        "body_reformatted_json",
                        candidate,
                        format!(
                            "the signature matches the body re-encoded as {}{with}: the \
                             provider sent it that way, and it was parsed and re-serialized \
                             before verifying. Verify the raw bytes as received, before any \
                             JSON parsing",
                            style.describe()
                        ),
                    ));
                }
            }
        }
        let mut seen: Vec<&[u8]> = vec![body];
        let mut fresh = Vec::with_capacity(tries.len());
        for (index, (_, candidate, _)) in tries.iter().enumerate() {
            if !seen.contains(&candidate.as_slice()) {
                seen.push(candidate);
                fresh.push(index);
            }
        }
        for index in fresh {
            let (code, candidate, detail) = &tries[index];
            if let Some(label) = self.attempt_as_configured(input.headers, candidate) {
                self.add(code, format!("{detail} (secret \"{label}\")"));
            }
        }
    }

    fn timestamp_unit(&mut self) {
        let input = self.explainer.input;
        let method = input.method;
        let Some(raw) = self.facts.timestamp_raw.clone() else {
            return;
        };
        if !method.has_timestamp() || raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return;
        }
        let Ok(number) = raw.parse::<u64>() else {
            return;
        };
        let (candidates, detail): (Vec<String>, &str) = if raw.len() == 13 {
            (
                vec![(number / 1000).to_string()],
                "the signature covers the timestamp in seconds, but the header carries \
                 milliseconds: the sender signs one value and sends another",
            )
        } else if raw.len() <= 11 {
            let sub_seconds = if input.body.len() <= SUB_SECOND_TRIES_UP_TO {
                1000
            } else {
                1
            };
            (
                (0..sub_seconds)
                    .map(|ms| (number * 1000 + ms).to_string())
                    .collect(),
                "the signature covers the timestamp in milliseconds, but the header carries \
                 seconds: the sender signs one value and sends another",
            )
        } else {
            return;
        };
        let carried = self.carried();
        for candidate in candidates {
            let mut headers = input.headers.clone();
            if method == Method::Stripe {
                let name = self.explainer.names.signature.clone();
                let Some(value) = carried
                    .tags
                    .iter()
                    .find_map(|tag| credential(Method::Stripe, tag, &candidate))
                    .and_then(|text| HeaderValue::from_str(&text).ok())
                else {
                    return;
                };
                headers.insert(name, value);
            } else if let (Some(name), Ok(value)) = (
                self.explainer.names.timestamp.clone(),
                HeaderValue::from_str(&candidate),
            ) {
                headers.insert(name, value);
            }
            if let Some(label) = self.attempt_as_configured(&headers, input.body) {
                self.add("timestamp_unit", format!("{detail} (secret \"{label}\")"));
                return;
            }
        }
    }

    fn carried(&self) -> Carried {
        let input = self.explainer.input;
        input
            .headers
            .get(&self.explainer.names.signature)
            .map(|value| carried(value.as_bytes()))
            .unwrap_or_default()
    }

    /// The HMAC keys worth trying under another method: the one this method derives from each
    /// secret, and the secret's bytes as they are.
    fn keys(&self) -> Vec<(String, Vec<u8>)> {
        let input = self.explainer.input;
        let mut keys = Vec::new();
        for secret in input.secrets.iter().filter(|s| !s.is_public_key()) {
            let derived = hmac_key(input.method, &secret.value);
            for key in derived.into_iter().chain([secret.value.to_vec()]) {
                let entry = (secret.label.clone(), key);
                if !keys.contains(&entry) {
                    keys.push(entry);
                }
            }
        }
        keys
    }

    /// The secrets to try under `other`: each key as `other` reads a key, and for Standard
    /// Webhooks the configured `whsec_`/`whpk_` values as they are (a secret of that form read
    /// the Standard Webhooks way).
    fn secrets_for(&self, other: Method, keys: &[(String, Vec<u8>)]) -> Vec<Secret> {
        let mut values: Vec<(String, Vec<u8>)> = keys
            .iter()
            .filter_map(|(label, key)| Some((label.clone(), secret_for_key(other, key)?)))
            .collect();
        if other == Method::StandardWebhooks {
            for secret in self.input().secrets {
                let entry = (secret.label.clone(), secret.value.to_vec());
                let native = entry.1.starts_with(b"whsec_") || entry.1.starts_with(b"whpk_");
                if native && !values.contains(&entry) {
                    values.push(entry);
                }
            }
        }
        values
            .into_iter()
            .map(|(label, value)| Secret::new(label, value))
            .collect()
    }

    /// The carried signature checked as another method's: the same tag in that method's header,
    /// with the request's timestamp and id.
    fn other_framing(&mut self) {
        let input = self.explainer.input;
        let carried = self.carried();
        let timestamp = self
            .facts
            .timestamp_raw
            .clone()
            .or_else(|| carried.timestamp.clone());
        let keys = self.keys();
        for other in SIGNING_METHODS {
            if other == input.method
                || same_signed_bytes(other, input.method)
                || (other.has_timestamp() && timestamp.is_none())
                || (other == Method::StandardWebhooks && self.facts.delivery_id.is_none())
            {
                continue;
            }
            let ts = timestamp.clone().unwrap_or_default();
            let names = other.default_header_names();
            for tag in &carried.tags {
                let Some(value) = credential(other, tag, &ts) else {
                    continue;
                };
                let mut headers = HeaderMap::new();
                let mut add = |name: &HeaderName, value: &str| {
                    if let Ok(value) = HeaderValue::from_str(value) {
                        headers.insert(name.clone(), value);
                    }
                };
                add(&names.signature, &value);
                if let (Some(name), true) = (&names.timestamp, other != Method::Stripe) {
                    add(name, &ts);
                }
                if let (Some(name), Some(id)) = (&names.delivery_id, &self.facts.delivery_id) {
                    add(name, id);
                }
                let secrets = self.secrets_for(other, &keys);
                let matched = self.attempt_each(other, Some(names.clone()), secrets, &headers);
                if let Some(label) = matched {
                    self.add(
                        "other_scheme",
                        format!(
                            "the signature matches {other}'s signed bytes, {}, with secret \
                             \"{label}\", not {}'s, {}: the sender signs as {other} (use \
                             --scheme {other}, or fix the sender)",
                            framing(other),
                            input.method,
                            framing(input.method)
                        ),
                    );
                }
            }
        }
    }

    /// Each secret on its own (two keys of one label may be tried, and a duplicate label is a
    /// configuration error).
    fn attempt_each(
        &mut self,
        method: Method,
        names: Option<HeaderNames>,
        secrets: Vec<Secret>,
        headers: &HeaderMap,
    ) -> Option<String> {
        let body = self.explainer.input.body;
        secrets
            .into_iter()
            .find_map(|secret| self.attempt(method, names.clone(), vec![secret], headers, body))
    }

    /// The request carries another method's headers: verified as that method's delivery.
    fn other_headers(&mut self) {
        let input = self.explainer.input;
        let keys = self.keys();
        for other in Method::ALL {
            let names = other.default_header_names();
            if other == input.method
                || other == Method::None
                || names.signature == self.explainer.names.signature
                || !input.headers.contains_key(&names.signature)
            {
                continue;
            }
            let secrets = if SIGNING_METHODS.contains(&other) {
                self.secrets_for(other, &keys)
            } else {
                input.secrets.iter().map(SecretValue::secret).collect()
            };
            if let Some(label) = self.attempt_each(other, None, secrets, input.headers) {
                self.add(
                    "other_scheme",
                    format!(
                        "the request carries {}, {other}'s signature header, and verifies \
                         under --scheme {other} with secret \"{label}\": use --scheme {other}",
                        names.signature
                    ),
                );
            }
        }
    }
}

/// `haystack` with every `from` replaced by `to`.
fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len() + haystack.len() / 16);
    let mut rest = haystack;
    while !rest.is_empty() {
        if rest.starts_with(from) {
            out.extend_from_slice(to);
            rest = &rest[from.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

/// `2025-11-24T16:00:00Z`.
fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// `42 s`, `16 min 40 s`, `2 h 5 min`, `1.5 s`.
pub(crate) fn human(duration: Duration) -> String {
    let seconds = duration.whole_seconds();
    let millis = duration.subsec_milliseconds();
    if seconds < 60 {
        return if millis == 0 {
            format!("{seconds} s")
        } else {
            format!("{:.3} s", duration.as_seconds_f64())
        };
    }
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (hours, seconds) {
        (0, 0) => format!("{minutes} min"),
        (0, _) => format!("{minutes} min {seconds} s"),
        _ => format!("{hours} h {minutes} min"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carried_tags_in_every_form() {
        let hex32 = "ab".repeat(32);
        assert_eq!(
            carried(format!("sha256={hex32}").as_bytes()).tags,
            vec![vec![0xab; 32]]
        );
        let stripe = carried(format!("t=1764000000,v1={hex32},v0={}", "cd".repeat(32)).as_bytes());
        assert_eq!(stripe.timestamp.as_deref(), Some("1764000000"));
        assert_eq!(stripe.tags, vec![vec![0xab; 32], vec![0xcd; 32]]);
        let b64 = STANDARD.encode_to_string([7u8; 32]);
        assert_eq!(
            carried(format!("v1,{b64} v1a,{}", STANDARD.encode_to_string([9u8; 64])).as_bytes())
                .tags,
            vec![vec![7; 32], vec![9; 64]]
        );
        assert_eq!(carried(b"Bearer token").tags, Vec::<Vec<u8>>::new());
        assert_eq!(carried(&[0xff, b'=']).tags, Vec::<Vec<u8>>::new());
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human(Duration::seconds(42)), "42 s");
        assert_eq!(human(Duration::milliseconds(1500)), "1.500 s");
        assert_eq!(human(Duration::seconds(1000)), "16 min 40 s");
        assert_eq!(human(Duration::seconds(300)), "5 min");
        assert_eq!(human(Duration::seconds(7500)), "2 h 5 min");
    }

    #[test]
    fn newlines_are_replaced() {
        assert_eq!(replace(b"a\r\nb\r\n", b"\r\n", b"\n"), b"a\nb\n");
        assert_eq!(replace(b"a\nb", b"\n", b"\r\n"), b"a\r\nb");
        assert_eq!(replace(b"", b"\n", b"\r\n"), b"");
    }
}
