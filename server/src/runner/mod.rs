//! at-run, embedded: bundles of JavaScript stored on their authors' PDSes, run in Deno
//! sandboxes whose permissions are exactly what each bundle's manifest declares.
//!
//! # Layout
//!
//! - `js/sdk.ts`: what authors import as `"at-run"` (`manifest`, `endpoint`, `task`, `job`).
//! - `js/harness.js`: the main module of every bundle process; the bundle itself runs in
//!   a Web Worker inside it and answers calls over a nonce-framed stdio protocol.
//! - [`permissions`]: the Deno command line per kind of run, in one place.
//! - [`sandbox`]: one Deno process: start, call with timeout and size limit, kill.
//! - [`manifest`]: the manifest a bundle declares, validated.
//! - [`bundler`]: `deno bundle` with `"at-run"` mapped to the shipped SDK.
//! - [`pool`]: the warm pool actor: processes keyed by (CID, permissions, secrets).
//! - [`secrets`]: the runner's X25519 key; sealing and opening secret values.

pub mod bundler;
pub mod manifest;
pub mod permissions;
pub mod pool;
pub mod sandbox;
pub mod secrets;

/// The at-run SDK's source, as `at-run deploy` bundles it.
pub const SDK_SOURCE: &str = include_str!("js/sdk.ts");

/// The first 16 hex digits of the SHA-256 of `bytes`: a name for content.
pub fn short_digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let hex = format!("{:x}", Sha256::digest(bytes));
    hex[..16].to_string()
}
