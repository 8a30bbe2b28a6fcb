//! The receiver's configuration: every bound of the lease, the retention and the store timeout
//! is checked when it is built, and each refusal names the setting.

use std::num::NonZeroUsize;
use std::time::Duration;

use hookverify::{ConfigError, MemoryStore, Receiver, ReceiverBuilder, Verifier};

fn builder(tolerance_s: i64) -> ReceiverBuilder<MemoryStore> {
    let verifier = Verifier::builder()
        .secret("current", "whsec_receiver")
        .tolerance(time::Duration::seconds(tolerance_s))
        .build()
        .expect("verifier");
    Receiver::builder(
        verifier,
        MemoryStore::new(NonZeroUsize::new(100).expect("non-zero")).expect("capacity"),
    )
}

/// `Ok(())`, or the name of the setting refused.
fn verdict(builder: ReceiverBuilder<MemoryStore>) -> Result<(), &'static str> {
    match builder.build() {
        Ok(_) => Ok(()),
        Err(ConfigError::OutOfRange { setting, .. }) => Err(setting),
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

const MS: Duration = Duration::from_millis(1);
const S: Duration = Duration::from_secs(1);

#[test]
fn the_defaults_build() {
    assert_eq!(verdict(builder(300)), Ok(()));
    let receiver = builder(300).build().expect("defaults");
    assert_eq!(receiver.lease(), 30 * S);
    assert_eq!(receiver.retention(), 630 * S);
    assert_eq!(receiver.store_timeout(), 2 * S);
}

#[test]
fn the_lease_is_one_second_to_an_hour() {
    // The store timeout is set low enough for the shortest lease, so only the lease decides.
    let with_lease = |lease| verdict(builder(300).lease(lease).store_timeout(10 * MS));
    assert_eq!(with_lease(Duration::ZERO), Err("lease"));
    assert_eq!(with_lease(S - MS), Err("lease"));
    assert_eq!(with_lease(S), Ok(()));
    assert_eq!(with_lease(3600 * S), Ok(()));
    assert_eq!(with_lease(3600 * S + MS), Err("lease"));
    assert_eq!(with_lease(Duration::MAX), Err("lease"));
}

#[test]
fn the_retention_covers_twice_the_tolerance_and_the_lease_up_to_30_days() {
    let with_retention =
        |tolerance_s, retention| verdict(builder(tolerance_s).retention(retention));
    // Twice the tolerance (300 s) is the floor here.
    assert_eq!(with_retention(300, Duration::ZERO), Err("retention"));
    assert_eq!(with_retention(300, 600 * S - MS), Err("retention"));
    assert_eq!(with_retention(300, 600 * S), Ok(()));
    // With no tolerance, the lease (30 s) is.
    assert_eq!(with_retention(0, 30 * S - MS), Err("retention"));
    assert_eq!(with_retention(0, 30 * S), Ok(()));
    // The widest tolerance (a day) still fits under the ceiling.
    assert_eq!(with_retention(86_400, 2 * 86_400 * S), Ok(()));
    assert_eq!(verdict(builder(86_400)), Ok(()), "default retention");
    assert_eq!(with_retention(300, 30 * 86_400 * S), Ok(()));
    assert_eq!(with_retention(300, 30 * 86_400 * S + MS), Err("retention"));
    assert_eq!(with_retention(300, Duration::MAX), Err("retention"));
}

#[test]
fn the_store_timeout_is_ten_milliseconds_to_a_quarter_of_the_lease() {
    let with_timeout = |timeout| verdict(builder(300).store_timeout(timeout));
    assert_eq!(with_timeout(Duration::ZERO), Err("store_timeout"));
    assert_eq!(
        with_timeout(10 * MS - Duration::from_nanos(1)),
        Err("store_timeout")
    );
    assert_eq!(with_timeout(10 * MS), Ok(()));
    // A quarter of the default 30 s lease.
    assert_eq!(with_timeout(7500 * MS), Ok(()));
    assert_eq!(
        with_timeout(7500 * MS + Duration::from_nanos(1)),
        Err("store_timeout")
    );
    assert_eq!(with_timeout(Duration::MAX), Err("store_timeout"));
    // The default (2 s) is too long for a 1 s lease: the builder says so.
    assert_eq!(verdict(builder(300).lease(S)), Err("store_timeout"));
}

#[test]
fn refusals_say_what_is_allowed() {
    let error = builder(300)
        .lease(Duration::ZERO)
        .build()
        .expect_err("no lease");
    assert_eq!(
        error.to_string(),
        "lease is out of range: allowed from 1 s to 1 h"
    );
}
