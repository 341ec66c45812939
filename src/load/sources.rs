//! Reads the pipeline's sources into one frame: a row per territory (× year), a column per
//! indicator (`raw:<id>`), plus `territory_id`, `territory_name`, `group` and `year`.
//!
//! CSV cells are read as text and parsed here rather than by polars' type inference, so
//! that every bad cell is reported with its row and column, decimal commas are handled
//! explicitly, and nothing is silently turned into NaN. Long sources are widened once here;
//! several sources are joined on the territory keys. All problems of a phase (columns, then
//! cells) are collected before reporting.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::cell::{self, CellError};
use super::file::MAX_CELL_PROBLEMS;
use super::{CellProblems, RawFile, ReadOptions, read_bytes, read_file};
use crate::config::Layout;
use crate::diagnostic::{Location, Problem, Problems, closest, list};
use crate::fetch::{Download, Fetched, FetchedSource, Payload};
use crate::plan::source::CUBE_FLAG;
use crate::plan::{GROUP, IndicatorSpec, Plan, SourcePlan, TERRITORY_ID, TERRITORY_NAME, YEAR};
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    Problems(Problems),
    #[error("reading {}: {source}", path.display())]
    Polars {
        path: PathBuf,
        #[source]
        source: PolarsError,
    },
}

impl From<Problems> for IngestError {
    fn from(p: Problems) -> Self {
        IngestError::Problems(p)
    }
}

/// What was read from one input file, for the manifest.
#[derive(Debug, Clone)]
pub struct InputSummary {
    pub path: PathBuf,
    pub sha256: String,
    pub bytes: u64,
    pub rows: usize,
}

/// The ingested data.
#[derive(Debug)]
pub struct Table {
    /// Sorted by territory id then year.
    pub frame: DataFrame,
    pub inputs: Vec<InputSummary>,
    /// What the data leaves silently wrong unless said: indicators without a value, codes
    /// of a long source that no node uses, territories missing from some sources.
    pub warnings: Vec<String>,
    /// Publishers' flags counted per indicator id, then flag.
    pub flags: BTreeMap<String, BTreeMap<String, usize>>,
}

/// Reads, checks and widens every source of `plan`; downloaded sources come from
/// `fetched` (the fetch stage's results, by source).
pub fn load(plan: &Plan, fetched: Option<&Fetched>) -> Result<Table, IngestError> {
    let mut problems = Vec::new();
    let mut raws = Vec::new();
    for (k, sp) in plan.sources.iter().enumerate() {
        let got = fetched
            .and_then(|f| f.sources.get(k))
            .and_then(Option::as_ref);
        match read(plan, sp, got) {
            Ok(r) => raws.push(r),
            Err(p) => problems.extend(p),
        }
    }
    if !problems.is_empty() {
        return Err(Problems(problems).into());
    }

    let bindings = bind_columns(plan, &raws, &mut problems);
    if !problems.is_empty() {
        return Err(Problems(problems).into());
    }
    let mut warnings = unused_codes(&raws, &bindings);

    let mut parsed = Vec::new();
    for (raw, binding) in raws.iter().zip(&bindings) {
        parsed.push(parse_source(plan, raw, binding, &mut problems));
    }
    if !problems.is_empty() {
        return Err(Problems(problems).into());
    }

    let parsed: Vec<DataFrame> = parsed
        .into_iter()
        .map(|df| df.expect("no problems means every source parsed"))
        .collect();
    match territory_coverage(&raws, &parsed) {
        Ok(w) => warnings.extend(w),
        Err(p) => return Err(Problems(vec![p]).into()),
    }
    let mut frames = Vec::new();
    for (raw, df) in raws.iter().zip(parsed) {
        let wide = match raw.plan.layout {
            Layout::Wide => df,
            Layout::Long => {
                widen(plan, df, &bindings[frames.len()]).map_err(|source| IngestError::Polars {
                    path: raw.plan.file.path.clone(),
                    source,
                })?
            }
        };
        frames.push(wide);
    }
    let frame = combine(plan, frames).map_err(|source| IngestError::Polars {
        path: plan.sources[0].file.path.clone(),
        source,
    })?;
    let inputs = raws.iter().map(|r| summary(&r.raw)).collect();
    warnings.extend(empty_indicators(plan, &frame));
    let flags = flag_counts(&raws, &bindings);
    Ok(Table {
        frame,
        inputs,
        warnings,
        flags,
    })
}

/// Published flags counted per indicator (by the code each source gives it).
fn flag_counts(
    raws: &[RawSource<'_>],
    bindings: &[Binding],
) -> BTreeMap<String, BTreeMap<String, usize>> {
    let mut out: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for (raw, binding) in raws.iter().zip(bindings) {
        let Some(counts) = &raw.flags else { continue };
        for (id, code) in &binding.indicators {
            if let Some(c) = counts.get(code).filter(|c| !c.is_empty()) {
                let into = out.entry(id.clone()).or_default();
                for (flag, n) in c {
                    *into.entry(flag.clone()).or_default() += n;
                }
            }
        }
    }
    out
}

/// Codes of long sources that no indicator or denominator uses: their rows are ignored,
/// which is right for a shared extract and wrong for a typo, so they are named.
fn unused_codes(raws: &[RawSource<'_>], bindings: &[Binding]) -> Vec<String> {
    let mut out = Vec::new();
    for (raw, binding) in raws.iter().zip(bindings) {
        let Some(code_col) = raw.plan.indicator_column.as_deref() else {
            continue;
        };
        let used: HashSet<&str> = binding
            .indicators
            .iter()
            .map(|(_, code)| code.as_str())
            .chain(binding.denominators.iter().map(String::as_str))
            .collect();
        let mut unused: std::collections::BTreeMap<String, usize> = Default::default();
        for code in as_text(raw, code_col).iter().flatten() {
            let code = code.trim();
            if !used.contains(code) {
                *unused.entry(code.to_owned()).or_insert(0) += 1;
            }
        }
        if !unused.is_empty() {
            let rows: usize = unused.values().sum();
            let codes: Vec<&String> = unused.keys().collect();
            out.push(format!(
                "{}: {rows} row(s) with {} indicator code(s) that no framework node uses were ignored: {}",
                raw.plan.file.path.display(),
                codes.len(),
                list(&codes, 20)
            ));
        }
    }
    out
}

/// With several sources, every territory should be in each of them. One that is missing
/// from a source gets that source's indicators missing: a warning with counts and
/// examples. A source that shares no territory with the others is surely keyed
/// differently (`FR10` against `FR1`, leading zeros): an error.
fn territory_coverage(
    raws: &[RawSource<'_>],
    parsed: &[DataFrame],
) -> Result<Vec<String>, Problem> {
    if parsed.len() < 2 {
        return Ok(Vec::new());
    }
    let ids: Vec<std::collections::BTreeSet<String>> = parsed
        .iter()
        .map(|df| {
            df.column(TERRITORY_ID)
                .ok()
                .and_then(|c| c.str().ok().cloned())
                .map(|c| c.iter().flatten().map(str::to_owned).collect())
                .unwrap_or_default()
        })
        .collect();
    let all: std::collections::BTreeSet<&String> = ids.iter().flatten().collect();
    let mut warnings = Vec::new();
    for (k, own) in ids.iter().enumerate() {
        let others: std::collections::BTreeSet<&String> = ids
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != k)
            .flat_map(|(_, s)| s.iter())
            .collect();
        let path = raws[k].plan.file.path.display();
        if !own.iter().any(|id| others.contains(id)) {
            let mine: Vec<&String> = own.iter().collect();
            let theirs: Vec<&String> = others.into_iter().collect();
            let files: Vec<String> = raws
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != k)
                .map(|(_, r)| r.plan.file.path.display().to_string())
                .collect();
            return Err(Problem::new(
                Location::data_file(&raws[k].plan.file.path),
                format!(
                    "no territory id of this source is in the other source(s), {}: here {}; there {}",
                    files.join(", "),
                    list(&mine, 3),
                    list(&theirs, 3)
                ),
            )
            .with_help("the sources must use the same territory codes (check the id column, prefixes and leading zeros)"));
        }
        let missing: Vec<&String> = all
            .iter()
            .copied()
            .filter(|id| !own.contains(*id))
            .collect();
        if !missing.is_empty() {
            warnings.push(format!(
                "{path}: {} of the {} territories in the sources are not in this one, so its indicators are missing for them: {}",
                missing.len(),
                all.len(),
                list(&missing, 10)
            ));
        }
    }
    Ok(warnings)
}

/// Indicators with no value in any row: their scores will all be missing.
fn empty_indicators(plan: &Plan, frame: &DataFrame) -> Vec<String> {
    let empty: Vec<String> = plan
        .indicators()
        .filter(|(n, _)| {
            frame
                .column(&Plan::raw_column(&n.id))
                .is_ok_and(|c| c.null_count() == c.len())
        })
        .map(|(n, _)| n.id.clone())
        .collect();
    if empty.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "{} indicator(s) have no value in any row, so all their scores are missing: {}",
            empty.len(),
            list(&empty, 20)
        )]
    }
}

struct RawSource<'a> {
    plan: &'a SourcePlan,
    raw: RawFile,
    /// Publishers' datasets: flag counts by indicator code.
    flags: Option<super::cube::FlagCounts>,
}

impl std::ops::Deref for RawSource<'_> {
    type Target = RawFile;
    fn deref(&self) -> &RawFile {
        &self.raw
    }
}

pub fn summary(raw: &RawFile) -> InputSummary {
    InputSummary {
        path: raw.path.clone(),
        sha256: raw.sha256.clone(),
        bytes: raw.bytes,
        rows: raw.df.height(),
    }
}

/// Reads one source. In a wide CSV source, the columns of indicators and denominators are
/// parsed as numbers while reading (a wide framework's text never exists in memory); their
/// bad cells are reported from the reader, the key columns stay text. A publisher's
/// dataset is parsed by its format and mapped onto the pipeline ([`super::cube`]).
fn read<'a>(
    plan: &Plan,
    sp: &'a SourcePlan,
    fetched: Option<&FetchedSource>,
) -> Result<RawSource<'a>, Vec<Problem>> {
    if sp.remote.is_some() && fetched.is_none() {
        return Err(vec![Problem::new(
            sp.file.declared_at.clone(),
            format!("{}: not fetched", sp.what),
        )]);
    }
    if let Some(spec) = &sp.cube {
        let local;
        let (cube, sha256, bytes) = match fetched {
            Some(f) => {
                let Payload::Cube(c) = &f.payload else {
                    unreachable!("datasets are fetched as cubes")
                };
                let (sha, bytes) = digest(&f.downloads);
                (c, sha, bytes)
            }
            None => {
                let stored = crate::files::read_regular(&sp.file.path).map_err(|why| {
                    vec![Problem::new(
                        sp.file.declared_at.clone(),
                        format!("{}: cannot read {}: {why}", sp.what, sp.file.path.display()),
                    )]
                })?;
                local = crate::fetch::parse_cube(spec.format, &spec.filters, &stored)
                    .map_err(|e| vec![super::cube::unreadable(sp, &e)])?;
                (
                    &local,
                    crate::files::sha256_hex(&stored),
                    stored.len() as u64,
                )
            }
        };
        let mapped = super::cube::map(plan, sp, spec, cube, sha256, bytes)?;
        return Ok(RawSource {
            plan: sp,
            raw: mapped.raw,
            flags: Some(mapped.flags),
        });
    }
    let (id_column, year_column) = plan.key_columns(sp);
    let keys: Vec<&str> = [
        Some(id_column),
        year_column,
        plan.keys.name.as_deref(),
        plan.keys.group.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let numeric = match sp.layout {
        Layout::Wide => plan
            .indicators()
            .map(|(_, s)| s.column.as_str())
            .chain(plan.denominators().into_iter().map(|(d, _)| d))
            .filter(|c| !keys.contains(c))
            .collect(),
        Layout::Long => HashSet::new(),
    };
    let options = ReadOptions {
        numeric,
        missing: &sp.missing_values,
    };
    let raw = match fetched {
        Some(f) => {
            let Payload::Bytes(b) = &f.payload else {
                unreachable!("tables are fetched as bytes")
            };
            read_bytes(&sp.file, b.clone(), &options)
        }
        None => read_file(&sp.file, &options),
    };
    Ok(RawSource {
        plan: sp,
        raw: raw.map_err(|p| vec![p])?,
        flags: None,
    })
}

/// The digest and size of a source's downloads: the body's own for one, else a digest
/// over each URL and body digest.
fn digest(downloads: &[Download]) -> (String, u64) {
    let bytes = downloads.iter().map(|d| d.bytes).sum();
    match downloads {
        [one] => (one.sha256.clone(), bytes),
        many => {
            let list: String = many
                .iter()
                .map(|d| format!("{} {}\n", d.url, d.sha256))
                .collect();
            (crate::files::sha256_hex(list.as_bytes()), bytes)
        }
    }
}

/// Which indicators a source provides, and under which column (wide) or code (long).
#[derive(Debug, Default)]
struct Binding {
    /// (indicator id, column or code)
    indicators: Vec<(String, String)>,
    /// Denominator columns or codes.
    denominators: Vec<String>,
}

fn bind_columns(plan: &Plan, raws: &[RawSource<'_>], problems: &mut Vec<Problem>) -> Vec<Binding> {
    let mut bindings: Vec<Binding> = raws.iter().map(|_| Binding::default()).collect();
    // Key columns must be in every source.
    for raw in raws {
        let columns = raw.columns();
        let (id_column, year_column) = plan.key_columns(raw.plan);
        let mut need = vec![("territory id", Some(id_column))];
        need.push(("year", year_column));
        if raw.plan.layout == Layout::Long {
            need.push(("indicator", raw.plan.indicator_column.as_deref()));
            need.push(("value", raw.plan.value_column.as_deref()));
        }
        for (what, name) in need {
            if let Some(name) = name
                && !columns.iter().any(|c| c == name)
            {
                problems.push(unknown_column(
                    &raw.plan.file.path,
                    name,
                    what,
                    &columns,
                    &plan.keys.declared_at,
                ));
            }
        }
        for (what, name) in [
            ("territory name", &plan.keys.name),
            ("group", &plan.keys.group),
        ] {
            if let Some(name) = name
                && raws.len() == 1
                && !columns.iter().any(|c| c == name)
            {
                problems.push(unknown_column(
                    &raw.plan.file.path,
                    name,
                    what,
                    &columns,
                    &plan.keys.declared_at,
                ));
            }
        }
    }
    if !problems.is_empty() {
        return bindings;
    }

    // Long sources: the indicator codes they hold.
    let codes: Vec<Option<HashSet<String>>> = raws
        .iter()
        .map(|raw| {
            let c = raw.plan.indicator_column.as_ref()?;
            let column = raw.df.column(c).ok()?.cast(&DataType::String).ok()?;
            let set = column
                .str()
                .ok()?
                .iter()
                .flatten()
                .map(|s| s.trim().to_owned())
                .collect();
            Some(set)
        })
        .collect();

    for (node, spec) in plan.indicators() {
        let mut found = Vec::new();
        for (k, raw) in raws.iter().enumerate() {
            let has = match &codes[k] {
                Some(set) => set.contains(&spec.column),
                None => raw.df.column(&spec.column).is_ok(),
            };
            if has {
                found.push(k);
            }
        }
        match found.as_slice() {
            [k] => bindings[*k]
                .indicators
                .push((node.id.clone(), spec.column.clone())),
            [] => {
                let mut available: Vec<String> = Vec::new();
                for (k, raw) in raws.iter().enumerate() {
                    match &codes[k] {
                        Some(set) => {
                            let mut v: Vec<String> = set.iter().cloned().collect();
                            v.sort();
                            available.extend(v);
                        }
                        None => available.extend(raw.columns()),
                    }
                }
                let files: Vec<String> = raws
                    .iter()
                    .map(|r| r.plan.file.path.display().to_string())
                    .collect();
                let what = if spec.column == node.id {
                    format!(
                        "indicator \"{}\" is not in the data ({})",
                        node.id,
                        files.join(", ")
                    )
                } else {
                    format!(
                        "column \"{}\" of indicator \"{}\" is not in the data ({})",
                        spec.column,
                        node.id,
                        files.join(", ")
                    )
                };
                let mut help = format!("available: {}", list(&available, 40));
                if let Some(s) = closest(&spec.column, available.iter().map(String::as_str)) {
                    help = format!("did you mean \"{s}\"? {help}");
                }
                problems.push(Problem::new(spec.declared_at.clone(), what).with_help(help));
            }
            many => {
                let files: Vec<String> = many
                    .iter()
                    .map(|&k| raws[k].plan.file.path.display().to_string())
                    .collect();
                problems.push(Problem::new(
                    spec.declared_at.clone(),
                    format!(
                        "indicator \"{}\" (\"{}\") is in several sources: {}",
                        node.id,
                        spec.column,
                        files.join(", ")
                    ),
                ));
            }
        }
    }
    for (name, declared_at) in plan.denominators() {
        let found: Vec<usize> = (0..raws.len())
            .filter(|&k| match &codes[k] {
                Some(set) => set.contains(name),
                None => raws[k].df.column(name).is_ok(),
            })
            .collect();
        match found.as_slice() {
            [k] => bindings[*k].denominators.push(name.to_owned()),
            [] => {
                let available: Vec<String> = raws.iter().flat_map(|r| r.columns()).collect();
                let mut help = format!("available: {}", list(&available, 40));
                if let Some(s) = closest(name, available.iter().map(String::as_str)) {
                    help = format!("did you mean \"{s}\"? {help}");
                }
                problems.push(
                    Problem::new(
                        declared_at.clone(),
                        format!("denominator \"{name}\" is not in the data"),
                    )
                    .with_help(help),
                );
            }
            many => {
                let files: Vec<String> = many
                    .iter()
                    .map(|&k| raws[k].plan.file.path.display().to_string())
                    .collect();
                problems.push(Problem::new(
                    declared_at.clone(),
                    format!(
                        "denominator \"{name}\" is in several sources: {}",
                        files.join(", ")
                    ),
                ));
            }
        }
    }
    bindings
}

impl RawFile {
    /// A problem for each `(role, name)` of `need` that is not a column of the file.
    pub(crate) fn missing_columns(
        &self,
        need: &[(&str, &str)],
        declared_at: &Location,
    ) -> Vec<Problem> {
        let columns = self.columns();
        need.iter()
            .filter(|(_, name)| !columns.iter().any(|c| c == name))
            .map(|(what, name)| unknown_column(&self.path, name, what, &columns, declared_at))
            .collect()
    }
}

pub(crate) fn unknown_column(
    file: &Path,
    name: &str,
    what: &str,
    columns: &[String],
    declared_at: &Location,
) -> Problem {
    let mut help = format!("available columns: {}", list(columns, 40));
    if let Some(s) = closest(name, columns.iter().map(String::as_str)) {
        help = format!("did you mean \"{s}\"? {help}");
    }
    Problem::new(
        Location::data_file(file),
        format!("no column \"{name}\" ({what} column, set at {declared_at})"),
    )
    .with_help(help)
}

/// Parses keys and values of one source into typed columns:
/// keys, then `raw:<id>` (wide) or `__code`, `__value` (long).
fn parse_source(
    plan: &Plan,
    raw: &RawSource<'_>,
    binding: &Binding,
    problems: &mut Vec<Problem>,
) -> Option<DataFrame> {
    let sp = raw.plan;
    let mut cells = CellProblems::new(problems);
    // Cells of the value columns parsed while reading (wide CSV) that were not numbers.
    cells.read_errors(raw, |b| {
        binding.indicators.iter().any(|(_, c)| *c == b.column)
            || binding.denominators.contains(&b.column)
    });
    let missing = &sp.missing_values;
    let mut columns: Vec<Column> = Vec::new();

    // Territory id: text, trimmed, never empty.
    let (id_name, year_column) = plan.key_columns(raw.plan);
    let ids = as_text(raw, id_name);
    // `[territories] id_case / id_width / id_aliases`: the ids as the pipeline knows them.
    let rules = &plan.keys.rules;
    let ids: StringChunked = ids
        .iter()
        .enumerate()
        .map(|(row, v)| {
            let v = v.map(str::trim).filter(|v| !v.is_empty());
            if v.is_none() {
                cells.cell(raw, row, id_name, "empty territory id");
            }
            v.map(|v| rules.apply(v))
        })
        .collect();
    columns.push(ids.with_name(TERRITORY_ID.into()).into_column());

    for (key, out) in [(&plan.keys.name, TERRITORY_NAME), (&plan.keys.group, GROUP)] {
        if let Some(name) = key
            && raw.df.column(name).is_ok()
        {
            let v: StringChunked = as_text(raw, name)
                .iter()
                .map(|v| v.map(str::trim).filter(|v| !v.is_empty()))
                .collect();
            columns.push(v.with_name(out.into()).into_column());
        }
    }

    if let Some(year_name) = year_column {
        let years = years(raw, year_name, &mut cells);
        columns.push(years.with_name(YEAR.into()).into_column());
    }

    let specs: HashMap<&str, (&str, &IndicatorSpec)> = plan
        .indicators()
        .map(|(n, s)| (n.id.as_str(), (n.id.as_str(), s)))
        .collect();
    match sp.layout {
        Layout::Wide => {
            for (id, column) in &binding.indicators {
                let (_, spec) = specs[id.as_str()];
                let check = domain_checked(spec);
                let values = parse_numbers(raw, column, missing, &mut cells, |_| Some(check));
                columns.push(values.with_name(Plan::raw_column(id).into()).into_column());
            }
            for name in &binding.denominators {
                let values = parse_numbers(raw, name, missing, &mut cells, |_| Some(None));
                columns.push(
                    values
                        .with_name(Plan::denominator_column(name).into())
                        .into_column(),
                );
            }
        }
        Layout::Long => {
            let code_col = sp
                .indicator_column
                .as_deref()
                .expect("plan checks long sources");
            let value_col = sp
                .value_column
                .as_deref()
                .expect("plan checks long sources");
            let by_code: HashMap<&str, Option<&IndicatorSpec>> = binding
                .indicators
                .iter()
                .map(|(id, code)| (code.as_str(), domain_checked(specs[id.as_str()].1)))
                .chain(binding.denominators.iter().map(|d| (d.as_str(), None)))
                .collect();
            let codes: StringChunked = as_text(raw, code_col)
                .iter()
                .map(|v| v.map(str::trim))
                .collect();
            let code_of_row: Vec<Option<&str>> = codes.iter().collect();
            let values = parse_numbers(raw, value_col, missing, &mut cells, |row| {
                code_of_row[row].and_then(|c| by_code.get(c).copied())
            });
            columns.push(codes.with_name("__code".into()).into_column());
            columns.push(values.with_name("__value".into()).into_column());
            if let Ok(flags) = raw.df.column(CUBE_FLAG) {
                columns.push(flags.clone().with_name("__flag".into()));
            }
        }
    }
    cells.finish();
    // Repeated keys are checked even when some cells are bad, so that one pass of
    // `validate` lists both.
    let df = DataFrame::new(raw.df.height(), columns).ok()?;
    duplicates(plan, raw, &df, problems);
    problems.is_empty().then_some(df)
}

fn as_text(raw: &RawSource<'_>, name: &str) -> StringChunked {
    as_text_of(raw, name)
}

fn as_text_of(raw: &RawFile, name: &str) -> StringChunked {
    let column = raw
        .df
        .column(name)
        .expect("columns are bound before parsing");
    column
        .cast(&DataType::String)
        .expect("every column casts to text")
        .str()
        .expect("cast to text")
        .clone()
}

/// The spec whose transform a raw value must fit, if it is checked here: a denominated
/// indicator is transformed after the division, so it is checked then (`transform`).
fn domain_checked(spec: &IndicatorSpec) -> Option<&IndicatorSpec> {
    spec.denominator.is_none().then_some(spec)
}

/// A year column: whole numbers, also when stored as floats (`2022.0`); every bad cell reported.
pub(crate) fn years(raw: &RawFile, name: &str, cells: &mut CellProblems<'_>) -> Int64Chunked {
    let column = raw
        .df
        .column(name)
        .expect("columns are bound before parsing");
    if column.dtype().is_float() {
        let f = column.cast(&DataType::Float64).expect("float casts to f64");
        return f
            .f64()
            .expect("cast to f64")
            .iter()
            .enumerate()
            .map(|(row, v)| {
                let y = v.and_then(cell::year_of_float);
                if y.is_none() {
                    let text = v.map_or(String::new(), |v| v.to_string());
                    cells.cell(raw, row, name, year_problem(&text));
                }
                y
            })
            .collect();
    }
    as_text_of(raw, name)
        .iter()
        .enumerate()
        .map(|(row, v)| {
            let text = v.map(cell::trim).unwrap_or("");
            match cell::year(text) {
                Ok(y) => Some(y),
                Err(_) => {
                    cells.cell(raw, row, name, year_problem(text));
                    None
                }
            }
        })
        .collect()
}

fn year_problem(text: &str) -> String {
    if text.is_empty() {
        "year must be a whole number, got an empty cell".into()
    } else {
        CellError::NotAYear {
            text: text.to_owned(),
        }
        .to_string()
    }
}

/// Parses a value column; `spec_of(row)` is None when the row is not used, else the
/// indicator whose transform the value must fit (None: no such check).
fn parse_numbers<'s>(
    raw: &RawSource<'_>,
    column: &str,
    missing: &[String],
    cells: &mut CellProblems<'_>,
    spec_of: impl Fn(usize) -> Option<Option<&'s IndicatorSpec>>,
) -> Float64Chunked {
    let source = raw
        .df
        .column(column)
        .expect("columns are bound before parsing");
    let numeric = source.dtype().is_primitive_numeric();
    let floats = numeric.then(|| {
        source
            .cast(&DataType::Float64)
            .expect("numeric casts to f64")
            .f64()
            .expect("cast to f64")
            .clone()
    });
    let text = (!numeric).then(|| as_text(raw, column));
    let format = raw.number;
    (0..raw.df.height())
        .map(|row| {
            let spec = spec_of(row);
            let value = match (&floats, &text) {
                (Some(f), _) => f.get(row),
                (None, Some(t)) => {
                    let cell = cell::trim(t.get(row)?);
                    if cell::is_missing(cell, missing) {
                        return None;
                    }
                    match cell::number(cell, format) {
                        Ok(v) => Some(v),
                        Err(e) => {
                            // Rows of codes no indicator uses are not read.
                            if spec.is_some() {
                                cells.cell(raw, row, column, e);
                            }
                            return None;
                        }
                    }
                }
                (None, None) => unreachable!("either numeric or text"),
            }?;
            let spec = spec?;
            if !value.is_finite() {
                cells.cell(raw, row, column, format!("{value} is not a finite number"));
                return None;
            }
            if let Some(why) = spec.and_then(|spec| spec.domain_error(value)) {
                cells.cell(raw, row, column, why);
                return None;
            }
            Some(value)
        })
        .collect()
}

/// Reports territory (× year) (× indicator) keys that appear on more than one row.
fn duplicates(plan: &Plan, raw: &RawSource<'_>, df: &DataFrame, problems: &mut Vec<Problem>) {
    let mut keys = vec![col(TERRITORY_ID)];
    if plan.has_years() {
        keys.push(col(YEAR));
    }
    if raw.plan.layout == Layout::Long {
        keys.push(col("__code"));
    }
    let known = keys
        .iter()
        .map(|k| k.clone().is_not_null())
        .reduce(|a, b| a.and(b))
        .expect("a territory key");
    let found = df
        .clone()
        .lazy()
        .with_row_index("__row", None)
        .filter(known)
        .group_by(keys.clone())
        .agg([
            len().alias("__n"),
            col("__row").min().alias("__first"),
            col("__row").max().alias("__last"),
        ])
        .filter(col("__n").gt(lit(1)))
        .sort(["__first"], SortMultipleOptions::default())
        .limit(MAX_CELL_PROBLEMS as IdxSize + 1)
        .collect();
    let Ok(found) = found else { return };
    let what = match (plan.has_years(), raw.plan.layout) {
        (false, Layout::Wide) => "territory",
        (true, Layout::Wide) => "territory × year",
        (false, Layout::Long) => "territory × indicator",
        (true, Layout::Long) => "territory × year × indicator",
    };
    for i in 0..found.height() {
        let get = |name: &str| {
            found
                .column(name)
                .ok()
                .and_then(|c| c.get(i).ok())
                .map(|v| v.to_string().trim_matches('"').to_owned())
        };
        let mut key = get(TERRITORY_ID).unwrap_or_default();
        if plan.has_years() {
            key = format!("{key}, {}", get(YEAR).unwrap_or_default());
        }
        if raw.plan.layout == Layout::Long {
            key = format!("{key}, {}", get("__code").unwrap_or_default());
        }
        let n = get("__n").unwrap_or_default();
        let first: usize = get("__first").and_then(|v| v.parse().ok()).unwrap_or(0);
        let last: usize = get("__last").and_then(|v| v.parse().ok()).unwrap_or(0);
        let line = |r: usize| match raw.lines.as_ref().and_then(|l| l.get(r)) {
            Some(l) => format!("row {} (line {l})", r + 1),
            None => format!("row {}", r + 1),
        };
        problems.push(
            Problem::new(
                raw.cell(first, Some(plan.key_columns(raw.plan).0)),
                format!(
                    "duplicate {what} ({key}): {n} rows, first at {} and last at {}",
                    line(first),
                    line(last)
                ),
            )
            .with_help(
                "each territory (× year) must appear once; aggregate or remove the repeated rows",
            ),
        );
    }
}

/// Long source (keys, `__code`, `__value`) → one row per key, one `raw:<id>` column per indicator.
fn widen(plan: &Plan, long: DataFrame, binding: &Binding) -> PolarsResult<DataFrame> {
    let keys = key_exprs(plan);
    let mut firsts: Vec<Expr> = Vec::new();
    for name in [TERRITORY_NAME, GROUP] {
        if long.column(name).is_ok() {
            firsts.push(col(name).first());
        }
    }
    let flagged = long.column("__flag").is_ok();
    let lf = long.lazy();
    let mut wide = lf.clone().group_by_stable(keys.clone()).agg(firsts);
    let targets = binding
        .indicators
        .iter()
        .map(|(id, code)| {
            let flag = flagged.then(|| Plan::published_flag_column(id));
            (Plan::raw_column(id), code, flag)
        })
        .chain(
            binding
                .denominators
                .iter()
                .map(|d| (Plan::denominator_column(d), d, None)),
        );
    for (name, code, flag) in targets {
        let one = lf
            .clone()
            .filter(col("__code").eq(lit(code.clone())))
            .select(
                keys.iter()
                    .cloned()
                    .chain([col("__value").alias(name)])
                    .chain(flag.map(|f| col("__flag").alias(f)))
                    .collect::<Vec<_>>(),
            );
        wide = wide.join(
            one,
            keys.clone(),
            keys.clone(),
            JoinArgs::new(JoinType::Left),
        );
    }
    wide.collect()
}

fn key_exprs(plan: &Plan) -> Vec<Expr> {
    let mut keys = vec![col(TERRITORY_ID)];
    if plan.has_years() {
        keys.push(col(YEAR));
    }
    keys
}

/// Joins the per-source frames on the keys and gives every frame the same key columns.
fn combine(plan: &Plan, frames: Vec<DataFrame>) -> PolarsResult<DataFrame> {
    let keys = key_exprs(plan);
    let mut names: Vec<Vec<Expr>> = vec![Vec::new(), Vec::new()];
    let mut joined: Option<LazyFrame> = None;
    for (k, df) in frames.into_iter().enumerate() {
        let present: Vec<bool> = [TERRITORY_NAME, GROUP]
            .iter()
            .map(|n| df.column(n).is_ok())
            .collect();
        let mut lf = df.lazy();
        for (slot, name) in [TERRITORY_NAME, GROUP].into_iter().enumerate() {
            if present[slot] {
                let renamed = format!("__{name}_{k}");
                lf = lf.rename([name], [renamed.as_str()], true);
                names[slot].push(col(renamed));
            }
        }
        joined = Some(match joined {
            None => lf,
            Some(acc) => acc.join(
                lf,
                keys.clone(),
                keys.clone(),
                JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns),
            ),
        });
    }
    let joined = joined.expect("a plan has at least one source");
    let first_present = |exprs: &[Expr]| -> Expr {
        exprs
            .iter()
            .rev()
            .fold(lit(NULL).cast(DataType::String), |acc, e| {
                when(e.clone().is_not_null()).then(e.clone()).otherwise(acc)
            })
    };
    let mut select = vec![
        col(TERRITORY_ID),
        first_present(&names[0]).alias(TERRITORY_NAME),
        first_present(&names[1]).alias(GROUP),
    ];
    select.push(if plan.has_years() {
        col(YEAR)
    } else {
        lit(NULL).cast(DataType::Int64).alias(YEAR)
    });
    select.extend(plan.indicators().map(|(n, _)| col(Plan::raw_column(&n.id))));
    select.extend(
        plan.denominators()
            .into_iter()
            .map(|(d, _)| col(Plan::denominator_column(d))),
    );
    // Flags travel for the indicators of publishers' datasets; the others have none.
    if plan.has_flags() {
        let mut joined_mut = joined.clone();
        let schema = joined_mut.collect_schema()?;
        select.extend(plan.indicators().map(|(n, _)| {
            let name = Plan::published_flag_column(&n.id);
            if schema.contains(&name) {
                col(name)
            } else {
                lit(NULL).cast(DataType::String).alias(name)
            }
        }));
    }
    let fill = [TERRITORY_NAME, GROUP]
        .map(|c| {
            let first = col(c).drop_nulls().first().over([col(TERRITORY_ID)])?;
            Ok(col(c).fill_null(first))
        })
        .into_iter()
        .collect::<PolarsResult<Vec<Expr>>>()?;
    joined
        .select(select)
        // A name or group given for some years only (one source has them, another has
        // the other years) holds for the territory's other years; only gaps are filled,
        // so a group may still change from year to year.
        .with_columns(fill)
        .sort(
            [TERRITORY_ID, YEAR],
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .collect()
}

/// Covariate values by (territory, year); year is None when the covariate has none.
pub type Covariate = HashMap<(String, Option<i64>), f64>;

/// Reads the covariate table, with every bad cell reported.
pub fn read_covariate(cv: &crate::plan::CovariatePlan) -> Result<Covariate, Vec<Problem>> {
    let raw = read_file(&cv.file, &ReadOptions::default()).map_err(|p| vec![p])?;
    let mut need = vec![
        ("territory", cv.territory.as_str()),
        ("covariate", cv.column.as_str()),
    ];
    if let Some(y) = &cv.year {
        need.push(("year", y.as_str()));
    }
    let mut problems = raw.missing_columns(&need, &cv.declared_at);
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut cells = CellProblems::new(&mut problems);
    let ids = as_text_of(&raw, &cv.territory);
    let years = cv.year.as_ref().map(|y| years(&raw, y, &mut cells));
    let values = numbers(
        &raw,
        &cv.column,
        &crate::plan::default_missing(),
        &mut cells,
    );
    let mut out = HashMap::new();
    for (i, value) in values.iter().enumerate() {
        let Some(id) = ids.get(i).map(cell::trim).filter(|s| !s.is_empty()) else {
            continue;
        };
        let year = match &years {
            Some(y) => match y.get(i) {
                Some(v) => Some(v),
                None => continue,
            },
            None => None,
        };
        let Some(x) = *value else { continue };
        // Long tables repeat a covariate on every row of a territory: fine as long as the
        // repeats agree.
        if let Some(before) = out.insert((id.to_owned(), year), x)
            && before != x
        {
            cells.cell(
                &raw,
                i,
                &cv.column,
                format!(
                    "territory \"{id}\"{} has two different values, {before} and {x}",
                    year.map_or(String::new(), |y| format!(" in {y}"))
                ),
            );
        }
    }
    cells.finish();
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// A column of numbers (text cells parsed with the file's number format; missing
/// markers are nulls); every bad cell reported.
pub(crate) fn numbers(
    raw: &RawFile,
    name: &str,
    missing: &[String],
    cells: &mut CellProblems<'_>,
) -> Vec<Option<f64>> {
    let column = raw.df.column(name).expect("checked");
    if column.dtype().is_primitive_numeric() {
        let f = column.cast(&DataType::Float64).expect("numeric casts");
        return f
            .f64()
            .expect("f64")
            .iter()
            .enumerate()
            .map(|(row, v)| {
                let v = v?;
                if v.is_finite() {
                    Some(v)
                } else {
                    cells.cell(raw, row, name, format!("{v} is not a finite number"));
                    None
                }
            })
            .collect();
    }
    as_text_of(raw, name)
        .iter()
        .enumerate()
        .map(|(row, v)| {
            let t = cell::trim(v?);
            if cell::is_missing(t, missing) {
                return None;
            }
            match cell::number(t, raw.number) {
                Ok(x) => Some(x),
                Err(e) => {
                    cells.cell(raw, row, name, e);
                    None
                }
            }
        })
        .collect()
}
