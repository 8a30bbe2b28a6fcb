//! Signing secrets, what each one is keyed into once (an HMAC state, an Ed25519 public key, a
//! token's digest), and the checks those run over a delivery.

use std::fmt;
use std::sync::Arc;

use base64_simd::STANDARD;
use ed25519_dalek::StreamVerifier;
use ed25519_dalek::VerifyingKey;
use hmac::digest::{CtOutput, Output};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::ConfigError;
use crate::method::{Alg, Method};
use crate::signature::{Signatures, Tag};

pub(crate) type HmacSha256 = Hmac<Sha256>;
pub(crate) type HmacSha1 = Hmac<Sha1>;

/// A shared secret (or, for Standard Webhooks' `v1a`, a public key) with a label that names it
/// (`"2026-11"`, `"current"`, `"old"`).
///
/// The label is what a verified delivery reports, so during a rotation you can see when the old
/// secret stops matching and retire it. The secret's bytes are wiped from memory when it is
/// dropped and never appear in `Debug` output.
///
/// How the bytes are read depends on the [`Method`]: as given for the HMAC methods, Stripe
/// (the whole `whsec_…` string is the key), GitHub and Slack; as the token for `bearer`; as
/// `user:password` for `basic_auth`; as `whsec_<base64>` (an HMAC key) or `whpk_<base64>` (an
/// Ed25519 public key) for Standard Webhooks.
///
/// ```
/// use hookverify::Secret;
///
/// let secret = Secret::new("current", "whsec_example");
/// assert_eq!(format!("{secret:?}"), r#"Secret { label: "current", value: <redacted> }"#);
/// ```
pub struct Secret {
    label: Arc<str>,
    value: Zeroizing<Vec<u8>>,
}

impl Secret {
    /// A secret whose key is `value`'s bytes as given (for a string, its UTF-8 bytes).
    ///
    /// Pass an owned `String` or `Vec<u8>` to move it in without leaving a copy behind.
    pub fn new(label: impl Into<Arc<str>>, value: impl Into<Vec<u8>>) -> Self {
        Self {
            label: label.into(),
            value: Zeroizing::new(value.into()),
        }
    }

    /// The label given at construction.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Reads the secret as `method` says and keys it once, so requests only clone the state.
    pub(crate) fn into_keyed(self, method: Method) -> Result<KeyedSecret, ConfigError> {
        let key = self.key(method)?;
        Ok(KeyedSecret {
            label: self.label,
            key,
        })
    }

    fn key(&self, method: Method) -> Result<Key, ConfigError> {
        let label = || self.label.to_string();
        if self.value.is_empty() {
            return Err(ConfigError::EmptySecret { label: label() });
        }
        let encoding = |expected: &'static str| ConfigError::SecretEncoding {
            label: label(),
            method,
            expected,
        };
        // HMAC takes a key of any length: keying fails only for an empty key, refused above.
        let hmac = |key: &[u8]| {
            HmacSha256::new_from_slice(key)
                .map(Key::HmacSha256)
                .map_err(|_| ConfigError::EmptySecret { label: label() })
        };
        match method {
            Method::HmacSha256 | Method::Stripe | Method::GitHub | Method::Slack => {
                hmac(&self.value)
            }
            Method::HmacSha1 => HmacSha1::new_from_slice(&self.value)
                .map(Key::HmacSha1)
                .map_err(|_| ConfigError::EmptySecret { label: label() }),
            Method::Bearer => Ok(Key::token(&self.value)),
            Method::BasicAuth if self.value.contains(&b':') => Ok(Key::token(&self.value)),
            Method::BasicAuth => Err(encoding("user:password")),
            Method::None => Err(ConfigError::SecretWithoutSigning { label: label() }),
            Method::StandardWebhooks => {
                let expected = "whsec_<base64> or whpk_<base64 of a 32-byte Ed25519 public key>";
                if let Some(encoded) = self.value.strip_prefix(b"whsec_") {
                    let key = Zeroizing::new(
                        STANDARD
                            .decode_to_vec(encoded)
                            .map_err(|_| encoding(expected))?,
                    );
                    if key.is_empty() {
                        return Err(encoding(expected));
                    }
                    hmac(&key)
                } else if let Some(encoded) = self.value.strip_prefix(b"whpk_") {
                    let bytes: [u8; 32] = STANDARD
                        .decode_to_vec(encoded)
                        .ok()
                        .and_then(|bytes| bytes.try_into().ok())
                        .ok_or_else(|| encoding(expected))?;
                    VerifyingKey::from_bytes(&bytes)
                        .map(Key::Ed25519)
                        .map_err(|_| encoding(expected))
                } else {
                    Err(encoding(expected))
                }
            }
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("label", &self.label)
            .field("value", &format_args!("<redacted>"))
            .finish()
    }
}

/// What a secret is keyed into.
enum Key {
    HmacSha256(HmacSha256),
    HmacSha1(HmacSha1),
    Ed25519(VerifyingKey),
    /// The SHA-256 digest of a bearer token or `user:password`.
    TokenDigest(Zeroizing<[u8; 32]>),
    /// `none`: matches any request.
    Unsigned,
}

impl Key {
    fn token(value: &[u8]) -> Self {
        Self::TokenDigest(Zeroizing::new(Sha256::digest(value).into()))
    }
}

/// A secret after keying: the HMAC state that has absorbed the key blocks, the parsed public
/// key, or the token's digest.
///
/// An HMAC state is as sensitive as the key itself; `hmac`'s `zeroize` feature wipes it (and
/// every per-request copy) on drop.
pub(crate) struct KeyedSecret {
    pub(crate) label: Arc<str>,
    key: Key,
}

impl KeyedSecret {
    /// What `none` verifies with: no key, a fixed label.
    pub(crate) fn unsigned() -> Self {
        Self {
            label: "unsigned".into(),
            key: Key::Unsigned,
        }
    }

    /// For the methods that sign no body: whether the carried credential is this secret.
    pub(crate) fn matches_credential(&self, carried: &Signatures) -> bool {
        match &self.key {
            Key::TokenDigest(digest) => Tag::from_slice(&digest[..])
                .is_some_and(|digest| carried.contains(Alg::TokenDigest, &digest)),
            Key::Unsigned => true,
            Key::HmacSha256(_) | Key::HmacSha1(_) | Key::Ed25519(_) => false,
        }
    }

    /// Checks the whole signed message, its body in memory: the carried signature that
    /// matched, if one did.
    pub(crate) fn check_message(
        &self,
        prefix: [&[u8]; 4],
        body: &[u8],
        carried: &Signatures,
    ) -> Option<Tag> {
        match &self.key {
            Key::HmacSha256(keyed) => {
                matching(mac_of(keyed, prefix, body), carried, Alg::HmacSha256)
            }
            Key::HmacSha1(keyed) => matching(mac_of(keyed, prefix, body), carried, Alg::HmacSha1),
            // Signatures are public: stopping at the first valid one leaks nothing.
            Key::Ed25519(public_key) => carried
                .of(Alg::Ed25519)
                .find(|signature| {
                    ed25519_state(public_key, signature, prefix).is_some_and(|mut state| {
                        state.update(body);
                        state.finalize_and_verify().is_ok()
                    })
                })
                .and_then(Tag::from_slice),
            Key::TokenDigest(_) | Key::Unsigned => None,
        }
    }

    /// The MAC of `prefix` and `body` (for verifying and for signing); `None` for keys that are
    /// not MACs.
    #[inline]
    pub(crate) fn mac_tag(&self, prefix: [&[u8]; 4], body: &[u8]) -> Option<Tag> {
        match &self.key {
            Key::HmacSha256(keyed) => Tag::from_slice(&mac_of(keyed, prefix, body).into_bytes()),
            Key::HmacSha1(keyed) => Tag::from_slice(&mac_of(keyed, prefix, body).into_bytes()),
            Key::Ed25519(_) | Key::TokenDigest(_) | Key::Unsigned => None,
        }
    }

    /// The checks this secret runs over a streamed body, each already fed the signed bytes
    /// before the body: one MAC, or one Ed25519 verification per carried `v1a` signature.
    pub(crate) fn body_checks<'a>(
        &'a self,
        prefix: [&'a [u8]; 4],
        carried: &'a Signatures,
    ) -> impl Iterator<Item = BodyCheck> + 'a {
        let public_key = match &self.key {
            Key::Ed25519(public_key) => Some(public_key),
            _ => None,
        };
        let signatures = public_key.into_iter().flat_map(move |public_key| {
            carried.of(Alg::Ed25519).filter_map(move |signature| {
                Some(BodyCheck::Ed25519 {
                    // Boxed: the state is large, and a streamed body is read into allocated
                    // buffers anyway.
                    verifier: Box::new(ed25519_state(public_key, signature, prefix)?),
                    signature: Tag::from_slice(signature)?,
                })
            })
        });
        self.mac_check(prefix).into_iter().chain(signatures)
    }

    /// A copy of the keyed MAC, fed `prefix`; `None` for keys that are not MACs.
    fn mac_check(&self, prefix: [&[u8]; 4]) -> Option<BodyCheck> {
        let mut check = match &self.key {
            Key::HmacSha256(keyed) => BodyCheck::HmacSha256(keyed.clone()),
            Key::HmacSha1(keyed) => BodyCheck::HmacSha1(keyed.clone()),
            Key::Ed25519(_) | Key::TokenDigest(_) | Key::Unsigned => return None,
        };
        for piece in prefix {
            check.update(piece);
        }
        Some(check)
    }
}

/// The MAC of `prefix` and `body` under a copy of `keyed`. Computed in place rather than
/// through a `BodyCheck`, which would move the MAC state (a few hundred bytes) at every step
/// (BENCHMARKS.md, issue 15).
#[inline]
fn mac_of<M: Mac + Clone>(keyed: &M, prefix: [&[u8]; 4], body: &[u8]) -> CtOutput<M> {
    let mut mac = keyed.clone();
    for piece in prefix {
        mac.update(piece);
    }
    mac.update(body);
    mac.finalize()
}

/// The carried tag of `alg` equal to the computed MAC, if one is. Every one is compared, each
/// in constant time as `Mac::verify_slice` compares (digest's `CtOutput`, word by word), none
/// skipped whatever the answer.
fn matching<M: Mac>(computed: CtOutput<M>, carried: &Signatures, alg: Alg) -> Option<Tag> {
    let mut found = false;
    for tag in carried.of(alg) {
        // A tag of another length is unequal, and lengths are public.
        if let Ok(tag) = Output::<M>::try_from(tag) {
            // `|`, not `||`: no comparison is skipped.
            found |= CtOutput::new(tag) == computed;
        }
    }
    found
        .then(|| Tag::from_slice(&computed.into_bytes()))
        .flatten()
}

/// An Ed25519 verification of `signature` by `public_key`, fed `prefix`; `None` if the
/// signature is not even well formed.
fn ed25519_state(
    public_key: &VerifyingKey,
    signature: &[u8],
    prefix: [&[u8]; 4],
) -> Option<StreamVerifier> {
    let bytes: [u8; 64] = signature.try_into().ok()?;
    let mut state = public_key
        .verify_stream(&ed25519_dalek::Signature::from_bytes(&bytes))
        .ok()?;
    for piece in prefix {
        state.update(piece);
    }
    Some(state)
}

impl fmt::Debug for KeyedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedSecret")
            .field("label", &self.label)
            .field("key", &format_args!("<redacted>"))
            .finish()
    }
}

/// One check of a delivery's signed bytes, fed as they arrive.
pub(crate) enum BodyCheck {
    HmacSha256(HmacSha256),
    HmacSha1(HmacSha1),
    Ed25519 {
        verifier: Box<StreamVerifier>,
        signature: Tag,
    },
}

impl BodyCheck {
    pub(crate) fn update(&mut self, chunk: &[u8]) {
        match self {
            Self::HmacSha256(mac) => mac.update(chunk),
            Self::HmacSha1(mac) => mac.update(chunk),
            Self::Ed25519 { verifier, .. } => verifier.update(chunk),
        }
    }

    /// The carried signature that matched, if one did.
    pub(crate) fn verdict(self, carried: &Signatures) -> Option<Tag> {
        let alg = match self {
            Self::HmacSha256(_) => Alg::HmacSha256,
            Self::HmacSha1(_) => Alg::HmacSha1,
            Self::Ed25519 {
                verifier,
                signature,
            } => return verifier.finalize_and_verify().ok().map(|()| signature),
        };
        match self {
            Self::HmacSha256(mac) => matching(mac.finalize(), carried, alg),
            Self::HmacSha1(mac) => matching(mac.finalize(), carried, alg),
            Self::Ed25519 { .. } => None,
        }
    }
}

impl fmt::Debug for BodyCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::HmacSha256(_) => "HmacSha256",
            Self::HmacSha1(_) => "HmacSha1",
            Self::Ed25519 { .. } => "Ed25519",
        };
        f.debug_tuple("BodyCheck")
            .field(&name)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A list of `sha256=` entries, the tags given as raw bytes.
    fn carried(tags: &[&[u8]]) -> Signatures {
        let value: Vec<String> = tags
            .iter()
            .map(|tag| format!("sha256={}", hex::encode(tag)))
            .collect();
        let mut signatures = Signatures::default();
        let parsed =
            signatures.parse_hex_list(value.join(",").as_bytes(), b"sha256=", Alg::HmacSha256, 32);
        assert!(parsed.is_ok(), "{value:?}");
        signatures
    }

    #[test]
    fn a_mac_matches_any_carried_tag_of_its_algorithm_and_no_near_miss() {
        let keyed = HmacSha256::new_from_slice(b"key").expect("any length");
        let prefix = [&b"1764000000"[..], b".", b"", b""];
        let tag = mac_of(&keyed, prefix, b"{}").into_bytes();
        let mut near = tag;
        near[31] ^= 1;
        let other = [7u8; 32];

        for tags in [&[&tag[..]][..], &[&other, &tag], &[&tag, &other]] {
            let found = matching(
                mac_of(&keyed, prefix, b"{}"),
                &carried(tags),
                Alg::HmacSha256,
            );
            assert_eq!(
                found.map(|found| found.as_bytes().to_vec()),
                Some(tag.to_vec())
            );
        }
        for tags in [&[&near[..]][..], &[&other, &near]] {
            let found = matching(
                mac_of(&keyed, prefix, b"{}"),
                &carried(tags),
                Alg::HmacSha256,
            );
            assert!(found.is_none());
        }
        // The same tag carried for another algorithm does not count.
        let found = matching(
            mac_of(&keyed, prefix, b"{}"),
            &carried(&[&tag]),
            Alg::HmacSha1,
        );
        assert!(found.is_none());
    }
}
