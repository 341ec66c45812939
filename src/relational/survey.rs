//! The survey as the RCI computes it: keys and survey weights as read, and per respondent
//! which items were answered and which achieved, as bits. The answers themselves are not
//! kept: 10 million respondents × 20 items is 40 MB of bits against 1.6 GB of Float64.
//!
//! Every bad cell is reported with its row and column; the answers are classified in
//! parallel over blocks of rows, and the (rare) bad ones reported afterwards in order.

use polars::prelude::*;
use rayon::prelude::*;

use crate::config::Codes;
use crate::diagnostic::{Location, Problem, Problems};
use crate::load::sources as ingest;
use crate::load::{CellProblems, RawFile};
use crate::plan::rci::{RciItem, RciPlan};
use crate::plan::{TERRITORY_ID, YEAR};

/// Rows per block of the parallel passes.
pub(super) const BLOCK: usize = 1 << 16;

pub(super) struct Survey {
    pub n: usize,
    /// The configured id column as read, or the row number (from 1).
    pub respondent_id: Column,
    /// Territory ids, trimmed.
    pub territory: StringChunked,
    pub year: Int64Chunked,
    /// Per subgroup variable: its values as read (text), for the persons table.
    pub subgroup_values: Vec<StringChunked>,
    /// Survey weights (1 without a weight column).
    pub weight: Vec<f64>,
    pub bits: Bits,
}

/// Per respondent, `words` words of answered bits then `words` of achieved bits (item j is
/// bit j % 64 of word j / 64), one respondent after the other.
pub(super) struct Bits {
    pub words: usize,
    pub data: Vec<u64>,
}

impl Bits {
    /// Answered and achieved words of respondent `i`.
    #[inline]
    pub fn row(&self, i: usize) -> (&[u64], &[u64]) {
        let w = self.words;
        self.data[i * 2 * w..(i + 1) * 2 * w].split_at(w)
    }
}

/// Bits of an answer's flags byte: the item was answered, achieved, or the answer is
/// invalid (neither valid nor a missing code). A missing answer has no bit set.
const ANSWERED: u8 = 1;
const ACHIEVED: u8 = 2;
const INVALID: u8 = 4;

/// An item's flags of the whole codes from `LUT_MIN` to `LUT_MIN + 1151`, computed once:
/// survey codes are small integers, so almost every answer is one table lookup.
const LUT_MIN: i64 = -128;

struct Classifier<'a> {
    item: &'a RciItem,
    /// The flags of each code.
    table: Vec<u8>,
}

impl<'a> Classifier<'a> {
    fn new(item: &'a RciItem) -> Self {
        let table = (0..1152)
            .map(|k| Self::slow(item, (k + LUT_MIN) as f64))
            .collect();
        Classifier { item, table }
    }

    fn slow(item: &RciItem, x: f64) -> u8 {
        if !x.is_finite() {
            INVALID
        } else if item.is_missing(x) {
            0
        } else if !item.is_valid(x) {
            INVALID
        } else if item.achieved(x) {
            ANSWERED | ACHIEVED
        } else {
            ANSWERED
        }
    }

    #[inline]
    fn flags_int(&self, x: i64) -> u8 {
        match usize::try_from(x.wrapping_sub(LUT_MIN)) {
            Ok(k) if k < self.table.len() && x >= LUT_MIN => self.table[k],
            _ => Self::slow(self.item, x as f64),
        }
    }

    #[inline]
    fn flags(&self, x: f64) -> u8 {
        let k = x as i64 - LUT_MIN;
        if (0..self.table.len() as i64).contains(&k) && (k + LUT_MIN) as f64 == x {
            self.table[k as usize]
        } else {
            Self::slow(self.item, x)
        }
    }
}

/// Typed survey from the file read by `load`; every bad cell reported.
pub(super) fn prepare(plan: &RciPlan, raw: &RawFile) -> Result<Survey, Problems> {
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

    let respondent_id = match &plan.respondent_id {
        Some(c) => raw
            .df
            .column(c)
            .expect("checked column")
            .clone()
            .with_name("respondent_id".into()),
        None => Column::new("respondent_id".into(), (1..=n as u64).collect::<Vec<_>>()),
    };

    let territory = {
        let ids = text(&plan.territory);
        let clean = |v: Option<&str>| v.is_some_and(|v| !v.is_empty() && v.trim() == v);
        // Checked in parallel over the column's chunks: a pass over 10 million ids.
        let chunks: Vec<_> = ids.downcast_iter().collect();
        if ids.null_count() == 0
            && chunks
                .par_iter()
                .all(|a| a.values_iter().all(|v| clean(Some(v))))
        {
            ids
        } else {
            ids.iter()
                .enumerate()
                .map(|(row, v)| {
                    let v = v.map(str::trim).filter(|v| !v.is_empty());
                    if v.is_none() {
                        cells.cell(raw, row, &plan.territory, "empty territory");
                    }
                    v
                })
                .collect()
        }
    }
    .with_name(TERRITORY_ID.into());

    let year: Int64Chunked = match &plan.year {
        Some(y) => ingest::years(raw, y, &mut cells),
        None => Int64Chunked::full_null(YEAR.into(), n),
    }
    .with_name(YEAR.into());

    let subgroup_values: Vec<StringChunked> = plan.subgroups.iter().map(|s| text(s)).collect();

    let weight: Vec<f64> = match &plan.weight {
        Some(w) if let Some(clean) = clean_weights(raw, w) => clean,
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
                v.unwrap_or(0.0)
            })
            .collect(),
        None => vec![1.0; n],
    };

    // Answers as numbers: numeric columns as stored, others parsed (bad cells reported).
    let answers: Vec<Column> = plan
        .items
        .iter()
        .map(|item| {
            let c = raw.df.column(&item.column).expect("checked column");
            if c.dtype().is_primitive_numeric() {
                c.clone()
            } else {
                let v: Float64Chunked =
                    numbers(raw, &item.column, &mut cells).into_iter().collect();
                v.into_column()
            }
        })
        .collect();
    let (bits, bad) = classify(plan, &answers);
    for (j, row, x) in bad {
        let item = &plan.items[j];
        let message = if x.is_finite() {
            format!(
                "answer code {x} of item \"{}\" is neither valid ({}) nor missing ({})",
                item.id,
                describe_codes(&item.valid),
                describe_list(&item.missing)
            )
        } else {
            format!("{x} is not a finite number")
        };
        cells.cell(raw, row, &item.column, message);
    }
    cells.finish();
    if !problems.is_empty() {
        return Err(Problems(problems));
    }
    if n > u32::MAX as usize {
        return Err(Problems(vec![Problem::new(
            Location::data_file(&raw.path),
            format!("{n} respondents: at most {} per survey file", u32::MAX),
        )]));
    }
    Ok(Survey {
        n,
        respondent_id,
        territory,
        year,
        subgroup_values,
        weight,
        bits,
    })
}

/// The answered and achieved bits of every respondent, and the bad answers as
/// (item, row, value), by item then row.
///
/// Block by block in parallel: each item's answers become a byte of flags per row (one
/// sequential pass per item, in the column's own type), then each row's words are built
/// from its items' flags and written once, rather than updated in place item after item.
fn classify(plan: &RciPlan, answers: &[Column]) -> (Bits, Vec<(usize, usize, f64)>) {
    let n = answers.first().map_or(0, Column::len);
    let items = plan.items.len();
    let words = items.div_ceil(64).max(1);
    let stride = 2 * words;
    let classifiers: Vec<Classifier> = plan.items.iter().map(Classifier::new).collect();
    let mut data = vec![0u64; n * stride];
    let mut bad: Vec<(usize, usize, f64)> = data
        .par_chunks_mut(BLOCK * stride)
        .enumerate()
        .flat_map_iter(|(b, chunk)| {
            let first = b * BLOCK;
            let len = chunk.len() / stride;
            let mut bad = Vec::new();
            // Item-major: the flags of item j are flags[j * len..(j + 1) * len].
            let mut flags = vec![0u8; items * len];
            for (j, ((column, classifier), out)) in answers
                .iter()
                .zip(&classifiers)
                .zip(flags.chunks_mut(len.max(1)))
                .enumerate()
            {
                let part = column.slice(first as i64, len);
                let part = part.as_materialized_series();
                if item_flags(part, classifier, out) & INVALID != 0 {
                    let values = part
                        .cast(&DataType::Float64)
                        .expect("numbers cast to Float64");
                    let values = values.f64().expect("Float64");
                    for (at, f) in out.iter().enumerate() {
                        if f & INVALID != 0 {
                            bad.push((j, first + at, values.get(at).unwrap_or(f64::NAN)));
                        }
                    }
                }
            }
            for (at, row) in chunk.chunks_exact_mut(stride).enumerate() {
                let (answered, achieved) = row.split_at_mut(words);
                for j in 0..items {
                    let f = flags[j * len + at];
                    let (w, shift) = (j / 64, j % 64);
                    answered[w] |= u64::from(f & ANSWERED) << shift;
                    achieved[w] |= u64::from((f & ACHIEVED) >> 1) << shift;
                }
            }
            bad
        })
        .collect();
    bad.sort_by_key(|&(j, row, _)| (j, row));
    (Bits { words, data }, bad)
}

/// Flags of one item's answers in one block, into `out` (a null is not answered: 0);
/// returns the union of the flags, to tell whether any answer is invalid.
fn item_flags(part: &Series, classifier: &Classifier, out: &mut [u8]) -> u8 {
    // Integer codes (what surveys store) go straight to the table, read in their own
    // type (a cast to Int64 would copy every block of every item).
    match part.dtype() {
        DataType::Int8 => int_flags(part.i8().expect("Int8"), classifier, out),
        DataType::Int16 => int_flags(part.i16().expect("Int16"), classifier, out),
        DataType::Int32 => int_flags(part.i32().expect("Int32"), classifier, out),
        DataType::Int64 => int_flags(part.i64().expect("Int64"), classifier, out),
        DataType::UInt8 => int_flags(part.u8().expect("UInt8"), classifier, out),
        DataType::UInt16 => int_flags(part.u16().expect("UInt16"), classifier, out),
        DataType::UInt32 => int_flags(part.u32().expect("UInt32"), classifier, out),
        _ => {
            let part = part
                .cast(&DataType::Float64)
                .expect("numbers cast to Float64");
            let mut union = 0;
            for (v, o) in part.f64().expect("Float64").iter().zip(out.iter_mut()) {
                *o = v.map_or(0, |x| classifier.flags(x));
                union |= *o;
            }
            union
        }
    }
}

/// [`item_flags`] of an integer column.
fn int_flags<T>(part: &ChunkedArray<T>, classifier: &Classifier, out: &mut [u8]) -> u8
where
    T: PolarsIntegerType,
    T::Native: Into<i64>,
{
    let mut union = 0;
    let mut at = 0;
    for array in part.downcast_iter() {
        let out = &mut out[at..at + array.len()];
        at += array.len();
        if array.validity().is_none_or(|v| v.unset_bits() == 0) {
            for (&x, o) in array.values().iter().zip(out.iter_mut()) {
                *o = classifier.flags_int(x.into());
                union |= *o;
            }
        } else {
            for (v, o) in array.iter().zip(out.iter_mut()) {
                *o = v.map_or(0, |&x| classifier.flags_int(x.into()));
                union |= *o;
            }
        }
    }
    union
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

/// The survey weights as they are when the column is numeric and every weight is there,
/// finite and not negative (the usual case, read without per-row checks); None sends the
/// column through [`numbers`], which reports each bad cell.
fn clean_weights(raw: &RawFile, name: &str) -> Option<Vec<f64>> {
    let column = raw.df.column(name).ok()?;
    if !column.dtype().is_primitive_numeric() || column.null_count() > 0 {
        return None;
    }
    let values = column.cast(&DataType::Float64).ok()?;
    let values = values.f64().ok()?;
    let mut out = Vec::with_capacity(values.len());
    for array in values.downcast_iter() {
        out.extend_from_slice(array.values());
    }
    out.iter()
        .all(|x| x.is_finite() && *x >= 0.0)
        .then_some(out)
}

/// A column as f64 values: numeric columns as they are, text parsed (bad cells reported).
fn numbers(raw: &RawFile, name: &str, cells: &mut CellProblems<'_>) -> Vec<Option<f64>> {
    ingest::numbers(raw, name, &crate::plan::default_missing(), cells)
}
