//! Domain logic and adapters shared by the coordinator and the worker.
//!
//! Pure parts: JavaScript-exact JSON and JavaScript semantics, version ordering, the configuration
//! model, the distribution and composer.json rewriting rules, the deterministic archive writer,
//! Composer metadata and the wire messages. Adapters: storage (local folder, S3), git access
//! (git2) and the RabbitMQ transport. Modules are listed in reading order, in groups: foundations
//! first, adapters last.
#![deny(missing_docs)]

// Foundations: JSON as JavaScript writes it; then JavaScript semantics and the reference's version
// order on it; then Composer's names, git's path and end-of-line rules, and the build state of
// nightly and release builds.
pub mod json;

pub mod js;
pub mod version;
pub mod constraint;

pub mod gitattributes;
pub mod identity;
pub mod pathcheck;
pub mod release;

// The configuration, then the distribution rules and the composer.json rules that apply them.
pub mod config;
pub mod distribution;
pub mod rules;

// What is published and sent: the archive writer, then prebuilt archives, Composer metadata, the
// wire messages and the in-process queue that carries them.
pub mod archive;

pub mod additional;
pub mod messages;
pub mod metadata;

pub mod queue;

// Adapters: logging and shutdown; storage (its contract, the local folder, the S3 bucket, the
// configured backend); git access (git2); the RabbitMQ transport.
pub mod alloc;
pub mod telemetry;
pub mod shutdown;

pub mod storage;

pub mod amqp;
pub mod git;
