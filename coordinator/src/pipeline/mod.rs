//! The build pipeline: a [`Farm`] holds what the builds of one process share; a build runs as
//! prepare (plan, resume, jobs) → collect (dispatch, record each answer) → finish (manifest,
//! metadata, report). Reading order: [`farm`], [`run`], [`collect`], [`record`], [`inflight`], [`attest`].

pub mod farm;
pub mod run;
pub mod collect;
pub mod record;
pub mod inflight;
pub mod attest;

pub use farm::{Farm, open_storage};
pub use run::{BuildOptions, run, run_scoped};
