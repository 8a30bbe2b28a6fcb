//! Secrets from the command line or the environment, and random values.
//!
//! Syntax, shared by `serve` and `sign` so that one `HOOKVERIFY_SECRET` works for both:
//! `LABEL=VALUE`, or `VALUE` alone when it contains no `=` (then `serve` labels it by its
//! position: `1`, `2`, …). A label is 1 to 64 ASCII letters, digits, `.`, `_` or `-`; the
//! value is everything after the first `=`, used as is (its UTF-8 bytes are the HMAC key).
//! Anything ambiguous is refused with a message, never guessed: an empty value, a value that
//! is only `=` (base64 padding split off an unlabelled secret), surrounding whitespace.
//! Error messages never repeat the text given, not even the part before `=`: in a mistyped
//! secret, that part may be the secret itself.

use std::env::{self, VarError};

use base64_simd::STANDARD;
use hookverify::{Method, Secret};

/// The environment variable both commands read when no `--secret` is given.
pub(crate) const ENV: &str = "HOOKVERIFY_SECRET";

const MAX_LABEL_LEN: usize = 64;

/// One parsed secret: the label it was given (or `None`) and its value.
#[derive(Debug)]
pub(crate) struct SecretArg {
    pub(crate) label: Option<String>,
    pub(crate) value: String,
}

/// Parses one `--secret` value or the environment variable; `source` names it in errors.
pub(crate) fn parse(text: &str, source: &str) -> Result<SecretArg, String> {
    if text.is_empty() {
        return Err(format!(
            "{source} is empty; a signing method never runs without its secret (to accept \
             unsigned deliveries, use --scheme none and no secret)"
        ));
    }
    if text.trim() != text {
        return Err(format!(
            "{source} starts or ends with whitespace (a stray newline?); remove it"
        ));
    }
    let Some((label, value)) = text.split_once('=') else {
        return Ok(SecretArg {
            label: None,
            value: text.to_owned(),
        });
    };
    if label.is_empty() {
        return Err(format!(
            "{source}: the label before '=' is empty (use LABEL=SECRET, or SECRET alone)"
        ));
    }
    if label.len() > MAX_LABEL_LEN
        || !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(format!(
            "{source}: the label before the first '=' must be 1 to {MAX_LABEL_LEN} ASCII \
             letters, digits, '.', '_' or '-'; a secret that contains '=' needs a label in \
             front of it, as in current=SECRET"
        ));
    }
    if value.is_empty() {
        return Err(format!(
            "{source}: nothing follows the '=' (use LABEL=SECRET)"
        ));
    }
    if value.bytes().all(|b| b == b'=') {
        return Err(format!(
            "{source}: only '=' characters follow the first '='; if this is a base64 secret \
             ending in padding, put a label in front of it, as in current=SECRET"
        ));
    }
    Ok(SecretArg {
        label: Some(label.to_owned()),
        value: value.to_owned(),
    })
}

/// The `--secret` values if any were given, else the environment variable if set (an empty one
/// is an error, not "unset"), else nothing.
pub(crate) fn collect(flags: &[String]) -> Result<Vec<SecretArg>, String> {
    if !flags.is_empty() {
        return flags
            .iter()
            .enumerate()
            .map(|(index, text)| parse(text, &format!("--secret #{}", index + 1)))
            .collect();
    }
    match env::var(ENV) {
        Ok(text) => Ok(vec![parse(&text, ENV)?]),
        Err(VarError::NotPresent) => Ok(Vec::new()),
        Err(VarError::NotUnicode(_)) => Err(format!("{ENV} is not valid UTF-8")),
    }
}

/// The secret to sign with: the last one [`collect`] finds; none for `--scheme none`.
pub(crate) fn signing(flags: &[String], method: Method) -> Result<String, String> {
    match collect(flags)?.pop() {
        Some(secret) => Ok(secret.value),
        None if method == Method::None => Ok(String::new()),
        None => Err(format!("no secret: pass --secret or set {ENV}")),
    }
}

/// Secrets for the verifier: unlabelled ones are named by their position (`1`, `2`, …).
pub(crate) fn labelled(args: Vec<SecretArg>) -> Vec<Secret> {
    args.into_iter()
        .enumerate()
        .map(|(index, arg)| {
            let label = arg.label.unwrap_or_else(|| (index + 1).to_string());
            Secret::new(label, arg.value)
        })
        .collect()
}

/// `bytes` random bytes from the operating system, in lowercase hex.
pub(crate) fn random_hex(bytes: usize) -> Result<String, String> {
    let mut buffer = vec![0; bytes];
    getrandom::fill(&mut buffer)
        .map_err(|error| format!("could not get random bytes from the system: {error}"))?;
    Ok(hex::encode(buffer))
}

/// A fresh secret for a `serve` run without one, in the form `method` reads: 240 or 256
/// random bits.
pub(crate) fn generate(method: Method) -> Result<String, String> {
    Ok(match method {
        // 30 bytes: base64 without `=` padding, which `LABEL=SECRET` parsing would trip on.
        Method::StandardWebhooks => {
            let mut key = [0u8; 30];
            getrandom::fill(&mut key)
                .map_err(|error| format!("could not get random bytes from the system: {error}"))?;
            format!("whsec_{}", STANDARD.encode_to_string(key))
        }
        Method::BasicAuth => format!("hookverify:{}", random_hex(32)?),
        _ => format!("whsec_{}", random_hex(32)?),
    })
}

/// A fresh Ed25519 signing key for Standard Webhooks' `v1a`: `whsk_<base64 of a 32-byte seed>`
/// (it ends in `=`: given on the command line, it needs a label in front).
pub(crate) fn generate_ed25519_seed() -> Result<String, String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|error| format!("could not get random bytes from the system: {error}"))?;
    Ok(format!("whsk_{}", STANDARD.encode_to_string(seed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> (Option<String>, String) {
        let arg = parse(text, "--secret").expect("valid");
        (arg.label, arg.value)
    }

    fn err(text: &str) -> String {
        parse(text, "--secret").expect_err("invalid")
    }

    #[test]
    fn labelled_and_unlabelled() {
        assert_eq!(ok("whsec_abc"), (None, "whsec_abc".into()));
        assert_eq!(
            ok("current=whsec_abc"),
            (Some("current".into()), "whsec_abc".into())
        );
        assert_eq!(ok("old=abc=="), (Some("old".into()), "abc==".into()));
        assert_eq!(
            ok("2026-11.a_b=x=y"),
            (Some("2026-11.a_b".into()), "x=y".into())
        );
    }

    #[test]
    fn ambiguous_or_empty_is_refused_without_echoing_the_secret() {
        for bad in [
            "", "=abc", "label=", "abc==", "a b=c", "a+/b=c", " abc", "abc\n",
        ] {
            let message = err(bad);
            assert!(message.starts_with("--secret"), "{message}");
            let before_equals = bad.trim().split('=').next().unwrap_or_default();
            if before_equals.len() > 1 {
                assert!(!message.contains(before_equals), "{message} echoes {bad:?}");
            }
        }
        assert!(err(&format!("{}=x", "l".repeat(65))).contains("label"));
    }

    #[test]
    fn unlabelled_secrets_are_named_by_position() {
        let secrets = labelled(vec![
            SecretArg {
                label: None,
                value: "a".into(),
            },
            SecretArg {
                label: Some("old".into()),
                value: "b".into(),
            },
            SecretArg {
                label: None,
                value: "c".into(),
            },
        ]);
        let labels: Vec<&str> = secrets.iter().map(Secret::label).collect();
        assert_eq!(labels, ["1", "old", "3"]);
    }

    #[test]
    fn generated_secrets_are_distinct_and_long() -> Result<(), String> {
        let (a, b) = (generate(Method::HmacSha256)?, generate(Method::HmacSha256)?);
        assert_ne!(a, b);
        assert_eq!(a.len(), "whsec_".len() + 64);
        // Every method takes its generated secret, and none contains '='.
        for method in Method::ALL.into_iter().filter(|m| *m != Method::None) {
            let secret = generate(method)?;
            assert!(!secret.contains('='), "{method}: {secret}");
            hookverify::Verifier::builder()
                .method(method)
                .secret("generated", secret)
                .build()
                .map_err(|error| format!("{method}: {error}"))?;
        }
        Ok(())
    }
}
