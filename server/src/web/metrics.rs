//! `GET /metrics`: Prometheus metrics in the OpenMetrics text format, optionally behind
//! `METRICS_TOKEN`.
//!
//! Each part of the server keeps its own metrics (shared atomic handles): the task system
//! and the runner, and each native bundle through its declaration (the AppView, VOD).
//! They are registered here once, next to the HTTP metrics this module records. Requests are labelled by the route pattern that matched (`/watch/{*path}`,
//! not the path), so label sets stay few whatever clients ask for; requests no route
//! matched (static files, 404s) share the label `fallback`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::XrpcError;
use crate::api::native::NativeBundle;
use crate::auth::BearerToken;
use crate::config::Config;
use crate::runner::Runner;
use crate::services::Services;
use crate::tasks::TaskSystem;

/// The route pattern a request matched, carried on its response to [`track`].
#[derive(Debug, Clone)]
pub struct Route(pub Arc<str>);

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    route: Arc<str>,
    method: &'static str,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    route: Arc<str>,
    method: &'static str,
}

/// Everything `/metrics` reports, and the HTTP metrics it records.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram>,
    token: Option<BearerToken>,
    tasks: TaskSystem,
    runner: Arc<Runner>,
    native: Arc<Vec<NativeBundle>>,
}

impl Metrics {
    /// Registers the metrics of `services` and of the HTTP edge.
    pub fn new(config: &Config, services: &Services) -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        // 1 ms to about 33 s.
        let durations = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 16))
        });
        let mut registry = Registry::default();
        let http = registry.sub_registry_with_prefix("streamhut_http");
        http.register(
            "requests",
            "HTTP requests answered, by route, method and status.",
            requests.clone(),
        );
        http.register(
            "request_duration_seconds",
            "Time to each response's head, by route and method.",
            durations.clone(),
        );
        services.tasks.register_metrics(&mut registry);
        services.runner.register_metrics(&mut registry);
        for bundle in services.native.iter() {
            bundle.register_metrics(&mut registry);
        }
        Self {
            registry,
            requests,
            durations,
            token: config.metrics_token.as_ref().and_then(BearerToken::new),
            tasks: services.tasks.clone(),
            runner: services.runner.clone(),
            native: services.native.clone(),
        }
    }

    fn record(&self, route: Arc<str>, method: &Method, status: StatusCode, took: f64) {
        let method = method_label(method);
        self.requests
            .get_or_create(&RequestLabels {
                route: route.clone(),
                method,
                status: status.as_u16(),
            })
            .inc();
        self.durations
            .get_or_create(&RouteLabels { route, method })
            .observe(took);
    }
}

/// Standard methods by name, anything else as `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Inner middleware (inside the router): notes the matched route on the response.
pub async fn label_route(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| Route(path.as_str().into()));
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(route);
    }
    response
}

/// Outer middleware: counts and times every request.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let route = response
        .extensions()
        .get::<Route>()
        .map_or_else(|| Arc::from("fallback"), |route| route.0.clone());
    metrics.record(
        route,
        &method,
        response.status(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// `GET /metrics`.
pub(super) async fn serve(
    State(metrics): State<Arc<Metrics>>,
    headers: axum::http::HeaderMap,
) -> Result<Response, XrpcError> {
    if let Some(token) = &metrics.token {
        let authorized = headers
            .get(header::AUTHORIZATION)
            .is_some_and(|value| token.matches(value));
        if !authorized {
            return Err(XrpcError::new(
                StatusCode::UNAUTHORIZED,
                "AuthRequired",
                "send Authorization: Bearer <METRICS_TOKEN>",
            ));
        }
    }
    // Gauges read at scrape time: the queue depth (database), live processes, cache size.
    if let Err(err) = metrics.tasks.refresh_gauges().await {
        tracing::warn!(error = %err, "reading the task queue depth for /metrics failed");
    }
    metrics.runner.refresh_gauges();
    for bundle in metrics.native.iter() {
        bundle.refresh_gauges();
    }
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &metrics.registry).map_err(|_| {
        XrpcError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "the metrics could not be encoded",
        )
    })?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
