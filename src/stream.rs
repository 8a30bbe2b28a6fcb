//! Streaming verification: hash the body as it arrives, so the verdict is ready when the last
//! byte is.

use std::fmt;

use hmac::Mac;

use crate::delivery::{DeliveryId, Verified};
use crate::error::Error;
use crate::secret::HmacSha256;
use crate::signature::{Candidates, Tag};
use crate::verifier::{Precheck, Verifier};

/// Verifies a body fed in chunks, for a request whose headers passed
/// [`Verifier::precheck`].
///
/// Every configured secret's HMAC state advances with each chunk (a streamed body cannot be
/// read twice), so [`finish`](Self::finish) only finalizes: its cost does not grow with the
/// body. Same verdicts as [`Verifier::verify_body`] over the concatenated chunks.
///
/// ```
/// use hookverify::{Signer, Verifier};
///
/// let verifier = Verifier::builder().secret("current", "whsec_example").build()?;
/// let headers = Signer::new("whsec_example")?.sign("dlv_1", b"hello, world").header_map()?;
/// let mut body = verifier.stream(verifier.precheck(&headers)?);
/// body.update(b"hello, ");
/// body.update(b"world");
/// assert_eq!(body.finish()?.secret_label(), "current");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct BodyVerifier {
    verifier: Verifier,
    precheck: Precheck,
    /// One state per configured secret, in configuration order, already past the framing that
    /// precedes the body.
    states: Vec<HmacSha256>,
}

impl BodyVerifier {
    pub(crate) fn new(verifier: &Verifier, precheck: Precheck) -> Self {
        let states = verifier
            .keyed_secrets()
            .iter()
            .map(|secret| {
                let mut mac = secret.mac();
                verifier
                    .scheme()
                    .begin_message(&mut mac, precheck.timestamp_raw());
                mac
            })
            .collect();
        Self {
            verifier: verifier.clone(),
            precheck,
            states,
        }
    }

    /// Feeds the next chunk of the body.
    pub fn update(&mut self, chunk: &[u8]) {
        for state in &mut self.states {
            state.update(chunk);
        }
    }

    /// The headers this body belongs to.
    pub fn precheck(&self) -> &Precheck {
        &self.precheck
    }

    /// The verdict on the body fed so far. When several secrets match, the first one configured
    /// is reported, as [`Verifier::verify_body`] does.
    ///
    /// Finalizes copies of the states, so it can be asked again (after more chunks, too). The
    /// result borrows from this verifier.
    pub fn finish(&self) -> Result<Verified<'_>, Error> {
        let mut found = None;
        for (index, state) in self.states.iter().enumerate() {
            let tag = Tag::from_bytes(state.clone().finalize().into_bytes().into());
            if found.is_none() && self.precheck.signatures().matches(&tag) {
                found = Some((index, tag));
            }
        }
        let (index, tag) = found.ok_or(Error::SignatureMismatch)?;
        self.verifier.note_match(index);
        Ok(self.verifier.verified(
            index,
            tag,
            self.precheck.delivery_id().map(DeliveryId::as_bytes),
            self.precheck.unix_nanos(),
            self.precheck.timestamp_raw(),
        ))
    }
}

impl fmt::Debug for BodyVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyVerifier")
            .field("precheck", &self.precheck)
            .field("secrets", &self.states.len())
            .finish_non_exhaustive()
    }
}
