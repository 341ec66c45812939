//! Relational capability (RCI) from survey microdata: a row per respondent, a column per
//! item; per-person scores as weighted horizontal sums, then one `group_by` per grouping
//! (territory, territory × subgroup, whole sample) for survey-weighted aggregates, and a
//! seeded bootstrap for confidence intervals.
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

use polars::prelude::*;
use serde::Serialize;

use crate::config::{Codes, MissingTreatment, Weighting};
use crate::diagnostic::{Location, Problem, Problems};
use crate::load::sources::{self as ingest, InputSummary};
use crate::load::{CellProblems, RawFile};
use crate::plan::rci::{RciItem, RciPlan};
use crate::plan::{TERRITORY_ID, YEAR};
use crate::progress::Progress;
use cells::Cells;

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
        "rci:score",
        format!(
            "{} respondents × {} items",
            raw.df.height(),
            plan.items.len()
        ),
    );
    let persons = prepare(plan, &raw)?;
    drop(raw);
    let polars_err = |source| RelationalError::Polars {
        path: plan.source.path.clone(),
        source,
    };
    let scored = streaming(score(plan, persons.lazy())).map_err(polars_err)?;
    let person_table = person_output(plan, &scored).map_err(polars_err)?;
    let respondents = scored.height();
    let scored_count = scored
        .column("__kept")
        .and_then(|c| Ok(c.bool()?.sum().unwrap_or(0) as usize))
        .map_err(polars_err)?;

    progress.stage("rci:aggregate", "territories, subgroups, whole sample");
    let subgroup_columns: Vec<String> = (0..plan.subgroups.len())
        .map(|k| format!("__sg{k}"))
        .collect();
    let cells = Cells::new(&scored, TERRITORY_ID, YEAR, &subgroup_columns).map_err(polars_err)?;
    let mut table = aggregate(plan, &scored, &cells).map_err(polars_err)?;
    check_weights(&table, &input.path)?;
    progress.stage("rci:bootstrap", format!("{} replicates", plan.bootstrap));
    bootstrap::intervals(plan, &scored, &cells, &mut table).map_err(polars_err)?;
    drop(scored);

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

/// Typed person frame: `__row`, `respondent_id`, `territory_id`, `year`, subgroup labels,
/// `__w` (survey weight), and `a:<item>` achievements (null when missing). Every bad cell
/// is reported with its row and column.
fn prepare(plan: &RciPlan, raw: &RawFile) -> Result<DataFrame, Problems> {
    let mut problems = Vec::new();
    let mut cells = CellProblems::new(&mut problems);
    // Cells that did not parse while reading are reported once, as what they are.
    cells.read_errors(raw, |_| true);
    let unreadable: std::collections::HashSet<(usize, &str)> = raw
        .bad_cells
        .iter()
        .map(|b| (b.row, b.column.as_str()))
        .collect();
    let n = raw.df.height();
    let text = |name: &str| -> StringChunked { raw.text(name).expect("checked column") };
    let mut columns: Vec<Column> = Vec::new();
    columns.push(Column::new(
        "__row".into(),
        (1..=n as u64).collect::<Vec<_>>(),
    ));
    let ids: StringChunked = match &plan.respondent_id {
        Some(c) => text(c),
        None => (1..=n).map(|i| Some(i.to_string())).collect(),
    };
    columns.push(ids.with_name("respondent_id".into()).into_column());

    let territory: StringChunked = text(&plan.territory)
        .iter()
        .enumerate()
        .map(|(row, v)| {
            let v = v.map(str::trim).filter(|v| !v.is_empty());
            if v.is_none() {
                cells.cell(raw, row, &plan.territory, "empty territory");
            }
            v
        })
        .collect();
    columns.push(territory.with_name(TERRITORY_ID.into()).into_column());

    let years: Int64Chunked = match &plan.year {
        Some(y) => ingest::years(raw, y, &mut cells),
        None => Int64Chunked::full_null(YEAR.into(), n),
    };
    columns.push(years.with_name(YEAR.into()).into_column());

    for (k, s) in plan.subgroups.iter().enumerate() {
        let values = text(s);
        let labels: StringChunked = values
            .iter()
            .map(|v| Some(format!("{s}={}", v.map(str::trim).unwrap_or("missing"))))
            .collect();
        columns.push(labels.with_name(format!("__sg{k}").into()).into_column());
        columns.push(values.with_name(format!("__sgv{k}").into()).into_column());
    }

    let weights: Float64Chunked = match &plan.weight {
        Some(w) => numbers(raw, w, &mut cells)
            .into_iter()
            .enumerate()
            .map(|(row, v)| {
                match v {
                    None if unreadable.contains(&(row, w.as_str())) => {}
                    None => cells.cell(raw, row, w, "missing survey weight"),
                    Some(x) if x < 0.0 => {
                        cells.cell(raw, row, w, format!("negative survey weight {x}"))
                    }
                    _ => {}
                }
                v
            })
            .collect(),
        None => Float64Chunked::full("__w".into(), 1.0, n),
    };
    columns.push(weights.with_name("__w".into()).into_column());

    for item in &plan.items {
        let values = numbers(raw, &item.column, &mut cells);
        let achieved: Float64Chunked =
            values
                .into_iter()
                .enumerate()
                .map(|(row, v)| {
                    let x = v?;
                    if item.is_missing(x) {
                        return None;
                    }
                    if !item.is_valid(x) {
                        cells.cell(raw, row, &item.column, format!(
                            "answer code {x} of item \"{}\" is neither valid ({}) nor missing ({})",
                            item.id,
                            describe_codes(&item.valid),
                            describe_list(&item.missing)
                        ),
                    );
                        return None;
                    }
                    Some(if item.achieved(x) { 1.0 } else { 0.0 })
                })
                .collect();
        columns.push(
            achieved
                .with_name(achievement(&item.id).into())
                .into_column(),
        );
    }
    cells.finish();
    if !problems.is_empty() {
        return Err(Problems(problems));
    }
    DataFrame::new(n, columns).map_err(|e| {
        Problems(vec![Problem::new(
            Location::data_file(&raw.path),
            e.to_string(),
        )])
    })
}

fn achievement(item: &str) -> String {
    format!("a:{item}")
}

fn describe_codes(c: &Codes) -> String {
    match c {
        Codes::List(v) => describe_list(v),
        Codes::Range { min, max } => format!("{min} to {max}"),
    }
}

fn describe_list(v: &[f64]) -> String {
    if v.is_empty() {
        return "none".into();
    }
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A column as f64 values: numeric columns as they are, text parsed (bad cells reported).
fn numbers(raw: &RawFile, name: &str, cells: &mut CellProblems<'_>) -> Vec<Option<f64>> {
    ingest::numbers(raw, name, &crate::plan::default_missing(), cells)
}

fn sum(terms: impl Iterator<Item = Expr>) -> Expr {
    terms.reduce(|a, b| a + b).unwrap_or_else(|| lit(0.0))
}

/// Person scores: `__answered` (weight share answered), `__kept`, `__wk` (the survey
/// weight, 0 when dropped), `rci`, `deprivation`, `capable`, `poor`, per-dimension
/// `dim:<id>` and `dimshare:<id>` (its part of `rci`). Scores are null when dropped.
fn score(plan: &RciPlan, lf: LazyFrame) -> LazyFrame {
    let a = |it: &RciItem| col(achievement(&it.id));
    let answered = sum(plan
        .items
        .iter()
        .map(|it| a(it).is_not_null().cast(DataType::Float64) * lit(it.weight)));
    let s_raw = sum(plan
        .items
        .iter()
        .map(|it| (a(it) * lit(it.weight)).fill_null(lit(0.0))));
    let c_raw = sum(plan
        .items
        .iter()
        .map(|it| ((lit(1.0) - a(it)) * lit(it.weight)).fill_null(lit(0.0))));
    let kept = match plan.missing {
        MissingTreatment::Drop => col("__answered").gt_eq(lit(1.0 - EPS)),
        MissingTreatment::Rescale => col("__answered")
            .gt_eq(lit(1.0 - plan.max_missing_share - EPS))
            .and(col("__answered").gt(lit(0.0))),
    };
    let only_kept = |e: Expr| {
        when(col("__kept"))
            .then(e)
            .otherwise(lit(NULL).cast(DataType::Float64))
    };
    let mut exprs = vec![
        only_kept(s_raw / col("__answered")).alias("rci"),
        only_kept(c_raw / col("__answered")).alias("deprivation"),
    ];
    for (d, dim) in plan.dimensions.iter().enumerate() {
        let items: Vec<&RciItem> = plan.items.iter().filter(|i| i.dimension == d).collect();
        let num = sum(items
            .iter()
            .map(|it| (a(it) * lit(it.weight)).fill_null(lit(0.0))));
        let den = sum(items
            .iter()
            .map(|it| a(it).is_not_null().cast(DataType::Float64) * lit(it.weight)));
        exprs.push(
            only_kept(
                when(den.clone().gt(lit(0.0)))
                    .then(num.clone() / den)
                    .otherwise(lit(NULL).cast(DataType::Float64)),
            )
            .alias(format!("dim:{}", dim.id)),
        );
        exprs.push(only_kept(num / col("__answered")).alias(format!("dimshare:{}", dim.id)));
    }
    // Respondents dropped for missing items weigh nothing in the aggregates.
    exprs.push(
        when(col("__kept"))
            .then(col("__w"))
            .otherwise(lit(0.0))
            .alias("__wk"),
    );
    lf.with_column(answered.alias("__answered"))
        .with_column(kept.alias("__kept"))
        .with_columns(exprs)
        .with_columns([
            col("rci").gt_eq(lit(plan.k - EPS)).alias("capable"),
            col("deprivation")
                .gt_eq(lit(plan.k_deprivation - EPS))
                .alias("poor"),
        ])
}

/// What each respondent adds to the survey-weighted sums of its groups (`S:` columns);
/// the measures are ratios of these sums (see [`measures`]). Dropped respondents have
/// weight 0 and null scores, so they add nothing.
fn summands(plan: &RciPlan) -> Vec<Expr> {
    let w = || col("__wk");
    let f = |name: &str| col(name).cast(DataType::Float64);
    let mut m = vec![
        f("__kept").alias("respondents"),
        w().alias("S:w"),
        (w() * col("rci")).alias("S:ws"),
        (w() * f("capable")).alias("S:wcap"),
        (w() * f("poor")).alias("S:wpoor"),
        (w() * col("deprivation") * f("poor")).alias("S:wcp"),
    ];
    for dim in &plan.dimensions {
        let d = col(format!("dim:{}", dim.id));
        m.push((w() * d.clone()).alias(format!("S:wd:{}", dim.id)));
        m.push((w() * d.is_not_null().cast(DataType::Float64)).alias(format!("S:wdn:{}", dim.id)));
        m.push((w() * col(format!("dimshare:{}", dim.id))).alias(format!("S:wds:{}", dim.id)));
    }
    for it in &plan.items {
        let a = col(achievement(&it.id));
        m.push((w() * f("poor") * (lit(1.0) - a.clone())).alias(format!("S:whc:{}", it.id)));
        m.push(
            (w() * a.clone().is_not_null().cast(DataType::Float64))
                .alias(format!("S:wans:{}", it.id)),
        );
        // Contribution to M0: ω·poor·w_j(1 − a_j), weights rescaled over answered items.
        m.push(
            (w() * f("poor") * (lit(1.0) - a) * lit(it.weight) / col("__answered"))
                .alias(format!("S:wcg:{}", it.id)),
        );
    }
    m
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
fn aggregate(plan: &RciPlan, scored: &DataFrame, cells: &Cells) -> PolarsResult<DataFrame> {
    // Sums per cell (year × territory × every subgroup variable); the groupings reported
    // are sums of cells, since every measure is a ratio of sums. Stable group order keeps
    // the summation order, hence the bytes of the results, the same from run to run.
    let sg = |k: usize| format!("__sg{k}");
    let sg_names: Vec<String> = (0..plan.subgroups.len()).map(sg).collect();
    let mut keys = vec![YEAR, TERRITORY_ID];
    keys.extend(sg_names.iter().map(String::as_str));
    let fine = cells.sums(scored, &keys, &summands(plan))?;
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

/// Collects with polars' streaming engine: on millions of respondents it runs the wide
/// per-person expressions in a fraction of the time and memory of the in-memory engine
/// (rci_run benchmark). Only for row-wise work: row order is kept, and nothing is summed
/// across rows, so results do not depend on how the engine splits the work.
fn streaming(lf: LazyFrame) -> PolarsResult<DataFrame> {
    lf.collect_with_engine(Engine::Streaming)
        .map(|result| result.unwrap_single())
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
fn person_output(plan: &RciPlan, scored: &DataFrame) -> PolarsResult<DataFrame> {
    let mut select = vec![col("respondent_id"), col(TERRITORY_ID), col(YEAR)];
    for (k, s) in plan.subgroups.iter().enumerate() {
        select.push(col(format!("__sgv{k}")).alias(s.as_str()));
    }
    select.extend([
        col("__w").alias("weight"),
        col("__answered").alias("answered_weight_share"),
        when(col("__kept"))
            .then(lit("scored"))
            .otherwise(lit("dropped: too many missing items"))
            .alias("status"),
        col("rci"),
    ]);
    for dim in &plan.dimensions {
        select.push(col(format!("dim:{}", dim.id)).alias(format!("rci_{}", dim.id)));
    }
    select.extend([col("capable"), col("deprivation"), col("poor")]);
    scored.clone().lazy().select(select).collect()
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
    use crate::config::AchievedRule;

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
