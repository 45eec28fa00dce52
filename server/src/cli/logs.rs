//! `at-run logs`: a bundle's invocations on a runner and what each printed, read with a
//! service auth token from the author's PDS (the runner checks it names the author, the
//! runner and `dev.atrun.getLogs`). `--follow` asks again every second for what was
//! stored since the last line it printed, with a fresh token well before the last one
//! expires.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Deserialize;
use url::Url;

use super::{CliContext, well_known, with_agent};
use crate::runner::logs::LogLine;
use crate::secret::Secret;

/// How often `--follow` asks for new lines.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);
/// How long a service auth token is used (PDSes issue them for 60 s by default).
const TOKEN_USE: Duration = Duration::from_secs(30);

/// Prints `bundle`'s latest `limit` invocations on `runner`; with `follow`, keeps going.
pub(super) async fn show(
    ctx: &CliContext,
    runner: &Url,
    bundle: &str,
    limit: u32,
    follow: bool,
) -> anyhow::Result<()> {
    let audience = well_known(ctx, runner)
        .await?
        .did
        .ok_or_else(|| anyhow::anyhow!("{runner} does not serve invocation logs"))?;
    let mut reader = Reader {
        ctx,
        runner,
        bundle,
        audience,
        token: None,
    };
    let mut lines = reader.read(limit, None).await?;
    if !follow {
        if lines.is_empty() {
            println!("no invocations of {bundle} on {runner} in the last seven days");
        }
        lines.iter().for_each(print);
        return Ok(());
    }
    lines.reverse();
    let mut last = lines.iter().map(|line| line.id).max().unwrap_or(0);
    lines.iter().for_each(print);
    eprintln!("following {bundle} on {runner} (Ctrl-C stops)");
    loop {
        tokio::select! {
            () = tokio::time::sleep(FOLLOW_EVERY) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
        // Everything since `last`, however much arrived in the second.
        loop {
            let lines = reader
                .read(crate::runner::logs::MAX_LINES, Some(last))
                .await?;
            for line in &lines {
                print(line);
                last = last.max(line.id);
            }
            if lines.len() < crate::runner::logs::MAX_LINES as usize {
                break;
            }
        }
    }
}

struct Reader<'a> {
    ctx: &'a CliContext,
    runner: &'a Url,
    bundle: &'a str,
    audience: String,
    /// The token in use, and when it was issued.
    token: Option<(String, Secret, Instant)>,
}

impl Reader<'_> {
    async fn read(&mut self, limit: u32, after: Option<i64>) -> anyhow::Result<Vec<LogLine>> {
        #[derive(Deserialize)]
        struct Logs {
            invocations: Vec<LogLine>,
        }
        let (did, token) = match &self.token {
            Some((did, token, issued)) if issued.elapsed() < TOKEN_USE => (did.clone(), token),
            _ => {
                let audience = &self.audience;
                let (did, token) = with_agent(self.ctx, async |agent| {
                    let token = agent
                        .service_auth(audience, crate::web::LOGS_METHOD)
                        .await
                        .context("asking your PDS for a service auth token")?;
                    Ok((agent.did().await, token))
                })
                .await?;
                let (_, token, _) = self.token.insert((did.clone(), token, Instant::now()));
                (did, &*token)
            }
        };
        let (runner, http) = (self.runner, &self.ctx.http);
        let mut url = runner.join(&format!("/bundle/{did}/{}/logs", self.bundle))?;
        url.query_pairs_mut()
            .append_pair("limit", &limit.to_string());
        if let Some(after) = after {
            url.query_pairs_mut()
                .append_pair("after", &after.to_string());
        }
        let response = http
            .send(
                http.request(reqwest::Method::GET, url)
                    .bearer_auth(token.expose()),
            )
            .await
            .with_context(|| format!("reaching the runner at {runner}"))?;
        let status = response.status();
        let body = http.read_body(response, Some(64 * 1024 * 1024)).await?;
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| status.to_string());
            bail!("{runner}: {message}");
        }
        let logs: Logs = serde_json::from_slice(&body).context("reading the logs")?;
        Ok(logs.invocations)
    }
}

/// One invocation on a line, tab-separated, then what it printed, indented.
fn print(line: &LogLine) {
    println!(
        "{}\t{}\t{}\t{}\t{}\t{} ms{}",
        line.at,
        line.version,
        line.export,
        line.kind,
        line.status,
        line.duration_ms,
        line.error
            .as_ref()
            .map(|e| format!("\t{e}"))
            .unwrap_or_default()
    );
    for printed in &line.console {
        let text = printed.text.replace('\n', "\n          ");
        println!("    {:<5} {text}", printed.level);
    }
}
