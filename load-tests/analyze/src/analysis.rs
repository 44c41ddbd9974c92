//! One analysis: a run, its findings, the plan, the cache advice and, given a baseline, the
//! comparison. What the summary prints and the report draws.

use crate::compare::Comparison;
use crate::findings::{Finding, Severity};
use crate::recommendations::{Action, CacheAdvice, Tier};
use crate::results::RunResults;
use crate::targets::Targets;

pub struct Analysis {
    pub run: RunResults,
    pub targets: Targets,
    pub findings: Vec<Finding>,
    pub plan: Vec<Action>,
    pub cache: Vec<CacheAdvice>,
    /// The one `cache.ttl_seconds` the tag cache's kinds call for, when it should change.
    pub recommended_ttl_seconds: Option<u64>,
    pub baseline: Option<RunResults>,
    pub comparison: Option<Comparison>,
}

impl Analysis {
    /// The plan's tiers that have actions, in order, each with its actions.
    pub fn plan_by_tier(&self) -> Vec<(Tier, Vec<&Action>)> {
        Tier::ALL
            .into_iter()
            .map(|tier| {
                let actions = self
                    .plan
                    .iter()
                    .filter(|action| action.tier == tier)
                    .collect::<Vec<_>>();
                (tier, actions)
            })
            .filter(|(_, actions)| !actions.is_empty())
            .collect()
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|finding| finding.severity == severity)
            .count()
    }
}
