//! Cache figures from Prometheus text expositions scraped during a run (the bench saves the API's
//! and the worker's `/metrics` beside its results): `herald_cache_lookups_total{kind,result}`
//! summed over the snapshots, per kind.

use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CacheLookups {
    pub hits: f64,
    pub misses: f64,
    /// Lookups the cache could not answer (Redis away), answered by PostgreSQL.
    pub errors: f64,
}

impl CacheLookups {
    pub fn total(&self) -> f64 {
        self.hits + self.misses + self.errors
    }

    pub fn hit_rate(&self) -> Option<f64> {
        let total = self.total();
        (total > 0.0).then(|| self.hits / total)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct SnapshotError {
    path: String,
    problem: String,
}

/// Lookups per cache kind over every snapshot.
pub fn read_snapshots(
    paths: &[impl AsRef<Path>],
) -> Result<BTreeMap<String, CacheLookups>, SnapshotError> {
    let mut kinds: BTreeMap<String, CacheLookups> = BTreeMap::new();
    for path in paths {
        let shown = path.as_ref().display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| SnapshotError {
            path: shown.clone(),
            problem: format!("cannot be read: {error}"),
        })?;
        if !text
            .lines()
            .any(|line| line.starts_with("# TYPE") || line.starts_with("# HELP"))
        {
            return Err(SnapshotError {
                path: shown,
                problem: "not a Prometheus text exposition (no # TYPE or # HELP line)".into(),
            });
        }
        for line in text.lines() {
            let Some(labels_and_value) = line.strip_prefix("herald_cache_lookups_total{") else {
                continue;
            };
            let Some((labels, value)) = labels_and_value.rsplit_once("} ") else {
                continue;
            };
            let (Some(kind), Some(result), Ok(value)) = (
                label(labels, "kind"),
                label(labels, "result"),
                value.trim().parse::<f64>(),
            ) else {
                continue;
            };
            let lookups = kinds.entry(kind.to_owned()).or_default();
            match result {
                "hit" => lookups.hits += value,
                "miss" => lookups.misses += value,
                "error" => lookups.errors += value,
                _ => {}
            }
        }
    }
    Ok(kinds)
}

fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    labels.split(',').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then(|| value.trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_are_summed_per_kind_over_snapshots() {
        let directory = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = directory.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let api = write(
            "api.prom",
            "# TYPE herald_cache_lookups_total counter\n\
             herald_cache_lookups_total{kind=\"template_reference\",result=\"hit\"} 90\n\
             herald_cache_lookups_total{kind=\"template_reference\",result=\"miss\"} 10\n",
        );
        let worker = write(
            "worker.prom",
            "# HELP x\nherald_cache_lookups_total{job=\"w\",kind=\"recipient\",result=\"error\"} 4\n",
        );
        let kinds = read_snapshots(&[api, worker]).unwrap();
        assert_eq!(kinds["template_reference"].hit_rate(), Some(0.9));
        assert_eq!(kinds["recipient"].errors, 4.0);
        let bogus = write("bogus.prom", "hello\n");
        assert!(read_snapshots(&[bogus])
            .unwrap_err()
            .to_string()
            .contains("not a Prometheus"));
    }
}
