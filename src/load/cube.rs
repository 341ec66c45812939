//! A publisher's dataset ([`Cube`]) mapped onto the pipeline: which dimension is the
//! territory, which the year, which codes are indicators; the source's filters and
//! Eurostat's selectors applied; every other dimension checked to hold one code (two
//! codes left in `sex` would silently double the rows). The result is a long table like a
//! long CSV source: the territory and year key columns, `__indicator`, `__value` and
//! `__flag`.
//!
//! Flags: confidential cells (`c`, `|C`) and missing ones (`:`) carry no value; the other
//! observation flags (`p`, `e`, `b`, `u`…) travel with the value into the indicator rows
//! of the scores, and every flag is counted per indicator for the manifest.

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::*;

use super::RawFile;
use super::cell::NumberFormat;
use crate::diagnostic::{Location, Problem, closest, list};
use crate::formats::{Cube, Flag};
use crate::plan::source::{CUBE_FLAG, CUBE_INDICATOR, CUBE_VALUE};
use crate::plan::{CubeFormat, CubeSpec, Plan, SourcePlan};

/// Flag counts by indicator code, then flag (`p`, `e`, `c` for confidential, `:` for a
/// value not published).
pub type FlagCounts = BTreeMap<String, BTreeMap<String, usize>>;

/// The mapped table and its flag counts.
#[derive(Debug)]
pub struct Mapped {
    pub raw: RawFile,
    pub flags: FlagCounts,
}

/// Maps `cube` (read from `sp`, whose bytes had `sha256` and `bytes`) onto `plan`.
pub fn map(
    plan: &Plan,
    sp: &SourcePlan,
    spec: &CubeSpec,
    cube: &Cube,
    sha256: String,
    bytes: u64,
) -> Result<Mapped, Vec<Problem>> {
    let at = &spec.declared_at;
    let mut problems = Vec::new();
    let names: Vec<&str> = cube.dimensions.iter().map(|d| d.id.as_str()).collect();
    let unknown = |what: &str, name: &str, key: &str| {
        let mut help = format!("the dataset's dimensions: {}", names.join(", "));
        if let Some(c) = closest(name, names.iter().copied()) {
            help = format!("did you mean \"{c}\"? {help}");
        }
        Problem::new(
            at.clone(),
            format!(
                "{}: no dimension \"{name}\" ({what}) in the dataset",
                sp.what
            ),
        )
        .with_help(format!("{help}; set `{key}` on the source"))
    };

    // The territory, time and indicator dimensions.
    let by_role = |role: &str| {
        let with: Vec<usize> = (0..cube.dimensions.len())
            .filter(|&d| cube.dimensions[d].roles.contains(role))
            .collect();
        (with.len() == 1).then(|| with[0])
    };
    let first_of = |ids: &[&str]| ids.iter().find_map(|id| cube.dimension(id));
    let territory = match &spec.territory {
        Some(t) => cube.dimension(t).or_else(|| {
            problems.push(unknown("territory", t, "territory"));
            None
        }),
        None => {
            let found = match spec.format {
                CubeFormat::WorldBank => first_of(&["country"]),
                CubeFormat::SdmxCsv => first_of(&["REF_AREA", "geo"]),
                _ => by_role("geo").or_else(|| first_of(&["geo"])),
            };
            if found.is_none() {
                problems.push(unknown("territory", "geo", "territory"));
            }
            found
        }
    };
    let time = match &spec.time {
        Some(t) => cube.dimension(t).or_else(|| {
            problems.push(unknown("time", t, "time"));
            None
        }),
        None => match spec.format {
            CubeFormat::WorldBank => first_of(&["date"]),
            CubeFormat::SdmxCsv => first_of(&["TIME_PERIOD", "time"]),
            _ => by_role("time").or_else(|| first_of(&["time", "TIME_PERIOD"])),
        },
    };
    if time.is_none() && plan.keys.year.is_some() {
        problems.push(
            unknown("time", spec.time.as_deref().unwrap_or("time"), "time").with_help(
                "the pipeline has years ([territories] year): the source needs a time dimension",
            ),
        );
    }
    let indicator_dim = match &spec.indicator_dimension {
        Some(d) => cube.dimension(d).or_else(|| {
            problems.push(unknown("indicators", d, "indicator_column"));
            None
        }),
        None => None,
    };
    let mut filters: Vec<(usize, BTreeSet<String>)> = Vec::new();
    for (name, codes) in &spec.filters {
        match cube.dimension(name) {
            Some(d) => filters.push((d, codes.iter().map(|c| c.to_ascii_lowercase()).collect())),
            None => problems.push(unknown("filter", name, "filters")),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let territory = territory.expect("checked");

    // The rows kept: filters, then Eurostat's selectors.
    let year_of = |row: usize| -> Option<i64> {
        time.and_then(|t| crate::load::cell::year(cube.code(t, row).trim()).ok())
    };
    let mut rows: Vec<usize> = (0..cube.len())
        .filter(|&row| {
            filters
                .iter()
                .all(|(d, wanted)| wanted.contains(&cube.code(*d, row).to_ascii_lowercase()))
        })
        .filter(|&row| {
            spec.geo_level
                .is_none_or(|l| l.matches(cube.code(territory, row).trim()))
        })
        .collect();
    if spec.since.is_some() || spec.until.is_some() {
        rows.retain(|&row| match year_of(row) {
            Some(y) => spec.since.is_none_or(|s| y >= s) && spec.until.is_none_or(|u| y <= u),
            None => true,
        });
    }
    if let (Some(n), Some(t)) = (spec.last, time) {
        let mut periods: Vec<&str> = rows.iter().map(|&r| cube.code(t, r)).collect();
        periods.sort_unstable();
        periods.dedup();
        let keep: BTreeSet<&str> = periods.iter().rev().take(n).copied().collect();
        rows.retain(|&r| keep.contains(cube.code(t, r)));
    }
    if rows.is_empty() {
        let mut p = Problem::new(
            at.clone(),
            if cube.is_empty() {
                format!("{}: the dataset has no observation", sp.what)
            } else {
                format!(
                    "{}: no observation is left after the filters ({} in the dataset)",
                    sp.what,
                    cube.len()
                )
            },
        );
        if !spec.filters.is_empty() || spec.geo_level.is_some() {
            p = p.with_help("check the filters' codes against the dataset's");
        }
        return Err(vec![p]);
    }

    // Every other dimension must be down to one code.
    for (d, dim) in cube.dimensions.iter().enumerate() {
        if d == territory || Some(d) == time || Some(d) == indicator_dim {
            continue;
        }
        let codes: BTreeSet<&str> = rows.iter().map(|&r| cube.code(d, r)).collect();
        if codes.len() > 1 {
            let shown: Vec<&str> = codes.iter().copied().collect();
            let first = shown[0];
            problems.push(
                Problem::new(
                    at.clone(),
                    format!(
                        "{}: dimension \"{}\" still has {} codes after the filters ({}): each territory would get several values",
                        sp.what,
                        dim.id,
                        codes.len(),
                        list(&shown, 10)
                    ),
                )
                .with_help(format!(
                    "keep one with filters = {{ {} = \"{first}\" }}, or make its codes indicators with indicator_column = \"{}\"",
                    dim.id, dim.id
                )),
            );
        }
    }
    if let (Some(t), None) = (time, &plan.keys.year) {
        let codes: BTreeSet<&str> = rows.iter().map(|&r| cube.code(t, r)).collect();
        if codes.len() > 1 {
            let shown: Vec<&str> = codes.iter().copied().collect();
            problems.push(
                Problem::new(
                    at.clone(),
                    format!(
                        "{}: {} periods ({}) but the pipeline has no years",
                        sp.what,
                        codes.len(),
                        list(&shown, 10)
                    ),
                )
                .with_help(format!(
                    "set [territories] year, or keep one period with filters = {{ {} = \"{}\" }}",
                    cube.dimensions[t].id,
                    shown[shown.len() - 1]
                )),
            );
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    // The long table.
    let n = rows.len();
    let mut ids: Vec<&str> = Vec::with_capacity(n);
    let mut years: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut names_col: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut codes: Vec<&str> = Vec::with_capacity(n);
    let mut values: Vec<Option<f64>> = Vec::with_capacity(n);
    let mut flags: Vec<Option<String>> = Vec::with_capacity(n);
    let mut counts: FlagCounts = BTreeMap::new();
    let labels = &cube.dimensions[territory].labels;
    for &r in &rows {
        let code = match (indicator_dim, &spec.indicator) {
            (Some(d), _) => cube.code(d, r),
            (None, Some(c)) => c.as_str(),
            (None, None) => "",
        };
        let id = cube.code(territory, r);
        ids.push(id);
        years.push(time.map(|t| cube.code(t, r)));
        names_col.push(labels.get(id).map(String::as_str));
        codes.push(code);
        let flag = cube.flags[r]
            .as_deref()
            .map(Flag::parse)
            .unwrap_or_default();
        let count = counts.entry(code.to_owned()).or_default();
        let value = if flag.confidential {
            *count.entry("c".to_owned()).or_default() += 1;
            None
        } else {
            cube.values[r]
        };
        if value.is_none() && !flag.confidential {
            *count.entry(":".to_owned()).or_default() += 1;
        }
        for ch in flag.observation.chars() {
            *count.entry(ch.to_string()).or_default() += 1;
        }
        values.push(value);
        flags.push(
            (value.is_some() && !flag.observation.is_empty()).then(|| flag.observation.clone()),
        );
    }
    let mut columns: Vec<Column> = vec![
        StringChunked::from_iter_values(plan.keys.id.as_str().into(), ids.into_iter())
            .into_column(),
    ];
    if let Some(y) = &plan.keys.year {
        columns.push(
            StringChunked::from_iter_options(y.as_str().into(), years.into_iter()).into_column(),
        );
    }
    // The name column always exists (null without labels): the keys must be in every
    // source.
    if let Some(name) = &plan.keys.name {
        columns.push(
            StringChunked::from_iter_options(name.as_str().into(), names_col.into_iter())
                .into_column(),
        );
    }
    columns.push(
        StringChunked::from_iter_values(CUBE_INDICATOR.into(), codes.into_iter()).into_column(),
    );
    columns.push(
        Float64Chunked::from_iter_options(CUBE_VALUE.into(), values.into_iter()).into_column(),
    );
    columns.push(
        StringChunked::from_iter_options(CUBE_FLAG.into(), flags.iter().map(|f| f.as_deref()))
            .into_column(),
    );
    let df = DataFrame::new(n, columns).map_err(|e| {
        vec![Problem::new(
            at.clone(),
            format!("{}: cannot build the table: {e}", sp.what),
        )]
    })?;
    let lines = cube
        .lines
        .as_ref()
        .map(|l| rows.iter().map(|&r| l[r]).collect());
    Ok(Mapped {
        raw: RawFile {
            path: sp.file.path.clone(),
            sha256,
            bytes,
            df,
            lines,
            number: NumberFormat::default(),
            bad_cells: Vec::new(),
        },
        flags: counts,
    })
}

/// A problem about a source's bytes that do not parse as its format.
pub fn unreadable(sp: &SourcePlan, e: &crate::formats::FormatError) -> Problem {
    let location = match e.line {
        Some(l) => Location::data_line(&sp.file.path, l),
        None => Location::data_file(&sp.file.path),
    };
    Problem::new(location, format!("{}: {}", sp.what, e.message))
}
