//! Resolves a pipeline config into what the computation runs on: the node table and settings.
//!
//! Every check that needs only the pipeline file happens here, and all problems are
//! collected before reporting, so one `validate` shows them all. Checks that need the data
//! (columns, cells) belong to `ingest`. The framework tree becomes a flat table of nodes
//! (index first, then dimensions, components and indicators in file order), from which
//! `normalise` and `aggregate` generate one polars expression per node.

use std::collections::HashMap;
use std::path::{Component as PathComponent, Path, PathBuf};

use toml::Spanned;

use crate::config::{
    AggregationConfig, Direction, Format, GoalpostKind, ImputeMethod, IndexConfig, LoadedConfig,
    Method, MethodConfig, NormMethod, OutputFormat, PartitionKey, PipelineConfig, Scope, ScreenOn,
    TerritoryColumns, WeightMethod,
};

pub mod charts;
pub mod rci;
pub mod source;
pub mod territories;

use crate::diagnostic::{Location, Problem, Problems, closest, list};
pub use rci::RciPlan;
pub use source::{CubeFormat, CubeSpec, RemoteSpec, SourcePlan};
pub use territories::{IdRules, Parent, RollupPlan};

/// Column names of the key columns in every frame and output.
pub const TERRITORY_ID: &str = "territory_id";
pub const TERRITORY_NAME: &str = "territory_name";
pub const GROUP: &str = "group";
pub const YEAR: &str = "year";
const RESERVED: [&str; 8] = [
    TERRITORY_ID,
    TERRITORY_NAME,
    GROUP,
    YEAR,
    "level",
    "node_id",
    "value",
    "rank",
];

/// Default minimum share of children that must be present for a parent to get a score.
pub const DEFAULT_MIN_SHARE: f64 = 0.5;

pub use crate::config::Level;

/// How a parent node combines its children.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mean {
    /// Weighted arithmetic mean (weights all 1 for the unweighted one).
    Arithmetic,
    Geometric,
    Harmonic,
    Power(f64),
}

impl Mean {
    /// The mean in words, for messages and the manifest.
    pub fn describe(self) -> String {
        match self {
            Mean::Arithmetic => "arithmetic mean".into(),
            Mean::Geometric => "geometric mean".into(),
            Mean::Harmonic => "harmonic mean".into(),
            Mean::Power(p) => format!("power mean (p = {p})"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub method: Method,
    pub mean: Mean,
    pub min_share: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goalposts {
    /// In the indicator's original units.
    Fixed {
        utopia: f64,
        dystopia: f64,
    },
    Observed,
}

/// How an indicator's transformed values become scores. Data-driven methods work on the
/// direction-adjusted value (× −1 when lower is better), as COINr does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Normalisation {
    Goalposts(Goalposts),
    MinMax {
        lo: f64,
        hi: f64,
    },
    ZScore {
        mean: f64,
        sd: f64,
    },
    Rank,
    /// `lo + (hi − lo)·(rank − 1)/(n − 1)`.
    Percentile {
        lo: f64,
        hi: f64,
    },
    /// Target in the indicator's units.
    DistanceToTarget {
        target: f64,
        cap: bool,
    },
    DistanceToMax,
}

impl Normalisation {
    pub fn name(&self) -> &'static str {
        match self {
            Normalisation::Goalposts(_) => "goalposts",
            Normalisation::MinMax { .. } => "minmax",
            Normalisation::ZScore { .. } => "zscore",
            Normalisation::Rank => "rank",
            Normalisation::Percentile { .. } => "percentile",
            Normalisation::DistanceToTarget { .. } => "distance_to_target",
            Normalisation::DistanceToMax => "distance_to_max",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct IndicatorSpec {
    /// Column (wide) or indicator code (long) in the data.
    pub column: String,
    pub direction: Direction,
    pub normalisation: Normalisation,
    pub cap_min: Option<f64>,
    pub cap_max: Option<f64>,
    pub log: bool,
    pub unit: Option<String>,
    /// Divide by this column (wide) or code (long), then multiply by the scale.
    pub denominator: Option<(String, f64)>,
    pub impute: ImputeMethod,
    /// Subject to [treatment] (when the pipeline has one).
    pub treat: bool,
    /// Where the indicator is declared, for data errors that concern it.
    pub declared_at: Location,
}

impl IndicatorSpec {
    /// Why a raw value cannot be transformed, if it cannot.
    pub fn domain_error(&self, x: f64) -> Option<String> {
        if self.log {
            let capped = self.transform_value(x);
            if !capped.is_finite() {
                let after_cap = if self.cap_min.is_some() || self.cap_max.is_some() {
                    " after capping"
                } else {
                    ""
                };
                return Some(format!(
                    "value {x} cannot be log-transformed{after_cap} (log needs a positive value)"
                ));
            }
        }
        None
    }

    /// The transform applied to raw values and fixed goalposts alike (cap, then log), with
    /// the operations of `transform::expr`, which applies it to columns: a cap compares
    /// (NaN stays NaN), and the log is the natural one.
    pub fn transform_value(&self, mut x: f64) -> f64 {
        if let Some(m) = self.cap_max
            && x > m
        {
            x = m;
        }
        if let Some(m) = self.cap_min
            && x < m
        {
            x = m;
        }
        if self.log { x.ln() } else { x }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub id: String,
    pub name: String,
    pub level: Level,
    pub parent: Option<usize>,
    pub children: Vec<usize>,
    /// Weight within its parent (1 unless given).
    pub weight: f64,
    /// Set for every node but indicators.
    pub rule: Option<Rule>,
    /// Set for indicators only.
    pub indicator: Option<IndicatorSpec>,
}

/// Which source columns hold the territory keys.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyColumns {
    pub id: String,
    pub name: Option<String>,
    pub group: Option<String>,
    pub year: Option<String>,
    /// Territory ids scored but not ranked (`[territories] unranked`).
    pub unranked: Vec<String>,
    /// How every source's ids are normalised.
    pub rules: IdRules,
    /// The years scored (first, last); other years only feed the imputation.
    pub years: Option<(i64, i64)>,
    pub declared_at: Location,
}

/// A resolved, checked pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub pipeline_path: PathBuf,
    pub pipeline_sha256: String,
    pub id: String,
    pub name: String,
    pub keys: KeyColumns,
    pub sources: Vec<SourcePlan>,
    /// Index at 0, then dimensions, components, indicators, each in file order.
    pub nodes: Vec<Node>,
    pub clip: bool,
    /// Where the statistics of data-driven normalisations are taken.
    pub scope: Scope,
    /// Screening, imputation and treatment settings (methods per indicator in the specs).
    pub prep: Preparation,
    /// How the children of each level are weighted: indicators, components, dimensions.
    pub weighting: [WeightMethod; 3],
    /// PCA weights keep negative loadings as negative weights (COINr) instead of 0.
    pub keep_negative_loadings: bool,
    pub analysis: AnalysisPlan,
    pub uncertainty: Option<UncertaintyPlan>,
    pub anchoring: Option<AnchoringPlan>,
    /// Finer territories aggregated into coarser ones before scoring.
    pub rollup: Option<RollupPlan>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AnchoringPlan {
    pub level: Level,
    pub national: FileRef,
    /// Scores given (true) or computed from national indicator data (false).
    pub national_scores: bool,
    pub national_id: String,
    pub population: CovariatePlan,
    pub population_year: Option<i64>,
    pub include_partial: bool,
    pub declared_at: Location,
}

impl AnchoringPlan {
    /// The plan that scores the national indicator data (`data` mode) with this
    /// pipeline's own framework: one wide source, keyed by the national id.
    pub fn national_plan(&self, plan: &Plan) -> Plan {
        let mut national = plan.clone();
        national.sources = vec![SourcePlan::wide_file(self.national.clone())];
        national.keys = KeyColumns {
            id: self.national_id.clone(),
            name: None,
            group: None,
            year: plan.keys.year.clone(),
            unranked: Vec::new(),
            rules: IdRules::default(),
            years: None,
            declared_at: self.declared_at.clone(),
        };
        national.anchoring = None;
        national.rollup = None;
        national.uncertainty = None;
        national.analysis = Default::default();
        national.prep.screening = None;
        national
    }
}

/// The Monte Carlo over methodological choices.
#[derive(Debug, Clone, PartialEq)]
pub struct UncertaintyPlan {
    pub runs: usize,
    pub seed: u64,
    /// ± share of each weight, if weights vary.
    pub weights: Option<f64>,
    pub normalisation: Vec<NormMethod>,
    pub aggregation: Vec<Mean>,
    pub aggregation_levels: Vec<Level>,
    pub imputation: Vec<ImputeMethod>,
    pub declared_at: Location,
}

/// Analyses run with the index.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AnalysisPlan {
    pub coherence: bool,
    pub scorecard: Option<ScorecardPlan>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScorecardPlan {
    pub covariate: CovariatePlan,
    pub peers: usize,
    pub levels: Vec<Level>,
}

/// Steps between reading the data and normalising it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Preparation {
    pub screening: Option<Screening>,
    /// Whether any indicator is imputed (flags then go to the outputs).
    pub imputation: bool,
    /// Panel imputation: the most consecutive missing years filled.
    pub max_gap: u32,
    pub treatment: Option<Treatment>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Screening {
    pub min_availability: f64,
    pub on: ScreenOn,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub declared_at: Location,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Treatment {
    pub skewness: f64,
    pub kurtosis: f64,
    pub max_winsorised: usize,
    pub log_fallback: bool,
}

impl Plan {
    pub fn nodes_at(&self, level: Level) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(move |n| n.level == level)
    }

    pub fn indicators(&self) -> impl Iterator<Item = (&Node, &IndicatorSpec)> {
        self.nodes
            .iter()
            .filter_map(|n| n.indicator.as_ref().map(|s| (n, s)))
    }

    /// Column holding the raw (then transformed) values of an indicator.
    pub fn raw_column(indicator_id: &str) -> String {
        format!("raw:{indicator_id}")
    }

    /// Column holding the values of a denominator.
    pub fn denominator_column(name: &str) -> String {
        format!("den:{name}")
    }

    /// The column of the flags publishers gave an indicator's raw values.
    pub fn published_flag_column(indicator_id: &str) -> String {
        format!("pubflag:{indicator_id}")
    }

    /// The columns of a table source holding the territory id and the year.
    pub fn key_columns<'a>(&'a self, sp: &'a SourcePlan) -> (&'a str, Option<&'a str>) {
        (
            sp.id_column.as_deref().unwrap_or(&self.keys.id),
            sp.year_column.as_deref().or(self.keys.year.as_deref()),
        )
    }

    /// Whether some source is a publisher's dataset, whose flags travel into the scores.
    pub fn has_flags(&self) -> bool {
        self.sources.iter().any(|s| s.cube.is_some())
    }

    /// Every denominator column or code the indicators use, once each, in order.
    pub fn denominators(&self) -> Vec<(&str, &Location)> {
        let mut out: Vec<(&str, &Location)> = Vec::new();
        for (_, spec) in self.indicators() {
            if let Some((d, _)) = &spec.denominator
                && !out.iter().any(|(o, _)| o == d)
            {
                out.push((d.as_str(), &spec.declared_at));
            }
        }
        out
    }

    pub fn has_years(&self) -> bool {
        self.keys.year.is_some()
    }

    /// The indicators at or under `node` (its own index when it is one).
    pub fn indicators_under(&self, node: &Node) -> Vec<usize> {
        let mut out = Vec::new();
        let mut stack: Vec<usize> = node.children.clone();
        if node.indicator.is_some()
            && let Some(i) = self.nodes.iter().position(|n| n.id == node.id)
        {
            out.push(i);
        }
        while let Some(i) = stack.pop() {
            if self.nodes[i].indicator.is_some() {
                out.push(i);
            }
            stack.extend(&self.nodes[i].children);
        }
        out.sort_unstable();
        out
    }
}

/// Power means with |p| below this are refused: x^p rounds to 1 (documented in the
/// README: use the geometric mean, their limit).
pub const MIN_POWER: f64 = 1e-6;
/// Power means with |p| above this are refused: scores of 100 to that power overflow.
pub const MAX_POWER: f64 = 100.0;
/// Largest weight accepted.
pub const MAX_WEIGHT: f64 = 1e12;

pub const DEFAULT_MISSING: [&str; 7] = ["", "NA", "N/A", "n/a", "NaN", ":", ".."];

/// [`DEFAULT_MISSING`] as owned strings, as the readers take them.
pub fn default_missing() -> Vec<String> {
    DEFAULT_MISSING.iter().map(|s| s.to_string()).collect()
}

/// A resolved pipeline: a composite index, a relational capability section, or both.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub path: PathBuf,
    pub sha256: String,
    pub id: String,
    pub name: String,
    pub index: Option<Plan>,
    pub rci: Option<RciPlan>,
    pub charts: Option<charts::ChartsPlan>,
    /// Every file the pipeline reads besides itself (sources, tables, surveys, maps).
    pub inputs: Vec<PathBuf>,
    /// Runs kept in the history (`[output] keep`).
    pub keep: usize,
    /// The score tables written (`[output] formats`).
    pub formats: Vec<OutputFormat>,
    /// `[output] partition_by`: the tidy scores also as a hive-partitioned dataset.
    pub partition_by: Vec<PartitionKey>,
    /// The pipeline file as written (kept with every run, for `diff`).
    pub text: String,
}

/// Runs kept in a pipeline's history unless `[output] keep` says otherwise.
pub const DEFAULT_KEEP: usize = 30;

impl Pipeline {
    /// Every data table the pipeline reads (sources, covariates, national and population
    /// tables, survey microdata).
    pub fn files(&self) -> Vec<&FileRef> {
        let mut out = Vec::new();
        if let Some(plan) = &self.index {
            // Publishers' formats and downloads are read by their own parsers.
            out.extend(
                plan.sources
                    .iter()
                    .filter(|s| s.cube.is_none() && s.remote.is_none() && !s.unresolved)
                    .map(|s| &s.file),
            );
            if let Some(sc) = &plan.analysis.scorecard {
                out.push(&sc.covariate.file);
            }
            if let Some(a) = &plan.anchoring {
                out.push(&a.national);
                out.push(&a.population.file);
            }
        }
        if let Some(rci) = &self.rci {
            out.push(&rci.source);
        }
        if let Some(cv) = self.charts.as_ref().and_then(|c| c.covariate.as_ref()) {
            out.push(&cv.file);
        }
        out
    }
}

/// A column to compare territories by (GDP per capita, population…), from its own table:
/// the x axis of a scatter chart, the peers of a scorecard.
#[derive(Debug, Clone, PartialEq)]
pub struct CovariatePlan {
    pub file: FileRef,
    pub territory: String,
    pub year: Option<String>,
    pub column: String,
    pub name: String,
    pub unit: Option<String>,
    pub log: Option<bool>,
    pub declared_at: Location,
}

/// A data file as resolved from the pipeline: where, which format, CSV options.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRef {
    pub path: PathBuf,
    pub format: Format,
    pub separator: u8,
    pub decimal_comma: bool,
    pub thousands: Option<char>,
    /// None: UTF-8 (a byte-order mark still decides when present).
    pub encoding: Option<&'static encoding_rs::Encoding>,
    /// xlsx: the sheet to read (None: the first).
    pub sheet: Option<String>,
    /// xlsx: the row (1-based, as Excel numbers it) holding the header; the rows above
    /// are titles and notes (None: the sheet's first row).
    pub header_row: Option<usize>,
    pub declared_at: Location,
}

/// The CSV options of a file reference, as written.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CsvOptions<'a> {
    pub separator: Option<&'a Spanned<String>>,
    pub decimal: Option<&'a Spanned<String>>,
    pub thousands: Option<&'a Spanned<String>>,
    pub encoding: Option<&'a Spanned<String>>,
}

macro_rules! csv_options {
    ($c:expr) => {
        $crate::plan::CsvOptions {
            separator: $c.separator.as_ref(),
            decimal: $c.decimal.as_ref(),
            thousands: $c.thousands.as_ref(),
            encoding: $c.encoding.as_ref(),
        }
    };
}
pub(crate) use csv_options;

/// The data files named by a pipeline file that does not parse (a typo in a key, a
/// syntax error elsewhere), read from it leniently: `validate` still reads them, so that
/// one pass lists the data's problems beside the file's.
pub fn files_of_unparsed(path: &Path, text: &str) -> Vec<FileRef> {
    let Ok(table) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let mut entries: Vec<&toml::Table> = Vec::new();
    if let Some(toml::Value::Array(sources)) = table.get("source") {
        entries.extend(sources.iter().filter_map(|s| s.as_table()));
    }
    if let Some(source) = table
        .get("rci")
        .and_then(|r| r.get("source"))
        .and_then(|s| s.as_table())
    {
        entries.push(source);
    }
    let base = path.parent().unwrap_or(Path::new(""));
    let text_of =
        |t: &toml::Table, key: &str| t.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    entries
        .into_iter()
        .filter_map(|t| {
            // Publishers' sources are not plain tables.
            if text_of(t, "kind").is_some_and(|k| k != "file" && k != "http") {
                return None;
            }
            let written = text_of(t, "path")?;
            let resolved = normalise_path(&base.join(&written));
            let unzipped = match resolved.extension().and_then(|e| e.to_str()) {
                Some(e) if e.eq_ignore_ascii_case("gz") => resolved.with_extension(""),
                _ => resolved.clone(),
            };
            let by_name = |e: &str| -> Format {
                match e.to_ascii_lowercase().as_str() {
                    "parquet" | "pq" => Format::Parquet,
                    "xlsx" => Format::Xlsx,
                    _ => Format::Csv,
                }
            };
            let format = match text_of(t, "format") {
                Some(f) => by_name(&f),
                None => unzipped
                    .extension()
                    .and_then(|e| e.to_str())
                    .map_or(Format::Csv, by_name),
            };
            let separator = text_of(t, "separator")
                .map(|v| if v == "\\t" { "\t".to_owned() } else { v })
                .filter(|v| v.len() == 1 && v.is_ascii())
                .map_or(b',', |v| v.as_bytes()[0]);
            let offset = text.find(&format!("\"{written}\"")).unwrap_or(0);
            Some(FileRef {
                path: resolved,
                format,
                separator,
                decimal_comma: text_of(t, "decimal").as_deref() == Some(","),
                thousands: text_of(t, "thousands").and_then(|v| v.chars().next()),
                encoding: text_of(t, "encoding")
                    .and_then(|e| encoding_rs::Encoding::for_label(e.trim().as_bytes())),
                sheet: text_of(t, "sheet"),
                header_row: t
                    .get("header_row")
                    .and_then(|v| v.as_integer())
                    .and_then(|v| usize::try_from(v).ok()),
                declared_at: Location::config_at(path, text, offset),
            })
        })
        .collect()
}

/// Resolves and checks a loaded pipeline; returns every problem found.
pub fn resolve(loaded: &LoadedConfig) -> Result<Pipeline, Problems> {
    let (plan, problems) = resolve_all(loaded);
    if problems.is_empty() {
        Ok(plan)
    } else {
        Err(Problems(problems))
    }
}

/// Resolves a loaded pipeline as far as it goes, with every problem found: with problems,
/// the pipeline is only good for reading the files it names (what `validate` still does).
pub fn resolve_all(loaded: &LoadedConfig) -> (Pipeline, Vec<Problem>) {
    let mut r = Resolver {
        loaded,
        problems: Vec::new(),
        inputs: Default::default(),
    };
    let plan = r.resolve(&loaded.config);
    (plan, r.problems)
}

pub(crate) struct Resolver<'a> {
    loaded: &'a LoadedConfig,
    problems: Vec<Problem>,
    /// Every file the pipeline names, as resolved (outputs must never touch them).
    inputs: std::cell::RefCell<Vec<PathBuf>>,
}

impl Resolver<'_> {
    pub(crate) fn at<T>(&self, s: &Spanned<T>) -> Location {
        self.loaded.at(s.span())
    }

    /// The levels of `list`, each checked to be one of `allowed` for `what`.
    pub(crate) fn levels_among(
        &mut self,
        list: &[Spanned<Level>],
        allowed: &[Level],
        what: &str,
    ) -> Vec<Level> {
        let mut out = Vec::new();
        for l in list {
            let level = *l.get_ref();
            if allowed.contains(&level) {
                out.push(level);
            } else {
                let names: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
                self.problem(
                    self.at(l),
                    format!(
                        "{what}: level \"{level}\" cannot be used here; use {}",
                        names.join(", ")
                    ),
                );
            }
        }
        out
    }

    pub(crate) fn problem(
        &mut self,
        location: Location,
        message: impl Into<String>,
    ) -> &mut Problem {
        self.problems.push(Problem::new(location, message));
        self.problems.last_mut().expect("just pushed")
    }

    fn resolve(&mut self, c: &PipelineConfig) -> Pipeline {
        let id = c.pipeline.id.get_ref().clone();
        if !is_valid_id(&id) || id.starts_with('.') {
            self.problem(
                self.at(&c.pipeline.id),
                format!("pipeline id \"{id}\" is not usable as a directory name"),
            )
            .help = Some("use letters, digits, '_', '-' or '.' (not first)".into());
        }
        let name = c.pipeline.name.clone().unwrap_or_else(|| id.clone());
        let top = Location::Config {
            file: self.loaded.path.clone(),
            line: 1,
            column: 1,
        };
        let index = match (&c.index, &c.territories) {
            (Some(index), Some(territories)) => {
                Some(self.index_plan(c, index, territories, &id, &name))
            }
            (Some(index), None) => {
                self.problem(
                    self.at(index),
                    "an [index] needs [territories] to say which columns identify a territory",
                );
                None
            }
            (None, _) => {
                let stray = [
                    ("[territories]", c.territories.is_some()),
                    ("[[source]]", !c.sources.is_empty()),
                    ("[[dimension]]", !c.dimensions.is_empty()),
                    ("[[component]]", !c.components.is_empty()),
                    ("[[indicator]]", !c.indicators.is_empty()),
                    ("[analysis]", c.analysis.is_some()),
                    ("[uncertainty]", c.uncertainty.is_some()),
                    ("[anchoring]", c.anchoring.is_some()),
                ];
                for (what, present) in stray {
                    if present {
                        self.problem(
                            top.clone(),
                            format!("{what} is given but there is no [index]"),
                        );
                    }
                }
                None
            }
        };
        let rci = c.rci.as_ref().map(|r| rci::resolve(self, r));
        if index.is_none() && rci.is_none() && c.index.is_none() {
            self.problem(
                top,
                "the pipeline computes nothing: add an [index] or an [rci] section",
            );
        }
        let charts = c
            .charts
            .as_ref()
            .map(|ch| charts::resolve(self, ch, index.as_ref(), rci.as_ref(), &name));
        let keep = match c.output.as_ref().and_then(|o| o.get_ref().keep.as_ref()) {
            None => DEFAULT_KEEP,
            Some(k) if *k.get_ref() == 0 => {
                self.problem(
                    self.at(k),
                    "[output] keep must be at least 1: the latest run is always kept",
                );
                1
            }
            Some(k) => *k.get_ref(),
        };
        let formats = match c.output.as_ref().and_then(|o| o.get_ref().formats.as_ref()) {
            None => vec![OutputFormat::Parquet, OutputFormat::Csv, OutputFormat::Wide],
            Some(f) => {
                let mut v: Vec<OutputFormat> = f.get_ref().iter().map(|x| *x.get_ref()).collect();
                v.sort();
                v.dedup();
                if v.is_empty() {
                    self.problem(
                        self.at(f),
                        "[output] formats is empty: name at least one of \"parquet\", \"csv\", \"wide\"",
                    );
                }
                v
            }
        };
        let partition_by = self.partition_by(c, index.as_ref());
        Pipeline {
            path: self.loaded.path.clone(),
            sha256: self.loaded.sha256(),
            id,
            name,
            index,
            rci,
            charts,
            inputs: self.inputs.take(),
            keep,
            formats,
            partition_by,
            text: self.loaded.text.clone(),
        }
    }

    /// `[output] partition_by`: each key once, and only keys the index's rows have.
    fn partition_by(&mut self, c: &PipelineConfig, index: Option<&Plan>) -> Vec<PartitionKey> {
        let Some(keys) = c
            .output
            .as_ref()
            .and_then(|o| o.get_ref().partition_by.as_ref())
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if keys.get_ref().is_empty() {
            self.problem(
                self.at(keys),
                "[output] partition_by is empty: name \"year\", \"group\" or both, or leave it out",
            );
        }
        for k in keys.get_ref() {
            let key = *k.get_ref();
            let missing = match (key, index) {
                (_, None) => Some("there is no [index] whose scores it would split"),
                (PartitionKey::Year, Some(p)) if !p.has_years() => {
                    Some("the pipeline has no years ([territories] year)")
                }
                (PartitionKey::Group, Some(p)) if p.keys.group.is_none() => {
                    Some("the pipeline has no groups ([territories] group)")
                }
                _ => None,
            };
            if let Some(why) = missing {
                self.problem(
                    self.at(k),
                    format!("[output] partition_by = \"{key}\": {why}"),
                );
            } else if out.contains(&key) {
                self.problem(
                    self.at(k),
                    format!("[output] partition_by names \"{key}\" twice"),
                );
            } else {
                out.push(key);
            }
        }
        out
    }

    fn index_plan(
        &mut self,
        c: &PipelineConfig,
        index: &Spanned<IndexConfig>,
        territories: &Spanned<TerritoryColumns>,
        id: &str,
        name: &str,
    ) -> Plan {
        let t = territories.get_ref();
        let keys = KeyColumns {
            id: t.id.get_ref().clone(),
            name: t.name.as_ref().map(|s| s.get_ref().clone()),
            group: t.group.as_ref().map(|s| s.get_ref().clone()),
            year: t.year.as_ref().map(|s| s.get_ref().clone()),
            unranked: t
                .unranked
                .iter()
                .map(|s| s.get_ref().trim().to_owned())
                .collect(),
            rules: self.id_rules(t),
            years: t.years.as_ref().and_then(|y| {
                let [from, to] = *y.get_ref();
                if t.year.is_none() {
                    self.problem(
                        self.at(y),
                        "`years` needs a year column ([territories] year = …)",
                    );
                    None
                } else if from > to {
                    self.problem(
                        self.at(y),
                        format!("years = [{from}, {to}]: the first year comes after the last"),
                    );
                    None
                } else {
                    Some((from, to))
                }
            }),
            declared_at: self.at(&t.id),
        };
        let sources = self.sources(c);
        let nodes = self.nodes(c, index);
        let prep = self.preparation(c, &keys, &nodes);
        let weighting = self.weighting(c, &nodes);
        let keep_negative_loadings = self.negative_loadings(c, &nodes, &weighting);
        let analysis = self.analysis(c);
        let uncertainty = self.uncertainty(c, &keys);
        let anchoring = self.anchoring(c, &keys);
        let scope = match &c.normalisation.scope {
            Some(s) if *s.get_ref() == Scope::PerYear && keys.year.is_none() => {
                self.problem(
                    self.at(s),
                    "scope = \"per_year\" needs years ([territories] year = …)",
                );
                Scope::Global
            }
            Some(s) => *s.get_ref(),
            None => Scope::Global,
        };
        let mut plan = Plan {
            pipeline_path: self.loaded.path.clone(),
            pipeline_sha256: self.loaded.sha256(),
            name: name.to_owned(),
            id: id.to_owned(),
            keys,
            sources,
            nodes,
            clip: c.normalisation.clip,
            scope,
            prep,
            weighting,
            keep_negative_loadings,
            analysis,
            uncertainty,
            anchoring,
            rollup: None,
        };
        plan.rollup = self.rollup(c, &plan);
        plan
    }

    fn uncertainty(&mut self, c: &PipelineConfig, keys: &KeyColumns) -> Option<UncertaintyPlan> {
        let cfg = c.uncertainty.as_ref()?;
        let here = self.at(cfg);
        let u = cfg.get_ref();
        let runs = match &u.runs {
            Some(r) if *r.get_ref() == 0 => {
                self.problem(self.at(r), "runs must be at least 1");
                1
            }
            Some(r) => *r.get_ref(),
            None => 1000,
        };
        let weights = u.weights.as_ref().map(|w| {
            let x = *w.get_ref();
            if !(x > 0.0 && x < 1.0) {
                self.problem(
                    self.at(w),
                    format!("weights varies each weight by ± a share in (0, 1), got {x}"),
                );
            }
            x
        });
        for m in &u.normalisation {
            if *m.get_ref() == NormMethod::DistanceToTarget {
                self.problem(
                    self.at(m),
                    "distance_to_target needs a target per indicator: it cannot be an alternative for all",
                );
            }
        }
        let aggregation = u
            .aggregation
            .iter()
            .map(|a| self.rule(Some(a), None, Level::Index).mean)
            .collect();
        let aggregation_levels = match &u.aggregation_levels {
            None => vec![Level::Dimension, Level::Index],
            Some(list) => self.levels_among(
                list,
                &[Level::Component, Level::Dimension, Level::Index],
                "aggregation alternatives",
            ),
        };
        for m in &u.imputation {
            let need = match m.get_ref() {
                ImputeMethod::GroupMean | ImputeMethod::GroupMedian if keys.group.is_none() => {
                    Some("a group column")
                }
                ImputeMethod::Latest | ImputeMethod::Linear if keys.year.is_none() => Some("years"),
                _ => None,
            };
            if let Some(need) = need {
                self.problem(
                    self.at(m),
                    format!("imputation \"{}\" needs {need}", m.get_ref()),
                );
            }
        }
        if weights.is_none()
            && u.normalisation.is_empty()
            && u.aggregation.is_empty()
            && u.imputation.is_empty()
        {
            self.problem(here.clone(), "[uncertainty] varies nothing: give weights, normalisation, aggregation or imputation alternatives");
        }
        Some(UncertaintyPlan {
            runs,
            seed: u.seed.unwrap_or(1),
            weights,
            normalisation: u.normalisation.iter().map(|m| *m.get_ref()).collect(),
            aggregation,
            aggregation_levels,
            imputation: u.imputation.iter().map(|m| *m.get_ref()).collect(),
            declared_at: here,
        })
    }

    fn anchoring(&mut self, c: &PipelineConfig, keys: &KeyColumns) -> Option<AnchoringPlan> {
        let cfg = c.anchoring.as_ref()?;
        let here = self.at(cfg);
        let a = cfg.get_ref();
        if keys.group.is_none() {
            self.problem(
                here.clone(),
                "anchoring needs groups ([territories] group = …): the national units",
            );
        }
        let level = match &a.level {
            None => Level::Component,
            Some(l) => self
                .levels_among(
                    std::slice::from_ref(l),
                    &[Level::Component, Level::Dimension],
                    "anchoring",
                )
                .pop()
                .unwrap_or(Level::Component),
        };
        let n = a.national.get_ref();
        let (path, scores) = match (&n.scores, &n.data) {
            (Some(p), None) => (p, true),
            (None, Some(p)) => (p, false),
            _ => {
                self.problem(self.at(&a.national), "national needs one of `scores` (a table of national scores) or `data` (national indicator data)");
                return None;
            }
        };
        let national = self.file(path, None, csv_options!(n));
        Some(AnchoringPlan {
            level,
            national,
            national_scores: scores,
            national_id: n.id.get_ref().clone(),
            population: self.covariate(&a.population),
            population_year: a.population_year,
            include_partial: a.include_partial,
            declared_at: here,
        })
    }

    fn analysis(&mut self, c: &PipelineConfig) -> AnalysisPlan {
        let Some(a) = &c.analysis else {
            return AnalysisPlan::default();
        };
        let a = a.get_ref();
        let scorecard = a.scorecard.as_ref().map(|sc| {
            let v = sc.get_ref();
            let peers = match &v.peers {
                Some(p) if *p.get_ref() == 0 => {
                    self.problem(self.at(p), "a scorecard needs at least 1 peer");
                    15
                }
                Some(p) => *p.get_ref(),
                None => 15,
            };
            let levels = match &v.levels {
                None => vec![Level::Indicator, Level::Component],
                Some(list) => list.iter().map(|l| *l.get_ref()).collect(),
            };
            ScorecardPlan {
                covariate: self.covariate(&v.covariate),
                peers,
                levels,
            }
        });
        AnalysisPlan {
            coherence: a.coherence,
            scorecard,
        }
    }

    /// The weighting of each level of children; `equal` and `pca` replace the weights, so
    /// weights written on that level are a contradiction, and `pca` needs parents whose
    /// mean uses weights.
    fn weighting(&mut self, c: &PipelineConfig, nodes: &[Node]) -> [WeightMethod; 3] {
        let w = &c.weights;
        let mut out = [WeightMethod::Explicit; 3];
        for (k, (setting, level, name)) in [
            (&w.indicator, Level::Indicator, "indicator"),
            (&w.component, Level::Component, "component"),
            (&w.dimension, Level::Dimension, "dimension"),
        ]
        .into_iter()
        .enumerate()
        {
            let Some(setting) = setting else { continue };
            let method = *setting.get_ref();
            out[k] = method;
            if method == WeightMethod::Explicit {
                continue;
            }
            if nodes.iter().any(|n| n.level == level && n.weight != 1.0) {
                self.problem(
                    self.at(setting),
                    format!(
                        "[weights] {name} = \"{}\" replaces the weights, but some {name}s have a weight",
                        method
                    ),
                )
                .help = Some(format!("remove the {name}s' weights, or use \"explicit\""));
            }
            if method == WeightMethod::Pca {
                let unweighted = nodes.iter().find(|p| {
                    p.children.iter().any(|&i| nodes[i].level == level)
                        && p.rule
                            .as_ref()
                            .is_some_and(|r| r.method == Method::Arithmetic)
                });
                if let Some(parent) = unweighted {
                    self.problem(
                        self.at(setting),
                        format!(
                            "[weights] {name} = \"pca\": {} \"{}\" uses the unweighted arithmetic mean",
                            parent.level.as_str(),
                            parent.id
                        ),
                    )
                    .help = Some("use method = \"weighted\" (or geometric, harmonic, power)".into());
                }
            }
        }
        out
    }

    /// `[weights] negative_loadings = "keep"`: PCA weights may then be negative, which only
    /// a weighted arithmetic mean can take (a geometric, harmonic or power mean with a
    /// negative weight has no meaning), so every parent of a PCA-weighted level must use it.
    fn negative_loadings(
        &mut self,
        c: &PipelineConfig,
        nodes: &[Node],
        weighting: &[WeightMethod; 3],
    ) -> bool {
        let Some(setting) = &c.weights.negative_loadings else {
            return false;
        };
        if *setting.get_ref() == crate::config::NegativeLoadings::Zero {
            return false;
        }
        let levels = [Level::Indicator, Level::Component, Level::Dimension];
        if !weighting.contains(&WeightMethod::Pca) {
            self.problem(
                self.at(setting),
                "[weights] negative_loadings applies to PCA weights, and no level uses them",
            );
            return false;
        }
        for (k, level) in levels.into_iter().enumerate() {
            if weighting[k] != WeightMethod::Pca {
                continue;
            }
            let other = nodes.iter().find(|p| {
                p.children.iter().any(|&i| nodes[i].level == level)
                    && p.rule.as_ref().is_some_and(|r| r.mean != Mean::Arithmetic)
            });
            if let Some(parent) = other {
                self.problem(
                    self.at(setting),
                    format!(
                        "[weights] negative_loadings = \"keep\": {} \"{}\" uses a {}, which a negative weight makes meaningless",
                        parent.level.as_str(),
                        parent.id,
                        parent.rule.as_ref().expect("a parent").mean.describe()
                    ),
                )
                .help = Some("use method = \"weighted\" for these parents, or leave negative_loadings = \"zero\"".into());
            }
        }
        true
    }

    fn preparation(
        &mut self,
        c: &PipelineConfig,
        keys: &KeyColumns,
        nodes: &[Node],
    ) -> Preparation {
        let screening = c.screening.as_ref().map(|sc| {
            let here = self.at(sc);
            let v = sc.get_ref();
            let share = *v.min_availability.get_ref();
            if !(0.0..=1.0).contains(&share) {
                self.problem(
                    self.at(&v.min_availability),
                    format!("min_availability is a share between 0 and 1, got {share}"),
                );
            }
            for id in &v.include {
                if let Some(e) = v.exclude.iter().find(|e| e.get_ref() == id.get_ref()) {
                    self.problem(
                        self.at(e),
                        format!(
                            "territory \"{}\" is both included and excluded",
                            id.get_ref()
                        ),
                    );
                }
            }
            Screening {
                min_availability: share,
                on: v.on,
                include: v.include.iter().map(|s| s.get_ref().clone()).collect(),
                exclude: v.exclude.iter().map(|s| s.get_ref().clone()).collect(),
                declared_at: here,
            }
        });
        if let (Some(sc), None) = (&screening, &c.imputation)
            && sc.on == ScreenOn::Imputed
        {
            let at = c
                .screening
                .as_ref()
                .map_or(Location::Nowhere, |s| self.at(s));
            self.problem(at, "screening on = \"imputed\" needs an [imputation]");
        }
        // Methods that need a group column or years.
        let mut imputation = false;
        for (node, ind) in nodes
            .iter()
            .filter_map(|n| n.indicator.as_ref().map(|s| (n, s)))
        {
            let m = ind.impute;
            imputation |= m != ImputeMethod::None;
            let need = match m {
                ImputeMethod::GroupMean | ImputeMethod::GroupMedian if keys.group.is_none() => {
                    Some("a group column ([territories] group = …)")
                }
                ImputeMethod::Latest | ImputeMethod::Linear if keys.year.is_none() => {
                    Some("years ([territories] year = …)")
                }
                _ => None,
            };
            if let Some(need) = need {
                let at = c
                    .imputation
                    .as_ref()
                    .map_or(ind.declared_at.clone(), |i| self.at(&i.get_ref().method));
                self.problem(
                    at,
                    format!(
                        "indicator \"{}\": imputation \"{}\" needs {need}",
                        node.id, m
                    ),
                );
            }
        }
        let max_gap = match c
            .imputation
            .as_ref()
            .and_then(|i| i.get_ref().max_gap.as_ref())
        {
            Some(g) if *g.get_ref() == 0 => {
                self.problem(self.at(g), "max_gap must be at least 1 year");
                1
            }
            Some(g) => *g.get_ref(),
            None => 2,
        };
        let treatment = c.treatment.as_ref().map(|t| {
            let v = t.get_ref();
            let positive =
                |r: &mut Self, s: &Option<Spanned<f64>>, default: f64, what: &str| match s {
                    Some(x) if !(x.get_ref().is_finite() && *x.get_ref() > 0.0) => {
                        r.problem(
                            r.at(x),
                            format!(
                                "{what} threshold must be a positive number, got {}",
                                x.get_ref()
                            ),
                        );
                        default
                    }
                    Some(x) => *x.get_ref(),
                    None => default,
                };
            Treatment {
                skewness: positive(self, &v.skewness, 2.0, "skewness"),
                kurtosis: positive(self, &v.kurtosis, 3.5, "kurtosis"),
                max_winsorised: v
                    .max_winsorised
                    .as_ref()
                    .map_or(5, |m| *m.get_ref() as usize),
                log_fallback: v.log_fallback.unwrap_or(true),
            }
        });
        Preparation {
            screening,
            imputation,
            max_gap,
            treatment,
        }
    }

    pub(crate) fn covariate(
        &mut self,
        cv: &Spanned<crate::config::CovariateConfig>,
    ) -> CovariatePlan {
        let v = cv.get_ref();
        CovariatePlan {
            file: self.file(&v.path, v.format, csv_options!(v)),
            territory: v.territory.get_ref().clone(),
            year: v.year.as_ref().map(|y| y.get_ref().clone()),
            column: v.column.get_ref().clone(),
            name: v.name.clone().unwrap_or_else(|| v.column.get_ref().clone()),
            unit: v.unit.clone(),
            log: v.log,
            declared_at: self.at(cv),
        }
    }

    /// A path given relative to the pipeline file's directory.
    pub(crate) fn relative_path(&self, path: &str) -> PathBuf {
        let base = self.loaded.path.parent().unwrap_or(Path::new(""));
        let resolved = normalise_path(&base.join(path));
        self.inputs.borrow_mut().push(resolved.clone());
        resolved
    }

    /// Resolves a data file reference: path relative to the pipeline, format, CSV options.
    pub(crate) fn file(
        &mut self,
        path: &Spanned<String>,
        format: Option<Format>,
        options: CsvOptions<'_>,
    ) -> FileRef {
        let CsvOptions {
            separator,
            decimal,
            thousands,
            encoding,
        } = options;
        let resolved = self.relative_path(path.get_ref());
        // "x.csv.gz" is a gzip-compressed CSV: the reader unpacks gzip whatever the name.
        let unzipped = match resolved.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("gz") => resolved.with_extension(""),
            _ => resolved.clone(),
        };
        let format = match format {
            Some(f @ (Format::Tsv | Format::Json)) => {
                self.problem(
                    self.at(path),
                    format!("format \"{f}\" is read by publishers' sources only (kind = \"eurostat\", \"jsonstat\")"),
                )
                .help = Some("a table file is \"csv\", \"parquet\" or \"xlsx\"".into());
                Format::Csv
            }
            Some(f) => f,
            None => match unzipped
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_lowercase)
            {
                Some(e) if e == "csv" || e == "txt" || e == "tsv" => Format::Csv,
                Some(e) if e == "parquet" || e == "pq" => Format::Parquet,
                Some(e) if e == "xlsx" => Format::Xlsx,
                _ => {
                    self.problem(
                        self.at(path),
                        format!(
                            "cannot tell the format of \"{}\" from its name",
                            path.get_ref()
                        ),
                    )
                    .help = Some("add format = \"csv\", \"parquet\" or \"xlsx\"".into());
                    Format::Csv
                }
            },
        };
        let separator = match separator {
            None => b',',
            Some(sep) => {
                let v = sep.get_ref();
                let v = if v == "\\t" { "\t" } else { v.as_str() };
                if format != Format::Csv {
                    self.problem(self.at(sep), "`separator` applies to CSV sources only");
                }
                if v.len() == 1 && v.is_ascii() {
                    v.as_bytes()[0]
                } else {
                    self.problem(
                        self.at(sep),
                        format!("separator must be one ASCII character, got \"{v}\""),
                    );
                    b','
                }
            }
        };
        let decimal_comma = match decimal {
            None => false,
            Some(d) => {
                if format != Format::Csv {
                    self.problem(self.at(d), "`decimal` applies to CSV sources only");
                }
                match d.get_ref().as_str() {
                    "." => false,
                    "," => {
                        if separator == b',' {
                            self.problem(
                                self.at(d),
                                "decimal \",\" needs a separator other than \",\"",
                            )
                            .help = Some("French exports use separator = \";\"".into());
                        }
                        true
                    }
                    other => {
                        self.problem(
                            self.at(d),
                            format!("decimal must be \".\" or \",\", got \"{other}\""),
                        );
                        false
                    }
                }
            }
        };
        let thousands = thousands.and_then(|t| {
            if format != Format::Csv {
                self.problem(self.at(t), "`thousands` applies to CSV sources only");
            }
            let v = t.get_ref();
            let mut chars = v.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if matches!(c, '.' | ',' | ' ' | '\'' | '\u{a0}' | '\u{202f}') => {
                    let decimal = if decimal_comma { ',' } else { '.' };
                    if c == decimal {
                        self.problem(
                            self.at(t),
                            format!("thousands separator \"{c}\" is also the decimal mark"),
                        );
                        None
                    } else {
                        Some(c)
                    }
                }
                _ => {
                    self.problem(
                        self.at(t),
                        format!(
                            "thousands must be one of \".\", \",\", \" \" or \"'\", got \"{v}\""
                        ),
                    );
                    None
                }
            }
        });
        let encoding = encoding.and_then(|e| {
            if format != Format::Csv {
                self.problem(self.at(e), "`encoding` applies to CSV sources only");
            }
            let found = encoding_rs::Encoding::for_label(e.get_ref().trim().as_bytes());
            if found.is_none() {
                self.problem(
                    self.at(e),
                    format!("unknown encoding \"{}\"", e.get_ref()),
                )
                .help = Some(
                    "use a WHATWG label such as \"utf-8\", \"windows-1252\", \"latin1\" or \"iso-8859-15\"".into(),
                );
            }
            found
        });
        FileRef {
            path: resolved,
            format,
            separator,
            decimal_comma,
            thousands,
            encoding,
            sheet: None,
            header_row: None,
            declared_at: self.at(path),
        }
    }

    fn nodes(&mut self, c: &PipelineConfig, index: &Spanned<IndexConfig>) -> Vec<Node> {
        let mut nodes: Vec<Node> = Vec::new();
        let mut seen: HashMap<String, Location> = HashMap::new();
        let mut declare = |r: &mut Self, id: &Spanned<String>| {
            let v = id.get_ref();
            let here = r.at(id);
            if !is_valid_id(v) || RESERVED.contains(&v.as_str()) || v.starts_with("raw:") {
                r.problem(here.clone(), format!("\"{v}\" cannot be a node id"))
                    .help = Some(format!(
                    "use letters, digits, '_', '-' or '.'; not one of {}",
                    list(&RESERVED, 8)
                ));
            }
            if let Some(first) = seen.get(v) {
                let msg = format!("node id \"{v}\" is used twice (first at {first})");
                r.problem(here, msg);
            } else {
                seen.insert(v.clone(), here);
            }
        };

        // Index.
        let index_at = self.at(index);
        let index = index.get_ref();
        declare(self, &index.id);
        let rule = self.rule(
            index.aggregation.as_ref(),
            c.aggregation.index.as_ref(),
            Level::Index,
        );
        nodes.push(Node {
            id: index.id.get_ref().clone(),
            name: index
                .name
                .clone()
                .unwrap_or_else(|| index.id.get_ref().clone()),
            level: Level::Index,
            parent: None,
            children: Vec::new(),
            weight: 1.0,
            rule: Some(rule),
            indicator: None,
        });

        // Dimensions.
        let mut dim_pos: HashMap<String, usize> = HashMap::new();
        for d in &c.dimensions {
            let d = d.get_ref();
            declare(self, &d.id);
            let rule = self.rule(
                d.aggregation.as_ref(),
                c.aggregation.dimension.as_ref(),
                Level::Dimension,
            );
            let weight = self.weight(d.weight.as_ref());
            let i = nodes.len();
            dim_pos.entry(d.id.get_ref().clone()).or_insert(i);
            nodes[0].children.push(i);
            nodes.push(Node {
                id: d.id.get_ref().clone(),
                name: d.name.clone().unwrap_or_else(|| d.id.get_ref().clone()),
                level: Level::Dimension,
                parent: Some(0),
                children: Vec::new(),
                weight,
                rule: Some(rule),
                indicator: None,
            });
        }

        // Components.
        let mut comp_pos: HashMap<String, usize> = HashMap::new();
        for comp in &c.components {
            let comp = comp.get_ref();
            declare(self, &comp.id);
            let rule = self.rule(
                comp.aggregation.as_ref(),
                c.aggregation.component.as_ref(),
                Level::Component,
            );
            let weight = self.weight(comp.weight.as_ref());
            let parent = self.parent(&comp.dimension, &dim_pos, "dimension");
            let i = nodes.len();
            comp_pos.entry(comp.id.get_ref().clone()).or_insert(i);
            if let Some(p) = parent {
                nodes[p].children.push(i);
            }
            nodes.push(Node {
                id: comp.id.get_ref().clone(),
                name: comp
                    .name
                    .clone()
                    .unwrap_or_else(|| comp.id.get_ref().clone()),
                level: Level::Component,
                parent,
                children: Vec::new(),
                weight,
                rule: Some(rule),
                indicator: None,
            });
        }

        // Indicators.
        let default_method = c.normalisation.default_method();
        let table = default_method.method.as_ref().map_or_else(
            || Location::Config {
                file: self.loaded.path.clone(),
                line: 1,
                column: 1,
            },
            |m| self.at(m),
        );
        self.check_method_parameters(&default_method, None, table);
        for ind in &c.indicators {
            let here = self.at(ind);
            let ind = ind.get_ref();
            declare(self, &ind.id);
            let weight = self.weight(ind.weight.as_ref());
            let parent = self.parent(&ind.component, &comp_pos, "component");
            let default_impute = c.imputation.as_ref().map(|i| *i.get_ref().method.get_ref());
            let spec = self.indicator_spec(ind, here, &default_method, default_impute);
            let i = nodes.len();
            if let Some(p) = parent {
                nodes[p].children.push(i);
            }
            nodes.push(Node {
                id: ind.id.get_ref().clone(),
                name: ind.name.clone().unwrap_or_else(|| ind.id.get_ref().clone()),
                level: Level::Indicator,
                parent,
                children: Vec::new(),
                weight,
                rule: None,
                indicator: Some(spec),
            });
        }

        self.check_children_and_weights(c, index_at, &nodes);
        nodes
    }

    fn parent(
        &mut self,
        reference: &Spanned<String>,
        known: &HashMap<String, usize>,
        what: &str,
    ) -> Option<usize> {
        let name = reference.get_ref();
        match known.get(name) {
            Some(&i) => Some(i),
            None => {
                let suggestion = closest(name, known.keys().map(String::as_str));
                let p = self.problem(self.at(reference), format!("unknown {what} \"{name}\""));
                if let Some(s) = suggestion {
                    p.help = Some(format!("did you mean \"{s}\"?"));
                }
                None
            }
        }
    }

    fn weight(&mut self, w: Option<&Spanned<f64>>) -> f64 {
        match w {
            None => 1.0,
            Some(w) => {
                let v = *w.get_ref();
                if !v.is_finite() || v < 0.0 {
                    self.problem(
                        self.at(w),
                        format!("weight must be a finite number ≥ 0, got {v}"),
                    );
                } else if v > MAX_WEIGHT {
                    // Sums of such weights overflow or swamp every other child.
                    self.problem(
                        self.at(w),
                        format!("weight {v:e} is out of range (at most {MAX_WEIGHT:e})"),
                    )
                    .help = Some("weights are relative: scale them down together".into());
                }
                v
            }
        }
    }

    fn rule(
        &mut self,
        own: Option<&Spanned<AggregationConfig>>,
        default: Option<&Spanned<AggregationConfig>>,
        level: Level,
    ) -> Rule {
        let Some(cfg) = own.or(default) else {
            return Rule {
                method: Method::Arithmetic,
                mean: Mean::Arithmetic,
                min_share: DEFAULT_MIN_SHARE,
            };
        };
        let here = self.at(cfg);
        let a = cfg.get_ref();
        let mean = match (a.method, a.p) {
            (Method::Power, Some(p)) if p.is_finite() && p != 0.0 && p.abs() < MIN_POWER => {
                // x^p rounds to 1 for every x long before p reaches 0: the mean would come
                // out as 1 (p = 1e-20) or as noise, never as the geometric mean it tends to.
                self.problem(
                    here.clone(),
                    format!(
                        "power mean exponent p = {p:?} is too close to 0 to compute (|p| must be at least {MIN_POWER:e})"
                    ),
                )
                .help = Some(
                    "as p tends to 0 the power mean tends to the geometric mean: use method = \"geometric\"".into(),
                );
                Mean::Arithmetic
            }
            (Method::Power, Some(p)) if p.is_finite() && p.abs() > MAX_POWER => {
                self.problem(
                    here.clone(),
                    format!(
                        "power mean exponent p = {p:?} is out of range (|p| at most {MAX_POWER}): scores to that power overflow"
                    ),
                );
                Mean::Arithmetic
            }
            (Method::Power, Some(p)) if p.is_finite() && p != 0.0 => Mean::Power(p),
            (Method::Power, Some(p)) => {
                self.problem(
                    here.clone(),
                    format!("power mean exponent p must be finite and non-zero, got {p}"),
                )
                .help = Some("p = 0 is the geometric mean: use method = \"geometric\"".into());
                Mean::Arithmetic
            }
            (Method::Power, None) => {
                self.problem(
                    here.clone(),
                    format!(
                        "{} aggregation: method \"power\" needs an exponent p",
                        level.as_str()
                    ),
                )
                .help = Some("e.g. aggregation = { method = \"power\", p = 0.5 }".into());
                Mean::Arithmetic
            }
            (m, Some(_)) => {
                self.problem(
                    here.clone(),
                    format!("`p` applies to method \"power\" only, not \"{m}\""),
                );
                Mean::Arithmetic
            }
            (Method::Arithmetic | Method::Weighted, None) => Mean::Arithmetic,
            (Method::Geometric, None) => Mean::Geometric,
            (Method::Harmonic, None) => Mean::Harmonic,
        };
        let min_share = a.min_share.unwrap_or(DEFAULT_MIN_SHARE);
        if !(0.0..=1.0).contains(&min_share) {
            self.problem(
                here,
                format!("min_share must be between 0 and 1, got {min_share}"),
            );
        }
        Rule {
            method: a.method,
            mean,
            min_share,
        }
    }

    /// Parameters given for a method that does not use them are mistakes: say so.
    /// `table`: where the settings are written (for parameters without a span).
    fn check_method_parameters(
        &mut self,
        m: &MethodConfig,
        indicator: Option<&str>,
        table: Location,
    ) {
        let method = m
            .method
            .as_ref()
            .map_or(NormMethod::Goalposts, |s| *s.get_ref());
        let whose = indicator.map_or("[normalisation]".to_string(), |id| {
            format!("indicator \"{id}\"")
        });
        let name = |m: NormMethod| m.to_string();
        if m.mean.is_some() && method != NormMethod::Zscore {
            self.problem(
                table.clone(),
                format!(
                    "{whose}: `mean` applies to method \"zscore\", not \"{}\"",
                    name(method)
                ),
            );
        }
        if m.cap.is_some() && method != NormMethod::DistanceToTarget {
            self.problem(
                table.clone(),
                format!(
                    "{whose}: `cap` applies to method \"distance_to_target\", not \"{}\"",
                    name(method)
                ),
            );
        }
        if let Some(r) = &m.range {
            if !matches!(method, NormMethod::Minmax | NormMethod::Percentile) {
                self.problem(
                    self.at(r),
                    format!(
                        "{whose}: `range` applies to methods \"minmax\" and \"percentile\", not \"{}\"",
                        name(method)
                    ),
                );
            } else {
                let [a, b] = *r.get_ref();
                if !(a.is_finite() && b.is_finite() && a < b) {
                    self.problem(
                        self.at(r),
                        format!("{whose}: range must be [a, b] with a < b, got [{a}, {b}]"),
                    );
                }
            }
        }
        if let Some(sd) = &m.sd {
            if method != NormMethod::Zscore {
                self.problem(
                    self.at(sd),
                    format!(
                        "{whose}: `sd` applies to method \"zscore\", not \"{}\"",
                        name(method)
                    ),
                );
            } else if sd.get_ref().is_nan() || *sd.get_ref() <= 0.0 || sd.get_ref().is_infinite() {
                self.problem(
                    self.at(sd),
                    format!(
                        "{whose}: sd must be a positive number, got {}",
                        sd.get_ref()
                    ),
                );
            }
        }
    }

    fn indicator_spec(
        &mut self,
        ind: &crate::config::IndicatorConfig,
        here: Location,
        default_method: &MethodConfig,
        default_impute: Option<ImputeMethod>,
    ) -> IndicatorSpec {
        let id = ind.id.get_ref();
        let kind = ind.goalposts.as_ref().map(|g| *g.get_ref());
        // The indicator's own normalisation table, with its parameters, or the default.
        let method_cfg = match &ind.normalisation {
            Some(own) => {
                self.check_method_parameters(own.get_ref(), Some(id), self.at(own));
                own.get_ref()
            }
            None => default_method,
        };
        let method = method_cfg
            .method
            .as_ref()
            .map_or(NormMethod::Goalposts, |s| *s.get_ref());
        let mut spec = IndicatorSpec {
            column: ind
                .column
                .as_ref()
                .map_or_else(|| id.clone(), |c| c.get_ref().clone()),
            direction: ind.direction,
            normalisation: Normalisation::Goalposts(Goalposts::Observed),
            cap_min: ind.cap_min,
            cap_max: ind.cap_max,
            log: ind.log,
            unit: ind.unit.clone(),
            denominator: None,
            impute: ImputeMethod::None,
            treat: ind.treatment.unwrap_or(true),
            declared_at: here.clone(),
        };
        spec.impute = ind
            .imputation
            .as_ref()
            .map(|m| *m.get_ref())
            .or(default_impute)
            .unwrap_or(ImputeMethod::None);
        match (&ind.denominator, &ind.scale) {
            (Some(d), scale) => {
                let scale = scale.as_ref().map_or(1.0, |s| *s.get_ref());
                if !scale.is_finite() || scale == 0.0 {
                    let at = ind.scale.as_ref().map_or(here.clone(), |s| self.at(s));
                    self.problem(at, format!("indicator \"{id}\": scale must be a finite, non-zero number, got {scale}"));
                }
                spec.denominator = Some((d.get_ref().clone(), scale));
            }
            (None, Some(s)) => {
                self.problem(
                    self.at(s),
                    format!(
                        "indicator \"{id}\": `scale` applies to an indicator with a denominator"
                    ),
                );
            }
            (None, None) => {}
        }
        if let (Some(lo), Some(hi)) = (ind.cap_min, ind.cap_max)
            && lo > hi
        {
            self.problem(
                here.clone(),
                format!("indicator \"{id}\": cap_min {lo} is above cap_max {hi}"),
            );
        }
        match (method, &ind.target) {
            (NormMethod::DistanceToTarget, None) => {
                self.problem(
                    here.clone(),
                    format!("indicator \"{id}\": method \"distance_to_target\" needs a target"),
                )
                .help = Some("add target = … in the indicator's own units".into());
            }
            (NormMethod::DistanceToTarget, Some(_)) => {}
            (_, Some(t)) => {
                self.problem(
                    self.at(t),
                    format!(
                        "indicator \"{id}\": `target` applies to method \"distance_to_target\""
                    ),
                );
            }
            _ => {}
        }
        if method != NormMethod::Goalposts {
            let stray = ind
                .utopia
                .as_ref()
                .or(ind.dystopia.as_ref())
                .map(|s| self.at(s))
                .or_else(|| ind.goalposts.as_ref().map(|g| self.at(g)));
            if let Some(at) = stray {
                self.problem(
                    at,
                    format!(
                        "indicator \"{id}\": utopia, dystopia and goalposts apply to method \"goalposts\", not \"{}\"",
                        method
                    ),
                );
            }
            let target = ind.target.as_ref().map_or(0.0, |t| *t.get_ref());
            spec.normalisation = match method {
                NormMethod::Goalposts => unreachable!("handled below"),
                NormMethod::Minmax => {
                    let [lo, hi] = method_cfg
                        .range
                        .as_ref()
                        .map_or([0.0, 100.0], |r| *r.get_ref());
                    Normalisation::MinMax { lo, hi }
                }
                NormMethod::Zscore => Normalisation::ZScore {
                    mean: method_cfg.mean.unwrap_or(0.0),
                    sd: method_cfg.sd.as_ref().map_or(1.0, |s| *s.get_ref()),
                },
                NormMethod::Rank => Normalisation::Rank,
                NormMethod::Percentile => {
                    // COINr's percentile ranks are on [0, 1]: range = [0, 1].
                    let [lo, hi] = method_cfg
                        .range
                        .as_ref()
                        .map_or([0.0, 100.0], |r| *r.get_ref());
                    Normalisation::Percentile { lo, hi }
                }
                NormMethod::DistanceToTarget => Normalisation::DistanceToTarget {
                    target,
                    cap: method_cfg.cap.unwrap_or(true),
                },
                NormMethod::DistanceToMax => Normalisation::DistanceToMax,
            };
            return spec;
        }
        match (kind, &ind.utopia, &ind.dystopia) {
            (Some(GoalpostKind::Observed), None, None) => {}
            (Some(GoalpostKind::Observed), u, d) => {
                let at = u
                    .as_ref()
                    .or(d.as_ref())
                    .map_or(here.clone(), |s| self.at(s));
                self.problem(
                    at,
                    format!(
                        "indicator \"{id}\": goalposts = \"observed\" takes no utopia/dystopia"
                    ),
                );
            }
            (None | Some(GoalpostKind::Fixed), Some(u), Some(d)) => {
                let (uv, dv) = (*u.get_ref(), *d.get_ref());
                spec.normalisation = Normalisation::Goalposts(Goalposts::Fixed {
                    utopia: uv,
                    dystopia: dv,
                });
                self.check_fixed_goalposts(&spec, id, u, d);
            }
            (None | Some(GoalpostKind::Fixed), u, d) => {
                let missing = match (u, d) {
                    (None, None) => "utopia and dystopia",
                    (None, _) => "utopia",
                    _ => "dystopia",
                };
                self.problem(here.clone(), format!("indicator \"{id}\" has no {missing}"))
                    .help = Some(
                    "give both, or goalposts = \"observed\" for the min/max of the data".into(),
                );
            }
        }
        spec
    }

    fn check_fixed_goalposts(
        &mut self,
        spec: &IndicatorSpec,
        id: &str,
        u: &Spanned<f64>,
        d: &Spanned<f64>,
    ) {
        let (uv, dv) = (*u.get_ref(), *d.get_ref());
        if !uv.is_finite() || !dv.is_finite() {
            self.problem(
                self.at(u),
                format!("indicator \"{id}\": goalposts must be finite numbers"),
            );
            return;
        }
        if spec.log {
            for (what, v, s) in [("utopia", uv, u), ("dystopia", dv, d)] {
                if spec.transform_value(v).is_nan() || spec.transform_value(v).is_infinite() {
                    self.problem(
                        self.at(s),
                        format!("indicator \"{id}\" is log-transformed but its {what} is {v} (log needs a positive value)"),
                    );
                    return;
                }
            }
        }
        let (tu, td) = (spec.transform_value(uv), spec.transform_value(dv));
        if !(tu - td).is_finite() {
            self.problem(
                self.at(u),
                format!(
                    "indicator \"{id}\": utopia ({uv}) and dystopia ({dv}) are too far apart to rescale (their difference overflows)"
                ),
            );
            return;
        }
        if tu == td {
            let msg = if uv == dv {
                format!(
                    "indicator \"{id}\": utopia equals dystopia ({uv}), so it cannot be rescaled"
                )
            } else {
                format!(
                    "indicator \"{id}\": utopia ({uv}) and dystopia ({dv}) become equal after capping, so it cannot be rescaled"
                )
            };
            self.problem(self.at(u), msg);
            return;
        }
        let ok = match spec.direction {
            Direction::HigherIsBetter => tu > td,
            Direction::LowerIsBetter => tu < td,
        };
        if !ok {
            let dir = match spec.direction {
                Direction::HigherIsBetter => "higher_is_better, so utopia must be above dystopia",
                Direction::LowerIsBetter => "lower_is_better, so utopia must be below dystopia",
            };
            self.problem(
                self.at(u),
                format!("indicator \"{id}\" is {dir} (utopia {uv}, dystopia {dv})"),
            );
        }
    }

    fn check_children_and_weights(
        &mut self,
        c: &PipelineConfig,
        index_at: Location,
        nodes: &[Node],
    ) {
        // Node declarations, to point at the parent when its children are wrong.
        let mut declared: HashMap<&str, Location> = HashMap::new();
        declared.insert(nodes[0].id.as_str(), index_at);
        for d in &c.dimensions {
            declared
                .entry(d.get_ref().id.get_ref())
                .or_insert_with(|| self.at(d));
        }
        for comp in &c.components {
            declared
                .entry(comp.get_ref().id.get_ref())
                .or_insert_with(|| self.at(comp));
        }
        for node in nodes.iter().filter(|n| n.rule.is_some()) {
            let at = declared
                .get(node.id.as_str())
                .cloned()
                .unwrap_or(Location::Nowhere);
            let child_level = match node.level {
                Level::Index => "dimension",
                Level::Dimension => "component",
                _ => "indicator",
            };
            if node.children.is_empty() {
                self.problem(
                    at,
                    format!(
                        "{} \"{}\" has no {child_level}s",
                        node.level.as_str(),
                        node.id
                    ),
                )
                .help = Some(format!(
                    "add a [[{child_level}]] with {} = \"{}\", or remove it",
                    node.level.as_str(),
                    node.id
                ));
                continue;
            }
            let rule = node.rule.as_ref().expect("filtered");
            let weights: Vec<f64> = node.children.iter().map(|&i| nodes[i].weight).collect();
            if weights.iter().any(|&w| !w.is_finite() || w < 0.0) {
                // Already reported where the weight is given.
            } else if rule.method == Method::Arithmetic && weights.iter().any(|&w| w != 1.0) {
                self.problem(
                    at,
                    format!(
                        "{} \"{}\" uses the unweighted arithmetic mean but its {child_level}s have weights",
                        node.level.as_str(),
                        node.id
                    ),
                )
                .help = Some("use method = \"weighted\" to apply them".into());
            } else if weights.iter().all(|&w| w == 0.0) {
                self.problem(
                    at,
                    format!(
                        "the weights of the {child_level}s of \"{}\" are all zero",
                        node.id
                    ),
                );
            }
        }
    }
}

/// The index plan of a pipeline written in `text` (for the stages' unit tests).
#[cfg(test)]
pub(crate) fn test_plan(text: &str) -> Plan {
    let path = PathBuf::from("t.toml");
    let config = crate::config::parse(&path, text).unwrap_or_else(|e| panic!("{e}"));
    resolve(&LoadedConfig::new(path, text.to_owned(), config))
        .unwrap_or_else(|e| panic!("{e}"))
        .index
        .expect("an [index]")
}

pub(crate) fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Removes `.` and `..` components without touching the file system, so that messages show
/// `data/synthetic.csv` rather than `pipelines/../data/synthetic.csv`.
fn normalise_path(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            PathComponent::CurDir => {}
            PathComponent::ParentDir => {
                let last_is_normal =
                    matches!(out.components().next_back(), Some(PathComponent::Normal(_)));
                if last_is_normal {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised_lexically() {
        assert_eq!(
            normalise_path(Path::new("pipelines/../data/x.csv")),
            PathBuf::from("data/x.csv")
        );
        assert_eq!(
            normalise_path(Path::new("../shared/./d.csv")),
            PathBuf::from("../shared/d.csv")
        );
        assert_eq!(
            normalise_path(Path::new("a/../../b")),
            PathBuf::from("../b")
        );
    }
}
