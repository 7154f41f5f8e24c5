//! The rate of each endpoint class this replica applies: the configured one, or (workspace-wide
//! limits) its share of it, following the partitions its roles own (`crate::share`).

use super::{Class, LangSmith};
use crate::config::Limits;
use crate::share::{Role, Shares};

const CLASSES: [Class; 7] = [
    Class::Delete,
    Class::Query,
    Class::QueryWide,
    Class::QueryV2,
    Class::Sessions,
    Class::Audit,
    Class::Examples,
];

impl LangSmith {
    /// `role` now owns `share` of its partitions: every class's gate takes its new rate.
    pub fn own(&self, role: Role, share: f64) {
        let shares = {
            let mut shares = self.shares.lock().unwrap_or_else(|e| e.into_inner());
            shares.set(role, share);
            *shares
        };
        let rates = CLASSES.map(|class| rate(&self.limits, class, shares));
        let mut changed = false;
        for (class, rate) in CLASSES.into_iter().zip(rates) {
            changed |= self.gate(class).set_rate(rate);
            self.observe(|m| {
                let total = configured(&self.limits, class);
                let labels = [self.alias.as_str(), class.as_str()];
                m.rate_share.with_label_values(&labels).set(rate / total);
            });
        }
        if changed {
            let [delete, query, query_wide, query_v2, sessions, audit, examples] = rates;
            tracing::info!(workspace = %self.alias, ?role, share, delete, query, query_wide, query_v2, sessions, audit, examples,
                "rate limits follow the partitions owned (requests per second)");
        }
    }
}

/// The rate of `class` for a replica whose roles own `shares`.
fn rate(limits: &Limits, class: Class, shares: Shares) -> f64 {
    let fraction = verifier_fraction(limits, class);
    crate::share::rate(limits.scope, configured(limits, class), fraction, shares)
}

fn configured(limits: &Limits, class: Class) -> f64 {
    match class {
        Class::Delete => limits.delete_per_second,
        Class::Query => limits.query_per_second,
        Class::QueryWide => limits.query_wide_per_second,
        Class::QueryV2 => limits.query_v2_per_second,
        Class::Sessions => limits.sessions_per_second,
        Class::Audit => limits.audit_per_second,
        Class::Examples => limits.examples_per_second,
    }
}

/// The verifier's fraction of `class`: narrow v1 queries, audit lookups and examples are the
/// intake's alone.
fn verifier_fraction(limits: &Limits, class: Class) -> f64 {
    let f = &limits.verifier_fraction;
    match class {
        Class::Delete => f.delete,
        Class::Query | Class::Audit | Class::Examples => 0.0,
        Class::QueryWide => f.query_wide,
        Class::QueryV2 => f.query_v2,
        Class::Sessions => f.sessions,
    }
}
