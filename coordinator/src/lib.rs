//! The coordinator: plans which packages to build from upstream git tags and branches, hands the
//! builds to workers as `BuildJob`s, records results in the manifest and is the only writer of
//! Composer metadata.
//!
//! Modules in reading order, as a package flows: [`plan`] (config and git to a plan) →
//! [`pipeline`] (the build: jobs, results, recording, signed [`provenance`]) → [`dispatch`] (to
//! the workers and back) → [`manifest`] (what is published) → [`publish`] (Composer metadata and
//! the change [`feed`], last) → [`health`] (does what was published install) → [`report`]. Then
//! what the always-on coordinator adds: [`lock`], [`metrics`], [`hooks`], [`triggers`],
//! [`status`], [`http`], [`hosting`] and [`files`] (the repository served), [`serve`]; reading,
//! taking over and checking repositories: [`fetch`], [`listing`], [`adopt`], [`verify`],
//! [`rebuild`] (reproduced from git), [`contents`] (archives compared by content), [`parity`]
//! (two repositories compared), [`check`]; and the [`cli`].

pub mod plan;
pub mod pipeline;
pub mod dispatch;
pub mod manifest;
pub mod publish;
pub mod feed;
pub mod health;
pub mod report;
pub mod lock;
pub mod metrics;
pub mod hooks;
pub mod triggers;
pub mod status;
pub mod http;
pub mod hosting;
pub mod serve;
pub mod fetch;
pub mod listing;
pub mod adopt;
pub mod verify;
pub mod rebuild;
pub mod contents;
pub mod parity;
pub mod check;
pub mod files;
pub mod provenance;
pub mod cli;
