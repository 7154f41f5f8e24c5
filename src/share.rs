//! Each replica's share of the workspace-wide rate limits. LangSmith limits an API key, not a
//! replica; the consumer group already splits the work by partitions, so a replica takes, per
//! endpoint class, the total × the share of its role's partitions it owns, weighted by the role's
//! fraction of the class. A replica that owns nothing makes no calls for that role.

use std::collections::{HashMap, HashSet};

use crate::config::Scope;

/// A role, for the share of the partitions it owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Intake,
    Verifier,
}

/// What share of its role's partitions each role of this process owns; `None` for a role that has
/// not reported one (not running here, or not assigned yet).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Shares {
    pub intake: Option<f64>,
    pub verifier: Option<f64>,
}

impl Shares {
    pub fn set(&mut self, role: Role, share: f64) {
        match role {
            Role::Intake => self.intake = Some(share),
            Role::Verifier => self.verifier = Some(share),
        }
    }
}

/// The rate this replica applies to a class configured at `configured` per second, of which the
/// verifier's fraction is `verifier_fraction`. Per replica (`Scope::Replica`), the configured rate.
/// Workspace-wide, each role's fraction of the total times the share of its partitions it owns;
/// before any role reported, the whole total (a client used with no role, as in a check of the
/// config).
pub fn rate(scope: Scope, configured: f64, verifier_fraction: f64, shares: Shares) -> f64 {
    if scope == Scope::Replica || shares == Shares::default() {
        return configured;
    }
    let intake = (1.0 - verifier_fraction) * shares.intake.unwrap_or(0.0);
    let verifier = verifier_fraction * shares.verifier.unwrap_or(0.0);
    configured * (intake + verifier)
}

/// The partitions a role's consumer owns, of the partitions of the topics it reads.
#[derive(Debug, Default)]
pub struct Ownership {
    owned: HashSet<(String, i32)>,
    /// Partitions per topic read, as last learnt from the cluster's metadata.
    partitions: HashMap<String, Option<usize>>,
}

impl Ownership {
    pub fn new(topics: &[String]) -> Ownership {
        Ownership {
            owned: HashSet::new(),
            partitions: topics.iter().map(|t| (t.clone(), None)).collect(),
        }
    }

    pub fn assign(&mut self, parts: &[(String, i32)]) {
        self.owned.extend(parts.iter().cloned());
    }

    pub fn revoke(&mut self, parts: &[(String, i32)]) {
        for part in parts {
            self.owned.remove(part);
        }
    }

    /// `topic` has `n` partitions. Returns whether that is news (a topic not read is none).
    pub fn partitions(&mut self, topic: &str, n: usize) -> bool {
        match self.partitions.get_mut(topic) {
            Some(known) => known.replace(n) != Some(n),
            None => false,
        }
    }

    /// The topics read.
    pub fn topics(&self) -> Vec<String> {
        self.partitions.keys().cloned().collect()
    }

    pub fn owns(&self, part: &(String, i32)) -> bool {
        self.owned.contains(part)
    }

    /// Partitions owned of `topic`.
    pub fn owned_of(&self, topic: &str) -> usize {
        self.owned.iter().filter(|(t, _)| t == topic).count()
    }

    /// The share owned: partitions owned ÷ partitions of the topics read; 0 when nothing is owned,
    /// `None` while the partitions of a topic read are not known.
    pub fn share(&self) -> Option<f64> {
        if self.owned.is_empty() {
            return Some(0.0);
        }
        let total: Option<usize> = self.partitions.values().copied().sum();
        let total = total.filter(|t| *t > 0)?;
        Some((self.owned.len() as f64 / total as f64).min(1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(topic: &str, ps: &[i32]) -> Vec<(String, i32)> {
        ps.iter().map(|p| (topic.to_owned(), *p)).collect()
    }

    #[test]
    fn a_share_follows_assignments_revocations_and_reassignments() {
        let mut o = Ownership::new(&["req".into()]);
        assert_eq!(o.share(), Some(0.0), "nothing owned");
        o.assign(&parts("req", &[0, 1, 2]));
        assert_eq!(o.share(), None, "the topic's partitions are not known yet");
        assert!(o.partitions("req", 12));
        assert_eq!(o.share(), Some(0.25));
        o.revoke(&parts("req", &[0, 1, 2]));
        assert_eq!(o.share(), Some(0.0), "all revoked (an eager rebalance)");
        o.assign(&parts("req", &[0, 1, 2, 3, 4, 5]));
        assert_eq!(o.share(), Some(0.5), "a survivor's share grows");
        assert!(!o.partitions("req", 12), "no news");
        assert!(o.partitions("req", 24), "partitions added");
        assert_eq!(o.share(), Some(0.25));
    }

    #[test]
    fn a_verifier_share_counts_both_of_its_topics() {
        let mut o = Ownership::new(&["requested".into(), "recheck".into()]);
        o.assign(&parts("requested", &[0, 1]));
        o.assign(&parts("recheck", &[0, 1]));
        o.partitions("requested", 4);
        assert_eq!(o.share(), None, "recheck's partitions are not known yet");
        assert!(!o.partitions("other", 4), "a topic not read");
        o.partitions("recheck", 4);
        assert_eq!(o.share(), Some(0.5));
    }

    #[test]
    fn rates_split_the_total_by_role_and_share() {
        let both = Shares {
            intake: Some(0.5),
            verifier: Some(0.25),
        };
        // 100/s, 20 % of it the verifier's: 80 × 0.5 + 20 × 0.25.
        assert_eq!(rate(Scope::Workspace, 100.0, 0.2, both), 45.0);
        let intake_only = Shares {
            intake: Some(1.0 / 3.0),
            ..Shares::default()
        };
        assert!((rate(Scope::Workspace, 90.0, 0.2, intake_only) - 24.0).abs() < 1e-9);
        let nothing_owned = Shares {
            intake: Some(0.0),
            verifier: Some(0.0),
        };
        assert_eq!(rate(Scope::Workspace, 100.0, 0.2, nothing_owned), 0.0, "no calls");
        assert_eq!(rate(Scope::Workspace, 100.0, 0.2, Shares::default()), 100.0, "no role");
        assert_eq!(
            rate(Scope::Replica, 100.0, 0.2, nothing_owned),
            100.0,
            "per replica: as configured"
        );
    }
}
