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

/// What an answer code means for its item.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    NotAchieved,
    Achieved,
    Missing,
    Invalid,
}

/// An item's classes of the whole codes from `LUT_MIN` to `LUT_MIN + 1151`, computed once:
/// survey codes are small integers, so almost every answer is one table lookup.
const LUT_MIN: i64 = -128;

struct Classifier<'a> {
    item: &'a RciItem,
    table: Vec<Class>,
}

impl<'a> Classifier<'a> {
    fn new(item: &'a RciItem) -> Self {
        let table = (0..1152)
            .map(|k| Self::slow(item, (k + LUT_MIN) as f64))
            .collect();
        Classifier { item, table }
    }

    fn slow(item: &RciItem, x: f64) -> Class {
        if !x.is_finite() {
            Class::Invalid
        } else if item.is_missing(x) {
            Class::Missing
        } else if !item.is_valid(x) {
            Class::Invalid
        } else if item.achieved(x) {
            Class::Achieved
        } else {
            Class::NotAchieved
        }
    }

    #[inline]
    fn class_int(&self, x: i64) -> Class {
        match usize::try_from(x.wrapping_sub(LUT_MIN)) {
            Ok(k) if k < self.table.len() && x >= LUT_MIN => self.table[k],
            _ => Self::slow(self.item, x as f64),
        }
    }

    #[inline]
    fn class(&self, x: f64) -> Class {
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
        if ids.null_count() == 0 && ids.iter().all(clean) {
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
fn classify(plan: &RciPlan, answers: &[Column]) -> (Bits, Vec<(usize, usize, f64)>) {
    let n = answers.first().map_or(0, Column::len);
    let words = plan.items.len().div_ceil(64).max(1);
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
            for (j, (column, classifier)) in answers.iter().zip(&classifiers).enumerate() {
                let (word, bit) = (j / 64, 1u64 << (j % 64));
                let mut mark = |at: usize, class: Class, x: f64| match class {
                    Class::NotAchieved => chunk[at * stride + word] |= bit,
                    Class::Achieved => {
                        chunk[at * stride + word] |= bit;
                        chunk[at * stride + words + word] |= bit;
                    }
                    Class::Missing => {}
                    Class::Invalid => bad.push((j, first + at, x)),
                };
                let part = column.slice(first as i64, len);
                // Integer codes (what surveys store) go straight to the table.
                if fits_i64(part.dtype()) {
                    let part = part.cast(&DataType::Int64).expect("integers cast to Int64");
                    let mut at = 0;
                    for array in part.i64().expect("Int64").downcast_iter() {
                        if array.validity().is_none_or(|v| v.unset_bits() == 0) {
                            for &x in array.values().iter() {
                                mark(at, classifier.class_int(x), x as f64);
                                at += 1;
                            }
                            continue;
                        }
                        for v in array.iter() {
                            if let Some(&x) = v {
                                mark(at, classifier.class_int(x), x as f64);
                            }
                            at += 1;
                        }
                    }
                } else {
                    let part = part
                        .cast(&DataType::Float64)
                        .expect("numbers cast to Float64");
                    let mut at = 0;
                    for array in part.f64().expect("Float64").downcast_iter() {
                        for v in array.iter() {
                            if let Some(&x) = v {
                                mark(at, classifier.class(x), x);
                            }
                            at += 1;
                        }
                    }
                }
            }
            bad
        })
        .collect();
    bad.sort_by_key(|&(j, row, _)| (j, row));
    (Bits { words, data }, bad)
}

/// Integer types whose every value an Int64 holds exactly.
fn fits_i64(dtype: &DataType) -> bool {
    matches!(
        dtype,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
    )
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
