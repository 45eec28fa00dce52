//! The HTTP edge: one axum router for the Leptos pages, their server functions, the static
//! site and the JSON endpoints, plus the middleware every request goes through.
//!
//! [`router`] is a plain function of [`AppState`] so tests can drive it with
//! `tower::ServiceExt::oneshot`; [`serve`] adds the socket and graceful shutdown.
//! Server functions reach the services through the Leptos context (see
//! `app::catalog::ssr`), in-process, never over HTTP to ourselves.

pub mod admin;
mod assets;
pub mod catalog;
pub mod client_ip;
pub mod crawlers;
mod error;
mod health;
pub mod metrics;
pub mod native;
mod oembed;
mod page_cache;
pub mod rate_limit;
mod redirects;
pub mod request_id;
pub(crate) mod runner;
pub mod tasks;

use std::sync::Arc;
use std::time::Duration;

use app::catalog::ssr::Catalog;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{FromRef, Request};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::{any, get, post};
use axum::{BoxError, Router};
use leptos::prelude::{LeptosOptions, provide_context};
use leptos_axum::{LeptosRoutes, generate_route_list};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::request_id::{PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::appview::AppView;
use crate::atproto::identity::IdentityResolver;
use crate::atproto::net::HttpClient;
use crate::config::Config;
use crate::db::Db;
use crate::services::Services;
use crate::tasks::TaskSystem;
use crate::tasks::scheduler::Scheduler;

pub use error::XrpcError;
pub use runner::LOGS_METHOD;

/// The longest a request may take to produce its response head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Sign-in attempts per minute per client IP.
const SIGN_IN_RATE_LIMIT: u32 = 30;
/// Largest request body accepted anywhere (bundle calls, API, server functions).
const MAX_REQUEST_BODY_BYTES: usize = 2 * 1024 * 1024;
/// After a shutdown signal, how long in-flight requests get to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything handlers need; cheap to clone.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// Where the built site is and what it is called.
    pub leptos_options: LeptosOptions,
    /// The database.
    pub db: Db,
    /// The video index, as the pages read it.
    pub catalog: Arc<dyn Catalog>,
    /// Tasks and their results.
    pub tasks: TaskSystem,
    /// The embedded at-run runner.
    pub runner: Arc<crate::runner::Runner>,
    /// The site's public base URL (bundles see their requests' URLs under it).
    #[from_ref(skip)]
    pub public_url: String,
    /// Requests per minute per client on `/bundle/...` (0: unlimited).
    pub bundle_rate_limit: u32,
    /// Task submissions per minute per client (0: unlimited).
    #[from_ref(skip)]
    pub task_rate_limit: u32,
    /// The AppView.
    pub appview: Arc<AppView>,
    /// Admin authentication.
    pub auth: Arc<crate::auth::AdminAuth>,
    /// Identity resolution (sign-in).
    pub identity: Arc<IdentityResolver>,
    /// Outbound HTTP (sign-in).
    pub http: HttpClient,
    /// Scheduled jobs (the dashboard shows their runs).
    pub scheduler: Arc<Scheduler>,
    /// The native bundles (AppView, VOD), mounted under `/api/{name}`.
    pub native: Arc<Vec<crate::api::native::NativeBundle>>,
    /// Anonymous visitors' pages, reused for a few seconds.
    pub page_cache: page_cache::PageCache,
    /// The sitemap and feeds, reused for a minute.
    pub documents: crawlers::Documents,
    /// Proxies whose forwarding headers name the client.
    pub trusted_proxies: client_ip::TrustedProxies,
    /// What `/metrics` reports.
    pub metrics: Arc<metrics::Metrics>,
}

impl AppState {
    /// The state for `config` over running services.
    pub fn new(config: &Config, services: &Services) -> Self {
        Self {
            leptos_options: leptos_options(config),
            catalog: Arc::new(catalog::SiteCatalog::new(
                services.appview.clone(),
                config.public_url(),
            )),
            tasks: services.tasks.clone(),
            runner: services.runner.clone(),
            public_url: config.public_url().to_string(),
            bundle_rate_limit: config.atrun_rate_limit,
            task_rate_limit: config.task_rate_limit,
            db: services.db.clone(),
            appview: services.appview.clone(),
            auth: services.auth.clone(),
            identity: services.identity.clone(),
            http: services.http.clone(),
            scheduler: services.scheduler.clone(),
            native: services.native.clone(),
            page_cache: page_cache::PageCache::new(
                Duration::from_secs(config.page_cache_secs),
                services.appview.visibility().clone(),
            ),
            documents: crawlers::Documents::default(),
            trusted_proxies: client_ip::TrustedProxies::new(&config.trusted_proxies),
            metrics: Arc::new(metrics::Metrics::new(config, services)),
        }
    }
}

/// Leptos settings from our configuration: we build the site ourselves (see the README),
/// so nothing is read from cargo-leptos's environment variables.
///
/// A built site keeps its wasm, JavaScript and CSS in `pkg/<content hash>/` and names that
/// directory in `pkg/current` (see `scripts/lib.sh`), so every asset URL changes with its
/// content and can be cached for good.
pub fn leptos_options(config: &Config) -> LeptosOptions {
    let pkg_dir = std::fs::read_to_string(config.site_root.join("pkg").join("current"))
        .ok()
        .map(|hash| hash.trim().to_string())
        .filter(|hash| !hash.is_empty() && hash.chars().all(|c| c.is_ascii_alphanumeric()))
        .map_or_else(|| "pkg".to_string(), |hash| format!("pkg/{hash}"));
    LeptosOptions::builder()
        .output_name(app::OUTPUT_NAME)
        .site_root(config.site_root.display().to_string())
        .site_pkg_dir(pkg_dir)
        .site_addr(config.listen_addr)
        .build()
}

/// Long-lived caching for content-addressed assets (`/pkg/<hash>/…`), an hour for the
/// site's other static files.
async fn static_caching(request: Request, next: axum::middleware::Next) -> Response {
    let path = request.uri().path().to_string();
    let mut response = next.run(request).await;
    if !response.status().is_success() || response.headers().contains_key(header::CACHE_CONTROL) {
        return response;
    }
    let hashed = path
        .strip_prefix("/pkg/")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(dir, _)| dir.len() >= 8 && dir.chars().all(|c| c.is_ascii_hexdigit()));
    // The site's own files at the top level: icons, the manifest, site.js.
    let public_file = path.matches('/').count() == 1 && path.contains('.');
    let value = if hashed {
        Some("public, max-age=31536000, immutable")
    } else if path.starts_with("/pkg/") || public_file {
        Some("public, max-age=3600")
    } else {
        None
    };
    if let Some(value) = value {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    }
    response
}

/// The whole HTTP application.
///
/// Build it once, before serving. Building a router generates Leptos's route list, and
/// doing that while the same process renders pages leaves some of those renders waiting
/// forever (measured: up to 13 of 300 concurrent renders; none when building and
/// rendering do not overlap). Tests that build a router per test serialise building
/// against rendering for this reason (`tests/common`).
pub fn router(state: AppState) -> Router {
    let catalog = state.catalog.clone();
    let tasks: Arc<dyn app::tasks::ssr::Tasks> = Arc::new(state.tasks.clone());
    let admin: Arc<dyn app::admin::ssr::Admin> = Arc::new(admin::Dashboard {
        auth: state.auth.clone(),
        appview: state.appview.clone(),
        scheduler: state.scheduler.clone(),
    });
    let context = move || {
        provide_context(catalog.clone());
        provide_context(tasks.clone());
        provide_context(admin.clone());
    };
    let shell = {
        let options = state.leptos_options.clone();
        move || app::shell(options.clone())
    };

    let bundles = rate_limited(
        Router::new()
            .route("/bundle/{actor}/{name}/logs", get(runner::logs))
            .route("/bundle/{actor}/{name}/{version}", get(runner::describe))
            .route(
                "/bundle/{actor}/{name}/{version}/{endpoint}",
                any(runner::call_any),
            ),
        state.bundle_rate_limit,
    );

    let sign_in = rate_limited(
        Router::new().route("/admin/login", post(admin::login)),
        SIGN_IN_RATE_LIMIT,
    );

    // One limit for every way of submitting a task, so no route adds to another's.
    let task_limit = limiter(state.task_rate_limit);
    let native = state.native.iter().fold(Router::new(), |router, bundle| {
        router.merge(native::router(bundle, &state.tasks, task_limit.clone()))
    });
    let submit_task = Router::new().route("/api/tasks", post(tasks::submit));
    let submit_task = match task_limit {
        Some(limit) => submit_task.layer(axum::middleware::from_fn_with_state(
            limit,
            rate_limit::enforce,
        )),
        None => submit_task,
    };

    // The built site's files, from memory, ahead of leptos_axum's handler, which serves
    // anything else on disk and renders the 404 page: every route keeps precedence.
    let files = Arc::new(assets::load(std::path::Path::new(
        &*state.leptos_options.site_root,
    )));
    let not_routed = leptos_axum::file_and_error_handler_with_context::<AppState, _>(
        context.clone(),
        app::shell,
    );
    let fallback = move |uri: Uri, state: axum::extract::State<AppState>, request: Request| {
        let (files, not_routed) = (files.clone(), not_routed.clone());
        async move {
            match files.get(uri.path()) {
                Some(asset)
                    if request.method() == axum::http::Method::GET
                        || request.method() == axum::http::Method::HEAD =>
                {
                    assets::serve(asset.clone(), request.headers()).await
                }
                _ => not_routed(uri, state, request).await,
            }
        }
    };

    Router::new()
        .merge(native)
        .route("/healthz", get(health::healthz))
        .route("/oembed", get(oembed::oembed))
        .route("/robots.txt", get(crawlers::robots))
        .route("/sitemap.xml", get(crawlers::sitemap::index))
        .route("/sitemap/{file}", get(crawlers::sitemap::numbered))
        .route("/feed.atom", get(crawlers::feeds::site))
        .route("/profile/{actor}/feed.atom", get(crawlers::feeds::creator))
        .route("/.well-known/at-run", get(runner::well_known))
        .merge(bundles)
        .route("/metrics", get(metrics::serve))
        .merge(submit_task)
        .route("/api/tasks/{id}", get(tasks::get))
        .merge(sign_in)
        .route("/admin/logout", post(admin::logout))
        .route("/api/{*rest}", any(api_not_found))
        .route("/{actor}/vod/{rkey}", get(redirects::watch))
        .route("/{actor}/video/{rkey}", get(redirects::watch))
        .route("/embed/{did}/video/{rkey}", get(redirects::embed))
        .leptos_routes_with_context(
            &state,
            generate_route_list(app::App),
            context.clone(),
            shell,
        )
        .fallback(fallback)
        .layer(axum::middleware::from_fn(metrics::label_route))
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn(request_id::screen))
                .layer(SetRequestIdLayer::new(
                    request_id::HEADER.clone(),
                    request_id::NewId,
                ))
                .layer(PropagateRequestIdLayer::new(request_id::HEADER.clone()))
                .layer(axum::middleware::from_fn_with_state(
                    state.trusted_proxies.clone(),
                    client_ip::identify,
                ))
                .layer(axum::middleware::from_fn_with_state(
                    state.metrics.clone(),
                    metrics::track,
                ))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|request: &Request| {
                            let client = request
                                .extensions()
                                .get::<client_ip::ClientIp>()
                                .map(|ip| tracing::field::display(ip.0));
                            let id = request
                                .extensions()
                                .get::<RequestId>()
                                .and_then(|id| id.header_value().to_str().ok())
                                .map(tracing::field::display);
                            // The path only: query strings may carry tokens.
                            tracing::info_span!(
                                "request",
                                method = %request.method(),
                                path = %request.uri().path(),
                                client,
                                request_id = id,
                            )
                        })
                        .on_request(())
                        .on_response(
                            |response: &axum::http::Response<_>, latency: Duration, _: &Span| {
                                tracing::info!(
                                    status = response.status().as_u16(),
                                    latency_ms = latency.as_secs_f64() * 1000.0,
                                );
                            },
                        )
                        .on_failure(()),
                )
                .layer(axum::middleware::from_fn_with_state(
                    state.page_cache.clone(),
                    page_cache::serve,
                ))
                .layer(tower_http::compression::CompressionLayer::new())
                .layer(axum::middleware::from_fn(static_caching))
                .layer(axum::middleware::from_fn(error::error_shapes))
                .layer(HandleErrorLayer::new(request_failed))
                .timeout(REQUEST_TIMEOUT)
                // On every response, pages, API, files and bundles' replies alike: no
                // type sniffing (a bundle's text must not turn into script or a
                // stylesheet), and other sites see our origin at most.
                .layer(SetResponseHeaderLayer::overriding(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ))
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("strict-origin-when-cross-origin"),
                ))
                .layer(tower_http::limit::RequestBodyLimitLayer::new(
                    MAX_REQUEST_BODY_BYTES,
                )),
        )
        .with_state(state)
}

/// Serves `state` on `listener` until `shutdown` is cancelled, then drains in-flight
/// requests for at most [`DRAIN_TIMEOUT`].
///
/// Our own accept loop rather than `axum::serve`, which sets no timer and so no
/// header-read timeout: a client gets `header_read_timeout` to send each request head
/// (from the moment its connection opens, or the previous response ended), or its
/// connection is closed. HTTP/1.1 only: browsers speak HTTP/2 only over TLS, which the
/// reverse proxy in front terminates; and HTTP version detection would read the first
/// bytes with no timeout at all.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    header_read_timeout: Duration,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceExt;

    let app = router(state);
    let mut connections = hyper::server::conn::http1::Builder::new();
    connections
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        // A response written in pieces (head, then body frames) must not wait for the
        // client's delayed ACK of the first piece: on kept-alive connections Nagle's
        // algorithm held each such response for ~40 ms.
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(error = %err, "TCP_NODELAY could not be set");
        }
        let service =
            app.clone()
                .map_request(move |request: axum::http::Request<hyper::body::Incoming>| {
                    let mut request = request.map(axum::body::Body::new);
                    request
                        .extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    request
                });
        let connection =
            connections.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // Clients that hang up or time out end here; nothing to report.
            let _ = connection.await;
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {
            tracing::warn!("requests still running {DRAIN_TIMEOUT:?} after shutdown began; closing");
        }
    }
    Ok(())
}

/// A per-client limit of `per_minute` requests (see [`rate_limit`]); none for 0.
fn limiter(per_minute: u32) -> Option<rate_limit::RateLimit> {
    (per_minute > 0).then(|| rate_limit::RateLimit::new(per_minute, rate_limit::MAX_CLIENTS))
}

/// `routes`, limited to `per_minute` requests per client (see [`rate_limit`]); refusals
/// are XRPC `RateLimitExceeded` errors with `Retry-After`.
fn rate_limited(routes: Router<AppState>, per_minute: u32) -> Router<AppState> {
    match limiter(per_minute) {
        Some(limit) => routes.layer(axum::middleware::from_fn_with_state(
            limit,
            rate_limit::enforce,
        )),
        None => routes,
    }
}

async fn api_not_found(uri: Uri) -> XrpcError {
    XrpcError::not_found(format!("no API endpoint at {}", uri.path()))
}

async fn request_failed(err: BoxError) -> XrpcError {
    if err.is::<tower::timeout::error::Elapsed>() {
        XrpcError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "RequestTimeout",
            format!("the request took longer than {REQUEST_TIMEOUT:?}"),
        )
    } else {
        tracing::error!(error = %err, "request failed in middleware");
        XrpcError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "the request failed",
        )
    }
}
