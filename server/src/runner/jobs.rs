//! Bundle jobs: the `job()` exports of bundles the operator installed (`ATRUN_JOBS`,
//! `did/name` entries, always the latest version) run on their schedules.
//!
//! Schedules live in manifests, which live on PDSes, so they are installed by a job of
//! their own: `atrun.jobs`, every five minutes and at start, resolves each installed
//! bundle's latest version and installs one scheduler job per `job()` export (a
//! [`BundleJob`]), as a group that replaces the previous one, so exports that disappeared
//! stop running.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::Runner;
use super::manifest::ExportKind;
use super::store::VersionSpec;
use crate::atproto::syntax::Did;
use crate::tasks::scheduler::{JobDef, Schedule, Scheduler};

/// The scheduler group of bundle jobs.
const GROUP: &str = "atrun";

/// The scheduler job that runs one `job()` export; it is named
/// `atrun:<did>/<bundle>:<export>` on the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BundleJob {
    did: Did,
    bundle: String,
    export: String,
}

impl fmt::Display for BundleJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "atrun:{}/{}:{}", self.did, self.bundle, self.export)
    }
}

impl BundleJob {
    fn def(self, runner: Arc<Runner>, schedule: Schedule) -> JobDef {
        let name = self.to_string();
        let job = Arc::new(self);
        JobDef::new(name, schedule, move |ctx| {
            let (runner, job) = (runner.clone(), job.clone());
            async move {
                let last = ctx.last_run_at.map(|t| t.to_rfc3339());
                runner
                    .run_job(&job.did, &job.bundle, &job.export, last)
                    .await
                    .map_err(|err| err.to_string())
            }
        })
    }
}

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
                        let job = BundleJob {
                            did: bundle.did.clone(),
                            bundle: bundle.name.clone(),
                            export: export.clone(),
                        };
                        installed.push(job.def(runner.clone(), schedule.clone()));
                    }
                }
                tracing::info!(jobs = installed.len(), "bundle jobs installed");
                if errors.is_empty() {
                    scheduler.replace_group(GROUP, installed);
                    Ok(())
                } else {
                    // A bundle that could not be read keeps the jobs it had.
                    for job in installed {
                        scheduler.add(job.in_group(GROUP));
                    }
                    Err(errors.join("; "))
                }
            }
        },
    )
}
