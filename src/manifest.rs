//! The manifest of a run (`manifest.json`): what was read (with digests), what was
//! decided (normalisation, weights, missing-data rules, anchoring), counts, warnings and
//! stage timings, so that every run can be traced and compared.

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::Serialize;

use crate::aggregate;
use crate::analyse;
use crate::compute::{Computed, PreparationReport};
use crate::normalise::ResolvedNormalisation;
use crate::plan::{Level, Plan, TERRITORY_ID, YEAR};
use crate::relational::RciSummary;
use crate::weight::PcaWeights;

#[derive(Debug, Serialize)]
pub struct Manifest {
    pub tool: Tool,
    pub pipeline: FileDigest,
    pub pipeline_id: String,
    /// SHA-256 over the tool version, the pipeline file and every file it reads: equal
    /// fingerprints mean a run would compute the same outputs (`run --skip-unchanged`).
    pub fingerprint: String,
    /// Every file the pipeline reads (sources, tables, surveys, maps), with its digest.
    pub files: Vec<FileDigest>,
    pub inputs: Vec<InputDigest>,
    /// Every download of the publishers' sources: URL, retrieval time, bytes, SHA-256,
    /// HTTP status and how the cache served it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub downloads: Vec<crate::fetch::Download>,
    /// The composite index part, when the pipeline has one.
    pub index: Option<IndexManifest>,
    /// The relational capability part, when the pipeline has one.
    pub rci: Option<RciSummary>,
    /// The chart pack, when the pipeline has a [charts] section.
    pub charts: Option<ChartsManifest>,
    /// Coherence and scorecard, when the pipeline has an [analysis] section.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisManifest>,
    pub warnings: Vec<String>,
    pub outputs: Vec<String>,
    /// What differs between two runs of the same inputs, together, so that tools
    /// comparing manifests can leave it out.
    pub run: RunInfo,
}

/// The volatile part of a manifest.
#[derive(Debug, Default, Serialize)]
pub struct RunInfo {
    /// The run's folder name in the history: start time (UTC) and fingerprint prefix.
    pub id: String,
    pub started: String,
    pub finished: String,
    pub timings_ms: BTreeMap<String, u128>,
    /// The process's peak resident memory when the manifest was made (Linux; None
    /// elsewhere), in MiB.
    pub peak_rss_mib: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct AnchoringManifest {
    pub level: &'static str,
    pub national: String,
    pub groups: usize,
    pub largest_shift: f64,
    pub file: &'static str,
}

#[derive(Debug, Default, Serialize)]
pub struct AnalysisManifest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coherence: Option<analyse::CoherenceSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scorecard: Option<ScorecardManifest>,
}

#[derive(Debug, Serialize)]
pub struct ScorecardManifest {
    pub peers: usize,
    pub covariate: String,
    pub files: [&'static str; 2],
    /// Territories with no covariate value, hence no peers.
    pub without_covariate: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ChartsManifest {
    pub directory: &'static str,
    pub figures: usize,
    /// Every file of the pack (each figure as SVG and PNG, the HTML pages).
    pub files: usize,
}

#[derive(Debug, Serialize)]
pub struct IndexManifest {
    pub counts: Counts,
    /// Denomination, screening, imputation and outlier treatment, as configured.
    pub preparation: PreparationReport,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pca_weights: Vec<PcaWeights>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchoring: Option<AnchoringManifest>,
    pub normalisation: Vec<ResolvedNormalisation>,
    pub missing_data: MissingData,
    /// Publishers' flags per indicator (`p` provisional, `e` estimated, `b` break, `u` low
    /// reliability, `c` confidential, `:` not published…): how many values carried each.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub flags: BTreeMap<String, BTreeMap<String, usize>>,
    /// `[rollup]`: how the sources' territories were aggregated, and their coverage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollup: Option<crate::load::rollup::RollupSummary>,
}

#[derive(Debug, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileDigest {
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Serialize)]
pub struct InputDigest {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
    pub rows: usize,
}

#[derive(Debug, Serialize)]
pub struct Counts {
    /// Territory (× year) rows scored.
    pub rows: usize,
    pub territories: usize,
    pub years: Vec<i64>,
    pub indicators: usize,
    pub components: usize,
    pub dimensions: usize,
}

#[derive(Debug, Serialize)]
pub struct MissingData {
    /// Indicator cells with no value.
    pub missing_indicator_values: usize,
    /// Per parent node: its rule and how many scores it left missing.
    pub rules: Vec<MissingRule>,
    /// Every missing score with the counts that decided it.
    pub details: &'static str,
}

#[derive(Debug, Serialize)]
pub struct MissingRule {
    pub node_id: String,
    pub level: &'static str,
    pub aggregation: String,
    pub children: usize,
    pub required_present: usize,
    pub missing_scores: usize,
}

/// How many distinct values `ids` holds (a missing one counted as a value, as polars'
/// `n_unique` does). A territory's rows usually follow one another: only the first of
/// each run of equal ids is hashed (hashing every row was 10 ms of a national panel).
fn distinct_count(ids: &StringChunked) -> usize {
    let mut seen = PlHashSet::new();
    for a in ids.downcast_iter() {
        if polars_arrow::array::Array::null_count(a) > 0 {
            seen.extend(a.iter());
            continue;
        }
        // Equal views hold equal strings (a view is the string itself up to 12 bytes,
        // else its prefix and place): a run of equal views is hashed once, and the
        // set keeps any string that recurs.
        let views = a.views();
        for (i, view) in views.iter().enumerate() {
            if i == 0 || views[i - 1] != *view {
                seen.insert(Some(a.value(i)));
            }
        }
    }
    seen.len()
}

/// The index part of the manifest.
pub fn index_manifest_of(
    plan: &Plan,
    computed: &Computed,
    missing: &DataFrame,
) -> PolarsResult<IndexManifest> {
    let frame = &computed.frame;
    let territories = distinct_count(frame.column(TERRITORY_ID)?.str()?);
    let years: Vec<i64> = crate::normalise::year_groups(frame.column(YEAR)?.i64()?)
        .0
        .into_iter()
        .flatten()
        .collect();
    let missing_indicator_values = plan
        .indicators()
        .map(|(n, _)| frame.column(&n.id).map(|c| c.null_count()).unwrap_or(0))
        .sum();
    let missing_by_node: BTreeMap<String, usize> = {
        let mut m = BTreeMap::new();
        if let Ok(ids) = missing.column("node_id").and_then(|c| c.str().cloned()) {
            for id in ids.iter().flatten() {
                *m.entry(id.to_owned()).or_insert(0) += 1;
            }
        }
        m
    };
    let rules = crate::write::LEVEL_ORDER
        .iter()
        .flat_map(|&l| plan.nodes_at(l))
        .filter_map(|n| {
            let rule = n.rule.as_ref()?;
            Some(MissingRule {
                node_id: n.id.clone(),
                level: n.level.as_str(),
                aggregation: rule.mean.describe(),
                children: n.children.len(),
                required_present: aggregate::required_children(rule.min_share, n.children.len()),
                missing_scores: missing_by_node.get(&n.id).copied().unwrap_or(0),
            })
        })
        .collect();
    Ok(IndexManifest {
        counts: Counts {
            rows: frame.height(),
            territories,
            years,
            indicators: plan.nodes_at(Level::Indicator).count(),
            components: plan.nodes_at(Level::Component).count(),
            dimensions: plan.nodes_at(Level::Dimension).count(),
        },
        preparation: computed.preparation.clone(),
        flags: BTreeMap::new(),
        rollup: None,
        pca_weights: computed.weights.clone(),
        anchoring: plan.anchoring.as_ref().map(|a| AnchoringManifest {
            level: a.level.as_str(),
            national: a.national.path.display().to_string(),
            groups: {
                let mut g: Vec<&str> = computed
                    .anchoring
                    .iter()
                    .map(|s| s.group.as_str())
                    .collect();
                g.sort_unstable();
                g.dedup();
                g.len()
            },
            largest_shift: computed
                .anchoring
                .iter()
                .map(|s| s.shift.abs())
                .fold(0.0, f64::max),
            file: "anchoring.csv",
        }),
        normalisation: computed.normalisation.clone(),
        missing_data: MissingData {
            missing_indicator_values,
            rules,
            details: "missing.csv",
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counting distinct territories a run at a time equals polars' `n_unique`: runs,
    /// ids that recur after others, ids too long to sit in their view, missing ids.
    #[test]
    fn distinct_count_equals_n_unique() {
        let long = "a territory id longer than twelve bytes";
        let cases: Vec<Vec<Option<&str>>> = vec![
            vec![],
            vec![
                Some("FR1"),
                Some("FR1"),
                Some("FR2"),
                Some("FR2"),
                Some("FR1"),
            ],
            vec![Some(long), Some("x"), Some(long), Some(long)],
            vec![Some("a"), None, Some("a"), None, Some("b")],
        ];
        for ids in cases {
            let chunked = StringChunked::from_iter_options("id".into(), ids.iter().copied());
            let expected = chunked.n_unique().unwrap();
            assert_eq!(distinct_count(&chunked), expected, "{ids:?}");
        }
    }
}
