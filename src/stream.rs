//! Streaming verification: hash the body as it arrives, so the verdict is ready when the last
//! byte is.

use std::fmt;

use hmac::Mac;

use crate::error::VerifyError;
use crate::secret::HmacSha256;
use crate::signature::Tag;
use crate::verified::Verified;
use crate::verifier::{Precheck, Verifier};

/// Verifies a body fed in chunks, for a request whose headers passed
/// [`Verifier::precheck`].
///
/// Every configured secret's MAC advances with each chunk (a streamed body cannot be read
/// twice), so [`finish`](Self::finish) only finalizes: its cost does not grow with the body.
/// The verdict comes from the same matching step as [`Verifier::verify`], so it is the one
/// `verify` gives on the concatenated chunks.
///
/// ```
/// use hookverify::{BodyVerifier, Signer, Verifier};
///
/// let verifier = Verifier::builder().secret("current", "whsec_example").build()?;
/// let headers = Signer::new("whsec_example")?.sign("dlv_1", b"hello, world").header_map()?;
/// let mut body = BodyVerifier::new(&verifier, verifier.precheck(&headers)?);
/// body.update(b"hello, ");
/// body.update(b"world");
/// assert_eq!(body.finish()?.secret_label(), "current");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct BodyVerifier {
    verifier: Verifier,
    precheck: Precheck,
    /// One MAC per configured secret, in configuration order, already past what the scheme
    /// puts before the body.
    states: Vec<HmacSha256>,
}

impl BodyVerifier {
    /// Starts on the body of a request whose headers `verifier` prechecked.
    pub fn new(verifier: &Verifier, precheck: Precheck) -> Self {
        let states = verifier.begin_messages(&precheck).collect();
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
    /// is reported.
    ///
    /// Finalizes copies of the states, so it can be asked again (after more chunks, too).
    pub fn finish(&self) -> Result<Verified, VerifyError> {
        let tags = self.states.iter().cloned().map(Tag::from_mac);
        self.verifier.matching_secret(&self.precheck, tags)
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
