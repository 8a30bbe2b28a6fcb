//! Signing secrets, and the HMAC state each one is keyed into once.

use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, KeyInit};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::ConfigError;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// A shared secret with a label that names it (`"2026-11"`, `"current"`, `"old"`).
///
/// The label is what a verified delivery reports, so during a rotation you can see when the old
/// secret stops matching and retire it. The secret's bytes are wiped from memory when it is
/// dropped and never appear in `Debug` output.
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

    /// Keys an HMAC-SHA256 state once, so requests only clone it.
    pub(crate) fn into_keyed(self) -> Result<KeyedSecret, ConfigError> {
        let empty = || ConfigError::EmptySecret {
            label: self.label.to_string(),
        };
        if self.value.is_empty() {
            return Err(empty());
        }
        // HMAC takes a key of any length: this fails only if the key is rejected anyway.
        let keyed = HmacSha256::new_from_slice(&self.value).map_err(|_| empty())?;
        Ok(KeyedSecret {
            label: self.label,
            keyed,
        })
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

/// A secret after keying: the HMAC state that has absorbed the key blocks.
///
/// That state is as sensitive as the key itself; `hmac`'s `zeroize` feature wipes it (and every
/// per-request copy) on drop.
pub(crate) struct KeyedSecret {
    pub(crate) label: Arc<str>,
    keyed: HmacSha256,
}

impl KeyedSecret {
    /// A MAC ready for a message: a copy of the keyed state.
    pub(crate) fn mac(&self) -> HmacSha256 {
        self.keyed.clone()
    }
}

impl fmt::Debug for KeyedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedSecret")
            .field("label", &self.label)
            .field("key", &format_args!("<redacted>"))
            .finish()
    }
}
