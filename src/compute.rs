//! The computation of a composite index from its loaded inputs: preparation
//! (denomination, screening, imputation, treatment), normalisation, weights, aggregation
//! level by level, anchoring, ranks, and the checks that no score is undefined. Pure:
//! it reads no file and prints nothing, so `run`, `validate`, the Monte Carlo of
//! `uncertainty` (a thousand variants of the plan on one [`IndexInputs`]) and the national
//! scores of anchoring all go through the same function.

use polars::prelude::*;
use serde::Serialize;

use crate::aggregate;
use crate::anchor;
use crate::config::{ScreenOn, WeightMethod};
use crate::diagnostic::{Location, Problem, Problems};
use crate::impute;
use crate::load::{AnchoringInputs, IndexInputs, National, NationalScores};
use crate::normalise::{self, NormaliseError, ResolvedNormalisation};
use crate::plan::{AnchoringPlan, Goalposts, Level, Normalisation, Plan, TERRITORY_ID, YEAR};
use crate::transform::{self, treat::TreatmentRow};
use crate::weight::{self, PcaWeights};

/// Why an index could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    #[error("{0}")]
    Problems(Problems),
    #[error(transparent)]
    Normalise(#[from] NormaliseError),
    #[error("computing scores: {}", first_line(&.0.to_string()))]
    Polars(#[from] PolarsError),
}

impl From<anchor::AnchorError> for ComputeError {
    fn from(e: anchor::AnchorError) -> Self {
        match e {
            anchor::AnchorError::Problems(p) => ComputeError::Problems(p),
            anchor::AnchorError::Polars(p) => ComputeError::Polars(p),
        }
    }
}

impl From<Problems> for ComputeError {
    fn from(p: Problems) -> Self {
        ComputeError::Problems(p)
    }
}

/// Polars' messages carry internals after their first line.
fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("").trim()
}

/// The computed frame: keys, raw and rescaled indicators, parents, counts and ranks.
#[derive(Debug)]
pub struct Computed {
    pub frame: DataFrame,
    pub normalisation: Vec<ResolvedNormalisation>,
    pub preparation: PreparationReport,
    /// PCA weights, when a level is weighted by PCA.
    pub weights: Vec<PcaWeights>,
    /// Anchoring shifts, when the pipeline anchors.
    pub anchoring: Vec<crate::anchor::Shift>,
    pub warnings: Vec<String>,
}

/// What happened to the data between reading and normalising.
#[derive(Debug, Default, Clone, Serialize)]
pub struct PreparationReport {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub denominated: Vec<Denominated>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub screening: Option<impute::ScreeningReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imputation: Option<Vec<impute::ImputedCount>>,
    /// One row per indicator; also written to treatment.csv.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub treatment: Option<Vec<TreatmentRow>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Denominated {
    pub indicator: String,
    pub denominator: String,
    pub scale: f64,
}

/// Transforms, rescales and aggregates the ingested frame, with ranks; checks that no score
/// came out as NaN or infinite. Reads nothing: anchoring's national and population tables
/// come with `inputs`.
pub fn compute(plan: &Plan, inputs: &IndexInputs) -> Result<Computed, ComputeError> {
    compute_frame(
        plan,
        inputs.table.frame.clone(),
        anchoring_of(plan, inputs)?,
    )
}

/// The frame Monte Carlo runs start from: denominated, screened, imputed and treated.
/// Their alternatives of weights, normalisation and aggregation leave it unchanged, so it
/// is prepared once per imputation choice rather than once per run (then normalised once
/// per normalisation choice, see [`normalised`]).
pub fn prepared(plan: &Plan, inputs: &IndexInputs) -> Result<DataFrame, ComputeError> {
    Ok(prepare(plan, inputs.table.frame.clone())?.0)
}

/// What one Monte Carlo run needs from a [`normalised`] frame: the index rank of each of
/// its rows (None where the index has no score). Fails as [`compute`] would (a geometric
/// mean of a zero, a non-finite score); ranks no other node.
pub fn index_ranks(
    plan: &Plan,
    normalised: DataFrame,
    inputs: &IndexInputs,
) -> Result<Vec<Option<u32>>, ComputeError> {
    let scored = aggregate_frame(plan, normalised, anchoring_of(plan, inputs)?)?;
    let index = &plan.nodes[0];
    aggregate::check_finite(plan, &scored.frame)?;
    let rank = aggregate::ranks_of(plan, &scored.frame, std::slice::from_ref(index))?;
    Ok(rank.columns[0].u32()?.iter().collect())
}

fn anchoring_of<'a>(
    plan: &'a Plan,
    inputs: &'a IndexInputs,
) -> Result<Option<(&'a AnchoringPlan, &'a AnchoringInputs)>, ComputeError> {
    match (&plan.anchoring, &inputs.anchoring) {
        (Some(a), Some(given)) => Ok(Some((a, given))),
        (Some(_), None) => Err(ComputeError::Problems(Problems(vec![Problem::new(
            Location::Nowhere,
            "anchoring needs its national and population tables, which were not loaded",
        )]))),
        _ => Ok(None),
    }
}

/// A normalised frame aggregated (and anchored), checked.
struct Scored {
    frame: DataFrame,
    weights: Vec<PcaWeights>,
    anchoring: Vec<crate::anchor::Shift>,
    warnings: Vec<String>,
}

fn compute_frame(
    plan: &Plan,
    frame: DataFrame,
    anchoring: Option<(&AnchoringPlan, &AnchoringInputs)>,
) -> Result<Computed, ComputeError> {
    let (frame, preparation, mut warnings) = prepare(plan, frame)?;
    let (frame, normalisation, beyond) = normalise_frame(plan, frame)?;
    let Scored {
        mut frame,
        weights,
        anchoring,
        warnings: more,
    } = aggregate_frame(plan, frame, anchoring)?;
    warnings.extend(more);
    let ranks = aggregate::ranks(plan, &frame)?;
    aggregate::report_non_finite(plan, &frame, &ranks.first_non_finite)?;
    frame.hstack_mut(&ranks.columns)?;
    if !plan.keys.unranked.is_empty() {
        let ids: std::collections::HashSet<&str> = frame
            .column(TERRITORY_ID)?
            .str()?
            .iter()
            .flatten()
            .collect();
        let unknown: Vec<&String> = plan
            .keys
            .unranked
            .iter()
            .filter(|id| !ids.contains(id.as_str()))
            .collect();
        if !unknown.is_empty() {
            warnings.push(format!(
                "[territories] unranked names territories that are not in the data: {}",
                crate::diagnostic::list(&unknown, 20)
            ));
        }
    }
    warnings.extend(beyond.iter().map(|(id, normalise::Beyond { below, above })| {
        format!(
            "indicator \"{id}\": {below} rescaled value(s) below 0 (worse than its dystopia) and \
             {above} above 100 (better than its utopia); set [normalisation] clip = true to clip them"
        )
    }));
    for w in &weights {
        for ((child, loading), weight) in w.children.iter().zip(&w.loadings).zip(&w.weights) {
            if *loading < 0.0 {
                let what = if plan.keep_negative_loadings {
                    format!(
                        "it keeps a negative weight ({weight:.3}), as [weights] negative_loadings = \"keep\" asks"
                    )
                } else {
                    "it weighs 0".to_owned()
                };
                warnings.push(format!(
                    "PCA weights of \"{}\": \"{child}\" loads negatively ({loading:.3}) on the first component, against its siblings; {what}",
                    w.parent
                ));
            }
        }
    }
    Ok(Computed {
        frame,
        normalisation,
        preparation,
        weights,
        anchoring,
        warnings,
    })
}

/// A frame with its indicators rescaled, their resolved normalisation and the counts of
/// values beyond their goalposts.
type Normalised = (
    DataFrame,
    Vec<ResolvedNormalisation>,
    Vec<(String, normalise::Beyond)>,
);

/// The indicators rescaled (see [`Normalised`]).
fn normalise_frame(plan: &Plan, frame: DataFrame) -> Result<Normalised, ComputeError> {
    let normalisation = normalise::resolve(&frame.clone().lazy(), plan)?;
    let normalise::Rescaled { frame, beyond } = normalise::rescaled(frame, plan, &normalisation)?;
    Ok((frame, normalisation, beyond))
}

/// A `prepared` frame with its indicators rescaled: Monte Carlo runs that vary only the
/// weights and the aggregation share it.
pub fn normalised(plan: &Plan, prepared: DataFrame) -> Result<DataFrame, ComputeError> {
    Ok(normalise_frame(plan, prepared)?.0)
}

/// Aggregates (and anchors) a normalised frame; checks the inputs of its means (its
/// scores' finiteness is checked by the callers).
fn aggregate_frame(
    plan: &Plan,
    frame: DataFrame,
    anchoring: Option<(&AnchoringPlan, &AnchoringInputs)>,
) -> Result<Scored, ComputeError> {
    let mut warnings = Vec::new();
    let (frame, weights, weighted) = if plan.weighting.contains(&WeightMethod::Pca) {
        let (frame, reports, weighted) = pca_aggregate(plan, frame)?;
        (frame, reports, Some(weighted))
    } else {
        (
            aggregate::aggregate(frame, plan, Level::Indicator)?,
            Vec::new(),
            None,
        )
    };
    // The plan with the weights actually used.
    let used = weighted.as_ref().unwrap_or(plan);
    let (frame, anchoring) = match anchoring {
        Some((a, given)) => {
            let national = match &given.national {
                National::Scores(s) => std::borrow::Cow::Borrowed(s),
                National::Data(table) => {
                    std::borrow::Cow::Owned(national_scores(plan, a, table.frame.clone())?)
                }
            };
            let (mut frame, shifts, w) =
                anchor::anchor(used, a, frame, &national, &given.population)?;
            warnings.extend(w);
            for level in [Level::Dimension, Level::Index] {
                if level > a.level {
                    frame = aggregate::aggregate_level(frame, used, level)?;
                }
            }
            (frame, shifts)
        }
        None => (frame, Vec::new()),
    };
    // Finite scores are checked by the callers, with the ranks (see aggregate::ranks).
    aggregate::check_positive_inputs(plan, &frame)?;
    Ok(Scored {
        frame,
        weights,
        anchoring,
        warnings,
    })
}

/// National scores computed from national indicator data with this pipeline's own
/// framework (the EC's method for the EU Regional SPI).
fn national_scores(
    plan: &Plan,
    a: &AnchoringPlan,
    frame: DataFrame,
) -> Result<NationalScores, ComputeError> {
    let national = a.national_plan(plan);
    let computed = compute_frame(&national, frame, None)?;
    let f = &computed.frame;
    let ids = f.column(TERRITORY_ID)?.str()?.clone();
    let years = f.column(YEAR)?.i64()?.clone();
    let mut out = NationalScores::new();
    for node in plan.nodes.iter().filter(|n| n.rule.is_some()) {
        let v = f.column(&node.id)?.f64()?.clone();
        for i in 0..f.height() {
            if let (Some(id), Some(x)) = (ids.get(i), v.get(i)) {
                out.entry((id.to_owned(), years.get(i)))
                    .or_default()
                    .insert(node.id.clone(), x);
            }
        }
    }
    Ok(out)
}

/// Aggregates level by level, giving the children of each PCA-weighted level the weights
/// of their first principal component (over all rows) before their parents are computed.
fn pca_aggregate(
    plan: &Plan,
    mut frame: DataFrame,
) -> Result<(DataFrame, Vec<PcaWeights>, Plan), ComputeError> {
    let mut plan = plan.clone();
    let mut reports = Vec::new();
    let mut problems: Vec<Problem> = Vec::new();
    for (k, level) in [Level::Component, Level::Dimension, Level::Index]
        .into_iter()
        .enumerate()
    {
        if plan.weighting[k] == WeightMethod::Pca {
            match weight::pca_level(&mut plan, &frame, level)? {
                Ok(r) => reports.extend(r),
                Err(p) => problems.extend(p),
            }
        }
        if !problems.is_empty() {
            return Err(ComputeError::Problems(Problems(problems)));
        }
        frame = aggregate::aggregate_level(frame, &plan, level)?;
    }
    Ok((frame, reports, plan))
}

/// Denomination, screening (before or after imputation), imputation and outlier
/// treatment, each only when the pipeline asks for it.
fn prepare(
    plan: &Plan,
    frame: DataFrame,
) -> Result<(DataFrame, PreparationReport, Vec<String>), ComputeError> {
    let mut report = PreparationReport::default();
    let mut warnings = Vec::new();
    let mut frame = transform::denominate(plan, frame).map_err(ComputeError::Problems)?;
    report.denominated = plan
        .indicators()
        .filter_map(|(n, s)| {
            s.denominator.as_ref().map(|(d, scale)| Denominated {
                indicator: n.id.clone(),
                denominator: d.clone(),
                scale: *scale,
            })
        })
        .collect();
    let screening = |frame: DataFrame,
                     on: ScreenOn,
                     report: &mut PreparationReport,
                     warnings: &mut Vec<String>| {
        let Some(s) = plan.prep.screening.as_ref().filter(|s| s.on == on) else {
            return Ok::<_, ComputeError>(frame);
        };
        let (kept, r) = impute::screen(plan, s, frame)?;
        if !r.dropped.is_empty() {
            let shown: Vec<String> = r
                .dropped
                .iter()
                .map(|d| match d.year {
                    Some(y) => format!("{} {y} ({:.0}%)", d.territory_id, 100.0 * d.availability),
                    None => format!("{} ({:.0}%)", d.territory_id, 100.0 * d.availability),
                })
                .collect();
            warnings.push(format!(
                "screening dropped {} row(s) below {:.0}% of indicators present or excluded: {}",
                r.dropped.len(),
                100.0 * s.min_availability,
                crate::diagnostic::list(&shown, 20)
            ));
        }
        if !r.unknown_ids.is_empty() {
            warnings.push(format!(
                "screening: include/exclude name territories that are not in the data: {}",
                crate::diagnostic::list(&r.unknown_ids, 20)
            ));
        }
        if kept.height() == 0 {
            let excluded = r.dropped.iter().filter(|d| d.reason == "excluded").count();
            let message = if excluded == r.dropped.len() {
                "screening dropped every territory: [screening] exclude names them all".to_owned()
            } else if excluded > 0 {
                format!(
                    "screening dropped every territory: {excluded} row(s) excluded by [screening] exclude, the other {} below {:.0}% of their indicators",
                    r.dropped.len() - excluded,
                    100.0 * s.min_availability
                )
            } else {
                format!(
                    "screening dropped every territory: none has {:.0}% of its indicators",
                    100.0 * s.min_availability
                )
            };
            return Err(ComputeError::Problems(Problems(vec![Problem::new(
                s.declared_at.clone(),
                message,
            )])));
        }
        report.screening = Some(r);
        Ok(kept)
    };
    frame = screening(frame, ScreenOn::Raw, &mut report, &mut warnings)?;
    if plan.prep.imputation {
        let (f, counts) = impute::impute(plan, frame)?;
        frame = f;
        report.imputation = Some(counts);
    }
    frame = screening(frame, ScreenOn::Imputed, &mut report, &mut warnings)?;
    // `[territories] years`: the years scored; the others only fed the imputation.
    if let Some((from, to)) = plan.keys.years {
        let keep = frame
            .column(YEAR)?
            .i64()?
            .iter()
            .map(|y| y.is_some_and(|y| (from..=to).contains(&y)))
            .collect::<BooleanChunked>();
        frame = frame.filter(&keep)?;
        if frame.height() == 0 {
            return Err(ComputeError::Problems(Problems(vec![Problem::new(
                plan.keys.declared_at.clone(),
                format!(
                    "[territories] years = [{from}, {to}]: the sources have no row in these years"
                ),
            )])));
        }
    }
    if let Some(t) = &plan.prep.treatment {
        let (f, rows) = transform::treat::treat(plan, t, frame)?;
        frame = f;
        // A log transform would put the values off the scale of fixed goalposts.
        let problems: Vec<Problem> = rows
            .iter()
            .filter(|r| r.log_transformed)
            .filter_map(|r| {
                let (_, spec) = plan.indicators().find(|(n, _)| n.id == r.indicator)?;
                matches!(spec.normalisation, Normalisation::Goalposts(Goalposts::Fixed { .. })).then(|| {
                    Problem::new(
                        spec.declared_at.clone(),
                        format!(
                            "indicator \"{}\" needs a log transform as outlier treatment, which its fixed goalposts (in the original units) would not fit",
                            r.indicator
                        ),
                    )
                    .with_help("set treatment = false on the indicator, log_fallback = false in [treatment], or use goalposts = \"observed\"")
                })
            })
            .collect();
        if !problems.is_empty() {
            return Err(ComputeError::Problems(Problems(problems)));
        }
        report.treatment = Some(rows);
    }
    Ok((frame, report, warnings))
}
