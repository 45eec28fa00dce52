//! Bundle jobs: the `job()` exports of bundles the operator installed (`ATRUN_JOBS`,
//! `did/name` entries, always the latest version) run on their schedules.
//!
//! Schedules live in manifests, which live on PDSes, so they are installed by a job of
//! their own: `atrun.jobs`, every five minutes and at start, resolves each installed
//! bundle's latest version and (re)registers one scheduler job per `job()` export,
//! named `atrun:<did>/<name>:<export>`, dropping exports that disappeared.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::Runner;
use super::manifest::ExportKind;
use super::store::VersionSpec;
use crate::tasks::scheduler::{JobDef, Schedule, Scheduler};

/// The job that installs the scheduled exports of `bundles` (`did-or-handle/name`).
pub fn installer(runner: Arc<Runner>, scheduler: Weak<Scheduler>, bundles: Vec<String>) -> JobDef {
    JobDef::new(
        "atrun.jobs",
        Schedule::Every(Duration::from_secs(300)),
        move |_| {
            let (runner, scheduler, bundles) = (runner.clone(), scheduler.clone(), bundles.clone());
            async move {
                let scheduler = scheduler.upgrade().ok_or("the scheduler has stopped")?;
                let mut installed = Vec::new();
                let mut errors = Vec::new();
                for entry in &bundles {
                    let Some((actor, name)) = entry.trim().rsplit_once('/') else {
                        errors.push(format!("{entry:?} is not did/name"));
                        continue;
                    };
                    let (bundle, manifest) =
                        match runner.describe(actor, name, &VersionSpec::Latest).await {
                            Ok(found) => found,
                            Err(err) => {
                                errors.push(format!("{entry}: {err}"));
                                continue;
                            }
                        };
                    for (export, kind) in &manifest.exports {
                        let ExportKind::Job { schedule, .. } = kind else {
                            continue;
                        };
                        let job_name = format!("atrun:{}/{}:{export}", bundle.did, bundle.name);
                        let (runner, did, name, export) = (
                            runner.clone(),
                            bundle.did.clone(),
                            bundle.name.clone(),
                            export.clone(),
                        );
                        scheduler.add(JobDef::new(
                            job_name.clone(),
                            schedule.clone(),
                            move |ctx| {
                                let (runner, did, name, export) =
                                    (runner.clone(), did.clone(), name.clone(), export.clone());
                                async move {
                                    let last = ctx.last_run_at.map(|t| t.to_rfc3339());
                                    runner
                                        .run_job(&did, &name, &export, last)
                                        .await
                                        .map_err(|err| err.to_string())
                                }
                            },
                        ));
                        installed.push(job_name);
                    }
                }
                scheduler.retain_with_prefix("atrun:", &installed);
                tracing::info!(jobs = installed.len(), "bundle jobs installed");
                if errors.is_empty() {
                    Ok(())
                } else {
                    Err(errors.join("; "))
                }
            }
        },
    )
}
