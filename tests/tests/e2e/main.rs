//! End-to-end tests of the embedded build: one test binary, one module per concern.

mod additional;
mod adopt;
mod archive_limits;
mod attributes;
mod bad_input;
mod changed;
mod check;
mod composer_install;
mod determinism;
mod distributions;
mod health;
mod hostile_names;
mod hostile_source;
mod hostile_trees;
mod parity;
mod tidy;
mod trust;
mod versions;
