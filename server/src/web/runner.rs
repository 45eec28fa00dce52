//! The at-run routes:
//!
//! - `GET /.well-known/at-run`: `{publicKey, did, version}`: the key `at-run secrets set`
//!   seals to, and the service DID `at-run logs` asks its PDS for a token for;
//! - `GET /bundle/{did-or-handle}/{name}/{version|latest}`: the bundle's manifest;
//! - `GET /bundle/{did-or-handle}/{name}/logs?limit=N[&after=ID]`: the bundle's latest
//!   invocations with what they printed, newest first (or, `after` a line's id, those
//!   stored since, oldest first: what `at-run logs --follow` polls), for its author only:
//!   a service auth token from the author's PDS, for this runner's DID and the method
//!   `dev.atrun.getLogs` (what `at-run logs` sends);
//! - `{any method} /bundle/{did-or-handle}/{name}/{version|latest}/{endpoint}`: runs an
//!   export with a JSON object body, or else the query parameters, as arguments;
//!   endpoints also get the whole request (`ctx.request`: method, URL, headers but ours,
//!   raw body) and, with a service auth token for this runner bound to
//!   `dev.atrun.call.{name}.{endpoint}`, its verified issuer (`ctx.caller`). Endpoints answer with their JSON or their `Response`; tasks with a
//!   `TaskView` (`?wait=N` long-polls, as for `/api/tasks`).
//!
//! Each call is logged on one line (bundle, endpoint, status, duration), never with its
//! arguments or secrets. Bundle responses are served with a sandboxing CSP: a bundle's
//! HTML cannot script this site's origin.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::BundleReply;
use super::tasks::task_response;
use super::{AppState, XrpcError};
use crate::api::params::{cursor_param, number_param, query_args, wait_param};
use crate::atproto::service_auth::ServiceAuthError;
use crate::runner::manifest::valid_bundle_name;
use crate::runner::sandbox::Reply;
use crate::runner::{
    CallInput, CallRequest, Invocation, Runner, RunnerError, SDK_VERSION, VersionSpec,
    caller_method,
};

/// Headers a bundle may not set: hop-by-hop and framing, and those that act on our whole
/// origin (cookies, stored data, transport security, alternative services, reporting).
const FORBIDDEN_HEADERS: &[&str] = &[
    "connection",
    "content-length",
    "transfer-encoding",
    "keep-alive",
    "upgrade",
    "trailer",
    "set-cookie",
    "set-cookie2",
    "clear-site-data",
    "strict-transport-security",
    "public-key-pins",
    "public-key-pins-report-only",
    "expect-ct",
    "alt-svc",
    "service-worker-allowed",
    "origin-agent-cluster",
    "nel",
    "report-to",
    "reporting-endpoints",
    "accept-ch",
    "critical-ch",
];

/// Most headers a bundle's response may carry, and most bytes of them in all.
const MAX_BUNDLE_HEADERS: usize = 100;
const MAX_BUNDLE_HEADER_BYTES: usize = 32 * 1024;

impl From<RunnerError> for XrpcError {
    /// The runner's own failures and its upstreams' details stay in the log; what the
    /// bundle did (its errors, its crash, its timeout) is the caller's to see.
    fn from(err: RunnerError) -> Self {
        let (status, name) = match &err {
            RunnerError::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "InvalidRequest"),
            RunnerError::NotFound(_) => (StatusCode::NOT_FOUND, "BundleNotFound"),
            RunnerError::Yanked(_) => (StatusCode::GONE, "VersionYanked"),
            RunnerError::NotAllowed(_) => (StatusCode::FORBIDDEN, "AuthorNotAllowed"),
            RunnerError::InvalidBundle(_) => (StatusCode::UNPROCESSABLE_ENTITY, "InvalidBundle"),
            RunnerError::Upstream(_) => (StatusCode::BAD_GATEWAY, "UpstreamFailure"),
            // Names the variable and why, never a value.
            RunnerError::Secret(_) => (StatusCode::UNPROCESSABLE_ENTITY, "SecretUnavailable"),
            RunnerError::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, "RunnerBusy"),
            RunnerError::QueueFull(_) => (StatusCode::SERVICE_UNAVAILABLE, "QueueFull"),
            RunnerError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "Unavailable"),
            RunnerError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "Timeout"),
            RunnerError::Handler(_) => (StatusCode::INTERNAL_SERVER_ERROR, "BundleError"),
            RunnerError::TooLarge(_) => (StatusCode::BAD_GATEWAY, "ResponseTooLarge"),
            RunnerError::Crashed(_) => (StatusCode::BAD_GATEWAY, "BundleCrashed"),
        };
        let public = err.public_message();
        let cause = err.to_string();
        let error = XrpcError::new(status, name, public.clone());
        let error = if matches!(err, RunnerError::QueueFull(_)) {
            error.retry_after(10)
        } else {
            error
        };
        if public == cause {
            error
        } else {
            error.because(cause)
        }
    }
}

impl From<ServiceAuthError> for XrpcError {
    fn from(err: ServiceAuthError) -> Self {
        match err {
            ServiceAuthError::Invalid(message) => {
                XrpcError::new(StatusCode::UNAUTHORIZED, "InvalidToken", message)
            }
            ServiceAuthError::Unavailable(cause) => XrpcError::new(
                StatusCode::BAD_GATEWAY,
                "UpstreamFailure",
                "your identity could not be resolved right now; try again later",
            )
            .because(cause),
        }
    }
}

pub(super) async fn well_known(State(runner): State<Arc<Runner>>) -> Json<Value> {
    Json(json!({
        "publicKey": runner.public_key(),
        "did": runner.service_did().as_str(),
        "version": SDK_VERSION,
        "server": concat!("streamhut/", env!("CARGO_PKG_VERSION")),
    }))
}

/// The method a service auth token for [`logs`] must be bound to.
pub const LOGS_METHOD: &str = "dev.atrun.getLogs";

/// `GET /bundle/{actor}/{name}/logs`.
pub(super) async fn logs(
    State(runner): State<Arc<Runner>>,
    State(identity): State<Arc<crate::atproto::identity::IdentityResolver>>,
    Path((actor, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: axum::http::HeaderMap,
) -> Result<Json<Value>, XrpcError> {
    if !valid_bundle_name(&name) {
        return Err(XrpcError::invalid_request(format!(
            "{name:?} is not a bundle name"
        )));
    }
    let limit = number_param(
        query.as_deref(),
        "limit",
        1..=crate::runner::logs::MAX_LINES,
        100,
    )?;
    let after = cursor_param(query.as_deref(), "after")?;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(crate::auth::bearer)
        .ok_or_else(|| {
            XrpcError::new(
                StatusCode::UNAUTHORIZED,
                "AuthRequired",
                format!(
                    "send a service auth token from your PDS for {} and {LOGS_METHOD} (at-run logs does)",
                    runner.service_did()
                ),
            )
        })?;
    let caller =
        crate::atproto::service_auth::verify(&identity, token, runner.service_did(), LOGS_METHOD)
            .await?;
    let author = identity
        .resolve_actor(&actor)
        .await
        .map_err(|err| XrpcError::invalid_request(format!("cannot resolve {actor}: {err}")))?;
    if author.did != caller {
        return Err(XrpcError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "only the bundle's author can read its logs",
        ));
    }
    let lines = runner
        .logs()
        .recent(&author.did, &name, limit, after)
        .await
        .map_err(|err| XrpcError::unavailable("the invocation log", err))?;
    Ok(Json(json!({
        "did": author.did.as_str(),
        "bundle": name,
        "invocations": lines,
    })))
}

fn parse_target(name: &str, version: &str) -> Result<VersionSpec, XrpcError> {
    if !valid_bundle_name(name) {
        return Err(XrpcError::invalid_request(format!(
            "{name:?} is not a bundle name"
        )));
    }
    version.parse::<VersionSpec>().map_err(XrpcError::from)
}

pub(super) async fn describe(
    State(runner): State<Arc<Runner>>,
    Path((actor, name, version)): Path<(String, String, String)>,
) -> Result<Json<Value>, XrpcError> {
    let spec = parse_target(&name, &version)?;
    let (bundle, manifest) = runner.describe(&actor, &name, &spec).await?;
    let mut body = serde_json::to_value(manifest.view()).unwrap_or_default();
    if let Some(fields) = body.as_object_mut() {
        fields.insert("did".into(), bundle.did.as_str().into());
        fields.insert("handle".into(), bundle.handle.into());
        fields.insert("version".into(), bundle.version.to_string().into());
        fields.insert("cid".into(), bundle.code_cid.to_string().into());
        fields.insert("record".into(), bundle.record_uri.into());
    }
    Ok(Json(body))
}

/// The path of a call: whose bundle, which version, which export.
#[derive(Deserialize)]
pub(super) struct CallPath {
    actor: String,
    name: String,
    version: String,
    endpoint: String,
}

/// Any method of `/bundle/{actor}/{name}/{version}/{endpoint}`. The export's
/// arguments are a JSON object body, or else the query string's parameters; endpoints
/// also get the whole request as `ctx.request`.
pub(super) async fn call_any(
    State(state): State<AppState>,
    Path(path): Path<CallPath>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if matches!(method, Method::CONNECT | Method::TRACE) {
        return XrpcError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("{method} does not reach bundle endpoints"),
        )
        .into_response();
    }
    let query = uri.query().map(str::to_string);
    let args = match arguments(&headers, query.as_deref(), &body) {
        Ok(args) => args,
        Err(err) => return err.into_response(),
    };
    let url = format!(
        "{}{}",
        state.public_url.trim_end_matches('/'),
        uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let caller = match headers
        .get(header::AUTHORIZATION)
        .and_then(crate::auth::bearer)
    {
        Some(token) => crate::atproto::service_auth::verify(
            &state.identity,
            token,
            state.runner.service_did(),
            &caller_method(&path.name, &path.endpoint),
        )
        .await
        .ok(),
        None => None,
    };
    let input = CallInput {
        args,
        request: Some(CallRequest::new(&method, url, &headers, body)),
        caller,
    };
    call(state, path, input, query).await
}

/// A call's arguments: the body, when it is a JSON object (or says it is JSON: then it
/// must be one); else the query string's parameters.
pub(crate) fn arguments(
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<Value, XrpcError> {
    let says_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(str::trim)
        .is_some_and(|mime| mime == "application/json" || mime.ends_with("+json"));
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(query_args(query));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) if says_json => Err(XrpcError::invalid_request(
            "a JSON body must be an object of arguments",
        )),
        Err(err) if says_json => Err(XrpcError::invalid_request(format!(
            "the body is not JSON: {err}"
        ))),
        _ => Ok(query_args(query)),
    }
}

async fn call(
    state: AppState,
    path: CallPath,
    input: CallInput,
    query: Option<String>,
) -> Response {
    let CallPath {
        actor,
        name,
        version,
        endpoint,
    } = path;
    let started = Instant::now();
    let response = async {
        let wait = wait_param(query.as_deref())?;
        let spec = parse_target(&name, &version)?;
        match state
            .runner
            .invoke(&actor, &name, &spec, &endpoint, input, wait)
            .await?
        {
            Invocation::Reply(reply) => Ok(reply_response(reply)),
            Invocation::Task(task) => Ok::<_, XrpcError>(task_response(task)),
        }
    }
    .await
    .unwrap_or_else(IntoResponse::into_response);
    tracing::info!(
        target: "atrun",
        bundle = %format!("{actor}/{name}@{version}"),
        %endpoint,
        status = response.status().as_u16(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "bundle call"
    );
    response
}

/// The HTTP response of a bundle's reply, within the header rules above.
pub(crate) fn reply_response(reply: Reply) -> Response {
    let mut response = match reply {
        Reply::Json(value) => Json(value).into_response(),
        Reply::Http {
            status,
            headers,
            body,
        } => {
            let bytes: usize = headers.iter().map(|(n, v)| n.len() + v.len()).sum();
            if headers.len() > MAX_BUNDLE_HEADERS || bytes > MAX_BUNDLE_HEADER_BYTES {
                return XrpcError::new(
                    StatusCode::BAD_GATEWAY,
                    "BundleError",
                    format!(
                        "the bundle's response has {} headers ({bytes} bytes); at most \
                         {MAX_BUNDLE_HEADERS} headers of {MAX_BUNDLE_HEADER_BYTES} bytes in all are allowed",
                        headers.len()
                    ),
                )
                .into_response();
            }
            let mut response = Response::new(Body::from(body));
            response.extensions_mut().insert(BundleReply);
            *response.status_mut() = StatusCode::from_u16(status)
                .ok()
                .filter(|s| !s.is_informational())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            for (name, value) in headers {
                let (Ok(name), Ok(value)) = (
                    HeaderName::try_from(name.as_str()),
                    HeaderValue::try_from(value.as_str()),
                ) else {
                    continue;
                };
                if FORBIDDEN_HEADERS.contains(&name.as_str()) {
                    continue;
                }
                response.headers_mut().append(name, value);
            }
            response
        }
    };
    let headers = response.headers_mut();
    headers.append(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox allow-scripts allow-forms allow-popups allow-downloads"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_responses_cannot_set_cookies_or_script_our_origin() {
        let response = reply_response(Reply::Http {
            status: 200,
            headers: vec![
                ("set-cookie".into(), "session=stolen".into()),
                ("Clear-Site-Data".into(), "\"*\"".into()),
                ("alt-svc".into(), "h2=\"evil.example:443\"".into()),
                ("content-type".into(), "text/html".into()),
                ("bad header".into(), "x".into()),
            ],
            body: b"<script>alert(1)</script>".to_vec(),
        });
        assert!(response.headers().get(header::SET_COOKIE).is_none());
        assert!(response.headers().get("clear-site-data").is_none());
        assert!(response.headers().get(header::ALT_SVC).is_none());
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/html");
        let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap_or_default();
        assert!(csp.starts_with("sandbox") && !csp.contains("allow-same-origin"));
        let odd = reply_response(Reply::Http {
            status: 101,
            headers: vec![],
            body: vec![],
        });
        assert_eq!(odd.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let flood = reply_response(Reply::Http {
            status: 200,
            headers: (0..10_000)
                .map(|i| (format!("x-h{i}"), "v".into()))
                .collect(),
            body: vec![],
        });
        assert_eq!(flood.status(), StatusCode::BAD_GATEWAY);
        assert!(flood.headers().len() < 10);
    }
}
