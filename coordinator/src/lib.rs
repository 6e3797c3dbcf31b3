//! The coordinator: plans which packages to build from upstream git tags and branches, hands the builds to
//! workers as `BuildJob`s, records results in the manifest and is the only writer of Composer
//! metadata. Modules in reading order.

pub mod adopt;
pub mod build;
pub mod cli;
pub mod dispatch;
pub mod distro;
pub mod fetch;
pub mod hooks;
pub mod http;
pub mod lock;
pub mod manifest;
pub mod metrics;
pub mod plan;
pub mod publish;
pub mod report;
pub mod serve;
pub mod status;
pub mod verify;
