//! Turns transformed indicator values into scores, by each indicator's normalisation:
//! goalposts (fixed or observed), min-max onto [a, b], z-scores, ranks, percentile
//! ranks, distance to a target or to the maximum.
//!
//! Two phases, kept apart on purpose: [`resolve`] takes one pass of statistics (min, max,
//! mean and standard deviation of each indicator, over all rows or per year) and checks
//! them — a constant indicator cannot be min-max normalised, and saying so beats writing
//! NaN; [`rescaled`] then computes each row, with the statistics as literals (global
//! scope) or per-year windows. Fixed goalposts need no statistics at all, so territories
//! stay independent — the seam for partitioned runs later. Data-driven methods work on
//! the direction-adjusted value (× −1 when lower is better), as COINr does.

use polars::prelude::*;
use serde::Serialize;

use crate::config::{Direction, Scope};
use crate::diagnostic::{Location, Problem, Problems};
use crate::plan::{Goalposts, IndicatorSpec, Normalisation, Plan, YEAR};
use crate::transform;

#[derive(Debug, thiserror::Error)]
pub enum NormaliseError {
    #[error("{0}")]
    Problems(Problems),
    #[error("computing normalisation statistics: {0}")]
    Polars(#[from] PolarsError),
}

/// How one indicator was normalised, for the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct ResolvedNormalisation {
    pub indicator: String,
    pub method: &'static str,
    /// `fixed` or `observed` (goalposts only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goalposts: Option<&'static str>,
    /// Goalposts in the indicator's units (observed ones on a log scale: back-transformed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utopia: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dystopia: Option<f64>,
    /// After the indicator's transform; these enter the formula.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utopia_transformed: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dystopia_transformed: Option<f64>,
    /// Method parameters: minmax range, z-score mean and sd, target and cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<[f64; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cap: Option<bool>,
    pub scope: &'static str,
    /// Statistics of the direction-adjusted values, with global scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<Stats>,
}

/// Statistics of one indicator over the rows of one scope (mean and sd for z-scores only).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Stats {
    pub min: f64,
    pub max: f64,
    #[serde(skip_serializing_if = "is_nan")]
    pub mean: f64,
    /// Sample standard deviation (n − 1).
    #[serde(skip_serializing_if = "is_nan")]
    pub sd: f64,
    pub n: u32,
}

fn is_nan(x: &f64) -> bool {
    x.is_nan()
}

/// −1 when lower is better: data-driven methods normalise the direction-adjusted value.
fn sign(spec: &IndicatorSpec) -> f64 {
    match spec.direction {
        Direction::HigherIsBetter => 1.0,
        Direction::LowerIsBetter => -1.0,
    }
}

/// The value a method works on: the transformed value, direction-adjusted except for
/// goalposts (whose formula carries the direction).
fn value(spec: &IndicatorSpec, id: &str) -> Expr {
    let t = transform::expr(spec, &Plan::raw_column(id));
    match spec.normalisation {
        Normalisation::Goalposts(_) => t,
        _ => t * lit(sign(spec)),
    }
}

/// Whether a method needs statistics (the others are fixed or order-based).
fn needs_stats(n: &Normalisation) -> bool {
    !matches!(
        n,
        Normalisation::Goalposts(Goalposts::Fixed { .. })
            | Normalisation::Rank
            | Normalisation::Percentile { .. }
    )
}

/// Statistics per scope: one row (global) or one per year, in year order with the year
/// first; per indicator `min:<id>`, `max:<id>` (null without values) and `n:<id>`, and for
/// z-scores `mean:<id>` and `sd:<id>`.
fn statistics(lf: &LazyFrame, plan: &Plan) -> PolarsResult<Option<DataFrame>> {
    use rayon::prelude::*;
    let needed: Vec<_> = plan
        .indicators()
        .filter(|(_, s)| needs_stats(&s.normalisation))
        .collect();
    if needed.is_empty() {
        return Ok(None);
    }
    let per_year = plan.scope == Scope::PerYear;
    // The values the methods work on (a plain column costs nothing), with the year.
    let mut exprs: Vec<Expr> = needed
        .iter()
        .map(|(n, s)| value(s, &n.id).alias(n.id.as_str()))
        .collect();
    if per_year {
        exprs.push(col(YEAR));
    }
    let values = lf.clone().select(exprs).collect()?;
    let (years, group_of) = if per_year {
        year_groups(values.column(YEAR)?.i64()?)
    } else {
        (vec![None], vec![0; values.height()])
    };
    // Min, max and count in one pass over each indicator, indicators in parallel: as
    // polars expressions they were 80 ms of a national panel's scoring, its min and max
    // kernels slowed by NaN handling. NaN is skipped by the comparisons, as polars skips
    // it (a group of NaN only has a NaN minimum and maximum).
    let extents: Vec<Vec<Extent>> = needed
        .par_iter()
        .map(|(n, _)| {
            let c = values.column(&n.id)?.cast(&DataType::Float64)?;
            let mut extents = vec![Extent::default(); years.len()];
            let mut row = 0;
            for a in c.f64()?.downcast_iter() {
                if let [extent] = extents.as_mut_slice() {
                    extent.merge(Extent::of_array(a));
                } else {
                    let groups = &group_of[row..row + a.len()];
                    for rows in present(a) {
                        for (&v, &g) in a.values()[rows.clone()].iter().zip(&groups[rows]) {
                            extents[g as usize].add(v);
                        }
                    }
                }
                row += a.len();
            }
            Ok(extents)
        })
        .collect::<PolarsResult<_>>()?;
    let mut columns = Vec::new();
    if per_year {
        columns.push(Column::new(YEAR.into(), &years));
    }
    for ((n, _), extents) in needed.iter().zip(&extents) {
        let id = &n.id;
        let of = |f: fn(&Extent) -> f64| -> Vec<Option<f64>> {
            extents.iter().map(|e| (e.n > 0).then(|| f(e))).collect()
        };
        columns.push(Column::new(format!("min:{id}").into(), of(Extent::min)));
        columns.push(Column::new(format!("max:{id}").into(), of(Extent::max)));
        let counts: Vec<u32> = extents.iter().map(|e| e.n).collect();
        columns.push(Column::new(format!("n:{id}").into(), counts));
    }
    let mut df = DataFrame::new(years.len(), columns)?;
    // Means and standard deviations with polars' own sums, for z-scores only.
    let moments: Vec<Expr> = needed
        .iter()
        .filter(|(_, s)| matches!(s.normalisation, Normalisation::ZScore { .. }))
        .flat_map(|(n, _)| {
            let v = col(n.id.as_str());
            [
                v.clone().mean().alias(format!("mean:{}", n.id)),
                v.std(1).alias(format!("sd:{}", n.id)),
            ]
        })
        .collect();
    if !moments.is_empty() {
        let values = values.lazy();
        let m = if per_year {
            values
                .group_by([col(YEAR)])
                .agg(moments)
                .sort([YEAR], SortMultipleOptions::default())
                .drop(cols([YEAR]))
                .collect()?
        } else {
            values.select(moments).collect()?
        };
        df.hstack_mut(m.columns())?;
    }
    Ok(Some(df))
}

/// The rows grouped by year: the distinct years in order (a missing year first), and each
/// row's group. Per-year statistics and ranks are taken over these groups.
pub fn year_groups(years: &Int64Chunked) -> (Vec<Option<i64>>, Vec<u32>) {
    // Years all there and within a few thousand of each other (a panel's): a table
    // from year to group, rather than a tree and a hash map (10 ms of the national
    // panel's ranks, iterating options).
    const SPAN: i64 = 4096;
    if let (0, Some(low), Some(high)) = (years.null_count(), years.min(), years.max())
        && high.checked_sub(low).is_some_and(|span| span < SPAN)
    {
        let mut group = vec![u32::MAX; (high - low + 1) as usize];
        for a in years.downcast_iter() {
            a.values()
                .iter()
                .for_each(|&y| group[(y - low) as usize] = 0);
        }
        let mut distinct = Vec::new();
        for (offset, g) in group.iter_mut().enumerate() {
            if *g == 0 {
                *g = distinct.len() as u32;
                distinct.push(Some(low + offset as i64));
            }
        }
        let mut group_of = Vec::with_capacity(years.len());
        for a in years.downcast_iter() {
            group_of.extend(a.values().iter().map(|&y| group[(y - low) as usize]));
        }
        return (distinct, group_of);
    }
    year_groups_many(years)
}

/// [`year_groups`] for many distinct years.
fn year_groups_many(years: &Int64Chunked) -> (Vec<Option<i64>>, Vec<u32>) {
    let distinct: std::collections::BTreeSet<Option<i64>> = years.iter().collect();
    let index: std::collections::HashMap<Option<i64>, u32> = distinct
        .iter()
        .enumerate()
        .map(|(g, &y)| (y, g as u32))
        .collect();
    let group_of = years.iter().map(|y| index[&y]).collect();
    (distinct.into_iter().collect(), group_of)
}

/// The runs of rows of `a` that hold values: whole slices of values, looped over without
/// a test per row (most columns have a few missing values or none).
fn present(
    a: &polars_arrow::array::PrimitiveArray<f64>,
) -> Box<dyn Iterator<Item = std::ops::Range<usize>> + '_> {
    match a.validity().filter(|v| v.unset_bits() > 0) {
        None => Box::new(std::iter::once(0..a.len())),
        Some(valid) => Box::new(
            polars_arrow::bitmap::utils::SlicesIterator::new(valid)
                .map(|(start, len)| start..start + len),
        ),
    }
}

/// The validity bits of `valid`, 64 to a word (the last word padded with zeros).
pub(crate) fn words(valid: &polars_arrow::bitmap::Bitmap) -> Vec<u64> {
    let mut it = valid.fast_iter_u64();
    let mut words: Vec<u64> = it.by_ref().collect();
    let (rest, bits) = it.remainder();
    words.extend(&rest[..bits.div_ceil(64)]);
    words
}

/// The smallest and largest of `values` other than NaN (None when there is none), four
/// lanes at a time (see [`Extent::of`]).
pub(crate) fn range(values: &[f64]) -> Option<(f64, f64)> {
    let e = Extent::of(values);
    (e.low <= e.high).then_some((e.low, e.high))
}

/// The smallest and largest value of an indicator in one scope, and how many it has.
#[derive(Clone, Copy)]
struct Extent {
    low: f64,
    high: f64,
    /// Values, NaN included.
    n: u32,
    /// Values other than NaN.
    numbers: u32,
}

impl Default for Extent {
    fn default() -> Self {
        Extent {
            low: f64::INFINITY,
            high: f64::NEG_INFINITY,
            n: 0,
            numbers: 0,
        }
    }
}

impl Extent {
    fn add(&mut self, v: f64) {
        self.n += 1;
        if !v.is_nan() {
            self.numbers += 1;
            if v < self.low {
                self.low = v;
            }
            if v > self.high {
                self.high = v;
            }
        }
    }

    /// The extent of `values`, equal to adding them one by one (the first of equal
    /// extremes kept: -0 or +0), four independent lanes at a time: one lane is a chain
    /// of dependent comparisons, four keep the processor busy (twice as fast).
    fn of(values: &[f64]) -> Extent {
        let mut low = [f64::INFINITY; 4];
        let mut high = [f64::NEG_INFINITY; 4];
        let mut nan = [0u32; 4];
        let chunks = values.chunks_exact(4);
        let rest = chunks.remainder();
        for c in chunks {
            for k in 0..4 {
                nan[k] += u32::from(c[k].is_nan());
                low[k] = if c[k] < low[k] { c[k] } else { low[k] };
                high[k] = if c[k] > high[k] { c[k] } else { high[k] };
            }
        }
        let n = (values.len() - rest.len()) as u32;
        let mut e = Extent {
            n,
            numbers: n - nan.iter().sum::<u32>(),
            ..Extent::default()
        };
        for k in 0..4 {
            e.merge(Extent {
                low: low[k],
                high: high[k],
                n: 0,
                numbers: 0,
            });
        }
        rest.iter().for_each(|&v| e.add(v));
        // Lanes see zeros out of order: the first zero is the one kept one by one.
        if (e.low == 0.0 || e.high == 0.0)
            && let Some(&zero) = values.iter().find(|&&v| v == 0.0)
        {
            if e.low == 0.0 {
                e.low = zero;
            }
            if e.high == 0.0 {
                e.high = zero;
            }
        }
        e
    }

    /// The extent of an array's present values. Missing values are usually scattered
    /// (a run of present values between two is short): rather than visiting the runs,
    /// the slots of missing values are masked as NaN, which the comparisons skip, in
    /// blocks that stay in cache, and the count is set from the validity.
    fn of_array(a: &polars_arrow::array::PrimitiveArray<f64>) -> Extent {
        const BLOCK: usize = 4096;
        let values = a.values().as_slice();
        let Some(valid) = a.validity().filter(|v| v.unset_bits() > 0) else {
            return Extent::of(values);
        };
        let words = words(valid);
        let mut extent = Extent::default();
        let mut masked = [0.0; BLOCK];
        for (block, words) in values.chunks(BLOCK).zip(words.chunks(BLOCK / 64)) {
            // Copied, then the few missing slots overwritten: testing every value's bit
            // did not vectorise.
            let masked = &mut masked[..block.len()];
            masked.copy_from_slice(block);
            for (w, &word) in words.iter().enumerate() {
                let mut missing = !word;
                while missing != 0 {
                    let k = w * 64 + missing.trailing_zeros() as usize;
                    if let Some(slot) = masked.get_mut(k) {
                        *slot = f64::NAN;
                    }
                    missing &= missing - 1;
                }
            }
            extent.merge(Extent::of(masked));
        }
        // Present values (NaN among them) counted, masked slots not.
        extent.n = (values.len() - valid.unset_bits()) as u32;
        extent
    }

    /// Adds the values of `later`, which come after those already added.
    fn merge(&mut self, later: Extent) {
        self.n += later.n;
        self.numbers += later.numbers;
        if later.low < self.low {
            self.low = later.low;
        }
        if later.high > self.high {
            self.high = later.high;
        }
    }

    fn min(&self) -> f64 {
        if self.numbers == 0 {
            f64::NAN
        } else {
            self.low
        }
    }

    fn max(&self) -> f64 {
        if self.numbers == 0 {
            f64::NAN
        } else {
            self.high
        }
    }
}

fn stats_at(df: &DataFrame, id: &str, row: usize) -> Option<Stats> {
    let f = |name: &str| -> Option<f64> {
        df.column(&format!("{name}:{id}"))
            .ok()?
            .cast(&DataType::Float64)
            .ok()?
            .f64()
            .ok()?
            .get(row)
    };
    Some(Stats {
        min: f("min")?,
        max: f("max")?,
        mean: f("mean").unwrap_or(f64::NAN),
        sd: f("sd").unwrap_or(f64::NAN),
        n: f("n")? as u32,
    })
}

/// Resolves every indicator's normalisation, with one pass of statistics over `lf`, and
/// reports every indicator that cannot be normalised as asked.
pub fn resolve(lf: &LazyFrame, plan: &Plan) -> Result<Vec<ResolvedNormalisation>, NormaliseError> {
    let stats = statistics(lf, plan)?;
    let years: Vec<Option<i64>> = match (&stats, plan.scope) {
        (Some(df), Scope::PerYear) => df.column(YEAR)?.i64()?.iter().collect(),
        _ => vec![None],
    };
    let scope = match plan.scope {
        Scope::Global => "global",
        Scope::PerYear => "per_year",
    };
    let mut problems = Vec::new();
    let mut out = Vec::new();
    for (node, spec) in plan.indicators() {
        let id = &node.id;
        let n = spec.normalisation;
        let mut r = ResolvedNormalisation {
            indicator: id.clone(),
            method: n.name(),
            goalposts: None,
            utopia: None,
            dystopia: None,
            utopia_transformed: None,
            dystopia_transformed: None,
            range: None,
            mean: None,
            sd: None,
            target: None,
            cap: None,
            scope,
            observed: None,
        };
        match n {
            Normalisation::Goalposts(Goalposts::Fixed { utopia, dystopia }) => {
                r.goalposts = Some("fixed");
                r.utopia = Some(utopia);
                r.dystopia = Some(dystopia);
                r.utopia_transformed = Some(spec.transform_value(utopia));
                r.dystopia_transformed = Some(spec.transform_value(dystopia));
            }
            Normalisation::Goalposts(Goalposts::Observed) => r.goalposts = Some("observed"),
            Normalisation::MinMax { lo, hi } => r.range = Some([lo, hi]),
            Normalisation::ZScore { mean, sd } => (r.mean, r.sd) = (Some(mean), Some(sd)),
            Normalisation::DistanceToTarget { target, cap } => {
                (r.target, r.cap) = (Some(target), Some(cap));
            }
            Normalisation::Percentile { lo, hi } => {
                r.range = ((lo, hi) != (0.0, 100.0)).then_some([lo, hi]);
            }
            Normalisation::Rank | Normalisation::DistanceToMax => {}
        }
        if let Some(df) = stats.as_ref().filter(|_| needs_stats(&n)) {
            for (row, year) in years.iter().enumerate() {
                let in_year = year.map_or(String::new(), |y| format!(" in {y}"));
                let Some(st) = stats_at(df, id, row) else {
                    problems.push(Problem::new(
                        spec.declared_at.clone(),
                        format!("indicator \"{id}\" has no values{in_year}, so it cannot be normalised ({})", n.name()),
                    ));
                    continue;
                };
                if let Some(p) = check(spec, id, &n, &st, &in_year) {
                    problems.push(p);
                }
                if plan.scope == Scope::Global {
                    r.observed = Some(st);
                    if n == Normalisation::Goalposts(Goalposts::Observed) {
                        let (ut, dt) = observed_goalposts(spec, &st);
                        let back = |v: f64| if spec.log { v.exp() } else { v };
                        r.utopia = Some(back(ut));
                        r.dystopia = Some(back(dt));
                        r.utopia_transformed = Some(ut);
                        r.dystopia_transformed = Some(dt);
                    }
                }
            }
        }
        out.push(r);
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(NormaliseError::Problems(Problems(problems)))
    }
}

/// (utopia, dystopia) on the transformed scale, from the observed range.
fn observed_goalposts(spec: &IndicatorSpec, st: &Stats) -> (f64, f64) {
    match spec.direction {
        Direction::HigherIsBetter => (st.max, st.min),
        Direction::LowerIsBetter => (st.min, st.max),
    }
}

/// Why an indicator cannot be normalised with these statistics, if it cannot.
fn check(
    spec: &IndicatorSpec,
    id: &str,
    n: &Normalisation,
    st: &Stats,
    in_year: &str,
) -> Option<Problem> {
    let shown = |v: f64| {
        let v = v * if matches!(n, Normalisation::Goalposts(_)) {
            1.0
        } else {
            sign(spec)
        };
        if spec.log { v.exp() } else { v }
    };
    let constant = st.max == st.min;
    let message = match n {
        Normalisation::Goalposts(Goalposts::Observed) if constant => format!(
            "indicator \"{id}\": utopia equals dystopia (every observed value{in_year} is {}), so it cannot be rescaled",
            shown(st.min)
        ),
        Normalisation::MinMax { .. } | Normalisation::DistanceToMax if constant => format!(
            "indicator \"{id}\": every value{in_year} is {}, so it cannot be normalised with {} (its range is 0)",
            shown(st.min),
            n.name()
        ),
        Normalisation::ZScore { .. } if st.n < 2 => format!(
            "indicator \"{id}\" has fewer than two values{in_year}, so it cannot be z-scored"
        ),
        // 0 (or NaN, never with two values): no spread to divide by.
        Normalisation::ZScore { .. } if st.sd.is_nan() || st.sd <= 0.0 => format!(
            "indicator \"{id}\": every value{in_year} is {}, so it cannot be z-scored (its standard deviation is 0)",
            shown(st.min)
        ),
        Normalisation::DistanceToTarget { target, .. } if target * sign(spec) == st.min => format!(
            "indicator \"{id}\": the target {target} equals the worst value{in_year}, so distances to it are undefined"
        ),
        _ => return None,
    };
    Some(Problem::new(spec.declared_at.clone(), message))
}

/// `frame` with one column per indicator, named by its id, by its method (see the module
/// docs), in the plan's order. Goalposts with literal bounds (fixed, or observed over all
/// rows) are computed by `Bounds::rescale`, one pass per indicator, indicators in
/// parallel, allocating only the output column (as polars expressions, each of their five
/// operations allocated one); the other methods, and per-year windows, are polars
/// expressions.
pub fn rescaled(
    frame: DataFrame,
    plan: &Plan,
    resolved: &[ResolvedNormalisation],
) -> PolarsResult<Rescaled> {
    use rayon::prelude::*;
    let indicators: Vec<_> = plan.indicators().zip(resolved).collect();
    let direct: Vec<Option<(Column, Beyond)>> = indicators
        .par_iter()
        .map(|((node, spec), r)| {
            let Some(bounds) = literal_goalposts(plan, spec, r) else {
                return Ok(None);
            };
            let raw = frame
                .column(&Plan::raw_column(&node.id))?
                .cast(&DataType::Float64)?;
            let raw = raw.f64()?;
            let mut beyond = Beyond::default();
            let chunks: Vec<_> = raw
                .downcast_iter()
                .map(|a| {
                    let (values, counted) = bounds.rescale_all(spec, plan.clip, a.values());
                    let array = polars_arrow::array::PrimitiveArray::from_vec(values)
                        .with_validity(a.validity().cloned());
                    let b = Beyond::of_present(counted, &array);
                    beyond.merge(b);
                    array
                })
                .collect();
            let column = Float64Chunked::from_chunk_iter(node.id.as_str().into(), chunks);
            Ok(Some((column.into_column(), beyond)))
        })
        .collect::<PolarsResult<_>>()?;
    let exprs: Vec<Expr> = indicators
        .iter()
        .zip(&direct)
        .filter(|(_, d)| d.is_none())
        .map(|(((node, spec), r), _)| rescale_expr(plan, node.id.as_str(), spec, r))
        .collect();
    let mut by_expr = if exprs.is_empty() {
        Vec::new()
    } else {
        frame.clone().lazy().select(exprs).collect()?.into_columns()
    }
    .into_iter();
    let columns: Vec<(Column, Option<Beyond>)> = direct
        .into_iter()
        .map(|d| match d {
            Some((c, b)) => (c, Some(b)),
            None => (by_expr.next().expect("one column per expression"), None),
        })
        .collect();
    // Only goalposts can be passed (other methods stay within 0–100 by design); the
    // columns computed by polars are counted here.
    let beyond: Vec<(String, Beyond)> = indicators
        .par_iter()
        .zip(&columns)
        .filter(|(((_, spec), _), _)| matches!(spec.normalisation, Normalisation::Goalposts(_)))
        .map(|(((node, _), _), (column, counted))| {
            Ok((
                node.id.clone(),
                counted.map_or_else(|| beyond_of(column), Ok)?,
            ))
        })
        .collect::<PolarsResult<Vec<_>>>()?
        .into_iter()
        .filter(|(_, b)| b.below + b.above > 0)
        .collect();
    let columns: Vec<Column> = columns.into_iter().map(|(c, _)| c).collect();
    let mut frame = frame;
    frame.hstack_mut(&columns)?;
    Ok(Rescaled { frame, beyond })
}

/// A frame with its indicators rescaled (see [`rescaled`]).
#[derive(Debug)]
pub struct Rescaled {
    pub frame: DataFrame,
    /// The indicators with values beyond their goalposts (none when clipped), in the
    /// plan's order.
    pub beyond: Vec<(String, Beyond)>,
}

/// Goalposts on the transformed scale, literal for every row.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    utopia: f64,
    dystopia: f64,
}

impl Bounds {
    /// `100·(t − d)/(u − d)` (or `100·(d − t)/(d − u)` when the utopia lies below), with the
    /// float operations of the expression it replaced: divided first, so that the utopia
    /// gives exactly 100, then clipped to [0, 100] when asked. The denominator carries
    /// `0·t`, as [`transform::exact_div`]'s does, so that an infinite `t` (the log of 0)
    /// gives NaN as it always has.
    #[inline]
    fn rescale(self, t: f64, clip: bool) -> f64 {
        let (u, d) = (self.utopia, self.dystopia);
        let zero = t * 0.0;
        let ratio = if u < d {
            (d - t) / (zero + (d - u))
        } else {
            (t - d) / (zero + (u - d))
        };
        let e = ratio * 100.0;
        if clip {
            let e = if e < 0.0 { 0.0 } else { e };
            if e > 100.0 { 100.0 } else { e }
        } else {
            e
        }
    }
}

impl Bounds {
    /// Each of `raw` transformed by `spec` and rescaled, and how many came out below 0 and
    /// above 100 (missing values' slots included: see [`beyond_of`]). The choices that are
    /// the same for every value (a transform or none, clipping or not) are made once,
    /// outside the loop, so that the plain cases are straight arithmetic the compiler
    /// vectorises: twice as fast on a national panel. Same operations, same results, to
    /// the bit. Counted block by block, while the values are still in cache.
    fn rescale_all(self, spec: &IndicatorSpec, clip: bool, raw: &[f64]) -> (Vec<f64>, Beyond) {
        let plain = spec.cap_min.is_none() && spec.cap_max.is_none() && !spec.log;
        let mut out = Vec::with_capacity(raw.len());
        let mut beyond = Beyond::default();
        for block in raw.chunks(8192) {
            let start = out.len();
            let values = block.iter();
            match (plain, clip) {
                (true, false) => out.extend(values.map(|&t| self.rescale(t, false))),
                (true, true) => out.extend(values.map(|&t| self.rescale(t, true))),
                (false, clip) => {
                    out.extend(values.map(|&x| self.rescale(spec.transform_value(x), clip)));
                }
            }
            let into = &out[start..];
            if !clip {
                beyond.add(into);
            }
        }
        (out, beyond)
    }
}

/// How many rescaled values of an indicator lie below 0 (worse than its dystopia) and
/// above 100 (better than its utopia).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Beyond {
    pub below: usize,
    pub above: usize,
}

impl Beyond {
    /// Counts `values` (a loop the compiler vectorises).
    fn add(&mut self, values: &[f64]) {
        for &v in values {
            self.below += usize::from(v < 0.0);
            self.above += usize::from(v > 100.0);
        }
    }

    /// Adds the counts of `other`.
    fn merge(&mut self, other: Beyond) {
        self.below += other.below;
        self.above += other.above;
    }

    /// Uncounts `values`.
    fn remove(&mut self, values: &[f64]) {
        let mut these = Beyond::default();
        these.add(values);
        self.below -= these.below;
        self.above -= these.above;
    }

    /// `counted` (all of `a`'s slots counted) less the slots of missing values, which
    /// hold anything.
    fn of_present(mut counted: Beyond, a: &polars_arrow::array::PrimitiveArray<f64>) -> Beyond {
        // None counted, none to uncount (the usual case: visiting the missing values
        // was a twentieth of the normalisation's time).
        if counted == Beyond::default() {
            return counted;
        }
        if let Some(valid) = a.validity().filter(|v| v.unset_bits() > 0) {
            let missing = !valid;
            for i in missing.true_idx_iter() {
                counted.remove(std::slice::from_ref(&a.values()[i]));
            }
        }
        counted
    }
}

/// The counts of a rescaled column's values beyond the goalposts.
fn beyond_of(column: &Column) -> PolarsResult<Beyond> {
    let mut total = Beyond::default();
    for a in column.f64()?.downcast_iter() {
        let mut counted = Beyond::default();
        counted.add(a.values());
        let b = Beyond::of_present(counted, a);
        total.merge(b);
    }
    Ok(total)
}

/// The goalposts of an indicator when they are the same literal for every row.
fn literal_goalposts(
    plan: &Plan,
    spec: &IndicatorSpec,
    r: &ResolvedNormalisation,
) -> Option<Bounds> {
    match spec.normalisation {
        Normalisation::Goalposts(Goalposts::Fixed { .. }) => Some(Bounds {
            utopia: r.utopia_transformed?,
            dystopia: r.dystopia_transformed?,
        }),
        Normalisation::Goalposts(Goalposts::Observed) if plan.scope == Scope::Global => {
            Some(Bounds {
                utopia: r.utopia_transformed?,
                dystopia: r.dystopia_transformed?,
            })
        }
        _ => None,
    }
}

/// The expression of an indicator's column, named by its id, by its method.
fn rescale_expr(plan: &Plan, id: &str, spec: &IndicatorSpec, r: &ResolvedNormalisation) -> Expr {
    debug_assert_eq!(id, r.indicator);
    let v = value(spec, id);
    // A statistic of the value: the global literal, or per-year windows.
    let stat = |f: fn(Expr) -> Expr, global: Option<f64>| -> Expr {
        match (plan.scope, global) {
            (Scope::Global, Some(g)) => lit(g),
            _ => f(v.clone())
                .over([col(YEAR)])
                .expect("a column window is valid"),
        }
    };
    let obs = r.observed;
    let min = || stat(|e| e.min(), obs.map(|s| s.min));
    let max = || stat(|e| e.max(), obs.map(|s| s.max));
    let window = |e: Expr| match plan.scope {
        Scope::Global => e,
        Scope::PerYear => e.over([col(YEAR)]).expect("a column window is valid"),
    };
    let rank = || {
        window(v.clone().rank(
            RankOptions {
                method: RankMethod::Min,
                descending: false,
            },
            None,
        ))
        .cast(DataType::Float64)
    };
    let e = match spec.normalisation {
        Normalisation::Goalposts(g) => {
            let (ut, dt, utopia_below) = match g {
                Goalposts::Fixed { .. } => {
                    let (u, d) = (
                        r.utopia_transformed.expect("fixed goalposts resolved"),
                        r.dystopia_transformed.expect("fixed goalposts resolved"),
                    );
                    (lit(u), lit(d), u < d)
                }
                Goalposts::Observed => match spec.direction {
                    Direction::HigherIsBetter => (max(), min(), false),
                    Direction::LowerIsBetter => (min(), max(), true),
                },
            };
            // Divided first: at x = utopia the ratio is exactly 1, hence exactly 100
            // (100·(t − d) rounds before the division, and can land 1 ulp above
            // 100). Written with a positive denominator, so that x = dystopia
            // gives +0, not −0, when the utopia lies below the dystopia.
            let ratio = if utopia_below {
                transform::exact_div(dt.clone() - v.clone(), dt - ut, &v)
            } else {
                transform::exact_div(v.clone() - dt.clone(), ut - dt, &v)
            };
            let e = ratio * lit(100.0);
            if plan.clip {
                transform::clip_max(transform::clip_min(e, 0.0), 100.0)
            } else {
                e
            }
        }
        Normalisation::MinMax { lo, hi } => {
            transform::exact_div(v.clone() - min(), max() - min(), &v) * lit(hi - lo) + lit(lo)
        }
        Normalisation::ZScore { mean, sd } => {
            let m = stat(|e| e.mean(), obs.map(|s| s.mean));
            let s = stat(|e| e.std(1), obs.map(|s| s.sd));
            transform::exact_div(v.clone() - m, s, &v) * lit(sd) + lit(mean)
        }
        Normalisation::Rank => rank(),
        Normalisation::Percentile { lo, hi } => {
            let n = window(v.clone().count()).cast(DataType::Float64);
            let share = transform::exact_div(rank() - lit(1.0), n - lit(1.0), &v);
            // The default range is written as before, to the bit.
            if (lo, hi) == (0.0, 100.0) {
                share * lit(100.0)
            } else {
                share * lit(hi - lo) + lit(lo)
            }
        }
        Normalisation::DistanceToTarget { target, cap } => {
            let t = lit(target * sign(spec));
            let e = (lit(1.0) - transform::exact_div(t.clone() - v.clone(), t - min(), &v))
                * lit(100.0);
            if cap {
                transform::clip_max(e, 100.0)
            } else {
                e
            }
        }
        Normalisation::DistanceToMax => {
            (lit(1.0) - transform::exact_div(max() - v.clone(), max() - min(), &v)) * lit(100.0)
        }
    };
    e.alias(id)
}

/// Where an indicator is declared, for errors found after rescaling.
pub fn declared_at(plan: &Plan, id: &str) -> Location {
    plan.indicators()
        .find(|(n, _)| n.id == id)
        .map_or(Location::Nowhere, |(_, s)| s.declared_at.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan;

    /// Years grouped through the table equal years grouped through a tree and a map,
    /// for panels (cycling years, unsorted, with gaps, in several chunks) and for what
    /// the table leaves to the tree (a missing year, a span too wide).
    #[test]
    fn year_groups_equal_a_tree_and_a_map() {
        let cycling: Vec<Option<i64>> = (0..1000).map(|r| Some(2015 + r % 10)).collect();
        let unsorted: Vec<Option<i64>> = [2020, 1999, 2020, 2024, 1999, 2003]
            .iter()
            .map(|&y| Some(y))
            .collect();
        let missing = vec![Some(2020), None, Some(2019), None];
        let wide = vec![Some(i64::MIN), Some(0), Some(i64::MAX), Some(0)];
        for years in [cycling, unsorted, missing, wide] {
            let one = Int64Chunked::from_iter_options("year".into(), years.iter().copied());
            let mut split =
                Int64Chunked::from_iter_options("year".into(), years[..2].iter().copied());
            split
                .append(&Int64Chunked::from_iter_options(
                    "year".into(),
                    years[2..].iter().copied(),
                ))
                .unwrap();
            for chunked in [one, split] {
                assert_eq!(
                    year_groups(&chunked),
                    year_groups_many(&chunked),
                    "{years:?}"
                );
            }
        }
    }

    /// An array's extent, taken four lanes and a block at a time with missing slots
    /// masked, equals adding its present values one by one: the same bits for the
    /// extremes (the first of -0 and +0 kept), the same counts, NaN skipped but counted.
    #[test]
    fn extents_equal_adding_one_by_one() {
        let mut rng = crate::stats::Rng::new(17);
        let cases = [
            (0, false),
            (3, true),
            (64, true),
            (5000, false),
            (9001, true),
        ];
        // Many draws: which lane sees the first zero, and its sign, vary.
        for (n, zeros) in cases.into_iter().flat_map(|c| std::iter::repeat_n(c, 20)) {
            // Zeros the smallest values, or the largest.
            let sign = if rng.uniform() < 0.5 { 1.0 } else { -1.0 };
            for missing in [0.0, 0.02, 0.5] {
                let values: Vec<f64> = (0..n)
                    .map(|i| match i % 13 {
                        0 | 1 if zeros => {
                            if rng.uniform() < 0.5 {
                                -0.0
                            } else {
                                0.0
                            }
                        }
                        2 => f64::NAN,
                        // Larger and smaller than any present value, in missing slots.
                        3 => 1e300,
                        4 => -1e300,
                        _ if zeros => sign * rng.uniform() * 10.0,
                        _ => rng.uniform() * 10.0 - 5.0,
                    })
                    .collect();
                let valid: Vec<bool> = (0..n)
                    .map(|i| i % 13 != 3 && i % 13 != 4 && rng.uniform() >= missing)
                    .collect();
                let bitmap: polars_arrow::bitmap::Bitmap = valid.iter().copied().collect();
                let array = polars_arrow::array::PrimitiveArray::from_vec(values.clone())
                    .with_validity(Some(bitmap));
                let got = Extent::of_array(&array);
                let mut expected = Extent::default();
                for (v, ok) in values.iter().zip(&valid) {
                    if *ok {
                        expected.add(*v);
                    }
                }
                let show = |e: &Extent| (e.low.to_bits(), e.high.to_bits(), e.n, e.numbers);
                assert_eq!(show(&got), show(&expected), "{n} values, {missing} missing");
                let plain = Extent::of(&values);
                let mut one_by_one = Extent::default();
                values.iter().for_each(|&v| one_by_one.add(v));
                assert_eq!(show(&plain), show(&one_by_one), "{n} values");
            }
        }
    }

    /// A plan with one indicator per `(id, direction, settings)`, and normalised values of
    /// `rows` (one value per indicator and row; `years` when given).
    fn normalised(
        indicators: &[(&str, &str, &str)],
        rows: &[Vec<Option<f64>>],
        years: Option<&[i64]>,
        scope: &str,
    ) -> DataFrame {
        normalised_with(indicators, rows, years, &format!("scope = \"{scope}\""))
    }

    /// As [`normalised`], with the `[normalisation]` table's lines.
    fn normalised_with(
        indicators: &[(&str, &str, &str)],
        rows: &[Vec<Option<f64>>],
        years: Option<&[i64]>,
        settings: &str,
    ) -> DataFrame {
        let mut text = format!(
            "[pipeline]\nid = \"t\"\n[territories]\nid = \"code\"\n{}[[source]]\npath = \"x.csv\"\n[normalisation]\n{settings}\n[index]\nid = \"idx\"\n[[dimension]]\nid = \"d\"\n[[component]]\nid = \"c\"\ndimension = \"d\"\n",
            if years.is_some() {
                "year = \"year\"\n"
            } else {
                ""
            }
        );
        for (id, direction, settings) in indicators {
            text.push_str(&format!(
                "[[indicator]]\nid = \"{id}\"\ncomponent = \"c\"\ndirection = \"{direction}\"\n{settings}\n"
            ));
        }
        let plan = plan::test_plan(&text);
        let mut columns: Vec<Column> = indicators
            .iter()
            .enumerate()
            .map(|(j, (id, _, _))| {
                let v: Vec<Option<f64>> = rows.iter().map(|r| r[j]).collect();
                Column::new(Plan::raw_column(id).into(), v)
            })
            .collect();
        columns.push(Column::new(
            YEAR.into(),
            years.map_or(vec![None; rows.len()], |y| {
                y.iter().map(|&v| Some(v)).collect()
            }),
        ));
        let df = DataFrame::new(rows.len(), columns).unwrap();
        let resolved = resolve(&df.clone().lazy(), &plan).unwrap_or_else(|e| panic!("{e}"));
        let Rescaled {
            frame: rescaled,
            beyond,
        } = rescaled(df.clone(), &plan, &resolved).unwrap();
        // Every column equal to the bit to its polars expression.
        let exprs: Vec<Expr> = plan
            .indicators()
            .zip(&resolved)
            .map(|((n, spec), r)| rescale_expr(&plan, &n.id, spec, r))
            .collect();
        let expected = df.lazy().with_columns(exprs).collect().unwrap();
        for (n, _) in plan.indicators() {
            let bits = |df: &DataFrame| -> Vec<Option<u64>> {
                let c = df.column(&n.id).unwrap().f64().unwrap();
                c.iter().map(|v| v.map(f64::to_bits)).collect()
            };
            assert_eq!(bits(&rescaled), bits(&expected), "{}", n.id);
        }
        // The values beyond the goalposts counted one by one.
        let counted: Vec<(String, Beyond)> = plan
            .indicators()
            .filter(|(_, spec)| matches!(spec.normalisation, Normalisation::Goalposts(_)))
            .map(|(n, _)| {
                let column = expected.column(&n.id).unwrap().f64().unwrap();
                let present: Vec<f64> = column.iter().flatten().collect();
                let beyond = Beyond {
                    below: present.iter().filter(|&&v| v < 0.0).count(),
                    above: present.iter().filter(|&&v| v > 100.0).count(),
                };
                (n.id.clone(), beyond)
            })
            .filter(|(_, b)| b.below + b.above > 0)
            .collect();
        assert_eq!(beyond, counted);
        rescaled
    }

    fn values(df: &DataFrame, id: &str) -> Vec<f64> {
        df.column(id)
            .unwrap()
            .f64()
            .unwrap()
            .iter()
            .map(|v| v.unwrap_or(f64::NAN))
            .collect()
    }

    fn close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-9, "{got:?} vs {want:?}");
        }
    }

    fn column(v: &[f64]) -> Vec<Vec<Option<f64>>> {
        v.iter().map(|x| vec![Some(*x)]).collect()
    }

    /// A value at its utopia scores exactly 100, at its dystopia exactly 0, and equal
    /// ratios score equal across indicators. Polars divides by a constant by multiplying
    /// with its reciprocal: 49·(1/49) is 0.9999999999999999, and 3·(1/5) ≠ 9·(1/15).
    #[test]
    fn goalposts_are_exact() {
        let df = normalised(
            &[
                ("a", "higher_is_better", "utopia = 49\ndystopia = 0"),
                ("b", "lower_is_better", "utopia = 0\ndystopia = 49"),
                ("p", "higher_is_better", "utopia = 5\ndystopia = 0"),
                ("q", "higher_is_better", "utopia = 15\ndystopia = 0"),
                ("e", "higher_is_better", "goalposts = \"observed\""),
            ],
            &[
                vec![Some(49.0), Some(0.0), Some(3.0), Some(9.0), Some(0.0)],
                vec![Some(0.0), Some(49.0), Some(5.0), Some(15.0), Some(49.0)],
                vec![Some(7.0), Some(7.0), Some(0.0), Some(0.0), Some(7.0)],
            ],
            None,
            "global",
        );
        // Exact, not close: at the goalposts and for equal ratios.
        assert_eq!(values(&df, "a")[..2], [100.0, 0.0]);
        assert_eq!(values(&df, "b")[..2], [100.0, 0.0]);
        assert_eq!(values(&df, "p")[1], 100.0);
        assert_eq!(values(&df, "p")[0], values(&df, "q")[0], "3/5 and 9/15 tie");
        assert_eq!(values(&df, "p")[0], 60.0);
        assert_eq!(values(&df, "e")[1], 100.0);
        assert_eq!(values(&df, "a")[2], values(&df, "e")[2], "7/49 both ways");
    }

    /// Goalposts rescaled in one pass equal their polars expressions to the bit (checked
    /// by `normalised_with`): fixed either way round, observed both directions, caps, log
    /// transforms, values beyond the goalposts, with and without clipping, missing values.
    #[test]
    fn goalposts_in_one_pass_equal_the_expressions() {
        let mut rng = crate::stats::Rng::new(5);
        let rows: Vec<Vec<Option<f64>>> = (0..200)
            .map(|r| {
                (0..6)
                    .map(|j| match (r + j) % 13 {
                        0 => None,
                        // At goalposts; values are positive, as ingest checks them for logs.
                        1 => Some(3.0),
                        2 => Some(97.0),
                        _ => Some(0.5 + rng.uniform() * 120.0),
                    })
                    .collect()
            })
            .collect();
        for clip in [false, true] {
            let df = normalised_with(
                &[
                    ("g1", "higher_is_better", "utopia = 97\ndystopia = 3"),
                    ("g2", "lower_is_better", "utopia = 3.3\ndystopia = 90"),
                    ("g3", "higher_is_better", "goalposts = \"observed\""),
                    (
                        "g4",
                        "lower_is_better",
                        "goalposts = \"observed\"\ncap_max = 80\ncap_min = 2",
                    ),
                    (
                        "e",
                        "higher_is_better",
                        "goalposts = \"observed\"\nlog = true",
                    ),
                    (
                        "f",
                        "higher_is_better",
                        "utopia = 110\ndystopia = 1\nlog = true",
                    ),
                ],
                &rows,
                None,
                &format!("scope = \"global\"\nclip = {clip}"),
            );
            let a = values(&df, "g1");
            assert!(
                a.iter().any(|v| *v > 100.0) != clip,
                "beyond the utopia unless clipped"
            );
        }
    }

    #[test]
    fn goalposts_respect_direction() {
        // Lower is better, utopia 0, dystopia 50: 10 → 80; 60 is worse than the dystopia.
        let df = normalised(
            &[("x", "lower_is_better", "utopia = 0\ndystopia = 50")],
            &column(&[10.0, 50.0, 60.0, 0.0]),
            None,
            "global",
        );
        close(&values(&df, "x"), &[80.0, 0.0, -20.0, 100.0]);
        assert!(
            values(&df, "x")[1].is_sign_positive(),
            "0, not −0, at the dystopia"
        );
        // Observed goalposts, higher is better.
        let df = normalised(
            &[("x", "higher_is_better", "goalposts = \"observed\"")],
            &column(&[2.0, 4.0, 12.0]),
            None,
            "global",
        );
        close(&values(&df, "x"), &[0.0, 20.0, 100.0]);
    }

    #[test]
    fn minmax_onto_a_range_with_direction() {
        let rows = column(&[1.0, 2.0, 3.0, 5.0]);
        let up = normalised(
            &[(
                "x",
                "higher_is_better",
                "normalisation = { method = \"minmax\" }",
            )],
            &rows,
            None,
            "global",
        );
        close(&values(&up, "x"), &[0.0, 25.0, 50.0, 100.0]);
        let down = normalised(
            &[(
                "x",
                "lower_is_better",
                "normalisation = { method = \"minmax\", range = [1, 100] }",
            )],
            &rows,
            None,
            "global",
        );
        close(&values(&down, "x"), &[100.0, 75.25, 50.5, 1.0]);
    }

    #[test]
    fn zscores_use_the_sample_standard_deviation() {
        // Mean 5; Σd² = 32, so the sample sd is √(32/7).
        let rows = column(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        let df = normalised(
            &[(
                "x",
                "higher_is_better",
                "normalisation = { method = \"zscore\" }",
            )],
            &rows,
            None,
            "global",
        );
        let sd = (32.0f64 / 7.0).sqrt();
        let want: Vec<f64> = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]
            .iter()
            .map(|x| (x - 5.0) / sd)
            .collect();
        close(&values(&df, "x"), &want);
        // Rescaled to mean 100 and sd 10, lower is better.
        let df = normalised(
            &[(
                "x",
                "lower_is_better",
                "normalisation = { method = \"zscore\", mean = 100, sd = 10 }",
            )],
            &rows,
            None,
            "global",
        );
        let want: Vec<f64> = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]
            .iter()
            .map(|x| 100.0 - 10.0 * (x - 5.0) / sd)
            .collect();
        close(&values(&df, "x"), &want);
    }

    #[test]
    fn ranks_and_percentile_ranks_share_the_lowest_rank() {
        let rows = column(&[3.0, 1.0, 2.0, 2.0]);
        let df = normalised(
            &[(
                "r",
                "higher_is_better",
                "normalisation = { method = \"rank\" }",
            )],
            &rows,
            None,
            "global",
        );
        close(&values(&df, "r"), &[4.0, 1.0, 2.0, 2.0]);
        let df = normalised(
            &[(
                "p",
                "higher_is_better",
                "normalisation = { method = \"percentile\" }",
            )],
            &rows,
            None,
            "global",
        );
        close(&values(&df, "p"), &[100.0, 0.0, 100.0 / 3.0, 100.0 / 3.0]);
    }

    #[test]
    fn distance_to_target_with_and_without_cap() {
        // Target 30, minimum 10: 1 − (30 − x)/20.
        let rows = column(&[10.0, 20.0, 30.0, 40.0]);
        let capped = normalised(
            &[(
                "t",
                "higher_is_better",
                "normalisation = { method = \"distance_to_target\" }\ntarget = 30",
            )],
            &rows,
            None,
            "global",
        );
        close(&values(&capped, "t"), &[0.0, 50.0, 100.0, 100.0]);
        let uncapped = normalised(
            &[(
                "t",
                "higher_is_better",
                "normalisation = { method = \"distance_to_target\", cap = false }\ntarget = 30",
            )],
            &rows,
            None,
            "global",
        );
        close(&values(&uncapped, "t"), &[0.0, 50.0, 100.0, 150.0]);
        // Lower is better, target 20: on −x, the worst is −40 and the target −20.
        let down = normalised(
            &[(
                "t",
                "lower_is_better",
                "normalisation = { method = \"distance_to_target\" }\ntarget = 20",
            )],
            &rows,
            None,
            "global",
        );
        close(&values(&down, "t"), &[100.0, 100.0, 50.0, 0.0]);
        let max = normalised(
            &[(
                "m",
                "higher_is_better",
                "normalisation = { method = \"distance_to_max\" }",
            )],
            &rows,
            None,
            "global",
        );
        close(&values(&max, "m"), &[0.0, 100.0 / 3.0, 200.0 / 3.0, 100.0]);
    }

    #[test]
    fn per_year_scope_takes_statistics_within_each_year() {
        let rows = column(&[1.0, 3.0, 10.0, 30.0]);
        let years = [2020, 2020, 2021, 2021];
        let per_year = normalised(
            &[(
                "x",
                "higher_is_better",
                "normalisation = { method = \"minmax\" }",
            )],
            &rows,
            Some(&years),
            "per_year",
        );
        close(&values(&per_year, "x"), &[0.0, 100.0, 0.0, 100.0]);
        let global = normalised(
            &[(
                "x",
                "higher_is_better",
                "normalisation = { method = \"minmax\" }",
            )],
            &rows,
            Some(&years),
            "global",
        );
        close(
            &values(&global, "x"),
            &[0.0, 200.0 / 29.0, 900.0 / 29.0, 100.0],
        );
    }
}
