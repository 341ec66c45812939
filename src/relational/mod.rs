//! Relational capability (RCI) from survey microdata: a row per respondent, a column per
//! item. The answers become achievement bits ([`survey`]); each respondent is scored from
//! them and added into the survey-weighted sums of its cell ([`kernel`]); the groupings
//! reported (territory, territory × subgroup, whole sample) are sums of cells, and a seeded
//! bootstrap gives confidence intervals ([`bootstrap`]).
//!
//! Definitions (see ../shared/RCI.md for what is documented and what is ours):
//! items give achievements `a_j ∈ {0, 1}` (missing when the answer is a missing code or
//! empty); effective weights `w_j` sum to 1. Over the answered items of a person,
//! `s = Σ w_j a_j / Σ w_j` and `c = Σ w_j (1 − a_j) / Σ w_j = 1 − s` (the weights are
//! rescaled when items are missing, or the person dropped, as configured). Capable when
//! `s ≥ k`, poor (Alkire–Foster) when `c ≥ k_deprivation`, both with a 1e-12 tolerance
//! because weights like 1/3 do not sum exactly. Per group, with survey weights `ω`:
//! mean RCI `Σωs/Σω`, share capable, dimension means, `H = Σω·poor/Σω`,
//! `A = Σω·c·poor/Σω·poor`, `M0 = Σω·c·poor/Σω = H·A`, censored headcount of item j
//! (poor and deprived in j, among those who answered j) and its contribution to M0
//! (`Σω·poor·w'_j(1 − a_j) / Σω·c·poor`, summing to 1 over items).

mod bootstrap;
mod cells;
mod kernel;
mod survey;

use polars::prelude::*;
use serde::Serialize;

use crate::config::{MissingTreatment, Weighting};
use crate::diagnostic::{Location, Problem, Problems};
use crate::load::RawFile;
use crate::load::sources::{self as ingest, InputSummary};
use crate::plan::rci::RciPlan;
use crate::plan::{TERRITORY_ID, YEAR};
use crate::progress::Progress;
use cells::Cells;
use survey::Survey;

const EPS: f64 = 1e-12;
/// `territory_id` of the whole-sample rows.
/// `territory_name` of the whole-sample rows, whose `territory_id` is null: no id read
/// from the data can be taken for them.
pub const WHOLE_SAMPLE: &str = "(whole sample)";
pub const SUBGROUP: &str = "subgroup";

#[derive(Debug, thiserror::Error)]
pub enum RelationalError {
    #[error("{0}")]
    Problems(Problems),
    #[error("computing relational capability from {}: {source}", path.display())]
    Polars {
        path: std::path::PathBuf,
        #[source]
        source: PolarsError,
    },
}

impl From<Problems> for RelationalError {
    fn from(p: Problems) -> Self {
        RelationalError::Problems(p)
    }
}

/// What the RCI stage produces.
#[derive(Debug)]
pub struct RciOutput {
    pub input: InputSummary,
    /// One row per respondent: scores, no answers.
    pub persons: DataFrame,
    /// Tidy long table (the core layout plus subgroup, intervals and flags).
    pub scores: DataFrame,
    /// One row per territory (× year), for the wide output.
    pub territories: DataFrame,
    pub summary: RciSummary,
}

#[derive(Debug, Serialize)]
pub struct RciSummary {
    pub respondents: usize,
    pub scored: usize,
    pub dropped_for_missing_items: usize,
    pub survey_weights: bool,
    pub k: f64,
    pub k_deprivation: f64,
    pub weighting: &'static str,
    pub missing_items: &'static str,
    pub max_missing_share: Option<f64>,
    pub bootstrap_replicates: usize,
    pub bootstrap_seed: u64,
    pub confidence: f64,
    pub min_respondents: usize,
    pub dimensions: Vec<WeightRow>,
    pub items: Vec<WeightRow>,
    /// Components of the framework that no item of this survey covers.
    pub uncovered_components: Vec<String>,
    /// Territories with fewer respondents than `min_respondents`.
    pub small_territories: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct WeightRow {
    pub id: String,
    pub parent: Option<String>,
    pub column: Option<String>,
    pub weight: f64,
}

/// Checks, scores and aggregates the microdata of `plan` (read by `load`), reporting its
/// steps to `progress` (their timings go to the manifest).
///
/// Memory is what limits this stage on large surveys (10 million respondents × 20 items is
/// gigabytes per copy), so the steps avoid copies: the answers are dropped once turned into
/// achievements, and respondents dropped for missing items stay in the one scored frame
/// with a zero survey weight instead of being filtered into a second one.
pub fn compute(
    plan: &RciPlan,
    raw: RawFile,
    progress: &mut Progress,
) -> Result<RciOutput, RelationalError> {
    let input = ingest::summary(&raw);
    progress.stage(
        "rci:check",
        format!(
            "{} respondents × {} items",
            raw.df.height(),
            plan.items.len()
        ),
    );
    let survey = survey::prepare(plan, &raw)?;
    drop(raw);
    progress.stage("rci:score", "person scores");
    let polars_err = |source| RelationalError::Polars {
        path: plan.source.path.clone(),
        source,
    };
    let scorer = kernel::Scorer::new(plan);
    let scores = kernel::person_columns(plan, &scorer, &survey);
    let person_table = person_output(plan, &survey, scores).map_err(polars_err)?;
    let respondents = survey.n;

    progress.stage("rci:aggregate", "territories, subgroups, whole sample");
    let subgroups: Vec<(&str, &StringChunked)> = plan
        .subgroups
        .iter()
        .map(String::as_str)
        .zip(&survey.subgroup_values)
        .collect();
    let cells = Cells::new(&survey.territory, &survey.year, &subgroups);
    let sums = kernel::sums(&scorer, &survey, &cells, plan.bootstrap > 0);
    let scored_count = sums.scored;
    drop(survey);
    let mut table = aggregate(plan, &cells, &sums.cells).map_err(polars_err)?;
    check_weights(&table, &input.path)?;
    progress.stage("rci:bootstrap", format!("{} replicates", plan.bootstrap));
    bootstrap::intervals(plan, &sums.strata, &cells, &mut table).map_err(polars_err)?;
    drop(sums);

    progress.stage("rci:tables", "ranks, tidy and wide tables");
    let small = flag_and_rank(plan, &mut table).map_err(polars_err)?;
    let scores = tidy(plan, &table).map_err(polars_err)?;
    let territories = wide(plan, &table).map_err(polars_err)?;
    Ok(RciOutput {
        input,
        persons: person_table,
        scores,
        territories,
        summary: summary(plan, respondents, respondents - scored_count, small),
    })
}

/// The measures of one group from its sums, by output column name.
fn measures(plan: &RciPlan) -> Vec<Expr> {
    let s = |name: &str| col(format!("S:{name}"));
    let mut m = vec![
        col("respondents"),
        s("w").alias("weighted_respondents"),
        ratio(s("ws"), s("w")).alias("mean"),
        ratio(s("wcap"), s("w")).alias("share_capable"),
        ratio(s("wpoor"), s("w")).alias("H"),
        ratio(s("wcp"), s("wpoor")).alias("A"),
        ratio(s("wcp"), s("w")).alias("M0"),
    ];
    for dim in &plan.dimensions {
        let id = &dim.id;
        m.push(ratio(s(&format!("wd:{id}")), s(&format!("wdn:{id}"))).alias(format!("dim:{id}")));
        m.push(ratio(s(&format!("wds:{id}")), s("ws")).alias(format!("dimshare:{id}")));
    }
    for it in &plan.items {
        let id = &it.id;
        m.push(ratio(s(&format!("whc:{id}")), s(&format!("wans:{id}"))).alias(format!("hc:{id}")));
        m.push(ratio(s(&format!("wcg:{id}")), s("wcp")).alias(format!("cg:{id}")));
    }
    m
}

/// `num / den`, missing (not NaN) when the denominator is 0.
fn ratio(num: Expr, den: Expr) -> Expr {
    when(den.clone().gt(lit(0.0)))
        .then(num / den)
        .otherwise(lit(NULL).cast(DataType::Float64))
}

/// Survey-weighted aggregates per group: territories, territory × subgroup, whole sample
/// (and whole sample × subgroup). Columns `territory_id, year, subgroup` then measures;
/// whole-sample rows last within each year.
fn aggregate(plan: &RciPlan, cells: &Cells, sums: &[Vec<f64>]) -> PolarsResult<DataFrame> {
    // Sums per cell (year × territory × every subgroup variable); the groupings reported
    // are sums of cells, since every measure is a ratio of sums. Stable group order keeps
    // the summation order, hence the bytes of the results, the same from run to run.
    let sg = |k: usize| format!("__sg{k}");
    let fine = cell_table(plan, cells, sums)?;
    let sum_columns: Vec<Expr> = fine
        .get_column_names()
        .into_iter()
        .filter(|n| n.starts_with("S:"))
        .map(|n| col(n.as_str()).sum())
        .chain([col("respondents").sum().cast(DataType::UInt32)])
        .collect();
    let lf = fine.lazy();
    let grouped = |territory: bool, subgroup: Option<usize>| {
        let mut keys = vec![col(YEAR)];
        if territory {
            keys.push(col(TERRITORY_ID));
        }
        if let Some(k) = subgroup {
            keys.push(col(sg(k)));
        }
        let mut select = vec![
            if territory {
                col(TERRITORY_ID)
            } else {
                lit(NULL).cast(DataType::String).alias(TERRITORY_ID)
            },
            col(YEAR),
            match subgroup {
                Some(k) => col(sg(k)).alias(SUBGROUP),
                None => lit(NULL).cast(DataType::String).alias(SUBGROUP),
            },
            lit(!territory).alias("__is_all"),
        ];
        select.extend(measures(plan));
        lf.clone()
            .group_by_stable(keys)
            .agg(sum_columns.clone())
            // A group whose respondents were all dropped has nothing to report.
            .filter(col("respondents").gt(lit(0u32)))
            .select(select)
    };
    let mut frames = vec![grouped(true, None)];
    for k in 0..plan.subgroups.len() {
        frames.push(grouped(true, Some(k)));
    }
    frames.push(grouped(false, None));
    for k in 0..plan.subgroups.len() {
        frames.push(grouped(false, Some(k)));
    }
    // In-memory engine on purpose: the streaming engine sums each group in parallel
    // morsels whose order varies between runs, which changes the last bits of the means.
    concat(frames, UnionArgs::default())?
        .sort(
            [YEAR, "__is_all", TERRITORY_ID, SUBGROUP],
            SortMultipleOptions::default().with_nulls_last(false),
        )
        .collect()
}

/// The cells' keys (`year`, `territory_id`, `__sg<k>` labels) and sums, one row per cell.
fn cell_table(plan: &RciPlan, cells: &Cells, sums: &[Vec<f64>]) -> PolarsResult<DataFrame> {
    let stratum = |c: usize| &cells.strata[cells.stratum[cells.first[c] as usize] as usize];
    let n = cells.len();
    let mut columns = vec![
        Column::new(
            YEAR.into(),
            (0..n).map(|c| stratum(c).1).collect::<Vec<_>>(),
        ),
        Column::new(
            TERRITORY_ID.into(),
            (0..n).map(|c| stratum(c).0.as_str()).collect::<Vec<_>>(),
        ),
    ];
    for (k, (labels, names)) in cells.labels.iter().zip(&cells.label_names).enumerate() {
        columns.push(Column::new(
            format!("__sg{k}").into(),
            cells
                .first
                .iter()
                .map(|&r| names[labels[r as usize] as usize].as_str())
                .collect::<Vec<_>>(),
        ));
    }
    for (j, name) in kernel::sum_names(plan).into_iter().enumerate() {
        columns.push(Column::new(
            name.into(),
            sums.iter().map(|s| s[j]).collect::<Vec<f64>>(),
        ));
    }
    DataFrame::new(n, columns)
}

/// A territory whose survey weights sum to zero has no mean: say so rather than emit nulls.
fn check_weights(table: &DataFrame, path: &std::path::Path) -> Result<(), Problems> {
    let ids = table.column(TERRITORY_ID).and_then(|c| c.str().cloned());
    let w = table
        .column("weighted_respondents")
        .and_then(|c| c.f64().cloned());
    let (Ok(ids), Ok(w)) = (ids, w) else {
        return Ok(());
    };
    let problems: Vec<Problem> = ids
        .iter()
        .zip(w.iter())
        .filter(|(_, w)| *w == Some(0.0))
        .map(|(id, _)| {
            Problem::new(
                Location::data_file(path),
                format!("the survey weights of \"{}\" sum to zero", id.unwrap_or("")),
            )
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Problems(problems))
    }
}

/// Adds `small_sample`, ranks of territories (mean: 1 = highest; M0: 1 = least deprived,
/// per year) and `overlaps_next` (the interval of the mean overlaps that of the next rank).
/// Returns the small territories.
fn flag_and_rank(plan: &RciPlan, table: &mut DataFrame) -> PolarsResult<Vec<String>> {
    let is_territory = col(SUBGROUP).is_null().and(col("__is_all").not());
    let rank = |name: &str, descending: bool| {
        when(is_territory.clone())
            .then(
                col(name)
                    .rank(
                        RankOptions {
                            method: RankMethod::Min,
                            descending,
                        },
                        None,
                    )
                    .over([col(YEAR), is_territory.clone()])
                    .expect("window over columns")
                    .cast(DataType::UInt32),
            )
            .otherwise(lit(NULL).cast(DataType::UInt32))
    };
    *table = table
        .clone()
        .lazy()
        .with_columns([
            col("respondents")
                .lt(lit(plan.min_respondents as u32))
                .alias("small_sample"),
            rank("mean", true).alias("rank_mean"),
            rank("M0", false).alias("rank_M0"),
        ])
        .collect()?;
    // Adjacent ranks whose intervals overlap: the ranking between them is not settled.
    let n = table.height();
    let year = table.column(YEAR)?.i64()?.clone();
    let rank_mean = table.column("rank_mean")?.u32()?.clone();
    let lo = table.column("mean_ci_low")?.f64()?.clone();
    let hi = table.column("mean_ci_high")?.f64()?.clone();
    let mut order: Vec<usize> = (0..n).filter(|&i| rank_mean.get(i).is_some()).collect();
    order.sort_by_key(|&i| (year.get(i), rank_mean.get(i), i));
    let mut overlaps: Vec<Option<bool>> = (0..n).map(|i| rank_mean.get(i).map(|_| false)).collect();
    for pair in order.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if year.get(a) != year.get(b) {
            continue;
        }
        if let (Some(la), Some(ha), Some(lb), Some(hb)) =
            (lo.get(a), hi.get(a), lo.get(b), hi.get(b))
        {
            overlaps[a] = Some(la <= hb && lb <= ha);
        } else {
            overlaps[a] = None;
        }
    }
    table.with_column(Column::new("overlaps_next".into(), overlaps))?;
    let small = table
        .clone()
        .lazy()
        .filter(is_territory.and(col("small_sample")))
        .select([col(TERRITORY_ID)])
        .collect()?;
    Ok(small
        .column(TERRITORY_ID)?
        .str()?
        .iter()
        .flatten()
        .map(str::to_owned)
        .collect())
}

/// One measure of the tidy table: where it goes and which columns feed it.
struct Measure {
    level: &'static str,
    node: String,
    column: String,
    rank: Option<&'static str>,
    /// Prefix of the `_low`/`_high` interval columns.
    ci: Option<&'static str>,
}

/// The tidy table: one row per group × measure.
fn tidy(plan: &RciPlan, table: &DataFrame) -> PolarsResult<DataFrame> {
    let m = |level: &'static str, node: &str, column: String| Measure {
        level,
        node: node.to_owned(),
        column,
        rank: None,
        ci: None,
    };
    let mut specs = vec![
        Measure {
            rank: Some("rank_mean"),
            ci: Some("mean_ci"),
            ..m("rci", "mean", "mean".into())
        },
        m("rci", "share_capable", "share_capable".into()),
        m("rci", "respondents", "respondents".into()),
        m("rci", "weighted_respondents", "weighted_respondents".into()),
    ];
    for dim in &plan.dimensions {
        specs.push(m("rci_dimension", &dim.id, format!("dim:{}", dim.id)));
    }
    for dim in &plan.dimensions {
        specs.push(m(
            "rci_contribution",
            &dim.id,
            format!("dimshare:{}", dim.id),
        ));
    }
    specs.push(m("af", "H", "H".into()));
    specs.push(m("af", "A", "A".into()));
    specs.push(Measure {
        rank: Some("rank_M0"),
        ci: Some("M0_ci"),
        ..m("af", "M0", "M0".into())
    });
    for it in &plan.items {
        specs.push(m("af_headcount", &it.id, format!("hc:{}", it.id)));
    }
    for it in &plan.items {
        specs.push(m("af_contribution", &it.id, format!("cg:{}", it.id)));
    }
    let null_f = || lit(NULL).cast(DataType::Float64);
    let frames: Vec<LazyFrame> = specs
        .into_iter()
        .map(
            |Measure {
                 level,
                 node,
                 column,
                 rank,
                 ci,
             }| {
                table.clone().lazy().select([
                    col(TERRITORY_ID),
                    when(col("__is_all"))
                        .then(lit(WHOLE_SAMPLE))
                        .otherwise(lit(NULL).cast(DataType::String))
                        .alias("territory_name"),
                    lit(NULL).cast(DataType::String).alias("group"),
                    col(YEAR),
                    lit(level).alias("level"),
                    lit(node).alias("node_id"),
                    col(column).cast(DataType::Float64).alias("value"),
                    rank.map_or_else(|| lit(NULL).cast(DataType::UInt32), col)
                        .alias("rank"),
                    col(SUBGROUP),
                    ci.map_or_else(null_f, |c| col(format!("{c}_low")))
                        .alias("ci_low"),
                    ci.map_or_else(null_f, |c| col(format!("{c}_high")))
                        .alias("ci_high"),
                    col("respondents"),
                    col("small_sample"),
                    if rank == Some("rank_mean") {
                        col("overlaps_next")
                    } else {
                        lit(NULL).cast(DataType::Boolean)
                    }
                    .alias("overlaps_next"),
                ])
            },
        )
        .collect();
    concat(
        frames,
        UnionArgs {
            maintain_order: true,
            ..Default::default()
        },
    )?
    .collect()
}

/// One row per territory (× year): the headline measures, for the wide output.
fn wide(plan: &RciPlan, table: &DataFrame) -> PolarsResult<DataFrame> {
    let mut select = vec![
        col(TERRITORY_ID),
        col(YEAR),
        col("respondents").alias("rci_respondents"),
        col("small_sample").alias("rci_small_sample"),
        col("mean").alias("rci_mean"),
        col("mean_ci_low").alias("rci_mean_ci_low"),
        col("mean_ci_high").alias("rci_mean_ci_high"),
        col("rank_mean").alias("rci_rank"),
        col("share_capable").alias("rci_share_capable"),
    ];
    for dim in &plan.dimensions {
        select.push(col(format!("dim:{}", dim.id)).alias(format!("rci_{}", dim.id)));
    }
    select.extend([
        col("H").alias("af_h"),
        col("A").alias("af_a"),
        col("M0").alias("af_m0"),
        col("M0_ci_low").alias("af_m0_ci_low"),
        col("M0_ci_high").alias("af_m0_ci_high"),
    ]);
    table
        .clone()
        .lazy()
        .filter(col(SUBGROUP).is_null().and(col("__is_all").not()))
        .select(select)
        .collect()
}

/// One row per respondent: keys, weight, status and scores (no answers).
fn person_output(plan: &RciPlan, survey: &Survey, scores: Vec<Column>) -> PolarsResult<DataFrame> {
    let mut columns = vec![
        survey.respondent_id.clone(),
        survey.territory.clone().into_column(),
        survey.year.clone().into_column(),
    ];
    for (s, values) in plan.subgroups.iter().zip(&survey.subgroup_values) {
        columns.push(values.clone().with_name(s.as_str().into()).into_column());
    }
    columns.push(Column::new("weight".into(), survey.weight.clone()));
    columns.extend(scores);
    DataFrame::new(survey.n, columns)
}

fn summary(plan: &RciPlan, respondents: usize, dropped: usize, small: Vec<String>) -> RciSummary {
    RciSummary {
        respondents,
        scored: respondents - dropped,
        dropped_for_missing_items: dropped,
        survey_weights: plan.weight.is_some(),
        k: plan.k,
        k_deprivation: plan.k_deprivation,
        weighting: match plan.weighting {
            Weighting::Nested => "nested",
            Weighting::Flat => "flat",
        },
        missing_items: match plan.missing {
            MissingTreatment::Drop => "drop",
            MissingTreatment::Rescale => "rescale",
        },
        max_missing_share: (plan.missing == MissingTreatment::Rescale)
            .then_some(plan.max_missing_share),
        bootstrap_replicates: plan.bootstrap,
        bootstrap_seed: plan.seed,
        confidence: plan.confidence,
        min_respondents: plan.min_respondents,
        dimensions: plan
            .dimensions
            .iter()
            .map(|d| WeightRow {
                id: d.id.clone(),
                parent: None,
                column: None,
                weight: d.weight,
            })
            .collect(),
        items: plan
            .items
            .iter()
            .map(|i| WeightRow {
                id: i.id.clone(),
                parent: Some(plan.components[i.component].id.clone()),
                column: Some(i.column.clone()),
                weight: i.weight,
            })
            .collect(),
        uncovered_components: plan.uncovered().into_iter().map(str::to_owned).collect(),
        small_territories: small,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AchievedRule, Codes};
    use crate::plan::rci::RciItem;

    #[test]
    fn item_rules() {
        let item = |achieved, valid| RciItem {
            id: "x".into(),
            name: "x".into(),
            column: "x".into(),
            component: 0,
            dimension: 0,
            achieved,
            valid,
            missing: vec![9.0],
            weight: 1.0,
            declared_at: Location::Nowhere,
        };
        let at_least = item(
            AchievedRule::AtLeast(2.0),
            Codes::Range { min: 0.0, max: 3.0 },
        );
        assert!(at_least.achieved(2.0) && !at_least.achieved(1.0));
        assert!(at_least.is_valid(3.0) && !at_least.is_valid(4.0) && at_least.is_missing(9.0));
        let codes = item(
            AchievedRule::Codes(vec![1.0, 3.0]),
            Codes::List(vec![0.0, 1.0, 2.0, 3.0]),
        );
        assert!(codes.achieved(3.0) && !codes.achieved(2.0) && !codes.is_valid(5.0));
    }
}
