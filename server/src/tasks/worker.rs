//! The dispatcher: claims tasks, runs each attempt with a timeout and a renewed lease,
//! and records the outcome (complete, retry later, or failed).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::TaskSystem;
use super::def::{TaskContext, TaskDef, TaskFailure};
use super::store::{ClaimPolicy, Claimed, Outcome};

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

pub(super) async fn dispatch(system: TaskSystem, shutdown: CancellationToken) {
    let inner = &system.inner;
    match inner
        .store
        .reclaim(
            &inner.policy.node_id,
            &inner.worker_id,
            inner.policy.clock.now_ms(),
        )
        .await
    {
        Ok(0) => {}
        Ok(taken) => tracing::info!(
            taken,
            "resuming tasks this server was running when it stopped"
        ),
        Err(err) => {
            tracing::warn!(error = %err, "could not take back this server's interrupted tasks")
        }
    }
    let mut running: JoinSet<()> = JoinSet::new();
    let mut in_flight: HashMap<tokio::task::Id, String> = HashMap::new();
    loop {
        let mut batch_full = false;
        while let Some(done) = running.try_join_next_with_id() {
            in_flight.remove(&finished_id(done));
        }
        let (policies, defs) = snapshot(&system);
        let names: Vec<String> = policies.keys().cloned().collect();
        let now = inner.policy.clock.now_ms();
        match inner.store.anything_claimable(&names, now).await {
            Ok(true) => {
                let room = inner.policy.claim_batch;
                match inner
                    .store
                    .claim(
                        &policies,
                        &inner.worker_id,
                        ms(inner.policy.lease),
                        room,
                        now,
                    )
                    .await
                {
                    Ok(claimed) => {
                        batch_full = claimed.len() >= room;
                        for task in claimed {
                            let Some(def) = defs.get(&task.name).cloned() else {
                                continue;
                            };
                            let id = task.id.clone();
                            let handle = running.spawn(attempt(system.clone(), def, task));
                            in_flight.insert(handle.id(), id);
                        }
                    }
                    Err(err) => tracing::error!(error = %err, "claiming tasks failed"),
                }
            }
            Ok(false) => {}
            Err(err) => tracing::error!(error = %err, "looking for tasks failed"),
        }

        // A full batch may have left more work behind: claim again at once.
        if batch_full && !shutdown.is_cancelled() {
            continue;
        }
        // A due time already past belongs to work held back by a concurrency cap: a
        // completion wakes us for it, so waiting for it would only spin.
        let due = (inner.store.next_due(&names).await.ok().flatten()).filter(|due| *due > now);
        tokio::select! {
            () = inner.wake.notified() => {}
            () = tokio::time::sleep(inner.policy.poll_interval) => {}
            () = inner.policy.clock.sleep_until(due.unwrap_or(i64::MAX)), if due.is_some() => {}
            Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                in_flight.remove(&finished_id(done));
            }
            () = shutdown.cancelled() => break,
        }
    }
    drain(&system, running, in_flight).await;
}

fn finished_id(done: Result<(tokio::task::Id, ()), tokio::task::JoinError>) -> tokio::task::Id {
    match done {
        Ok((id, ())) => id,
        Err(err) => err.id(),
    }
}

/// Gives running attempts the drain timeout, then hands the unfinished back.
async fn drain(
    system: &TaskSystem,
    mut running: JoinSet<()>,
    in_flight: HashMap<tokio::task::Id, String>,
) {
    let inner = &system.inner;
    let deadline = tokio::time::sleep(inner.policy.drain_timeout);
    tokio::pin!(deadline);
    let mut finished = Vec::new();
    loop {
        tokio::select! {
            next = running.join_next_with_id() => match next {
                Some(done) => finished.push(finished_id(done)),
                None => return,
            },
            () = &mut deadline => break,
        }
    }
    running.abort_all();
    for (id, task) in in_flight {
        if finished.contains(&id) {
            continue;
        }
        if let Err(err) = inner
            .store
            .release(&task, &inner.worker_id, inner.policy.clock.now_ms())
            .await
        {
            tracing::warn!(task = %task, error = %err, "could not hand an unfinished task back");
        }
    }
}

fn snapshot(system: &TaskSystem) -> (HashMap<String, ClaimPolicy>, HashMap<String, Arc<TaskDef>>) {
    let defs = system
        .inner
        .defs
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    let failure_ttl = system.inner.policy.failure_ttl;
    let policies = defs
        .iter()
        .map(|(name, def)| {
            let policy = ClaimPolicy {
                concurrency: def.concurrency,
                per_owner: def.per_owner,
                max_attempts: def.max_attempts,
                failure_ttl_ms: ms(def.failure_ttl.unwrap_or(failure_ttl)),
            };
            (name.clone(), policy)
        })
        .collect();
    (policies, defs)
}

/// Runs one attempt and records its outcome.
async fn attempt(system: TaskSystem, def: Arc<TaskDef>, task: Claimed) {
    let inner = &system.inner;
    inner.counters.running.inc();
    let input = serde_json::from_str(&task.input).unwrap_or_default();
    let context = TaskContext {
        id: task.id.clone(),
        input,
        attempt: task.attempt,
    };

    let renewal = tokio::spawn(renew_lease(system.clone(), task.id.clone()));
    // The handler runs in its own task so a panic is an ordinary failure.
    let mut handler = tokio::spawn((def.handler)(context));
    let result = match tokio::time::timeout(def.timeout, &mut handler).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) if join.is_panic() => {
            Err(TaskFailure::retry("the task failed unexpectedly").because("the handler panicked"))
        }
        Ok(Err(_)) => Err(TaskFailure::retry("the task was cancelled")),
        Err(_) => {
            handler.abort();
            Err(TaskFailure::retry(format!(
                "timed out after {} s",
                def.timeout.as_secs_f64()
            )))
        }
    };
    renewal.abort();

    let now = inner.policy.clock.now_ms();
    if let Err(TaskFailure {
        message,
        cause: Some(cause),
        ..
    }) = &result
    {
        tracing::warn!(task = %task.id, kind = %task.name, attempt = task.attempt, %message, %cause, "a task attempt failed");
    }
    let outcome = match result {
        Ok(value) => Outcome::Complete {
            result: value.to_string(),
            expires_at: now + task.cache_ttl_ms.unwrap_or_else(|| ms(def.cache_ttl)),
        },
        Err(failure) if failure.retryable && task.attempt < def.max_attempts => Outcome::Retry {
            run_at: now + ms(def.backoff_before(task.attempt + 1)),
            error: super::bounded_message(failure.message),
        },
        Err(failure) => Outcome::Failed {
            expires_at: now + ms(def.failure_ttl.unwrap_or(inner.policy.failure_ttl)),
            error: super::bounded_message(failure.message),
            failure: failure.kind,
        },
    };
    let kept_bytes = match &outcome {
        Outcome::Complete { result, .. } => result.len() + task.input.len(),
        Outcome::Failed { error, .. } => error.len() + task.input.len(),
        Outcome::Retry { .. } => 0,
    } as u64;
    let counter = match &outcome {
        Outcome::Complete { .. } => &inner.counters.completed,
        Outcome::Retry { .. } => &inner.counters.retried,
        Outcome::Failed { .. } => &inner.counters.failed,
    };
    match inner
        .store
        .finish(&task.id, &inner.worker_id, outcome, now)
        .await
    {
        Ok(true) => {
            counter.inc();
            if let Some(owner) = &task.owner
                && kept_bytes > 0
            {
                system.owner_finished(owner, kept_bytes).await;
            }
        }
        Ok(false) => {
            tracing::warn!(task = %task.id, "lease lost before the task finished; outcome dropped")
        }
        Err(err) => {
            tracing::error!(task = %task.id, error = %err, "recording a task outcome failed")
        }
    }
    inner.counters.running.dec();
    let _ = inner.finished.send(task.id);
    inner.wake.notify_one();
}

async fn renew_lease(system: TaskSystem, id: String) {
    let inner = &system.inner;
    let every = inner.policy.lease / 3;
    loop {
        tokio::time::sleep(every).await;
        let until = inner.policy.clock.now_ms() + ms(inner.policy.lease);
        match inner.store.renew(&id, &inner.worker_id, until).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(task = %id, "lease taken over by another worker");
                return;
            }
            Err(err) => tracing::warn!(task = %id, error = %err, "lease renewal failed"),
        }
    }
}
