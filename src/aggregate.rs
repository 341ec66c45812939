//! Computes, from the node table, each parent node's score column and each node's ranks.
//!
//! Every mean is written in the weighted form over the *present* children, so missing
//! children drop out with their weight:
//! arithmetic `Σw·x / Σw·[x present]`, power `(Σw·x^p / Σw·[x present])^(1/p)`,
//! geometric `exp(Σw·ln x / Σw·[x present])`, harmonic `Σw·[x present] / Σ(w/x)`.
//! The availability rule is evaluated with the score from the count of present
//! children, which is also kept (`n:<id>`) so that `write` can say why a score is missing.
//! Levels are computed bottom-up by one function, whatever the depth of the tree. Scores
//! were polars expressions until the national panel showed each parent's ~30 operations
//! allocating a column apiece; they are now loops over the children's values with the
//! same float operations in the same order, equal to the bit (a test keeps the
//! expressions as the reference).

use polars::prelude::*;

use crate::diagnostic::{Location, Problem, Problems};
use crate::plan::{Level, Mean, Node, Plan, TERRITORY_ID, YEAR};

/// Tolerance for the availability threshold: `min_share · n` built from floats may land a
/// hair above a whole number (e.g. 0.7·10).
const EPS: f64 = 1e-12;

/// Column with the number of present children of a parent node.
pub fn count_column(id: &str) -> String {
    format!("n:{id}")
}

/// Column with the rank of a node.
pub fn rank_column(id: &str) -> String {
    format!("rank:{id}")
}

/// Minimum number of present children for a node with `total` children.
pub fn required_children(min_share: f64, total: usize) -> usize {
    ((min_share * total as f64) - EPS).ceil().max(1.0) as usize
}

/// Adds the score and child-count columns of every level above `from`, bottom-up.
pub fn aggregate(mut frame: DataFrame, plan: &Plan, from: Level) -> PolarsResult<DataFrame> {
    for level in [Level::Component, Level::Dimension, Level::Index] {
        if level > from {
            frame = aggregate_level(frame, plan, level)?;
        }
    }
    Ok(frame)
}

/// Adds the score and child-count columns of the nodes of one level, parents in parallel.
pub fn aggregate_level(mut frame: DataFrame, plan: &Plan, level: Level) -> PolarsResult<DataFrame> {
    use rayon::prelude::*;
    let parents: Vec<&Node> = plan.nodes_at(level).collect();
    let columns: Vec<[Column; 2]> = parents
        .par_iter()
        .map(|node| parent_columns(plan, node, &frame))
        .collect::<PolarsResult<_>>()?;
    // Added in one call: column by column, each addition rebuilt the frame's name index,
    // quadratic in a framework of thousands of nodes. Columns already there (a level
    // recomputed after anchoring) are replaced in place.
    let (existing, new): (Vec<Column>, Vec<Column>) = columns
        .into_iter()
        .flatten()
        .partition(|c| frame.schema().contains(c.name()));
    for c in existing {
        frame.replace(&c.name().clone(), c)?;
    }
    frame.hstack_mut(&new)?;
    Ok(frame)
}

/// One child column: its values in place (anything in the slots of missing values), and
/// which are there.
struct Child<'a> {
    values: &'a [f64],
    /// None when every value is there.
    validity: Option<&'a polars_arrow::bitmap::Bitmap>,
    weight: f64,
}

/// The score and present-children count of one parent node, row by row with the float
/// operations of the formulas in the module's documentation, in a fixed order: the sums
/// left to right up to [`FOLD_MAX`] terms, pairwise (halves summed separately) beyond,
/// so that a score does not depend on how the rows are split. A loop over the children's
/// values: written as polars expressions, the ~30 operations of a parent each allocated
/// a column, and aggregation took 140 ms of a national panel's 300 ms of scoring.
fn parent_columns(plan: &Plan, node: &Node, frame: &DataFrame) -> PolarsResult<[Column; 2]> {
    let rule = node.rule.as_ref().expect("parents have a rule");
    let height = frame.height();
    let chunked: Vec<(Float64Chunked, f64)> = node
        .children
        .iter()
        .map(|&i| {
            let child = &plan.nodes[i];
            Ok((
                frame.column(&child.id)?.f64()?.rechunk().into_owned(),
                child.weight,
            ))
        })
        .collect::<PolarsResult<_>>()?;
    let children: Vec<Child> = chunked
        .iter()
        .map(|(c, weight)| {
            let array = c.downcast_iter().next().expect("one chunk");
            Child {
                values: array.values().as_slice(),
                validity: array.validity().filter(|v| v.unset_bits() > 0),
                weight: *weight,
            }
        })
        .collect();
    let mean = rule.mean;
    let required = required_children(rule.min_share, children.len()) as u32;
    let mut scores = vec![0.0; height];
    let mut counts = vec![0u32; height];
    // Whether each row has a score, eight rows a byte (a block's rows fill whole bytes).
    let mut available = vec![0u8; height.div_ceil(8)];
    // Rows a block at a time, so that a block's columns stay in cache across the passes,
    // in the same order for every row. Blocks in parallel: a level of fewer parents than
    // cores (an index, three dimensions) left cores idle.
    use rayon::prelude::*;
    let blocks = scores
        .par_chunks_mut(BLOCK)
        .zip(counts.par_chunks_mut(BLOCK))
        .zip(available.par_chunks_mut(BLOCK / 8))
        .enumerate()
        .with_min_len(4);
    blocks.for_each(|(b, ((scores, counts), available))| {
        let start = b * BLOCK;
        let n = scores.len();
        // Each child's rows of the block, and which are there, read from its validity
        // once (iterating bits, three times over, was most of the aggregation's time).
        let rows: Vec<Rows> = children
            .iter()
            .map(|c| Rows {
                values: &c.values[start..start + n],
                valid: c
                    .validity
                    .map(|v| crate::normalise::words(&v.clone().sliced(start, n))),
                weight: c.weight,
            })
            .collect();
        // A present child's term, `term(x, w)`: one closure per mean, so that each is
        // compiled into the loops that sum it.
        macro_rules! sums {
            ($term:expr) => {
                if rows.len() <= FOLD_MAX {
                    folded(&rows, $term, counts)
                } else {
                    pairwise(&rows, $term, counts)
                }
            };
        }
        let (terms, weight_present) = match mean {
            Mean::Arithmetic => sums!(|x: f64, w: f64| x * w),
            Mean::Power(p) => {
                let p = Power::of(p);
                sums!(move |x: f64, w: f64| p.apply(x) * w)
            }
            Mean::Geometric => sums!(|x: f64, w: f64| x.log(std::f64::consts::E) * w),
            Mean::Harmonic => sums!(|x: f64, w: f64| w / x),
        };
        match mean {
            Mean::Arithmetic => quotient(scores, &terms, &weight_present, |t, wp| t / wp),
            Mean::Power(p) => {
                let mut ratios = vec![0.0; n];
                quotient(&mut ratios, &terms, &weight_present, |t, wp| t / wp);
                power(scores, &ratios, 1.0 / p);
            }
            Mean::Geometric => quotient(scores, &terms, &weight_present, |t, wp| (t / wp).exp()),
            Mean::Harmonic => quotient(scores, &terms, &weight_present, |t, wp| wp / t),
        }
        let eights = counts.chunks(8).zip(weight_present.chunks(8));
        for (byte, (counts, weight_present)) in available.iter_mut().zip(eights) {
            *byte = counts
                .iter()
                .zip(weight_present)
                .enumerate()
                .fold(0, |byte, (k, (&n, &wp))| {
                    byte | u8::from(n >= required && wp > 0.0) << k
                });
        }
    });
    let available = polars_arrow::bitmap::Bitmap::from_u8_vec(available, height);
    let validity = (available.unset_bits() > 0).then_some(available);
    Ok([
        Float64Chunked::from_vec_validity(node.id.as_str().into(), scores, validity).into_column(),
        UInt32Chunked::from_vec(count_column(&node.id).as_str().into(), counts).into_column(),
    ])
}

/// One child's rows of a block.
struct Rows<'a> {
    values: &'a [f64],
    /// Which rows are there, 64 to a word; None when all are.
    valid: Option<Vec<u64>>,
    weight: f64,
}

/// The sums of a block's terms and present weights, and its counts of present children,
/// for parents of at most [`FOLD_MAX`] children: [`sum`]'s left folds. Eight rows at a
/// time, every child added to sums held in registers (the sums start from -0, which
/// adding any value leaves exactly that value, as a fold's first term is): a pass per
/// child over sums in memory, and one more to compute its terms, loaded and stored
/// each sum once per child. `term(x, w)` is a present child's term.
fn folded(
    children: &[Rows<'_>],
    term: impl Fn(f64, f64) -> f64 + Copy,
    counts: &mut [u32],
) -> (Vec<f64>, Vec<f64>) {
    const LANES: usize = 8;
    let n = counts.len();
    let mut terms = vec![0.0; n];
    let mut weight_present = vec![0.0; n];
    let full = n - n % LANES;
    let rows = terms
        .chunks_exact_mut(LANES)
        .zip(weight_present.chunks_exact_mut(LANES))
        .zip(counts.chunks_exact_mut(LANES));
    for (k, ((t, wp), c)) in rows.enumerate() {
        let (sums, weights, count) = fold_rows::<LANES>(children, k * LANES, term);
        t.copy_from_slice(&sums);
        wp.copy_from_slice(&weights);
        c.copy_from_slice(&count);
    }
    for r in full..n {
        let ([sum], [weight], [count]) = fold_rows::<1>(children, r, term);
        (terms[r], weight_present[r], counts[r]) = (sum, weight, count);
    }
    // No term at all sums to 0, as `sum` has it.
    if children.iter().all(|c| c.weight == 0.0) {
        terms.fill(0.0);
    }
    (terms, weight_present)
}

/// [`folded`]'s sums for rows `start..start + L`.
#[inline]
fn fold_rows<const L: usize>(
    children: &[Rows<'_>],
    start: usize,
    term: impl Fn(f64, f64) -> f64,
) -> ([f64; L], [f64; L], [u32; L]) {
    let mut sums = [-0.0; L];
    let mut weights = [-0.0; L];
    let mut counts = [0u32; L];
    for c in children {
        let w = c.weight;
        let x: &[f64; L] = c.values[start..start + L].try_into().expect("L rows");
        // The rows' bits, in one word (L divides 64 and `start` is a multiple of L).
        let bits = c
            .valid
            .as_ref()
            .map(|words| words[start / 64] >> (start % 64));
        let ok = |bits: u64, j: usize| bits >> j & 1 == 1;
        match (bits, w != 0.0) {
            (Some(bits), true) => {
                for j in 0..L {
                    let t = term(x[j], w);
                    let ok = ok(bits, j);
                    sums[j] += if ok { t } else { 0.0 };
                    weights[j] += if ok { w } else { 0.0 };
                    counts[j] += ok as u32;
                }
            }
            (Some(bits), false) => {
                for j in 0..L {
                    let ok = ok(bits, j);
                    weights[j] += if ok { w } else { 0.0 };
                    counts[j] += ok as u32;
                }
            }
            (None, true) => {
                for j in 0..L {
                    sums[j] += term(x[j], w);
                    weights[j] += w;
                    counts[j] += 1;
                }
            }
            (None, false) => {
                for j in 0..L {
                    weights[j] += w;
                    counts[j] += 1;
                }
            }
        }
    }
    (sums, weights, counts)
}

/// The same sums for parents of more than [`FOLD_MAX`] children, each summed by [`sum`]
/// (pairwise), the counts left to right.
fn pairwise(
    children: &[Rows<'_>],
    term: impl Fn(f64, f64) -> f64 + Copy,
    counts: &mut [u32],
) -> (Vec<f64>, Vec<f64>) {
    let n = counts.len();
    // Zero-weight children would turn 0·ln(0) or 0·∞ into NaN: they take no part in the mean.
    let weighted: Vec<&Rows> = children.iter().filter(|c| c.weight != 0.0).collect();
    let terms = sum(weighted.len(), n, |k, out| {
        let c = weighted[k];
        fill(out, c.values, |x| term(x, c.weight));
        if let Some(valid) = &c.valid {
            for (r, t) in out.iter_mut().enumerate() {
                *t = if present(valid, r) { *t } else { 0.0 };
            }
        }
    });
    let weight_present = sum(children.len(), n, |k, out| {
        let c = &children[k];
        match &c.valid {
            Some(valid) => fill_from(
                out,
                0..n,
                |r| if present(valid, r) { c.weight } else { 0.0 },
            ),
            None => out.fill(c.weight),
        }
    });
    for c in children {
        match &c.valid {
            Some(valid) => counts
                .iter_mut()
                .enumerate()
                .for_each(|(r, n)| *n += present(valid, r) as u32),
            None => counts.iter_mut().for_each(|n| *n += 1),
        }
    }
    (terms, weight_present)
}

/// Whether bit `r` of `words` is set.
fn present(words: &[u64], r: usize) -> bool {
    words[r / 64] >> (r % 64) & 1 == 1
}

/// Rows per block of [`parent_columns`]: a block's column is 16 KiB, its sums and counts stay
/// in the first-level cache.
const BLOCK: usize = 2048;

/// `out[r] = f(values[r])`.
fn fill(out: &mut [f64], values: &[f64], f: impl Fn(f64) -> f64) {
    for (o, &x) in out.iter_mut().zip(values) {
        *o = f(x);
    }
}

/// `out[r] = f(the r-th item)`.
fn fill_from<T>(out: &mut [f64], items: impl Iterator<Item = T>, f: impl Fn(T) -> f64) {
    for (o, x) in out.iter_mut().zip(items) {
        *o = f(x);
    }
}

/// `out[r] = f(terms[r], weight_present[r])`.
fn quotient(out: &mut [f64], terms: &[f64], weight_present: &[f64], f: impl Fn(f64, f64) -> f64) {
    for (o, (&t, &wp)) in out.iter_mut().zip(terms.iter().zip(weight_present)) {
        *o = f(t, wp);
    }
}

/// `out[r] = values[r]` to the power `e` (see [`Power`]).
fn power(out: &mut [f64], values: &[f64], e: f64) {
    let p = Power::of(e);
    fill(out, values, |x| p.apply(x));
}

/// How a value is raised to a power, as polars computes it (and as scores were computed
/// when they were polars expressions): the square root for 0.5, repeated products for
/// whole powers from 2 to 9, `powf` otherwise.
#[derive(Clone, Copy)]
enum Power {
    One,
    Sqrt,
    Times(u8),
    Powf(f64),
}

impl Power {
    fn of(e: f64) -> Power {
        if e == 1.0 {
            Power::One
        } else if e == 0.5 {
            Power::Sqrt
        } else if e.fract() == 0.0 && e > 1.0 && e < 10.0 {
            Power::Times(e as u8)
        } else {
            Power::Powf(e)
        }
    }

    #[inline]
    fn apply(self, x: f64) -> f64 {
        match self {
            Power::One => x,
            Power::Sqrt => x.sqrt(),
            Power::Times(k) => {
                let mut o = x;
                for _ in 1..k {
                    o *= x;
                }
                o
            }
            Power::Powf(e) => x.powf(e),
        }
    }
}

/// Sum of `len` columns of `height` rows, each written by `term(k, out)`: row by row left
/// to right up to [`FOLD_MAX`] terms; beyond, pairwise (halves summed separately), the
/// more accurate. Frameworks with at most [`FOLD_MAX`] children per parent are summed
/// exactly as they always were. No terms sum to 0.
fn sum(len: usize, height: usize, term: impl Fn(usize, &mut [f64]) + Copy) -> Vec<f64> {
    fn range(
        from: usize,
        to: usize,
        height: usize,
        term: impl Fn(usize, &mut [f64]) + Copy,
    ) -> Vec<f64> {
        if to - from <= FOLD_MAX {
            let mut acc = vec![0.0; height];
            term(from, &mut acc);
            let mut t = vec![0.0; height];
            for k in from + 1..to {
                term(k, &mut t);
                acc.iter_mut().zip(&t).for_each(|(a, t)| *a += t);
            }
            return acc;
        }
        let middle = from + (to - from) / 2;
        let mut left = range(from, middle, height, term);
        let right = range(middle, to, height, term);
        left.iter_mut().zip(&right).for_each(|(l, r)| *l += r);
        left
    }
    if len == 0 {
        vec![0.0; height]
    } else {
        range(0, len, height, term)
    }
}

/// Parents with more children than this are summed pairwise.
const FOLD_MAX: usize = 16;

/// The rank of every node's score, per year: 1 = best, ties share the best (lowest) rank,
/// missing scores and `[territories] unranked` territories have none. One sort per node
/// and year, the rows of each year found once for all nodes, nodes in parallel: polars'
/// windowed rank re-grouped the frame for each of them, which was most of the compute
/// stage on a national panel (1.5 of 1.8 s for 76 nodes × 350,000 rows).
///
/// Reading every score anyway, it notes where each is first not finite, for
/// [`report_non_finite`]: its own pass over every score was memory-bound (14 ms of the
/// national panel's compute stage). Ranks of a frame with such a score are not to be used.
pub fn ranks(plan: &Plan, frame: &DataFrame) -> PolarsResult<Ranked> {
    ranks_of(plan, frame, &plan.nodes)
}

/// Rank columns, and for each the first row whose score is there but not finite.
#[derive(Debug)]
pub struct Ranked {
    pub columns: Vec<Column>,
    pub first_non_finite: Vec<Option<usize>>,
}

/// The rank columns of `nodes` only (see [`ranks`]).
pub fn ranks_of(plan: &Plan, frame: &DataFrame, nodes: &[Node]) -> PolarsResult<Ranked> {
    use rayon::prelude::*;
    let height = frame.height();
    // The group (year) of each row, groups numbered in year order (one group without
    // years), and where each group's rows start once laid out group after group.
    let (groups, group_of) = if plan.has_years() {
        crate::normalise::year_groups(frame.column(YEAR)?.i64()?)
    } else {
        (vec![None], vec![0; height])
    };
    let mut offsets = vec![0usize; groups.len() + 1];
    for &g in &group_of {
        offsets[g as usize + 1] += 1;
    }
    for g in 0..groups.len() {
        offsets[g + 1] += offsets[g];
    }
    // Where each row's value goes when the groups are laid out one after another.
    let slot_of: Vec<u32> = {
        let mut at = offsets[..groups.len()].to_vec();
        group_of
            .iter()
            .map(|&g| {
                let at = &mut at[g as usize];
                *at += 1;
                (*at - 1) as u32
            })
            .collect()
    };
    let largest = offsets.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    let local_bits = bits(largest.saturating_sub(1) as u64).max(1);
    // Unranked territories (aggregates such as "World") take no place.
    let hidden: Vec<usize> = if plan.keys.unranked.is_empty() {
        Vec::new()
    } else {
        let ids = frame.column(TERRITORY_ID)?.str()?;
        ids.iter()
            .enumerate()
            .filter(|(_, id)| id.is_some_and(|id| plan.keys.unranked.iter().any(|u| u == id)))
            .map(|(r, _)| r)
            .collect()
    };
    // Each worker's buffers, reused from node to node: allocated afresh, their pages
    // cost more to fault in than to sort.
    nodes
        .par_iter()
        .map_init(RankBuffers::default, |b, node| {
            // The node's values in place (one chunk): no per-node copies of Option<_>
            // vectors, whose page faults dominated on large panels.
            let column = frame.column(node.id.as_str())?.f64()?.rechunk();
            let array = column.downcast_iter().next().expect("one chunk");
            let values = array.values().as_slice();
            // Each group's values side by side, in row order (every slot is written: no
            // need to clear them).
            b.values.resize(height, f64::NAN);
            let mut finite = true;
            for (&slot, &v) in slot_of.iter().zip(values) {
                b.values[slot as usize] = v;
                finite &= v.is_finite();
            }
            // Then a value that takes no place (missing, or an unranked territory's) as
            // NaN, which no usable score is: visiting only those rows rather than
            // testing every row's validity bit, which was a fifth of the ranks' time.
            let valid = array.validity().filter(|v| v.unset_bits() > 0);
            if let Some(valid) = valid {
                for r in (!valid).true_idx_iter() {
                    b.values[slot_of[r] as usize] = f64::NAN;
                }
            }
            for &r in &hidden {
                b.values[slot_of[r] as usize] = f64::NAN;
            }
            // `finite` also read the slots of missing values, which hold anything: only
            // when it is false are the present values searched.
            let present = |r: usize| valid.is_none_or(|b| b.get_bit(r));
            let first_non_finite =
                (!finite).then(|| (0..height).find(|&r| present(r) && !values[r].is_finite()));
            b.local.resize(height, 0);
            let mut placed = 0;
            for w in offsets.windows(2) {
                placed += rank_group(
                    &b.values[w[0]..w[1]],
                    &mut b.entries,
                    &mut b.scratch,
                    &mut b.levels,
                    local_bits,
                    &mut b.local[w[0]..w[1]],
                );
            }
            // Back in row order.
            let rank: Vec<u32> = slot_of.iter().map(|&slot| b.local[slot as usize]).collect();
            let name = rank_column(&node.id).as_str().into();
            let ranked = if placed < height {
                let validity = match valid {
                    // Every value there is finite and takes a place: the ranks are
                    // there where the values are.
                    Some(valid) if finite && hidden.is_empty() => valid.clone(),
                    _ => nonzero(&rank),
                };
                UInt32Chunked::from_vec_validity(name, rank, Some(validity))
            } else {
                UInt32Chunked::from_vec(name, rank)
            };
            Ok((ranked.into_column(), first_non_finite.flatten()))
        })
        .collect::<PolarsResult<Vec<_>>>()
        .map(|ranked| {
            let (columns, first_non_finite) = ranked.into_iter().unzip();
            Ranked {
                columns,
                first_non_finite,
            }
        })
}

/// Where `values` are not zero, eight at a time (collecting bools bit by bit was slow).
fn nonzero(values: &[u32]) -> polars_arrow::bitmap::Bitmap {
    let byte = |c: &[u32]| {
        c.iter()
            .enumerate()
            .fold(0u8, |b, (i, &v)| b | (u8::from(v != 0) << i))
    };
    let chunks = values.chunks_exact(8);
    let last = chunks.remainder();
    let mut bytes: Vec<u8> = chunks.map(byte).collect();
    if !last.is_empty() {
        bytes.push(byte(last));
    }
    polars_arrow::bitmap::Bitmap::from_u8_vec(bytes, values.len())
}

/// A rank worker's buffers (see [`ranks_of`]).
#[derive(Default)]
struct RankBuffers {
    /// The node's values, group after group.
    values: Vec<f64>,
    /// Ranks by position in `values`, 0 for none.
    local: Vec<u32>,
    entries: Vec<u64>,
    scratch: Vec<u64>,
    levels: Levels,
}

/// Bits of a radix digit: 2,048 counters, which stay in the first-level cache.
const DIGIT: u32 = 11;

/// Ranks one group's `values` (NaN for those that take no place) into `rank`: 1 for the
/// largest, ties sharing the best rank, 0 for NaN (every element of `rank` is written).
/// Returns how many were ranked.
///
/// Each value is mapped to an integer key that never orders two values wrongly but may
/// merge close ones: its distance to the group's largest value, scaled so that the
/// group's range spans 2²² less two (two radix digits; 2³³ less two, three digits, for
/// groups of more than 131,072 values, so that merged values stay rare); NaN takes the
/// last key. The key sits above the value's position in one u64 and the radix sort
/// orders those; runs of equal keys (ties, and values too close to tell apart in 22
/// bits) are then ordered by their values. A range that cannot be scaled (a single
/// value, or one wider than the largest float) gives every value the key 0: one run,
/// sorted by value, and still exact. A group of few distinct values is first offered to
/// [`Levels::rank`], which ranks it without sorting.
fn rank_group(
    values: &[f64],
    entries: &mut Vec<u64>,
    scratch: &mut Vec<u64>,
    levels: &mut Levels,
    local_bits: u32,
    rank: &mut [u32],
) -> usize {
    let Some((low, high)) = crate::normalise::range(values) else {
        rank.fill(0); // Nothing to rank.
        return 0;
    };
    if values.len() >= 2 * LEVELS
        && let Some(ranked) = levels.rank(values, (low, high), rank)
    {
        return ranked;
    }
    let digits = if values.len() <= 1 << 17 { 2 } else { 3 };
    let key_bits = (DIGIT * digits).min(64 - local_bits);
    // The largest key is NaN's, which sorts last; values' keys stop one below.
    let top = (1u64 << key_bits) - 2;
    let key = Key::spanning((low, high), top).unwrap_or(Key {
        high,
        scale: 0.0,
        top,
    });
    let ranked = if digits == 2 {
        let (counts, ranked) = keyed::<2>(values, key, local_bits, entries);
        radix_sort(entries, scratch, local_bits, &counts);
        ranked
    } else {
        let (counts, ranked) = keyed::<3>(values, key, local_bits, entries);
        radix_sort(entries, scratch, local_bits, &counts);
        ranked
    };
    // Runs of equal keys, then of equal values within them.
    // (`move`: a captured reference was read again for every entry.)
    let position = move |p: u64| (p & ((1 << local_bits) - 1)) as usize;
    // Values' order, best first, with -0 taken as +0: equal values are equal exactly.
    let exact = move |p: u64| {
        let v = values[position(p)];
        !order_key(if v == 0.0 { 0.0 } else { v })
    };
    // NaN, last, takes no place.
    let (entries, unranked) = entries.split_at_mut(ranked);
    for &p in unranked.iter() {
        rank[position(p)] = 0;
    }
    let mut i = 0;
    while i < entries.len() {
        let k = entries[i] >> local_bits;
        let mut j = i + 1;
        while j < entries.len() && entries[j] >> local_bits == k {
            j += 1;
        }
        let run = &mut entries[i..j];
        if run.len() == 1 {
            rank[position(run[0])] = i as u32 + 1;
            i = j;
            continue;
        }
        // Most runs are ties: ranked as one while checking that they are (compared as
        // numbers, -0 equal to +0 and no NaN here, as `exact` orders them).
        let first = values[position(run[0])];
        let mut tie = true;
        for &p in run.iter() {
            let at = position(p);
            tie &= values[at] == first;
            rank[at] = i as u32 + 1;
        }
        if !tie {
            run.sort_unstable_by_key(|&p| exact(p));
            let mut current = i as u32 + 1;
            for t in 0..run.len() {
                if t > 0 && exact(run[t]) != exact(run[t - 1]) {
                    current = (i + t) as u32 + 1;
                }
                rank[position(run[t])] = current;
            }
        }
        i = j;
    }
    ranked
}

/// The buckets of [`Levels::rank`]: their counts and first values stay in the
/// first-level cache.
const LEVELS: usize = 4096;

/// Per bucket of [`Levels::rank`], and one more for values that take no place: a count
/// then a place, and the first value.
struct Levels {
    counts: Vec<u32>,
    firsts: Vec<f64>,
}

impl Default for Levels {
    fn default() -> Self {
        Levels {
            counts: vec![0; LEVELS + 1],
            firsts: vec![0.0; LEVELS + 1],
        }
    }
}

impl Levels {
    /// Ranks a group whose distinct values fall in distinct buckets of [`LEVELS`] across
    /// its range, without sorting it — published decimals: a year's life expectancies
    /// take about a hundred values, a rate in percent a few hundred. A first pass counts
    /// the values per bucket (the same monotone key as [`rank_group`]'s, of 12 bits) and
    /// checks that each bucket holds one value; each bucket's place is then one more
    /// than the count before it, and a second pass gives each value its bucket's place.
    /// None (the radix sort then ranks the group) as soon as a block of values finds a
    /// bucket with two different values: continuous values do within a few hundred.
    /// Both passes are without branches on the values, whose order is random.
    fn rank(&mut self, values: &[f64], (low, high): (f64, f64), rank: &mut [u32]) -> Option<usize> {
        let key = Key::spanning((low, high), LEVELS as u64 - 1)?;
        // NaN (no place) goes to the last bucket, LEVELS.
        let bucket = move |v: f64| {
            if v.is_nan() {
                LEVELS
            } else {
                key.of(v) as usize
            }
        };
        let Levels { counts, firsts } = self;
        counts.fill(0);
        let mut mixed = false;
        for block in values.chunks(512) {
            for &v in block {
                let b = bucket(v);
                let c = counts[b];
                let first = if c == 0 { v } else { firsts[b] };
                firsts[b] = first;
                // -0 equals +0 here, as the ranks want; NaN's bucket is not checked.
                mixed |= first != v && !v.is_nan();
                counts[b] = c + 1;
            }
            if mixed {
                return None;
            }
        }
        let mut place = 1;
        for c in &mut counts[..LEVELS] {
            (*c, place) = (place, place + *c);
        }
        counts[LEVELS] = 0;
        for (&v, r) in values.iter().zip(rank.iter_mut()) {
            *r = counts[bucket(v)];
        }
        Some(place as usize - 1)
    }
}

/// How a value maps to its sort key (see [`rank_group`]).
#[derive(Clone, Copy)]
struct Key {
    high: f64,
    scale: f64,
    top: u64,
}

impl Key {
    /// The key that maps `low..=high` onto `0..=top`, the largest value to 0; None when
    /// the range cannot be scaled (a single value, or one wider than the largest float).
    /// Monotone: a larger value never gets a larger key (subtraction and multiplication
    /// by a positive number round monotonically, and so does truncation).
    fn spanning((low, high): (f64, f64), top: u64) -> Option<Key> {
        let scale = top as f64 / (high - low);
        scale.is_finite().then_some(Key { high, scale, top })
    }

    /// Through i64: the keys fit, and the conversion is one instruction.
    #[inline]
    fn of(self, v: f64) -> u64 {
        (((self.high - v) * self.scale) as i64 as u64).min(self.top)
    }
}

/// Each value's entry (its key above its position; NaN the largest key, one above
/// any value's) into `entries`, the counts of each of the keys' `D` digits, and how
/// many values are not NaN, in one pass. Every value has an entry, so the vector is
/// extended from a slice's map, without a capacity check and a length stored per value.
fn keyed<const D: usize>(
    values: &[f64],
    key: Key,
    local_bits: u32,
    entries: &mut Vec<u64>,
) -> ([[u32; 1 << DIGIT]; D], usize) {
    let mut counts = [[0u32; 1 << DIGIT]; D];
    let mut nan = 0;
    let nan_key = key.top + 1;
    entries.clear();
    entries.extend(values.iter().enumerate().map(|(i, &v)| {
        let k = if v.is_nan() {
            nan += 1;
            nan_key
        } else {
            key.of(v)
        };
        for (d, c) in counts.iter_mut().enumerate() {
            c[(k >> (DIGIT * d as u32)) as usize & ((1 << DIGIT) - 1)] += 1;
        }
        k << local_bits | i as u64
    }));
    (counts, values.len() - nan)
}

/// Bits needed to write `x`.
fn bits(x: u64) -> u32 {
    64 - x.leading_zeros()
}

/// Sorts by the digits above bit `from` whose `counts` are given: a least-significant-digit
/// radix sort, skipping the digits every entry shares. On a year of 35,000 territories
/// it is several times faster than a comparison sort, and ranks sort every node of
/// every year.
fn radix_sort(v: &mut Vec<u64>, scratch: &mut Vec<u64>, from: u32, counts: &[[u32; 1 << DIGIT]]) {
    const MASK: u64 = (1 << DIGIT) - 1;
    if v.len() < 256 {
        v.sort_unstable();
        return;
    }
    scratch.clear();
    scratch.resize(v.len(), 0);
    for (digit, c) in counts.iter().enumerate() {
        if c.contains(&(v.len() as u32)) {
            continue;
        }
        let shift = from + DIGIT * digit as u32;
        let mut at = [0u32; 1 << DIGIT];
        let mut sum = 0;
        for (a, n) in at.iter_mut().zip(c) {
            *a = sum;
            sum += n;
        }
        let to = scratch.as_mut_slice();
        for &x in v.iter() {
            let d = ((x >> shift) & MASK) as usize;
            to[at[d] as usize] = x;
            at[d] += 1;
        }
        std::mem::swap(v, scratch);
    }
}

/// A key whose unsigned order is `f64::total_cmp`'s order.
fn order_key(v: f64) -> u64 {
    let bits = v.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// The first row whose value is there and not finite.
fn first_non_finite(values: &Float64Chunked) -> Option<usize> {
    let mut offset = 0;
    for a in values.downcast_iter() {
        // All values at once first, nulls' slots included (they hold anything): only
        // a chunk with a non-finite number somewhere is searched with its validity.
        if a.values().iter().any(|v| !v.is_finite())
            && let Some(i) = a.iter().position(|v| v.is_some_and(|v| !v.is_finite()))
        {
            return Some(offset + i);
        }
        offset += a.len();
    }
    None
}

/// A cell of the frame as text, for messages.
fn cell(frame: &DataFrame, name: &str, row: usize) -> String {
    frame
        .column(name)
        .ok()
        .and_then(|c| c.get(row).ok())
        .map(|v| v.to_string().trim_matches('"').to_owned())
        .unwrap_or_default()
}

/// "territory" or "territory, year" of a row, for messages.
fn territory_at(plan: &Plan, frame: &DataFrame, row: usize) -> String {
    let territory = cell(frame, TERRITORY_ID, row);
    if plan.has_years() {
        format!("{territory}, {}", cell(frame, YEAR, row))
    } else {
        territory
    }
}

/// Geometric and harmonic means (and power means with p < 0) are undefined for inputs
/// ≤ 0, yet would quietly come out as 0: report each such parent with its first case.
pub fn check_positive_inputs(plan: &Plan, frame: &DataFrame) -> Result<(), Problems> {
    let mut problems = Vec::new();
    for node in &plan.nodes {
        let Some(rule) = &node.rule else { continue };
        let needs_positive = match rule.mean {
            Mean::Geometric | Mean::Harmonic => true,
            Mean::Power(p) => p < 0.0,
            Mean::Arithmetic => false,
        };
        if !needs_positive {
            continue;
        }
        let found = node.children.iter().find_map(|&c| {
            let child = &plan.nodes[c];
            if child.weight == 0.0 {
                return None;
            }
            let values = frame.column(&child.id).ok()?.f64().ok()?.clone();
            let row = values.iter().position(|v| v.is_some_and(|v| v <= 0.0))?;
            Some((child, row, values.get(row)?))
        });
        let Some((child, row, value)) = found else {
            continue;
        };
        let territory = territory_at(plan, frame, row);
        problems.push(
            Problem::new(
                Location::Nowhere,
                format!(
                    "{} \"{}\" is a {} of its children, which needs positive values, but {} \"{}\" is {value} for territory {territory}",
                    node.level.as_str(),
                    node.id,
                    rule.mean.describe(),
                    child.level.as_str(),
                    child.id,
                ),
            )
            .with_help(
                "normalise onto a positive range (e.g. method = \"minmax\", range = [1, 100], as COINr does for geometric means) or use an arithmetic mean",
            ),
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Problems(problems))
    }
}

/// NaN or ±∞ in any score means a mean was undefined for its inputs (e.g. a geometric mean
/// of a negative rescaled value): report the first case, never write it.
pub fn check_finite(plan: &Plan, frame: &DataFrame) -> Result<(), Problems> {
    // Every node's first non-finite row, nodes in parallel.
    let first_bad: Vec<Option<usize>> = {
        use rayon::prelude::*;
        plan.nodes
            .par_iter()
            .map(|node| first_non_finite(frame.column(&node.id).ok()?.f64().ok()?))
            .collect()
    };
    report_non_finite(plan, frame, &first_bad)
}

/// [`check_finite`] from each node's first non-finite row (`first_bad`, one per node of
/// the plan, in its order), as [`ranks`] finds them.
pub fn report_non_finite(
    plan: &Plan,
    frame: &DataFrame,
    first_bad: &[Option<usize>],
) -> Result<(), Problems> {
    let mut problems = Vec::new();
    // Bottom-up, and a node whose child is already reported is not: one NaN climbs to
    // the index, and one message per problem is enough.
    let mut bad = vec![false; plan.nodes.len()];
    for i in (0..plan.nodes.len()).rev() {
        let node = &plan.nodes[i];
        let Some(row) = first_bad[i] else {
            continue;
        };
        bad[i] = true;
        if node.children.iter().any(|&c| bad[c]) {
            continue;
        }
        let at = |name: &str| cell(frame, name, row);
        let territory = territory_at(plan, frame, row);
        let children: Vec<String> = node
            .children
            .iter()
            .map(|&i| format!("{} = {}", plan.nodes[i].id, at(&plan.nodes[i].id)))
            .collect();
        let method = node
            .rule
            .as_ref()
            .map_or("rescaling".into(), |r| r.mean.describe());
        problems.push(
            Problem::new(
                Location::Nowhere,
                format!(
                    "{} \"{}\" is not a finite number for territory {territory}: {method} of [{}]",
                    node.level.as_str(),
                    node.id,
                    children.join(", ")
                ),
            )
            .with_help(
                "geometric, harmonic and power means need positive inputs; rescaled values below \
                 the dystopia are negative: set [normalisation] clip = true or use an arithmetic mean",
            ),
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Problems(problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One indicator per year, territory "W" unranked: each node ranks the same values.
    const RANKED: &str = "[pipeline]\nid = \"t\"\n[territories]\nid = \"code\"\nyear = \"year\"\n\
        unranked = [\"W\"]\n[[source]]\npath = \"x.csv\"\n[index]\nid = \"idx\"\n\
        [[dimension]]\nid = \"d\"\n[[component]]\nid = \"c\"\ndimension = \"d\"\n\
        [[indicator]]\nid = \"x\"\ncomponent = \"c\"\ndirection = \"higher_is_better\"\n\
        goalposts = \"observed\"\n";

    /// `nonzero` builds the same bitmap as testing each value.
    #[test]
    fn nonzero_bits_equal_testing_each_value() {
        for len in [0, 1, 7, 8, 9, 64, 65, 1000] {
            let values: Vec<u32> = (0..len as u32).map(|i| (i * 7 + len as u32) % 3).collect();
            let bits = nonzero(&values);
            assert_eq!(bits.len(), len);
            let each: Vec<bool> = values.iter().map(|&v| v != 0).collect();
            assert_eq!(bits.iter().collect::<Vec<bool>>(), each, "{len} values");
        }
    }

    /// `n` territory ids, "W" (unranked in `RANKED`) where `unranked`.
    fn territory_ids(n: usize, unranked: impl Fn(usize) -> bool) -> Vec<String> {
        (0..n)
            .map(|i| {
                if unranked(i) {
                    "W".into()
                } else {
                    format!("T{i}")
                }
            })
            .collect()
    }

    /// The first node's ranks when every node of `plan` holds `x`.
    fn first_node_ranks<S: AsRef<str>>(
        plan: &Plan,
        ids: &[S],
        years: &[i64],
        x: &[Option<f64>],
    ) -> Vec<Option<u32>> {
        let ids: Vec<&str> = ids.iter().map(AsRef::as_ref).collect();
        let mut columns = vec![
            Column::new(TERRITORY_ID.into(), ids),
            Column::new(YEAR.into(), years),
        ];
        for node in &plan.nodes {
            columns.push(Column::new(node.id.as_str().into(), x));
        }
        let df = DataFrame::new(x.len(), columns).unwrap();
        super::ranks(plan, &df).unwrap().columns[0]
            .u32()
            .unwrap()
            .iter()
            .collect()
    }

    /// Ranks equal those counted naively (1 + the number of better values in the year)
    /// on values spread widely (every digit sorted), clustered (runs equal in their leading
    /// bits, a few ulps apart), tied, signed zeros and negatives, years large and small.
    #[test]
    fn ranks_equal_naive_counts() {
        let plan = plan::test_plan(RANKED);
        let mut rng = crate::stats::Rng::new(3);
        for (n, spread) in [(7, 1e6), (700, 1e6), (9000, 1e6), (9000, 1e-9), (9000, 0.0)] {
            let ids = territory_ids(n, |i| i % 97 == 5);
            // Years of very different sizes, not in order.
            let years: Vec<i64> = (0..n)
                .map(|i| [2021, 2020, 2020, 2022, 2020][i % 5])
                .collect();
            let x: Vec<Option<f64>> = (0..n)
                .map(|i| match i % 9 {
                    0 => None,
                    1 => Some(-0.0),
                    2 => Some(0.0),
                    3 => Some(42.5),
                    4 => Some(42.5 + f64::EPSILON * 64.0 * (i % 3) as f64),
                    5 => Some(-rng.uniform() * spread),
                    _ => Some(50.0 + rng.uniform() * spread),
                })
                .collect();
            let got = first_node_ranks(&plan, &ids, &years, &x);
            let ranked = |i: usize| ids[i] != "W" && x[i].is_some();
            let expected: Vec<Option<u32>> = (0..n)
                .map(|i| {
                    ranked(i).then(|| {
                        1 + (0..n)
                            .filter(|&j| ranked(j) && years[j] == years[i])
                            .filter(|&j| x[j].unwrap() + 0.0 > x[i].unwrap() + 0.0)
                            .count() as u32
                    })
                })
                .collect();
            assert_eq!(got, expected, "{n} rows, spread {spread}");
        }
    }

    /// The ranks of `values` (NaN: no place) by counting the larger ones.
    fn naive_ranks(values: &[f64]) -> Vec<u32> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        sorted.sort_by(|a, b| b.total_cmp(a));
        values
            .iter()
            .map(|&v| {
                if v.is_nan() {
                    0
                } else {
                    1 + sorted.partition_point(|&w| w + 0.0 > v + 0.0) as u32
                }
            })
            .collect()
    }

    /// Few distinct values are ranked by counting, exactly (ties, -0 and +0, the range's
    /// ends, values that take no place); a group where two different values share a
    /// bucket, however late, or without a usable range, is left to the radix sort.
    #[test]
    fn levels_rank_few_distinct_values_or_decline() {
        let mut rng = crate::stats::Rng::new(9);
        let n = 20_000;
        // Published decimals: 0.0 to 99.9 in tenths, and the ends of the range.
        let decimals: Vec<f64> = (0..n)
            .map(|i| match i % 97 {
                0 => f64::NAN,
                1 => -0.0,
                2 => 0.0,
                3 => 99.9,
                _ => (rng.uniform() * 1000.0).floor() / 10.0,
            })
            .collect();
        let range = |v: &[f64]| crate::normalise::range(v).unwrap();
        let mut levels = Levels::default();
        let mut rank = vec![u32::MAX; n];
        let placed = levels.rank(&decimals, range(&decimals), &mut rank);
        assert_eq!(placed, Some(n - n.div_ceil(97)));
        assert_eq!(rank, naive_ranks(&decimals));
        // The table is reused from group to group.
        let few: Vec<f64> = (0..n).map(|i| [3.5, -1.25, 7.0][i % 3]).collect();
        assert_eq!(levels.rank(&few, range(&few), &mut rank), Some(n));
        assert_eq!(rank, naive_ranks(&few));
        // A value a little off a published one, in its bucket, near the end: declined.
        let mut late = decimals.clone();
        late[n - 3] = 42.5 + 1e-9;
        late[n - 2] = 42.5;
        assert_eq!(levels.rank(&late, range(&late), &mut rank), None);
        // Continuous values, one value, a range wider than the largest float: declined.
        let continuous: Vec<f64> = (0..n).map(|_| rng.uniform()).collect();
        assert_eq!(
            levels.rank(&continuous, range(&continuous), &mut rank),
            None
        );
        let one = vec![2.0; n];
        assert_eq!(levels.rank(&one, range(&one), &mut rank), None);
        let wide: Vec<f64> = (0..n).map(|i| [f64::MAX, -f64::MAX][i % 2]).collect();
        assert_eq!(levels.rank(&wide, range(&wide), &mut rank), None);
        // Through `ranks`: years large enough to be counted, with unranked territories.
        let plan = plan::test_plan(RANKED);
        let years: Vec<i64> = (0..n).map(|i| 2020 + (i % 2) as i64).collect();
        let ids = territory_ids(n, |i| i % 89 == 4);
        let x: Vec<Option<f64>> = decimals
            .iter()
            .map(|&v| (!v.is_nan()).then_some(v))
            .collect();
        let got = first_node_ranks(&plan, &ids, &years, &x);
        let mut expected = vec![None; n];
        for year in [2020, 2021] {
            let rows: Vec<usize> = (0..n).filter(|&i| years[i] == year).collect();
            let takes = |i: usize| ids[i] != "W" && x[i].is_some();
            let values: Vec<f64> = rows
                .iter()
                .map(|&i| if takes(i) { decimals[i] } else { f64::NAN })
                .collect();
            for (&i, r) in rows.iter().zip(naive_ranks(&values)) {
                expected[i] = (r > 0).then_some(r);
            }
        }
        assert_eq!(got, expected);
    }

    /// Ranks equal those of a comparison sort on a year of more than 131,072 values (keys
    /// of three digits) and on skewed values: one far outlier squeezes every other value
    /// into the same few keys, which must then be told apart by value.
    #[test]
    fn ranks_of_large_and_skewed_years_equal_a_sort() {
        let plan = plan::test_plan(RANKED);
        let mut rng = crate::stats::Rng::new(5);
        let n = 140_000;
        let years: Vec<i64> = (0..n)
            .map(|i| if i % 50 == 7 { 2019 } else { 2020 })
            .collect();
        let x: Vec<Option<f64>> = (0..n)
            .map(|i| match i % 11 {
                0 => None,
                1 => Some(if i % 2 == 0 { -0.0 } else { 0.0 }),
                2 => Some(1.0 + (i % 5) as f64 * f64::EPSILON),
                3 if i == 3 => Some(1e300),
                4 => Some(-rng.uniform()),
                _ => Some(1.0 + rng.uniform() * 1e-6),
            })
            .collect();
        let ids: Vec<String> = (0..n).map(|i| format!("T{i}")).collect();
        let got = first_node_ranks(&plan, &ids, &years, &x);
        let mut expected = vec![None; n];
        for year in [2019, 2020] {
            let mut rows: Vec<usize> = (0..n)
                .filter(|&i| years[i] == year && x[i].is_some())
                .collect();
            let value = |i: usize| x[i].unwrap() + 0.0;
            rows.sort_by(|&a, &b| value(b).total_cmp(&value(a)));
            for (k, &i) in rows.iter().enumerate() {
                expected[i] = Some(if k > 0 && value(rows[k - 1]) == value(i) {
                    expected[rows[k - 1]].unwrap()
                } else {
                    k as u32 + 1
                });
            }
        }
        assert_eq!(got, expected);
    }

    /// The first non-finite score noted while ranking is the one `check_finite` finds
    /// (an unranked territory's included, missing values' slots not, whatever they hold),
    /// and reported the same way.
    #[test]
    fn ranks_note_the_first_non_finite_score_as_check_finite_does() {
        let plan = plan::test_plan(RANKED);
        let n = 40;
        let ids: Vec<&str> = (0..n).map(|i| if i == 6 { "W" } else { "T" }).collect();
        let years: Vec<i64> = (0..n).map(|i| 2020 + (i % 2) as i64).collect();
        let column = |bad: &[(usize, f64)]| {
            let mut values: Vec<f64> = (0..n).map(|i| i as f64).collect();
            // A missing value whose slot holds infinity, before any bad score.
            values[1] = f64::INFINITY;
            for &(i, v) in bad {
                values[i] = v;
            }
            let valid: polars_arrow::bitmap::Bitmap = (0..n).map(|i| i != 1).collect();
            let array =
                polars_arrow::array::PrimitiveArray::from_vec(values).with_validity(Some(valid));
            Float64Chunked::with_chunk("x".into(), array)
        };
        for bad in [
            vec![],
            vec![(9, f64::NAN)],
            vec![(6, f64::NEG_INFINITY), (9, f64::NAN)],
            vec![(30, f64::INFINITY)],
        ] {
            let mut columns = vec![
                Column::new(TERRITORY_ID.into(), ids.clone()),
                Column::new(YEAR.into(), years.clone()),
            ];
            for node in &plan.nodes {
                columns.push(
                    column(&bad)
                        .with_name(node.id.as_str().into())
                        .into_column(),
                );
            }
            let df = DataFrame::new(n, columns).unwrap();
            let ranked = super::ranks(&plan, &df).unwrap();
            let first = bad.first().map(|&(i, _)| i);
            assert!(
                ranked.first_non_finite.iter().all(|&f| f == first),
                "{bad:?}"
            );
            let reported = report_non_finite(&plan, &df, &ranked.first_non_finite);
            let checked = check_finite(&plan, &df);
            assert_eq!(reported.is_ok(), first.is_none());
            assert_eq!(
                reported.map_err(|p| p.to_string()),
                checked.map_err(|p| p.to_string())
            );
        }
    }

    use crate::plan;

    const FRAMEWORK: &str = r#"
[pipeline]
id = "t"
[territories]
id = "code"
[[source]]
path = "x.csv"
[index]
id = "idx"
[[dimension]]
id = "d"
[[component]]
id = "cw"
dimension = "d"
aggregation = { method = "weighted" }
[[component]]
id = "cg"
dimension = "d"
aggregation = { method = "geometric" }
[[component]]
id = "ch"
dimension = "d"
aggregation = { method = "harmonic" }
[[component]]
id = "cp"
dimension = "d"
aggregation = { method = "power", p = 0.5 }
[[component]]
id = "cm"
dimension = "d"
aggregation = { method = "arithmetic", min_share = 0.7 }
"#;

    /// Ranks per year: ties share the best rank, missing scores and unranked territories
    /// have none and take no place.
    #[test]
    fn ranks_per_year_with_ties_gaps_and_unranked() {
        let plan = plan::test_plan(RANKED);
        let ids = ["A", "B", "C", "W", "D", "A", "B", "C"];
        let years = [2020i64, 2020, 2020, 2020, 2020, 2021, 2021, 2021];
        let x = [
            Some(5.0),
            Some(7.0),
            Some(5.0),
            Some(99.0),
            None,
            Some(-0.0),
            Some(0.0),
            Some(1.0),
        ];
        let got = first_node_ranks(&plan, &ids, &years, &x);
        // 2020: B 7 first, A and C 5 share 2nd, W hidden, D missing; 2021: C 1 first,
        // −0 and +0 tie for 2nd.
        assert_eq!(
            got,
            [
                Some(2),
                Some(1),
                Some(2),
                None,
                None,
                Some(2),
                Some(2),
                Some(1)
            ]
        );
    }

    fn plan() -> Plan {
        let mut text = FRAMEWORK.to_string();
        let indicators = [
            ("w1", "cw", 1.0),
            ("w2", "cw", 2.0),
            ("w3", "cw", 3.0),
            ("g1", "cg", 1.0),
            ("g2", "cg", 3.0),
            ("h1", "ch", 1.0),
            ("h2", "ch", 1.0),
            ("p1", "cp", 1.0),
            ("p2", "cp", 3.0),
            ("m1", "cm", 1.0),
            ("m2", "cm", 1.0),
            ("m3", "cm", 1.0),
        ];
        for (id, comp, w) in indicators {
            text.push_str(&format!(
                "[[indicator]]\nid = \"{id}\"\ncomponent = \"{comp}\"\ndirection = \"higher_is_better\"\ngoalposts = \"observed\"\nweight = {w}\n"
            ));
        }
        plan::test_plan(&text)
    }

    fn scores(rows: &[(&str, Option<f64>)]) -> DataFrame {
        let columns: Vec<Column> = rows
            .iter()
            .map(|(name, v)| Column::new((*name).into(), [*v]))
            .collect();
        let df = DataFrame::new(1, columns).unwrap();
        aggregate(df, &plan(), Level::Indicator).unwrap()
    }

    fn get(df: &DataFrame, name: &str) -> Option<f64> {
        df.column(name).unwrap().f64().unwrap().get(0)
    }

    #[test]
    fn weighted_means_over_present_children() {
        let df = scores(&[
            ("w1", Some(10.0)),
            ("w2", None),
            ("w3", Some(40.0)),
            ("g1", Some(10.0)),
            ("g2", Some(40.0)),
            ("h1", Some(20.0)),
            ("h2", Some(80.0)),
            ("p1", Some(25.0)),
            ("p2", Some(100.0)),
            ("m1", Some(1.0)),
            ("m2", Some(2.0)),
            ("m3", None),
        ]);
        let close =
            |a: Option<f64>, b: f64| assert!((a.unwrap() - b).abs() < 1e-12, "{a:?} vs {b}");
        // w2 is missing and drops out with its weight: (1·10 + 3·40) / (1 + 3).
        close(get(&df, "cw"), 32.5);
        close(
            get(&df, "cg"),
            (10f64.ln() * 0.25 + 40f64.ln() * 0.75).exp(),
        );
        close(get(&df, "ch"), 2.0 / (1.0 / 20.0 + 1.0 / 80.0));
        // ((1·√25 + 3·√100) / 4)² = (35/4)².
        close(get(&df, "cp"), (35.0f64 / 4.0).powi(2));
        // min_share 0.7 of 3 needs all 3 (2.1 rounds up): missing, and counted.
        assert_eq!(get(&df, "cm"), None);
        assert_eq!(df.column("n:cm").unwrap().u32().unwrap().get(0), Some(2));
        // The dimension averages the 4 available components (min_share 0.5 of 5 → 3).
        let d = (32.5 + get(&df, "cg").unwrap() + 32.0 + (35.0f64 / 4.0).powi(2)) / 4.0;
        close(get(&df, "d"), d);
        close(get(&df, "idx"), d);
    }

    #[test]
    fn geometric_and_harmonic_means_of_zero_are_zero() {
        let df = scores(&[
            ("w1", None),
            ("w2", None),
            ("w3", None),
            ("g1", Some(0.0)),
            ("g2", Some(40.0)),
            ("h1", Some(0.0)),
            ("h2", Some(80.0)),
            ("p1", None),
            ("p2", None),
            ("m1", None),
            ("m2", None),
            ("m3", None),
        ]);
        assert_eq!(get(&df, "cg"), Some(0.0));
        assert_eq!(get(&df, "ch"), Some(0.0));
        assert_eq!(get(&df, "cw"), None);
        // 2 of 5 components present, 3 required.
        assert_eq!(get(&df, "d"), None);
        assert_eq!(get(&df, "idx"), None);
    }

    #[test]
    fn required_children_rounds_up_with_tolerance() {
        assert_eq!(required_children(0.5, 4), 2);
        assert_eq!(required_children(0.5, 3), 2);
        assert_eq!(required_children(0.7, 10), 7);
        assert_eq!(required_children(0.0, 4), 1);
        assert_eq!(required_children(1.0, 6), 6);
        assert_eq!(required_children(1.0 / 3.0 * 3.0 / 3.0, 3), 1);
    }

    /// The scores as polars expressions computed them before aggregation became a loop
    /// (kept here as the reference the loop must equal to the bit).
    fn expression_scores(plan: &Plan, node: &Node) -> [Expr; 2] {
        let rule = node.rule.as_ref().unwrap();
        let children: Vec<(Expr, f64)> = node
            .children
            .iter()
            .map(|&i| (col(plan.nodes[i].id.as_str()), plan.nodes[i].weight))
            .collect();
        fn pairwise(terms: &[Expr]) -> Expr {
            if terms.is_empty() {
                return lit(0.0);
            }
            if terms.len() <= FOLD_MAX {
                return terms.iter().cloned().reduce(|a, b| a + b).unwrap();
            }
            let (left, right) = terms.split_at(terms.len() / 2);
            pairwise(left) + pairwise(right)
        }
        let sum = |t: Vec<Expr>| pairwise(&t);
        let present = |e: &Expr| e.clone().is_not_null().cast(DataType::Float64);
        let n = sum(children.iter().map(|(e, _)| present(e)).collect());
        let weight_present = sum(children.iter().map(|(e, w)| present(e) * lit(*w)).collect());
        let weighted = children.iter().filter(|(_, w)| *w != 0.0);
        let score = match rule.mean {
            Mean::Arithmetic => {
                sum(weighted
                    .map(|(e, w)| (e.clone() * lit(*w)).fill_null(lit(0.0)))
                    .collect())
                    / weight_present.clone()
            }
            Mean::Power(p) => (sum(weighted
                .map(|(e, w)| (e.clone().pow(lit(p)) * lit(*w)).fill_null(lit(0.0)))
                .collect())
                / weight_present.clone())
            .pow(lit(1.0 / p)),
            Mean::Geometric => (sum(weighted
                .map(|(e, w)| {
                    (e.clone().log(lit(std::f64::consts::E)) * lit(*w)).fill_null(lit(0.0))
                })
                .collect())
                / weight_present.clone())
            .exp(),
            Mean::Harmonic => {
                weight_present.clone()
                    / sum(weighted
                        .map(|(e, w)| (lit(*w) / e.clone()).fill_null(lit(0.0)))
                        .collect())
            }
        };
        let required = required_children(rule.min_share, children.len()) as f64;
        let available = n
            .clone()
            .gt_eq(lit(required))
            .and(weight_present.gt(lit(0.0)));
        [
            when(available)
                .then(score)
                .otherwise(lit(NULL).cast(DataType::Float64))
                .alias(node.id.as_str()),
            n.cast(DataType::UInt32).alias(count_column(&node.id)),
        ]
    }

    /// Every mean (power means of several exponents, polars' special cases among them),
    /// weights zero, negative and uneven, parents of 1 to 40 children (summed pairwise
    /// beyond 16), availability rules, missing values: the loop's scores and counts equal
    /// the expressions' to the bit, NaN and infinities included.
    #[test]
    fn scores_equal_the_expressions_to_the_bit() {
        let mut rng = crate::stats::Rng::new(11);
        let means = [
            ("arithmetic", ""),
            ("weighted", ""),
            ("geometric", ""),
            ("harmonic", ""),
            ("power", ", p = 0.5"),
            ("power", ", p = 2"),
            ("power", ", p = 3"),
            ("power", ", p = 0.25"),
            ("power", ", p = -1"),
            ("power", ", p = 1"),
        ];
        let mut text = String::from(
            "[pipeline]\nid = \"t\"\n[territories]\nid = \"code\"\n[[source]]\npath = \"x.csv\"\n\
             [index]\nid = \"idx\"\n[[dimension]]\nid = \"d\"\n",
        );
        let sizes = [1, 2, 5, 16, 17, 40];
        let mut indicators = Vec::new();
        for (m, (method, extra)) in means.iter().enumerate() {
            for (s, &size) in sizes.iter().enumerate() {
                let c = format!("c{m}_{s}");
                let share = [0.0, 0.5, 0.75, 1.0][(m + s) % 4];
                text += &format!(
                    "[[component]]\nid = \"{c}\"\ndimension = \"d\"\n\
                     aggregation = {{ method = \"{method}\"{extra}, min_share = {share} }}\n"
                );
                for k in 0..size {
                    let id = format!("x{m}_{s}_{k}");
                    text += &format!(
                        "[[indicator]]\nid = \"{id}\"\ncomponent = \"{c}\"\n\
                         direction = \"higher_is_better\"\ngoalposts = \"observed\"\n"
                    );
                    indicators.push(id);
                }
            }
        }
        let mut plan = plan::test_plan(&text);
        // Weights set on the plan: negative ones come from PCA (negative_loadings =
        // "keep"), and the file's rules (all zero, unweighted means) are not tested here.
        for (k, node) in plan.nodes.iter_mut().enumerate() {
            if node.level == Level::Indicator {
                node.weight = match k % 5 {
                    0 => 0.0,
                    1 => 1.0 / 3.0,
                    2 => -0.4,
                    _ => 0.1 + rng.uniform() * 3.0,
                };
            }
        }
        // Over two blocks and part of a third (blocks are computed in parallel).
        let rows = 2 * BLOCK + 300;
        let columns: Vec<Column> = indicators
            .iter()
            .map(|id| {
                let values: Vec<Option<f64>> = (0..rows)
                    .map(|r| match (r + id.len()) % 11 {
                        0 => None,
                        1 => Some(0.0),
                        2 => Some(-rng.uniform() * 5.0),
                        3 if r % 3 == 0 => None,
                        // Sums of negative zeros are negative zero, as polars' sums are.
                        4 => Some(-0.0),
                        _ => Some(rng.uniform() * 100.0),
                    })
                    .collect();
                Column::new(id.as_str().into(), values)
            })
            .collect();
        let df = DataFrame::new(rows, columns).unwrap();
        let looped = aggregate_level(df.clone(), &plan, Level::Component).unwrap();
        let exprs: Vec<Expr> = plan
            .nodes_at(Level::Component)
            .flat_map(|node| expression_scores(&plan, node))
            .collect();
        let expected = df.lazy().with_columns(exprs).collect().unwrap();
        let bits = |df: &DataFrame, id: &str| -> Vec<Option<u64>> {
            let c = df.column(id).unwrap().f64().unwrap();
            c.iter().map(|v| v.map(f64::to_bits)).collect()
        };
        for node in plan.nodes_at(Level::Component) {
            assert_eq!(
                bits(&looped, &node.id),
                bits(&expected, &node.id),
                "{}",
                node.id
            );
            let n = count_column(&node.id);
            assert_eq!(
                looped.column(&n).unwrap().u32().unwrap().to_vec(),
                expected.column(&n).unwrap().u32().unwrap().to_vec(),
                "{n}"
            );
        }
    }
}
