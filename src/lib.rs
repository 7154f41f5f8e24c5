//! `erasure-worker` turns GDPR erasure requests from Kafka into verified deletions of LangSmith traces.
//!
//! The pipeline (see `shared/design.md`): intake consumes `erasure.requests`, validates, resolves and
//! coalesces trace ids per (workspace, session) into delete calls of at most 1000 ids, and publishes
//! `erasure.deletion-requested`; the verifier re-checks after LangSmith's deletion window and publishes
//! `erasure.deletion-verified` or `erasure.deletion-failed`. Kafka topics are the only durable state.
#![forbid(unsafe_code)]

pub mod api;
pub mod aside;
pub mod backoff;
pub mod config;
pub mod demo;
pub mod duration;
pub mod event;
pub mod fence;
pub mod gaps;
pub mod http;
pub mod ids;
pub mod intake;
pub mod kafka;
pub mod metrics;
pub mod offsets;
pub mod output;
pub mod publish;
pub mod topics;
pub mod until;
pub mod verify;
pub mod window;
