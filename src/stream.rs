//! Streaming verification: hash the body as it arrives, so the verdict is ready when the last
//! byte is.

use std::fmt;

use crate::error::VerifyError;
use crate::secret::BodyCheck;
use crate::verified::Verified;
use crate::verifier::{Precheck, Verifier};

/// Verifies a body fed in chunks, for a request whose headers passed
/// [`Verifier::precheck`].
///
/// Every configured secret's check (its MAC, or its Ed25519 verification) advances with each
/// chunk (a streamed body cannot be read twice), so [`finish`](Self::finish) only finalizes: its
/// cost does not grow with the body.
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
    /// The checks of each configured secret, in configuration order, already past what the
    /// method signs before the body.
    checks: Vec<(usize, BodyCheck)>,
}

impl BodyVerifier {
    /// Starts on the body of a request whose headers `verifier` prechecked.
    pub fn new(verifier: &Verifier, precheck: Precheck) -> Self {
        let checks = verifier.body_checks(&precheck).collect();
        Self {
            verifier: verifier.clone(),
            precheck,
            checks,
        }
    }

    /// Feeds the next chunk of the body.
    pub fn update(&mut self, chunk: &[u8]) {
        for (_, check) in &mut self.checks {
            check.update(chunk);
        }
    }

    /// The headers this body belongs to.
    pub fn precheck(&self) -> &Precheck {
        &self.precheck
    }

    /// The verdict on the whole body. When several secrets match, the first one configured is
    /// reported.
    pub fn finish(self) -> Result<Verified, VerifyError> {
        self.verifier.first_match(&self.precheck, self.checks)
    }
}

impl fmt::Debug for BodyVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyVerifier")
            .field("precheck", &self.precheck)
            .field("checks", &self.checks.len())
            .finish_non_exhaustive()
    }
}
