//! The command line's own parsers, included from the binary's sources as they are: `--secret`
//! (and `HOOKVERIFY_SECRET`), `--store`, `--path`, and the masking of store URLs in messages.
//!
//! Beyond "no panic", each checks what a user relies on: a parsed secret reassembles to the
//! text given; no error message depends on (so none can repeat) the secret or the store URL;
//! redaction leaves neither the URL nor its password; a path `serve` accepts is one the router
//! takes without panicking.
#![no_main]

#[allow(dead_code)]
#[path = "../../src/bin/hookverify/options.rs"]
mod options;
#[allow(dead_code)]
#[path = "../../src/bin/hookverify/secrets.rs"]
mod secrets;

use std::num::NonZeroUsize;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str, &str, Option<NonZeroUsize>)| {
    let (first, second, third, capacity) = input;
    secret(first);
    store(first, capacity);
    redaction(first, second, third);
    path(first);
});

/// Replaces every ASCII letter and digit by another of its kind (`a`→`b`, `z`→`a`, `9`→`0`),
/// keeping everything else. Whatever a parser decides from the shape of its input (lengths,
/// separators, character classes) stays the same; any text it copied into a message changes.
fn rotate(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'a'..='y' | 'A'..='Y' | '0'..='8' => char::from(c as u8 + 1),
            'z' => 'a',
            'Z' => 'A',
            '9' => '0',
            other => other,
        })
        .collect()
}

fn secret(text: &str) {
    match secrets::parse(text, "--secret") {
        Ok(parsed) => {
            let whole = match &parsed.label {
                Some(label) => format!("{label}={}", parsed.value),
                None => parsed.value.clone(),
            };
            assert_eq!(whole, text, "a parsed secret reassembles to its text");
            assert!(!parsed.value.is_empty());
        }
        Err(message) => {
            let rotated = secrets::parse(&rotate(text), "--secret").err();
            assert_eq!(
                rotated.as_deref(),
                Some(message.as_str()),
                "message depends on the text"
            );
        }
    }
}

fn store(text: &str, capacity: Option<NonZeroUsize>) {
    let Err(message) = options::parse_store(text, capacity) else {
        return;
    };
    // The scheme decides the message; the rest of the URL (where a password lives) must not.
    if let Some((scheme, rest)) = text.split_once("://") {
        let rotated = format!("{scheme}://{}", rotate(rest));
        let again = options::parse_store(&rotated, capacity).err();
        assert_eq!(
            again.as_deref(),
            Some(message.as_str()),
            "message depends on the URL"
        );
    }
}

fn redaction(user: &str, password: &str, noise: &str) {
    // Only user infos a URL can carry as written: the user part ends at the first ':'.
    if [user, password, noise]
        .iter()
        .any(|part| part.contains(['/', '?', '#', '@', '*', '%']))
        || user.contains(':')
    {
        return;
    }
    let url = format!("redis://{user}:{password}@db.internal:6379/0");
    let message = format!("{noise}{url}{noise}{password}{noise}");
    let redacted = options::redact(&message, &url);
    assert!(!redacted.contains(&url), "the URL survived");
    if !password.is_empty() {
        assert!(!redacted.contains(password), "the password survived");
    }
    // Text that shares no character with the secrets cannot be part of any match.
    if !noise.is_empty() && !noise.chars().any(|c| url.contains(c)) {
        assert!(redacted.contains(noise), "text around the secrets is kept");
    }
}

fn path(text: &str) {
    if options::check_path(text).is_ok() {
        // `Router::route` panics on a path it cannot take literally; `serve` must refuse those
        // before it builds its router.
        let _router: axum::Router =
            axum::Router::new().route(text, axum::routing::post(|| async {}));
    }
}
