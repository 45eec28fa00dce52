//! Native bundles: services compiled into the server (the AppView, VOD) that declare
//! their endpoints, tasks and jobs in one place, the way a JavaScript bundle's manifest
//! does, so that one router, one task system and one scheduler serve both kinds.
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
//! the task system and the scheduler. Errors map to responses in one place: handlers
//! return [`XrpcError`].

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
use axum::routing::{MethodRouter, get, post};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::params::{query_args, wait_param};
use super::rate_limit::{self, RateLimit};
use super::tasks::task_response;
use super::{AppState, XrpcError};
use crate::runner::manifest::{JobView, ManifestView, PermissionsView, TaskView};
use crate::tasks::scheduler::{JobDef, Scheduler};
use crate::tasks::{TaskDef, TaskSystem};

/// What a handler returns.
pub type Reply = Result<Response, XrpcError>;
type BoxReply = Pin<Box<dyn Future<Output = Reply> + Send>>;
type Handler = Arc<dyn Fn(Call) -> BoxReply + Send + Sync>;

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
    fn task_input(&self, verb: Verb) -> Result<Value, XrpcError> {
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

enum Export {
    Endpoint { verb: Verb, handler: Handler },
    Task { verb: Verb, def: TaskDef },
    Job(JobDef),
}

/// A compiled-in service's declaration.
pub struct NativeBundle {
    name: &'static str,
    permissions: PermissionsView,
    exports: BTreeMap<&'static str, Export>,
    routes: Router<AppState>,
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
            },
            exports: BTreeMap::new(),
            routes: Router::new(),
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
    pub fn route(mut self, path: &str, method_router: MethodRouter<AppState>) -> Self {
        self.routes = self.routes.route(path, method_router);
        self
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

    /// The bundle's routes: its manifest, its endpoints and public tasks (submissions
    /// limited per client by `task_limit`), and the routes it added.
    pub fn router(&self, tasks: &TaskSystem, task_limit: Option<RateLimit>) -> Router<AppState> {
        let manifest = self.manifest();
        let mut body = serde_json::to_value(&manifest).unwrap_or_default();
        if let Some(fields) = body.as_object_mut() {
            fields.insert("native".into(), true.into());
            fields.insert("version".into(), env!("CARGO_PKG_VERSION").into());
        }
        let mut router = Router::new().route(
            &format!("/api/{}", self.name),
            get(move || async move { Json(body) }),
        );
        for (export, kind) in &self.exports {
            let path = format!("/api/{}/{export}", self.name);
            let method_router = match kind {
                Export::Endpoint { verb, handler } => {
                    let handler = handler.clone();
                    let run = move |parts: Parts, body: Bytes| async move {
                        handler(Call { parts, body })
                            .await
                            .unwrap_or_else(IntoResponse::into_response)
                    };
                    on(*verb, run)
                }
                Export::Task { verb, def } if def.is_public() => {
                    let (tasks, name, verb) = (tasks.clone(), def.name().to_string(), *verb);
                    let run = move |parts: Parts, body: Bytes| {
                        let (tasks, name) = (tasks.clone(), name.clone());
                        async move {
                            submit(&tasks, &name, verb, Call { parts, body })
                                .await
                                .unwrap_or_else(IntoResponse::into_response)
                        }
                    };
                    match &task_limit {
                        Some(limit) => on(verb, run).layer(axum::middleware::from_fn_with_state(
                            limit.clone(),
                            rate_limit::enforce,
                        )),
                        None => on(verb, run),
                    }
                }
                Export::Task { .. } | Export::Job(_) => continue,
            };
            router = router.route(&path, method_router);
        }
        router.merge(self.routes.clone())
    }
}

fn on<H, T>(verb: Verb, handler: H) -> MethodRouter<AppState>
where
    H: axum::handler::Handler<T, AppState>,
    T: 'static,
{
    match verb {
        Verb::Get => get(handler),
        Verb::Post => post(handler),
    }
}

/// Submits a task export's input and answers with its view, waiting if asked.
async fn submit(tasks: &TaskSystem, name: &str, verb: Verb, call: Call) -> Reply {
    let wait = wait_param(call.parts.uri.query())?;
    let input = call.task_input(verb)?;
    Ok(task_response(
        tasks.submit_and_wait(name, input, None, wait).await?,
    ))
}

/// `handler` with its shared context `ctx` bound, as an endpoint handler.
pub fn bind<C, F, Fut>(ctx: &Arc<C>, handler: F) -> impl Fn(Call) -> Fut + Send + Sync + 'static
where
    C: Send + Sync + 'static,
    F: Fn(Arc<C>, Call) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    let ctx = ctx.clone();
    move |call| handler(ctx.clone(), call)
}

/// A JSON response.
pub fn json_reply(value: impl serde::Serialize) -> Reply {
    Ok(Json(json!(value)).into_response())
}
