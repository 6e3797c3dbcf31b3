//! Domain logic and adapters shared by the coordinator and the worker.
//!
//! Pure parts: configuration model, version ordering, JavaScript-exact JSON, composer.json
//! rewriting rules, the deterministic archive writer, Composer metadata and the wire messages.
//! Adapters: git access (git2) and storage (local folder). Modules are listed in reading order.
#![deny(missing_docs)]

pub mod additional;
pub mod amqp;
pub mod archive;
pub mod config;
pub mod distribution;
pub mod git;
pub mod gitattributes;
pub mod identity;
pub mod json;
pub mod messages;
pub mod metadata;
pub mod pathcheck;
pub mod queue;
pub mod rules;
pub mod s3;
pub mod storage;
pub mod telemetry;
pub mod version;
