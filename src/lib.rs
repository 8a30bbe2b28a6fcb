#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "axum")]
pub mod axum;
mod clock;
mod delivery;
mod error;
#[cfg(feature = "events")]
pub mod events;
mod heartbeat;
mod method;
#[cfg(feature = "axum")]
mod metrics;
mod receiver;
mod secret;
mod sign;
mod signature;
pub mod store;
mod stream;
mod subscription;
mod timestamp;
mod verified;
mod verifier;

#[cfg(feature = "testing")]
pub mod testing;

pub use clock::{Clock, ManualClock, SystemClock};
pub use delivery::{DeliveryId, MAX_DELIVERY_ID_LEN};
pub use error::{ConfigError, ErrorKind, Malformed, ReceiveError, VerifyError};
pub use method::{HeaderNames, Method, UnknownMethod};
pub use receiver::{
    ClaimGuard, DEFAULT_LEASE, DEFAULT_STORE_TIMEOUT, Duplicate, MAX_BACKGROUND_RELEASES, Outcome,
    Receiver, ReceiverBuilder,
};
pub use secret::Secret;
pub use sign::{SignedHeaders, Signer};
pub use signature::{MAX_SIGNATURE_HEADER_LEN, MAX_SIGNATURES, Tag};
pub use store::{DeliveryStore, MemoryStore, StoreError};
pub use stream::BodyVerifier;
pub use subscription::{
    DEFAULT_CACHE_CAPACITY, DEFAULT_CACHE_TTL, SourceError, SourceFuture, SubscriptionSource,
    Subscriptions,
};
pub use timestamp::MAX_TIMESTAMP_LEN;
pub use verified::Verified;
pub use verifier::{
    DEFAULT_TOLERANCE, HeaderValues, MAX_TOLERANCE, Precheck, Verifier, VerifierBuilder,
};

/// Re-exported so that users name the same `time` types the API takes.
pub use time;
