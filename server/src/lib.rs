//! Streamhut's server: the HTTP edge, the database and every service behind the pages.
//!
//! # Layout
//!
//! - [`cli`]: the `at-run` command line (login, deploy, ls, keys, secrets).
//! - [`config`]: the one configuration struct, from flags, environment and `.env`.
//! - [`atproto`]: identifiers, identity resolution, XRPC, sessions, verified blobs, our
//!   record types; all outbound traffic goes through its SSRF-guarded HTTP client.
//! - [`db`]: libSQL (an embedded file, or Turso) and the versioned schema migrations.
//! - [`appview`]: the video index: what pages and the API read.
//! - [`fsutil`]: writing credential files (0600, atomic).
//! - [`runner`]: at-run: bundles from PDSes run in permission-scoped Deno sandboxes.
//! - [`services`]: builds all of the above for a configuration (main and tests share it).
//! - [`tasks`]: durable, deduplicated, concurrency-limited tasks, and scheduled jobs.
//! - [`vod`]: playback: rewritten HLS playlists, thumbnails, sprite and storyboard
//!   previews made with ffmpeg, cached on disk.
//! - [`web`]: the axum router (Leptos pages, server functions, static site, JSON
//!   endpoints), its middleware, the XRPC error shape, and graceful shutdown.
//!
//! `main.rs` only wires these together: config → database → migrations → router → serve.

#![warn(missing_docs)]
// Leptos's view types nest deeply; the pages' layouts go past the default limit.
#![recursion_limit = "256"]

pub mod appview;
pub mod atproto;
pub mod cli;
pub mod config;
pub mod db;
pub mod fsutil;
pub mod runner;
pub mod services;
pub mod tasks;
pub mod vod;
pub mod web;
