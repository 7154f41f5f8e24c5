//! The topics the worker reads and writes (design §2).

/// Erasure requests from upstream systems (input).
pub const REQUESTS: &str = "erasure.requests";
/// Invalid input, original bytes untouched, reason in headers.
pub const DLQ: &str = "erasure.requests.dlq";
/// One event per (request, session, part) whose delete LangSmith accepted; the verifier reads it.
pub const DELETION_REQUESTED: &str = "erasure.deletion-requested";
/// Re-checks due after a later deletion window (the verifier's delay queue).
pub const RECHECK: &str = "erasure.recheck";
/// Proof: the ids of a part no longer exist.
pub const DELETION_VERIFIED: &str = "erasure.deletion-verified";
/// Ids that could not be erased, with the reason.
pub const DELETION_FAILED: &str = "erasure.deletion-failed";
/// Dataset examples erased (hard-deleted and read back), or that could not be.
pub const EXAMPLES: &str = "erasure.examples";

/// The intake's resolution journal: what a selector resolved to, recorded before its deletes
/// (`intake/journal.rs`). Ids only; as many partitions as `REQUESTS`.
pub const RESOLUTIONS: &str = "erasure.resolutions";

/// Both roles' input offsets done past a partition's committed one, when there are too many for the
/// commit's metadata (`source/saved.rs`). Offsets only.
pub const PROGRESS: &str = "erasure.progress";

/// Every topic the worker needs, in the order a deployment creates them.
pub const ALL: [&str; 9] = [
    REQUESTS,
    DLQ,
    DELETION_REQUESTED,
    RECHECK,
    DELETION_VERIFIED,
    DELETION_FAILED,
    EXAMPLES,
    RESOLUTIONS,
    PROGRESS,
];
