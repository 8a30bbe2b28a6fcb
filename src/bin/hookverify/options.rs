//! The options of `serve` that are not secrets: `--store` (which store, its URL), `--path`, and
//! masking a store URL's passwords in messages.
//!
//! Plain text in, plain values out, with nothing but the standard library, so that the fuzz
//! target `cli_input` can include this file as it is. A store URL may carry a password: no
//! message built here repeats any of the URL.

use std::num::NonZeroUsize;

/// The store `--store` names.
pub(crate) enum StoreChoice {
    Memory(NonZeroUsize),
    Redis(StoreUrl),
    Postgres(StoreUrl),
}

impl StoreChoice {
    /// What logs and messages call the store: never more than the scheme.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Memory(_) => "memory",
            Self::Redis(_) => "redis",
            Self::Postgres(_) => "postgres",
        }
    }
}

/// A store URL. Deliberately neither `Debug` nor `Display`: it may carry a password.
pub(crate) struct StoreUrl(pub(crate) String);

/// Reads `--store`. Messages never repeat the value, not even its scheme: it may carry a
/// password.
pub(crate) fn parse_store(
    text: &str,
    capacity: Option<NonZeroUsize>,
) -> Result<StoreChoice, String> {
    const SUPPORTED: &str = "--store: the supported stores are memory, \
        redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], redis+unix:///PATH, and \
        postgres://USER[:PASSWORD]@HOST[:PORT]/DB (or postgresql://)";
    if text == "memory" {
        use hookverify::store::memory::{DEFAULT_CAPACITY, MIN_CAPACITY};
        let capacity = capacity.unwrap_or(DEFAULT_CAPACITY);
        // Checked here, before anything starts, rather than when the store is built.
        if capacity < MIN_CAPACITY {
            return Err(format!(
                "--capacity: at least {MIN_CAPACITY} keys, the two of one delivery (its id \
                 and its message)"
            ));
        }
        return Ok(StoreChoice::Memory(capacity));
    }
    let Some((scheme, rest)) = text.split_once("://") else {
        return Err(SUPPORTED.into());
    };
    let scheme = scheme.to_ascii_lowercase();
    let url = StoreUrl(format!("{scheme}://{rest}"));
    let store = match scheme.as_str() {
        "redis" | "redis+unix" => StoreChoice::Redis(url),
        "postgres" | "postgresql" => StoreChoice::Postgres(url),
        "rediss" => {
            return Err(
                "--store: rediss:// (Redis over TLS) is not supported by this build; \
                 use redis:// on a trusted network or through a TLS tunnel"
                    .into(),
            );
        }
        _ => return Err(SUPPORTED.into()),
    };
    if capacity.is_some() {
        return Err(format!(
            "--capacity applies to --store memory only, not to the {} store",
            store.name()
        ));
    }
    Ok(store)
}

/// `message` with the store URL's secrets masked: the whole URL, the password in its user
/// info and any `password` or `pass` query value, each as written and percent-decoded. The
/// drivers' errors are not known to repeat them; this makes sure.
pub(crate) fn redact(message: &str, url: &str) -> String {
    let mut secrets = vec![url.to_owned()];
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (head, query) = rest.split_once('?').unwrap_or((rest, ""));
    let head = head.split('#').next().unwrap_or(head);
    if let Some((userinfo, _)) = head.rsplit_once('@')
        && let Some((_, password)) = userinfo.split_once(':')
    {
        secrets.push(password.to_owned());
    }
    let query = query.split('#').next().unwrap_or(query);
    for pair in query.split('&') {
        if let Some((key, value)) = pair.split_once('=')
            && matches!(key, "password" | "pass")
        {
            secrets.push(value.to_owned());
        }
    }
    let decoded: Vec<String> = secrets.iter().map(|s| percent_decode(s)).collect();
    secrets.extend(decoded);
    // Longest first, so that a password inside the URL does not break the URL's match.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut message = message.to_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        message = message.replace(secret.as_str(), "***");
    }
    message
}

/// `%XX` sequences decoded (lossily, as UTF-8); anything else kept as is.
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some((&first, tail)) = rest.split_first() {
        match (first, tail) {
            (b'%', [high, low, after @ ..])
                if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() =>
            {
                out.push(hex_digit(*high) << 4 | hex_digit(*low));
                rest = after;
            }
            _ => {
                out.push(first);
                rest = tail;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of an ASCII hex digit (0 for anything else).
fn hex_digit(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

/// A path the router takes literally: no `{capture}`, no `*wildcard`, no query.
pub(crate) fn check_path(path: &str) -> Result<(), String> {
    const ALLOWED: &[u8] = b"-._~!$&'()+,;=:@%/";
    if !path.starts_with('/') {
        return Err("--path must start with '/'".into());
    }
    if !path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || ALLOWED.contains(&b))
    {
        return Err(
            "--path may contain only ASCII letters, digits and -._~!$&'()+,;=:@%/ (it is \
             matched literally)"
                .into(),
        );
    }
    // axum refuses a segment that starts with ':' (the capture syntax of its earlier
    // versions); found by the fuzz target `cli_input`, where `--path /:/` made `serve` panic.
    if path.split('/').any(|segment| segment.starts_with(':')) {
        return Err("--path: no segment may start with ':' (routers read it as a capture)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_literal() {
        assert!(check_path("/").is_ok());
        assert!(check_path("/webhooks/agent-v1").is_ok());
        assert!(check_path("/a:b/c:").is_ok());
        // `/:/` passed this check and then made the router panic (fuzz target `cli_input`).
        for bad in [
            "", "webhooks", "/{id}", "/*rest", "/a?b", "/a b", "/é", "/:/", "/a/:id",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn stores_are_chosen_by_scheme() {
        let name = |text: &str| parse_store(text, None).map(|store| store.name());
        assert_eq!(name("memory"), Ok("memory"));
        assert_eq!(name("redis://127.0.0.1:6379/0"), Ok("redis"));
        assert_eq!(name("REDIS://127.0.0.1"), Ok("redis"));
        assert_eq!(name("redis+unix:///run/redis.sock"), Ok("redis"));
        assert_eq!(name("postgres://hooks@db/app"), Ok("postgres"));
        assert_eq!(name("postgresql://hooks@db/app"), Ok("postgres"));
        for bad in [
            "",
            "Memory",
            "mysql://u:hunter2@db",
            "hunter2",
            "rediss://:hunter2@db",
        ] {
            let message = parse_store(bad, None).err().unwrap_or_default();
            assert!(message.starts_with("--store"), "{bad:?}: {message}");
            assert!(!message.contains("hunter2"), "{message}");
        }
        let capacity = NonZeroUsize::new(10);
        assert!(matches!(
            parse_store("memory", capacity),
            Ok(StoreChoice::Memory(c)) if Some(c) == capacity
        ));
        let message = parse_store("memory", NonZeroUsize::new(1))
            .err()
            .unwrap_or_default();
        assert!(message.starts_with("--capacity: at least 2"), "{message}");
        let message = parse_store("redis://:hunter2@db", capacity)
            .err()
            .unwrap_or_default();
        assert!(message.contains("--capacity") && !message.contains("hunter2"));
    }

    #[test]
    fn redaction_masks_the_url_and_its_passwords() {
        let url = "postgres://hooks:p%40ss%2Fw@db:5432/app?password=q%20w&sslmode=disable";
        let message = format!("failed for {url}: p@ss/w, p%40ss%2Fw, q w, user hooks, db:5432");
        assert_eq!(
            redact(&message, url),
            "failed for ***: ***, ***, ***, user hooks, db:5432"
        );
        assert_eq!(
            redact("x hunter2 y", "redis+unix:///run/r.sock?pass=hunter2"),
            "x *** y"
        );
        assert_eq!(
            redact("connection refused", "redis://db/"),
            "connection refused"
        );
        assert_eq!(percent_decode("%41%zz%4"), "A%zz%4");
    }
}
