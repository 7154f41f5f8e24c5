//! Intake: erasure events → validated requests → coalesced, rate-limited deletes →
//! `deletion-requested` events, with offsets stored only over completed work.

mod book;
pub mod coalesce;
pub mod offsets;
pub mod resolve;
