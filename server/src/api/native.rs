//! Native bundles: services compiled into the server (the AppView, VOD) declare here, in
//! one place, everything the rest of the server needs of them, the way a JavaScript
//! bundle's manifest does: endpoints, tasks and jobs, extra routes, the dashboard's admin
//! actions, metrics, and background work that runs until shutdown. Each service declares
//! its own bundle (`appview::api`, `vod::api`), below the HTTP edge; the edge
//! (`web::native`) mounts every declaration the same way, so adding a service names it
//! in one place (`services`) and nowhere in `web`.
//!
//! A [`NativeBundle`] named `name` answers:
//! - `GET /api/{name}`: its manifest, in the shape `GET /bundle/{did}/{name}/{version}`
//!   gives for JavaScript bundles (plus `"native": true`);
//! - `GET|POST /api/{name}/{export}` for each endpoint, with the query (GET) or the JSON
//!   body (POST) as input, read through [`Call`], whose extractors answer bad input with
//!   XRPC 400s;
//! - `GET|POST /api/{name}/{export}` for each public task: the input is submitted to the
//!   task system and the answer is the task's `TaskView` (202 pending, 200 complete;
//!   `?wait=N` waits), as for `/api/tasks` and bundle tasks.
//!
//! [`NativeBundle::install`] registers its tasks (named `{name}.{export}`) and jobs with
//! the task system and the scheduler, and [`NativeBundle::start`] its background work.
//! Errors map to responses in one place: handlers return [`XrpcError`].

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::Query;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use prometheus_client::registry::Registry;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::XrpcError;
use super::params::query_args;
use crate::runner::manifest::{JobView, ManifestView, PermissionsView, TaskView};
use crate::tasks::scheduler::{JobDef, Scheduler};
use crate::tasks::{TaskDef, TaskSystem};

/// What a handler returns.
pub type Reply = Result<Response, XrpcError>;
type BoxReply = Pin<Box<dyn Future<Output = Reply> + Send>>;
/// An endpoint's handler.
pub type Handler = Arc<dyn Fn(Call) -> BoxReply + Send + Sync>;
/// An admin action: given the dashboard's form, what to tell the admin.
pub type AdminAction = Arc<
    dyn Fn(AdminForm) -> Pin<Box<dyn Future<Output = Result<String, XrpcError>> + Send>>
        + Send
        + Sync,
>;

/// What a dashboard form sends, and who sent it. Each action reads the fields it needs;
/// absent ones are empty.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct AdminForm {
    /// The signed-in admin, as the audit log names them (filled in by the edge).
    #[serde(skip)]
    pub by: String,
    /// A handle or DID.
    #[serde(default)]
    pub actor: String,
    /// A video: an `at://` URI or a watch page URL.
    #[serde(default)]
    pub video: String,
    /// A PDS host.
    #[serde(default)]
    pub host: String,
    /// Why.
    #[serde(default)]
    pub reason: String,
}
type Background = Box<dyn Fn(CancellationToken) -> JoinHandle<()> + Send + Sync>;
type RegisterMetrics = Box<dyn Fn(&mut Registry) + Send + Sync>;
type RefreshGauges = Box<dyn Fn() + Send + Sync>;

/// The HTTP method an export answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Input from the query string.
    Get,
    /// Input from a JSON body.
    Post,
}

/// A request to a native export.
pub struct Call {
    /// The request head.
    pub parts: Parts,
    body: Bytes,
}

impl Call {
    /// A call with head `parts` and body `body`.
    pub fn new(parts: Parts, body: Bytes) -> Self {
        Self { parts, body }
    }
}

impl Call {
    /// The query string as `T`, or a 400 saying what is wrong.
    pub fn query<T: DeserializeOwned>(&self) -> Result<T, XrpcError> {
        Query::<T>::try_from_uri(&self.parts.uri)
            .map(|Query(value)| value)
            .map_err(|rejection| XrpcError::invalid_request(rejection.body_text()))
    }

    /// The JSON body as `T` (an empty body reads as `{}`), or a 400 naming `expected`.
    pub fn json<T: DeserializeOwned>(&self, expected: &str) -> Result<T, XrpcError> {
        let body: &[u8] = if self.body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &self.body
        };
        serde_json::from_slice(body).map_err(|err| {
            XrpcError::invalid_request(format!("expected a JSON body {expected}: {err}"))
        })
    }

    /// A task's input: the query's arguments (GET, see [`query_args`]) or the body's
    /// JSON object (POST).
    pub fn task_input(&self, verb: Verb) -> Result<Value, XrpcError> {
        match verb {
            Verb::Get => Ok(query_args(self.parts.uri.query())),
            Verb::Post => match self.json::<Value>("of task input")? {
                value @ Value::Object(_) => Ok(value),
                _ => Err(XrpcError::invalid_request(
                    "the body must be a JSON object of task input",
                )),
            },
        }
    }
}

/// One export of a bundle.
pub enum Export {
    /// An endpoint and its handler.
    Endpoint {
        /// Its method.
        verb: Verb,
        /// What answers it.
        handler: Handler,
    },
    /// A task; public ones are routed too.
    Task {
        /// Its method, when routed.
        verb: Verb,
        /// The task.
        def: TaskDef,
    },
    /// A scheduled job.
    Job(JobDef),
}

/// A compiled-in service's declaration.
pub struct NativeBundle {
    name: &'static str,
    permissions: PermissionsView,
    exports: BTreeMap<&'static str, Export>,
    routes: Router,
    admin_actions: Vec<(&'static str, AdminAction)>,
    register_metrics: Vec<RegisterMetrics>,
    refresh_gauges: Vec<RefreshGauges>,
    background: Vec<(&'static str, Background)>,
}

impl NativeBundle {
    /// A bundle named `name` (its URL prefix is `/api/{name}`); `net` says what it
    /// reaches, for its manifest.
    pub fn new(name: &'static str, net: &[&str]) -> Self {
        Self {
            name,
            permissions: PermissionsView {
                net: net.iter().map(ToString::to_string).collect(),
                env: Vec::new(),
                kv: false,
            },
            exports: BTreeMap::new(),
            routes: Router::new(),
            admin_actions: Vec::new(),
            register_metrics: Vec::new(),
            refresh_gauges: Vec::new(),
            background: Vec::new(),
        }
    }

    /// The bundle's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Declares endpoint `export`, answered by `handler`.
    pub fn endpoint<F, Fut>(mut self, export: &'static str, verb: Verb, handler: F) -> Self
    where
        F: Fn(Call) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |call| Box::pin(handler(call)));
        self.exports
            .insert(export, Export::Endpoint { verb, handler });
        self
    }

    /// Declares task `export`; `def` must be named `{bundle}.{export}`. Public tasks are
    /// also callable at `/api/{bundle}/{export}`.
    pub fn task(mut self, export: &'static str, verb: Verb, def: TaskDef) -> Self {
        debug_assert_eq!(def.name(), format!("{}.{export}", self.name));
        self.exports.insert(export, Export::Task { verb, def });
        self
    }

    /// Declares job `export`; `def` must be named `{bundle}.{export}`.
    pub fn job(mut self, export: &'static str, def: JobDef) -> Self {
        debug_assert_eq!(def.name(), format!("{}.{export}", self.name));
        self.exports.insert(export, Export::Job(def));
        self
    }

    /// Adds a route outside the export scheme (paths with parameters, such as avatars).
    pub fn route(mut self, path: &str, method_router: MethodRouter) -> Self {
        self.routes = self.routes.route(path, method_router);
        self
    }

    /// Declares a dashboard action at `path` (a form `POST`), which the edge runs for
    /// signed-in admins only.
    pub fn admin_action<F, Fut>(mut self, path: &'static str, action: F) -> Self
    where
        F: Fn(AdminForm) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, XrpcError>> + Send + 'static,
    {
        let action: AdminAction = Arc::new(move |form| Box::pin(action(form)));
        self.admin_actions.push((path, action));
        self
    }

    /// Declares the bundle's metrics: `register` adds them to `/metrics` once, `refresh`
    /// brings its gauges up to date before each scrape.
    pub fn metrics(
        mut self,
        register: impl Fn(&mut Registry) + Send + Sync + 'static,
        refresh: impl Fn() + Send + Sync + 'static,
    ) -> Self {
        self.register_metrics.push(Box::new(register));
        self.refresh_gauges.push(Box::new(refresh));
        self
    }

    /// Declares background work named `what`, started with the server and told to stop
    /// by its token at shutdown, which waits for it to end.
    pub fn background(
        mut self,
        what: &'static str,
        start: impl Fn(CancellationToken) -> JoinHandle<()> + Send + Sync + 'static,
    ) -> Self {
        self.background.push((what, Box::new(start)));
        self
    }

    /// The exports, by name.
    pub fn exports(&self) -> impl Iterator<Item = (&'static str, &Export)> {
        self.exports.iter().map(|(name, export)| (*name, export))
    }

    /// The routes it added.
    pub fn routes(&self) -> Router {
        self.routes.clone()
    }

    /// The dashboard actions, by path.
    pub fn admin_actions(&self) -> impl Iterator<Item = (&'static str, AdminAction)> + '_ {
        self.admin_actions
            .iter()
            .map(|(path, action)| (*path, action.clone()))
    }

    /// Adds its metrics to `registry`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        for register in &self.register_metrics {
            register(registry);
        }
    }

    /// Brings its gauges up to date.
    pub fn refresh_gauges(&self) {
        for refresh in &self.refresh_gauges {
            refresh();
        }
    }

    /// Starts its background work, each piece told to stop by a child of `shutdown`.
    pub fn start(&self, shutdown: &CancellationToken) -> Vec<(&'static str, JoinHandle<()>)> {
        self.background
            .iter()
            .map(|(what, start)| (*what, start(shutdown.child_token())))
            .collect()
    }

    /// The manifest, in the shape JavaScript bundles' manifests have.
    pub fn manifest(&self) -> ManifestView {
        let mut view = ManifestView {
            name: self.name.to_string(),
            sdk_version: None,
            permissions: self.permissions.clone(),
            endpoints: Vec::new(),
            tasks: Vec::new(),
            jobs: Vec::new(),
        };
        for (export, kind) in &self.exports {
            match kind {
                Export::Endpoint { .. } => view.endpoints.push(export.to_string()),
                Export::Task { def, .. } => {
                    let (concurrency, cache_ttl) = def.limits();
                    view.tasks.push(TaskView {
                        name: export.to_string(),
                        concurrency,
                        cache_ttl: cache_ttl.as_secs(),
                    });
                }
                Export::Job(def) => view.jobs.push(JobView {
                    name: export.to_string(),
                    schedule: def.schedule().to_string(),
                }),
            }
        }
        view
    }

    /// Registers the bundle's tasks and jobs.
    pub fn install(&self, tasks: &TaskSystem, scheduler: &Scheduler) {
        for export in self.exports.values() {
            match export {
                Export::Task { def, .. } => tasks.register(def.clone()),
                Export::Job(def) => scheduler.add(def.clone()),
                Export::Endpoint { .. } => {}
            }
        }
    }
}

/// `handler` with its shared context `ctx` bound: an endpoint handler (given a [`Call`])
/// or a dashboard action (given an [`AdminForm`]).
pub fn bind<C, A, F, Fut>(ctx: &Arc<C>, handler: F) -> impl Fn(A) -> Fut + Send + Sync + 'static
where
    C: Send + Sync + 'static,
    F: Fn(Arc<C>, A) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
{
    let ctx = ctx.clone();
    move |input| handler(ctx.clone(), input)
}

/// A JSON response.
pub fn json_reply(value: impl serde::Serialize) -> Reply {
    Ok(Json(json!(value)).into_response())
}
