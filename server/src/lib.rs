//! Streamhut's server: the HTTP edge, the database and every service behind the pages.
//!
//! # Layout
//!
//! - [`cli`]: the `at-run` command line (login, deploy, ls, keys, secrets).
//! - [`config`]: the one configuration struct, from flags, environment and `.env`.
//! - [`atproto`]: identifiers, identity resolution, XRPC, sessions, verified blobs, our
//!   record types; all outbound traffic goes through its SSRF-guarded HTTP client.
//! - [`db`]: libSQL (an embedded file, or Turso) and the versioned schema migrations.
//! - [`api`]: what services expose over HTTP, below the edge: the XRPC error shape,
//!   parameters, and the native-bundle declarations services make of themselves.
//! - [`appview`]: the video index: what pages and the API read (its API: `appview::api`).
//! - [`auth`]: who may administer the server (admin DIDs, sessions, bearer tokens).
//! - [`filecache`]: size-capped files on disk (images, bundle code, avatars), least
//!   recently used out first, optionally capped per owner.
//! - [`fsutil`]: writing credential files (0600, atomic).
//! - [`runner`]: at-run: bundles from PDSes run in permission-scoped Deno sandboxes.
//! - [`secret`]: values that must never be printed (tokens, passwords, keys).
//! - [`services`]: builds all of the above for a configuration (main and tests share it).
//! - [`tasks`]: durable, deduplicated, concurrency-limited tasks, and scheduled jobs.
//! - [`vod`]: playback: rewritten HLS playlists, thumbnails, sprite and storyboard
//!   previews made with ffmpeg, cached on disk, transcripts (its API: `vod::api`).
//! - [`web`]: the axum router (Leptos pages, server functions, static site, native
//!   bundles mounted, JSON endpoints), its middleware, and graceful shutdown.
//!
//! `main.rs` only wires these together: config → database → migrations → router → serve.

#![warn(missing_docs)]
// Leptos's view types nest deeply; the pages' layouts go past the default limit.
#![recursion_limit = "256"]

/// The allocator of every binary linking the server (the server, at-run, tests and
/// benchmarks alike, so they measure what runs): rendering pages makes and drops many
/// small strings, which glibc's malloc served at a fifth of a render's time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod api;
pub mod appview;
pub mod atproto;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod filecache;
pub mod fsutil;
pub mod runner;
pub mod secret;
pub mod services;
pub mod tasks;
pub mod vod;
pub mod web;

/// Settings shared by the property tests next to each parser of outside input.
#[cfg(test)]
pub(crate) mod properties {
    use proptest::prelude::*;
    use proptest::test_runner::Config;

    /// 10 000 generated inputs per property in the test suite; `PROPTEST_CASES=1000000`
    /// for a longer run (see the README).
    pub fn config() -> Config {
        let cases = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|cases| cases.parse().ok())
            .unwrap_or(10_000);
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        }
    }

    /// Any JSON value, nested a few levels, with the keys records and manifests use
    /// mixed into arbitrary ones.
    pub fn json(keys: &'static [&'static str]) -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let key = prop_oneof![
            proptest::sample::select(keys).prop_map(str::to_string),
            "[a-zA-Z$]{0,8}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,20}".prop_map(Value::String),
            proptest::sample::select(keys).prop_map(|k| Value::String(k.to_string())),
        ];
        leaf.prop_recursive(4, 64, 8, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(key.clone(), inner, 0..8)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }
}
