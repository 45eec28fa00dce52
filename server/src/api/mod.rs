//! What services expose over HTTP, independent of the edge that serves it: the one error
//! shape ([`XrpcError`]), the parsing of common parameters ([`params`]), and native
//! bundles ([`native`]), the declarations through which compiled-in services (the
//! AppView, VOD) give the server their endpoints, tasks, jobs, routes, dashboard
//! actions, metrics and background work. Services declare their bundles here, below
//! `web`, which mounts them without naming any.

pub mod error;
pub mod native;
pub mod params;

pub use error::XrpcError;
