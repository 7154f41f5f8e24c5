//! `erasure-worker` turns GDPR erasure requests from Kafka into verified deletions of LangSmith traces.
//!
//! The pipeline (see `shared/design.md`): intake consumes `erasure.requests`, validates, resolves and
//! coalesces trace ids per (workspace, session) into delete calls of at most 1000 ids, and publishes
//! `erasure.deletion-requested`; the verifier re-checks after LangSmith's deletion window and publishes
//! `erasure.deletion-verified` or `erasure.deletion-failed`. Kafka topics are the only durable state.
#![forbid(unsafe_code)]

// What the binary, the tests and the benchmarks use.
pub mod api;
pub mod config;
pub mod event;
pub mod http;
pub mod intake;
pub mod kafka;
pub mod metrics;
pub mod output;
pub mod publish;
pub mod topics;
pub mod verify;

// Internal: the machinery behind them.
mod backoff;
mod duration;
mod ids;
mod share;
mod source;
mod telemetry;
mod until;
mod window;
