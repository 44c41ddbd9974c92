//! One analysis: a run, its findings, the plan, the cache advice and, given a baseline, the
//! comparison. What the summary prints and the report draws.

use crate::compare::Comparison;
use crate::findings::{Finding, Severity};
use crate::recommendations::{Action, CacheAdvice};
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
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|finding| finding.severity == severity)
            .count()
    }
}
