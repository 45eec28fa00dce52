//! Mounting native bundles (`crate::api::native`): each declaration becomes its routes
//! under `/api/{name}` (manifest, endpoints, public tasks with the shared submission
//! limit), the routes it added, and its dashboard actions, which only signed-in admins
//! may run. Nothing here names a service.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{MethodRouter, get, post};

use super::AppState;
use super::admin::{AdminCheck, AdminFormInput, form_action};
use super::rate_limit::{self, RateLimit};
use super::tasks::task_response;
use crate::api::native::{Call, Export, NativeBundle, Reply, Verb};
use crate::api::params::wait_param;
use crate::tasks::TaskSystem;

/// `bundle`'s routes: its manifest, its endpoints and public tasks (submissions limited
/// per client by `task_limit`), the routes it added, and its dashboard actions.
pub fn router(
    bundle: &NativeBundle,
    tasks: &TaskSystem,
    task_limit: Option<RateLimit>,
) -> Router<AppState> {
    let mut body = serde_json::to_value(bundle.manifest()).unwrap_or_default();
    if let Some(fields) = body.as_object_mut() {
        fields.insert("native".into(), true.into());
        fields.insert("version".into(), env!("CARGO_PKG_VERSION").into());
    }
    let mut router = Router::new().route(
        &format!("/api/{}", bundle.name()),
        get(move || async move { Json(body) }),
    );
    for (export, kind) in bundle.exports() {
        let path = format!("/api/{}/{export}", bundle.name());
        let method_router = match kind {
            Export::Endpoint { verb, handler } => {
                let handler = handler.clone();
                let run = move |parts: Parts, body: Bytes| async move {
                    handler(Call::new(parts, body))
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
                        submit(&tasks, &name, verb, Call::new(parts, body))
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
    for (path, action) in bundle.admin_actions() {
        let run = move |admin: AdminCheck, form: AdminFormInput| {
            let action = action.clone();
            async move {
                let redirect: Redirect = form_action(admin, form, action).await;
                redirect
            }
        };
        router = router.route(path, post(run));
    }
    router.merge(bundle.routes().with_state(()))
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
