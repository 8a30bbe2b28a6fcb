//! `serve --endpoints FILE`: many endpoints on one receiver, each with its own path, signing
//! method, secrets, tolerance, event filter and `api_version` policy, read from a TOML file and
//! read again on SIGHUP.
//!
//! ```toml
//! [[endpoint]]
//! path = "/webhooks/fleet-a"
//! secrets = ["FLEET_A_SECRET"]          # environment variable names, never secrets
//!
//! [[endpoint]]
//! path = "/webhooks/billing"
//! name = "billing"                      # default: the path's last segment
//! scheme = "stripe"                     # default: hmac_sha256
//! secrets = ["STRIPE_OLD", "STRIPE_NEW"]
//! tolerance = 600                       # seconds, default 300
//! events = ["thread.completed"]         # handled; others are acknowledged (200), not printed
//! api_version = { accept = ["2026-01-01"] }   # or { warn = [...] }, or "any" (the default)
//! ```
//!
//! One [`VerifyLayer::subscriptions`] serves every endpoint: the request's path picks the
//! endpoint (an unknown path is `404 unknown_subscription`, before the body is read), and the
//! endpoint's `name` is its dedupe namespace and its `endpoint` in logs and metrics. The source
//! behind the layer reads the configuration in force; a reload swaps it whole, then empties the
//! layer's cache. A request is verified with one endpoint's verifier (its method, secrets and
//! tolerance together), from before the reload or from after it; one already being verified or
//! handled finishes with the verifier it started with, so a reload drops nothing. The event
//! filter and version policy are those in force when the handler runs. A file that cannot be
//! read or is invalid keeps the configuration in force, and the error is logged.
//!
//! Secrets come from the environment, which a process cannot see change: a reload chooses among
//! the variables `serve` was started with. To rotate, start with both the old and the new
//! secret's variables set, list both, then only the new one.

use std::collections::{BTreeSet, HashMap};
use std::env::{self, VarError};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use axum::extract::{Request, State};
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use hookverify::axum::{EventRejection, SubscriptionKey, VerifiedDelivery, VerifyLayer};
use hookverify::events::{ApiVersionPolicy, EventConfig, EventFilter, Received};
use hookverify::store::Namespace;
use hookverify::time::Duration;
use hookverify::{
    DeliveryStore, Method, Receiver, SourceFuture, SubscriptionSource, Subscriptions, Verifier,
};
use serde::Deserialize;

use crate::options::check_path;
use crate::secrets;

/// The endpoints in force, replaced whole by a reload.
pub(crate) struct Endpoints {
    file: PathBuf,
    table: RwLock<Arc<Table>>,
}

/// One configuration: every endpoint, by path and by name.
struct Table {
    by_path: HashMap<String, Arc<Endpoint>>,
    by_name: HashMap<String, Arc<Endpoint>>,
}

struct Endpoint {
    name: String,
    path: String,
    verifier: Verifier,
    /// Only when the file sets `events` or `api_version`: otherwise every delivery is printed,
    /// JSON or not, as `serve` does without the file.
    events: Option<EventConfig>,
    labels: Vec<String>,
}

/// The file, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    #[serde(default, rename = "endpoint")]
    endpoints: Vec<EndpointSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointSpec {
    path: String,
    name: Option<String>,
    scheme: Option<String>,
    #[serde(default)]
    secrets: Vec<String>,
    tolerance: Option<u32>,
    signature_header: Option<String>,
    timestamp_header: Option<String>,
    id_header: Option<String>,
    events: Option<Vec<String>>,
    api_version: Option<VersionSpec>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum VersionSpec {
    Any,
    Accept(Vec<String>),
    Warn(Vec<String>),
}

const MAX_TOLERANCE: u32 = 86_400;

impl Endpoints {
    /// Reads `file` at startup.
    pub(crate) fn load(file: &Path) -> Result<Self, String> {
        let table = read(file)?;
        Ok(Self {
            file: file.to_owned(),
            table: RwLock::new(Arc::new(table)),
        })
    }

    fn current(&self) -> Arc<Table> {
        Arc::clone(&self.table.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// A verifier for the base receiver, which lends the subscriptions its store and settings
    /// (its own verifier is never used).
    pub(crate) fn any_verifier(&self) -> Verifier {
        let table = self.current();
        let first = table.by_name.values().next();
        // `read` refuses a file without endpoints.
        first.map_or_else(unreachable_verifier, |endpoint| endpoint.verifier.clone())
    }

    /// The headers that carry a shared secret itself (the `bearer` and `basic_auth` endpoints'
    /// credential headers), in the configuration in force.
    pub(crate) fn credential_headers(&self) -> Vec<HeaderName> {
        let table = self.current();
        let verifiers = table.by_name.values().map(|endpoint| &endpoint.verifier);
        verifiers
            .filter_map(crate::forward::credential_header)
            .collect()
    }

    /// Logs each endpoint, as `serve` logs its one receiver.
    pub(crate) fn log_ready(&self, max_body: usize, store: &str) {
        let table = self.current();
        log_table(&table);
        tracing::info!(
            endpoints = table.by_path.len(),
            file = %self.file.display(),
            max_body,
            store,
            "receiver ready"
        );
    }

    /// The layer for every endpoint, around `base`'s store and settings; on Unix it reloads the
    /// file on each SIGHUP from now on.
    pub(crate) fn layer<S: DeliveryStore>(
        self: &Arc<Self>,
        base: Receiver<S>,
    ) -> Result<VerifyLayer<S>, String> {
        let subscriptions = Arc::new(Subscriptions::new(FileSource(Arc::clone(self)), base));
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let hangup = signal(SignalKind::hangup())
                .map_err(|error| format!("could not listen for SIGHUP: {error}"))?;
            tokio::spawn(reload_on_hangup(
                Arc::clone(self),
                Arc::clone(&subscriptions),
                hangup,
            ));
        }
        let endpoints = Arc::clone(self);
        let key = SubscriptionKey::from_fn(move |parts| {
            let table = endpoints.current();
            Some(table.by_path.get(parts.uri.path())?.name.clone())
        });
        Ok(VerifyLayer::subscriptions(subscriptions, key))
    }

    /// `route` behind the endpoint's event filter and `api_version` policy (the configuration
    /// in force when the handler runs); put the verifying layer around the result.
    pub(crate) fn with_events(self: &Arc<Self>, route: MethodRouter) -> MethodRouter {
        route.route_layer(middleware::from_fn_with_state(
            Arc::clone(self),
            apply_events,
        ))
    }

    /// Reads the file again; on success the new table is in force and the old one returned.
    fn reload(&self) -> Result<(Arc<Table>, Arc<Table>), String> {
        let new = Arc::new(read(&self.file)?);
        let mut table = self.table.write().unwrap_or_else(PoisonError::into_inner);
        let old = std::mem::replace(&mut *table, Arc::clone(&new));
        Ok((old, new))
    }
}

fn unreachable_verifier() -> Verifier {
    // Never called: a loaded file has at least one endpoint. Unsigned, so that nothing it could
    // be used for would pass as verified by a secret.
    Verifier::builder()
        .method(Method::None)
        .build()
        .unwrap_or_else(|_| unreachable!("`none` needs no secret"))
}

/// The subscriptions' source: the endpoint of that name in the configuration in force.
struct FileSource(Arc<Endpoints>);

impl SubscriptionSource for FileSource {
    fn verifier<'a>(&'a self, subscription: &'a str) -> SourceFuture<'a> {
        let table = self.0.current();
        let found = table
            .by_name
            .get(subscription)
            .map(|endpoint| endpoint.verifier.clone());
        Box::pin(std::future::ready(Ok(found)))
    }
}

async fn apply_events(
    State(endpoints): State<Arc<Endpoints>>,
    request: Request,
    next: Next,
) -> Response {
    let table = endpoints.current();
    let events = table
        .by_path
        .get(request.uri().path())
        .and_then(|endpoint| endpoint.events.as_ref());
    let delivery = request.extensions().get::<VerifiedDelivery>();
    let (Some(events), Some(delivery)) = (events, delivery) else {
        return next.run(request).await;
    };
    // `receive` logs what it refuses or acknowledges, in the layer's span for this delivery.
    match events.receive(delivery.body()) {
        Ok(Received::Handle(_)) => next.run(request).await,
        Ok(Received::Acknowledge { envelope, reason }) => EventRejection::Acknowledged {
            name: envelope.name().clone(),
            reason,
        }
        .into_response(),
        Ok(_) => next.run(request).await,
        Err(error) => EventRejection::Event(error).into_response(),
    }
}

#[cfg(unix)]
async fn reload_on_hangup<S: DeliveryStore>(
    endpoints: Arc<Endpoints>,
    subscriptions: Arc<Subscriptions<S>>,
    mut hangup: tokio::signal::unix::Signal,
) {
    while hangup.recv().await.is_some() {
        let file = endpoints.file.display();
        match endpoints.reload() {
            Ok((old, new)) => {
                // After the swap: a lookup from now on reads the new table.
                let names: BTreeSet<&String> =
                    old.by_name.keys().chain(new.by_name.keys()).collect();
                for name in names {
                    subscriptions.invalidate(name);
                }
                log_table(&new);
                tracing::info!(
                    %file,
                    endpoints = new.by_path.len(),
                    "SIGHUP: endpoints reloaded"
                );
            }
            Err(why) => tracing::error!(
                %file,
                "SIGHUP: could not reload the endpoints, the previous configuration stays in \
                 force: {why}"
            ),
        }
    }
}

fn log_table(table: &Table) {
    let mut endpoints: Vec<&Arc<Endpoint>> = table.by_path.values().collect();
    endpoints.sort_by(|a, b| a.path.cmp(&b.path));
    for endpoint in endpoints {
        let verifier = &endpoint.verifier;
        tracing::info!(
            path = endpoint.path,
            name = endpoint.name,
            scheme = verifier.method().name(),
            secrets = ?endpoint.labels,
            tolerance_s = verifier.tolerance().whole_seconds(),
            events = endpoint.events.is_some(),
            "endpoint"
        );
        if verifier.method() == Method::None {
            tracing::warn!(
                path = endpoint.path,
                "scheme none: deliveries to this endpoint are NOT verified"
            );
        }
    }
}

/// Reads and checks the whole file: any error refuses all of it.
fn read(file: &Path) -> Result<Table, String> {
    let text = fs::read_to_string(file)
        .map_err(|error| format!("could not read {}: {error}", file.display()))?;
    let spec: FileSpec = toml::from_str(&text)
        .map_err(|error| format!("{}: {}", file.display(), describe_toml_error(&text, &error)))?;
    if spec.endpoints.is_empty() {
        return Err(format!(
            "{}: no [[endpoint]]; a receiver needs at least one",
            file.display()
        ));
    }
    let mut by_path = HashMap::new();
    let mut by_name = HashMap::new();
    for spec in spec.endpoints {
        let path = spec.path.clone();
        let endpoint = Arc::new(endpoint(spec).map_err(|why| format!("endpoint {path}: {why}"))?);
        if by_path
            .insert(endpoint.path.clone(), Arc::clone(&endpoint))
            .is_some()
        {
            return Err(format!("endpoint {path}: the path is listed twice"));
        }
        if let Some(other) = by_name.insert(endpoint.name.clone(), Arc::clone(&endpoint)) {
            return Err(format!(
                "endpoint {path}: the name {:?} is also {}'s; set `name` on one of them",
                endpoint.name, other.path
            ));
        }
    }
    Ok(Table { by_path, by_name })
}

/// The parser's message and position, without the excerpt of the file it would quote, and with
/// quoted values left out: a secret pasted into the file by mistake must not reach the logs.
fn describe_toml_error(text: &str, error: &toml::de::Error) -> String {
    let mut message = String::new();
    let mut quoted = false;
    for c in error.message().trim().chars() {
        match c {
            '"' if quoted => {
                quoted = false;
                message.push_str("…\"");
            }
            '"' => {
                quoted = true;
                message.push('"');
            }
            _ if quoted => {}
            c => message.push(c),
        }
    }
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

fn endpoint(spec: EndpointSpec) -> Result<Endpoint, String> {
    check_path(&spec.path).map_err(|why| why.replace("--path", "path"))?;
    let name = match spec.name {
        Some(name) => name,
        None => spec
            .path
            .rsplit('/')
            .find(|segment| !segment.is_empty())
            .ok_or("the path has no segment to name the endpoint by; set `name`")?
            .to_owned(),
    };
    if Namespace::new(&name).is_none() {
        return Err(format!(
            "the name {name:?} must be 1 to 64 ASCII letters, digits, '-', '_' or '.' (it names \
             the endpoint's dedupe namespace, logs and metrics); set `name`"
        ));
    }
    let method = match &spec.scheme {
        Some(scheme) => scheme
            .parse::<Method>()
            .map_err(|error| format!("scheme: {error}"))?,
        None => Method::HmacSha256,
    };
    let tolerance = spec.tolerance.unwrap_or(300);
    if tolerance > MAX_TOLERANCE {
        return Err(format!("tolerance must be 0 to {MAX_TOLERANCE} seconds"));
    }

    let mut labels = Vec::new();
    let mut builder = Verifier::builder()
        .method(method)
        .tolerance(Duration::seconds(i64::from(tolerance)));
    for (index, variable) in spec.secrets.iter().enumerate() {
        let (label, value) = secret_from(variable, index)?;
        labels.push(label.clone());
        builder = builder.secret(label, value);
    }
    let mut names = method.default_header_names();
    let mut custom = false;
    if let Some(name) = &spec.signature_header {
        names.signature = header_name("signature_header", name)?;
        custom = true;
    }
    if let Some(name) = &spec.timestamp_header {
        names.timestamp = Some(header_name("timestamp_header", name)?);
        custom = true;
    }
    if let Some(name) = &spec.id_header {
        names.delivery_id = Some(header_name("id_header", name)?);
        custom = true;
    }
    if custom {
        builder = builder.header_names(names);
    }
    let verifier = builder.build().map_err(|error| error.to_string())?;

    let events = (spec.events.is_some() || spec.api_version.is_some()).then(|| {
        let filter = spec.events.map_or_else(EventFilter::all, EventFilter::only);
        let versions = match spec.api_version {
            None | Some(VersionSpec::Any) => ApiVersionPolicy::AcceptAny,
            Some(VersionSpec::Accept(versions)) => ApiVersionPolicy::accept(versions),
            Some(VersionSpec::Warn(versions)) => ApiVersionPolicy::warn(versions),
        };
        EventConfig::new().filter(filter).api_versions(versions)
    });
    Ok(Endpoint {
        name,
        path: spec.path,
        verifier,
        events,
        labels,
    })
}

/// The secret in the environment variable the file names at `index` of `secrets`, and its
/// label: the one in the value (`LABEL=SECRET`), else the variable's name. An error names the
/// variable by its position only, in case a secret was written in its place.
fn secret_from(variable: &str, index: usize) -> Result<(String, String), String> {
    let position = format!("secrets[{index}]");
    let is_name = variable
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && variable
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !is_name {
        return Err(format!(
            "{position} is not an environment variable name (letters, digits and '_'): the \
             file names the variables that hold the secrets, never the secrets"
        ));
    }
    let value = match env::var(variable) {
        Ok(value) => value,
        Err(VarError::NotPresent) => {
            return Err(format!(
                "{position}: no such environment variable in serve's environment (the file \
                 names the variables that hold the secrets, never the secrets; a reload sees \
                 only the variables serve was started with)"
            ));
        }
        Err(VarError::NotUnicode(_)) => {
            return Err(format!("{position}: the variable's value is not UTF-8"));
        }
    };
    let parsed = secrets::parse(&value, &format!("{position} ({variable})"))?;
    let label = parsed.label.unwrap_or_else(|| variable.to_owned());
    if label.len() > 64 {
        return Err(format!(
            "{position} ({variable}): a label is at most 64 characters; write the value as \
             LABEL=SECRET"
        ));
    }
    Ok((label, parsed.value))
}

fn header_name(field: &str, name: &str) -> Result<HeaderName, String> {
    HeaderName::try_from(name).map_err(|_| format!("{field}: {name:?} is not a valid header name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> Result<EndpointSpec, String> {
        let file: FileSpec = toml::from_str(text).map_err(|e| describe_toml_error(text, &e))?;
        file.endpoints
            .into_iter()
            .next()
            .ok_or_else(|| "none".into())
    }

    fn built(extra: &str) -> Result<Endpoint, String> {
        endpoint(spec(&format!(
            "[[endpoint]]\npath = \"/hooks/fleet-a\"\nscheme = \"none\"\n{extra}"
        ))?)
    }

    #[test]
    fn every_api_version_form() -> Result<(), String> {
        let policy = |extra: &str| -> Result<ApiVersionPolicy, String> {
            let endpoint = built(extra)?;
            let events = endpoint.events.ok_or("no event config")?;
            Ok(events.api_version_policy().clone())
        };
        assert_eq!(
            policy("api_version = \"any\"")?,
            ApiVersionPolicy::AcceptAny
        );
        assert_eq!(
            policy("api_version = { accept = [\"a\", \"b\"] }")?,
            ApiVersionPolicy::accept(["a", "b"])
        );
        assert_eq!(
            policy("api_version = { warn = [\"a\"] }")?,
            ApiVersionPolicy::warn(["a"])
        );
        // Events alone: every version.
        assert_eq!(policy("events = [\"x\"]")?, ApiVersionPolicy::AcceptAny);
        assert!(built("")?.events.is_none());
        assert!(built("api_version = \"some\"").is_err());
        Ok(())
    }

    #[test]
    fn names_default_to_the_last_segment_and_must_be_namespaces() -> Result<(), String> {
        assert_eq!(built("")?.name, "fleet-a");
        assert_eq!(built("name = \"billing.v2\"")?.name, "billing.v2");
        let error = built("name = \"a:b\"").err().ok_or("accepted a:b")?;
        assert!(error.contains("must be 1 to 64"), "{error}");
        let root = endpoint(spec("[[endpoint]]\npath = \"/\"\nscheme = \"none\"\n")?);
        assert!(root.err().is_some_and(|e| e.contains("set `name`")));
        let bad = built("tolerance = 86401").err().ok_or("accepted")?;
        assert!(bad.contains("tolerance"), "{bad}");
        Ok(())
    }

    #[test]
    fn toml_errors_leave_quoted_values_out() {
        let text = "[[endpoint]]\npath = \"/x\"\nsecrets = \"whsec_pasted_here\"\n";
        let error = spec(text).err().unwrap_or_default();
        assert!(error.starts_with("line 3, column 11:"), "{error}");
        assert!(!error.contains("whsec_pasted_here"), "{error}");
        let text = "[[endpoint]]\npath = \"/x\"\nsecret = \"whsec_pasted_here\"\n";
        let error = spec(text).err().unwrap_or_default();
        assert!(error.contains("unknown field `secret`"), "{error}");
        assert!(!error.contains("whsec_pasted_here"), "{error}");
    }
}
