//! The pipeline file: serde types mirroring the TOML, and loading with precise errors.
//!
//! Nothing here checks meaning (unknown parents, goalposts, weights…): that is `plan`'s job,
//! which needs the spans kept here to point at the offending line. These types reject
//! unknown keys so that a typo never silently falls back to a default.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::diagnostic::{Location, Problem};

/// A level of the framework, named as in pipeline files and outputs.
#[derive(
    Debug,
    Deserialize,
    serde::Serialize,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Level {
    Indicator,
    Component,
    Dimension,
    Index,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A pipeline file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    pub pipeline: PipelineMeta,
    pub territories: Option<Spanned<TerritoryColumns>>,
    #[serde(rename = "source", default)]
    pub sources: Vec<Spanned<SourceConfig>>,
    #[serde(default)]
    pub normalisation: NormalisationConfig,
    /// Territories (× years) dropped for lack of data.
    pub screening: Option<Spanned<ScreeningConfig>>,
    /// Filling missing indicator values.
    pub imputation: Option<Spanned<ImputationConfig>>,
    /// Outlier treatment (winsorisation, then a log transform).
    pub treatment: Option<Spanned<TreatmentConfig>>,
    #[serde(default)]
    pub aggregation: AggregationDefaults,
    /// How children are weighted within their parents, per level of children.
    #[serde(default)]
    pub weights: WeightsConfig,
    pub index: Option<Spanned<IndexConfig>>,
    #[serde(rename = "dimension", default)]
    pub dimensions: Vec<Spanned<DimensionConfig>>,
    #[serde(rename = "component", default)]
    pub components: Vec<Spanned<ComponentConfig>>,
    #[serde(rename = "indicator", default)]
    pub indicators: Vec<Spanned<IndicatorConfig>>,
    /// Relational capability from survey microdata.
    pub rci: Option<Spanned<RciConfig>>,
    /// The chart pack drawn from the results.
    pub charts: Option<Spanned<ChartsConfig>>,
    /// Analyses of the index: coherence, scorecards.
    pub analysis: Option<Spanned<AnalysisConfig>>,
    /// Monte Carlo over methodological choices (`bienvivre uncertainty`).
    pub uncertainty: Option<Spanned<UncertaintyConfig>>,
    /// Shifting regional scores onto national ones (EU-SPI).
    pub anchoring: Option<Spanned<AnchoringConfig>>,
    /// Territories aggregated into coarser ones before scoring.
    pub rollup: Option<Spanned<RollupConfig>>,
    /// Where and how runs are kept.
    pub output: Option<Spanned<OutputConfig>>,
}

/// The run history under `outputs/<pipeline id>/`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Complete runs kept in `runs/` (default 30); the one `latest` points to is never
    /// removed.
    pub keep: Option<Spanned<usize>>,
    /// Which score tables are written: `parquet` (tidy), `csv` (tidy), `wide` (CSV);
    /// default all three.
    pub formats: Option<Spanned<Vec<Spanned<OutputFormat>>>>,
    /// Also write the tidy scores as a hive-partitioned Parquet dataset under `scores/`
    /// (`scores/year=2020/group=FR1/part-0.parquet`), by these columns, in this order:
    /// what DuckDB, Spark or DataFusion read as one table, one directory per partition.
    pub partition_by: Option<Spanned<Vec<Spanned<PartitionKey>>>>,
}

/// A column the partitioned scores are split by.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, strum::Display, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum PartitionKey {
    /// The year of the row.
    Year,
    /// The territory's group (its `[territories] group` column).
    Group,
}

/// A score table a run may write.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, strum::Display)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum OutputFormat {
    /// `scores.parquet`, the tidy table (what `diff`, `compare` and `plot` read).
    Parquet,
    /// `scores.csv`, the same table as CSV.
    Csv,
    /// `scores_wide.csv`, a row per territory (× year).
    Wide,
}

/// Regional scores of a level are shifted, per group (country), so that their
/// population-weighted mean equals the group's national score; the levels above are
/// recomputed from them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchoringConfig {
    /// The level anchored: "component" (default) or "dimension".
    pub level: Option<Spanned<Level>>,
    pub national: Spanned<NationalConfig>,
    /// Population per territory (a table like a covariate).
    pub population: Spanned<CovariateConfig>,
    /// The population year to use when the index has no years.
    pub population_year: Option<i64>,
    /// Territories whose score the availability rule leaves missing still count in their
    /// group's mean, with the score of the children they have (as the EC does for the
    /// outermost regions); their own score stays missing. Default false.
    #[serde(default)]
    pub include_partial: bool,
}

/// National scores: `scores` (a table with the group id and one column per node id), or
/// `data` (national indicator data, scored with this pipeline's own framework).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NationalConfig {
    pub scores: Option<Spanned<String>>,
    pub data: Option<Spanned<String>>,
    /// Column holding the group ids ([territories] group values).
    pub id: Spanned<String>,
    pub separator: Option<Spanned<String>>,
    pub decimal: Option<Spanned<String>>,
    /// Thousands separator in numbers (e.g. `.` with decimal `,`); none by default.
    pub thousands: Option<Spanned<String>>,
    /// Character encoding (default UTF-8; e.g. `windows-1252`, `latin1`).
    pub encoding: Option<Spanned<String>>,
}

/// The choices the uncertainty analysis varies, each run drawing one of each.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UncertaintyConfig {
    /// Default 1000.
    pub runs: Option<Spanned<usize>>,
    /// Default 1.
    pub seed: Option<u64>,
    /// Each weight is multiplied by a uniform draw in [1 − x, 1 + x] (e.g. 0.25).
    pub weights: Option<Spanned<f64>>,
    /// Alternative normalisation methods (besides each indicator's own).
    #[serde(default)]
    pub normalisation: Vec<Spanned<NormMethod>>,
    /// Alternative aggregation rules (besides the pipeline's).
    #[serde(default)]
    pub aggregation: Vec<Spanned<AggregationConfig>>,
    /// Levels the aggregation alternatives apply to (default dimension and index).
    pub aggregation_levels: Option<Vec<Spanned<Level>>>,
    /// Alternative imputation methods (besides each indicator's own).
    #[serde(default)]
    pub imputation: Vec<Spanned<ImputeMethod>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisConfig {
    /// analysis/coherence.csv: correlations, Cronbach's alpha, first principal component.
    #[serde(default)]
    pub coherence: bool,
    pub scorecard: Option<Spanned<ScorecardConfig>>,
}

/// Strengths and weaknesses of each territory against its nearest peers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScorecardConfig {
    /// The peers of a territory are the `peers` territories closest on this column.
    pub covariate: Spanned<CovariateConfig>,
    /// Default 15.
    pub peers: Option<Spanned<usize>>,
    /// Levels judged (default indicator and component).
    pub levels: Option<Vec<Spanned<Level>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineMeta {
    /// Short id, used for the default output directory `outputs/<id>/`.
    pub id: Spanned<String>,
    pub name: Option<String>,
    pub description: Option<String>,
}

/// Which source columns identify a territory (and, optionally, the year).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerritoryColumns {
    pub id: Spanned<String>,
    pub name: Option<Spanned<String>>,
    pub group: Option<Spanned<String>>,
    pub year: Option<Spanned<String>>,
    /// Territories scored but not ranked: aggregates such as "World" or "EU-27", whose
    /// rank would push every territory below them down one place.
    #[serde(default)]
    pub unranked: Vec<Spanned<String>>,
    /// Territory ids of every source in one case (`"upper"`: `fr10` → `FR10`).
    pub id_case: Option<Spanned<IdCase>>,
    /// Ids made only of digits are padded with leading zeros to this width (French
    /// départements 2: `1` → `01`; communes 5: `1001` → `01001`).
    pub id_width: Option<Spanned<usize>>,
    /// Ids renamed in every source (`{ CY = "CY00" }`), after the case and the width.
    pub id_aliases: Option<Spanned<std::collections::BTreeMap<String, String>>>,
    /// The years scored, first and last (`[2016, 2024]`); rows of other years are read and
    /// only feed the imputation (`latest`, `linear`), e.g. an indicator published every
    /// five years carried forward.
    pub years: Option<Spanned<[i64; 2]>>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, strum::Display)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum IdCase {
    Upper,
    Lower,
}

/// `[rollup]`: the sources' territories aggregated into coarser ones (NUTS 3 → NUTS 2,
/// communes → départements) before scoring.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollupConfig {
    /// The parent of a territory is the start of its id, this many characters (NUTS 2 →
    /// NUTS 1: 3).
    pub prefix: Option<Spanned<usize>>,
    /// Or a table giving each territory's parent.
    pub mapping: Option<Spanned<MappingConfig>>,
    /// The weights of weighted means (population…), by territory (and year).
    pub weight: Option<Spanned<CovariateConfig>>,
    /// How indicators not listed in `methods` are aggregated (default: `weighted_mean`
    /// with a weight, else `mean`).
    pub method: Option<Spanned<RollupMethod>>,
    /// Per indicator id.
    #[serde(default)]
    pub methods: std::collections::BTreeMap<String, Spanned<RollupMethod>>,
    /// The least share of a parent's units with a value for the parent to get one
    /// (default 1: all of them).
    pub min_coverage: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, strum::Display, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum RollupMethod {
    Sum,
    Mean,
    WeightedMean,
}

/// A table mapping territories to their parents (communes → EPCI).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    pub path: Spanned<String>,
    pub format: Option<Format>,
    pub separator: Option<Spanned<String>>,
    pub decimal: Option<Spanned<String>>,
    pub thousands: Option<Spanned<String>>,
    pub encoding: Option<Spanned<String>>,
    pub sheet: Option<Spanned<String>>,
    /// The column of the finer territories' ids.
    pub territory: Spanned<String>,
    /// The column of their parents' ids.
    pub parent: Spanned<String>,
    /// The column of the parents' names, if any.
    pub name: Option<Spanned<String>>,
}

#[derive(
    Debug,
    Deserialize,
    Clone,
    Copy,
    PartialEq,
    Eq,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Format {
    Csv,
    Parquet,
    /// An Excel workbook (one sheet read).
    Xlsx,
    /// Eurostat's TSV (bulk `.tsv.gz` or `format=TSV`).
    Tsv,
    /// JSON-stat (Eurostat's Statistics API).
    Json,
}

/// Where a source's data comes from.
#[derive(
    Debug,
    Deserialize,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum SourceKind {
    /// A local CSV, Parquet or xlsx file.
    #[default]
    File,
    /// A Eurostat dataset: the Statistics API (JSON-stat) or the bulk TSV.
    Eurostat,
    /// Any JSON-stat 2.0 dataset.
    Jsonstat,
    /// SDMX-CSV 1.0 or 2.x (OECD, Eurostat, INSEE, ECB…).
    SdmxCsv,
    /// World Bank indicators (API v2, JSON).
    Worldbank,
    /// A CSV, Parquet or xlsx file at a URL (data.gouv.fr exports…).
    Http,
}

/// One code or several, as dimension filters are written (`sex = "T"`,
/// `geo = ["FR10", "FRB0"]`, `time = 2020`).
#[derive(Debug, Clone, PartialEq)]
pub struct FilterCodes(pub Vec<String>);

impl<'de> Deserialize<'de> for FilterCodes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        fn one(v: &toml::Value) -> Option<String> {
            match v {
                toml::Value::String(s) => Some(s.clone()),
                toml::Value::Integer(i) => Some(i.to_string()),
                _ => None,
            }
        }
        let v = toml::Value::deserialize(d)?;
        let codes = match &v {
            toml::Value::Array(a) => a.iter().map(one).collect::<Option<Vec<_>>>(),
            other => one(other).map(|c| vec![c]),
        };
        match codes {
            Some(c) if !c.is_empty() => Ok(FilterCodes(c)),
            _ => Err(serde::de::Error::custom(
                "expected a code or a list of codes (text or whole numbers)",
            )),
        }
    }
}

#[derive(
    Debug,
    Deserialize,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Layout {
    /// One row per territory (× year), one column per indicator.
    #[default]
    Wide,
    /// One row per territory (× year) × indicator.
    Long,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Where the data comes from (default: a local file).
    pub kind: Option<Spanned<SourceKind>>,
    /// A local file, relative to the pipeline file's directory.
    pub path: Option<Spanned<String>>,
    /// The URL of a `jsonstat`, `sdmx_csv` or `http` source.
    pub url: Option<Spanned<String>>,
    /// The API's base URL, to use a mirror, a proxy or a test server.
    pub base_url: Option<Spanned<String>>,
    /// Eurostat: the dataset code (`nama_10r_2gdp`).
    pub dataset: Option<Spanned<String>>,
    /// Dimension filters (`unit = "EUR_HAB"`, `geo = ["FR10", "FRB0"]`, Eurostat's
    /// `geoLevel`, `sinceTimePeriod`…): sent to the API where it takes them, and applied to
    /// what comes back in every case.
    pub filters: Option<Spanned<std::collections::BTreeMap<String, FilterCodes>>>,
    /// World Bank: the indicator codes (`NY.GDP.PCAP.CD`).
    pub indicators: Option<Spanned<Vec<String>>>,
    /// World Bank: ISO3 country codes (default: all).
    pub countries: Option<Spanned<Vec<String>>>,
    /// Extra query parameters sent as written (World Bank `date = "2015:2022"`…).
    pub query: Option<Spanned<std::collections::BTreeMap<String, String>>>,
    /// The dimension holding the territory (default: `geo`, the JSON-stat geo role,
    /// `REF_AREA`, or the World Bank's `country`); for a table, the column, when it is not
    /// named as in `[territories]`.
    pub territory: Option<Spanned<String>>,
    /// The dimension holding the year (default: `time`, `TIME_PERIOD`, the time role, or
    /// the World Bank's `date`); for a table, the column.
    pub time: Option<Spanned<String>>,
    /// The indicator code every value of the source takes, when the filters leave one
    /// series per territory (default for Eurostat: the dataset code).
    pub indicator: Option<Spanned<String>>,
    /// Seconds to wait for an answer (default 60).
    pub timeout: Option<Spanned<f64>>,
    /// Retries after a failed request (5xx, 429, timeout, dropped connection; default 3).
    pub retries: Option<Spanned<u32>>,
    /// xlsx: the sheet to read (default: the first).
    pub sheet: Option<Spanned<String>>,
    /// xlsx: the row holding the header, as Excel numbers it (default: the sheet's first);
    /// the rows above are titles.
    pub header_row: Option<Spanned<usize>>,
    pub format: Option<Spanned<Format>>,
    /// CSV field separator, one character (default `,`).
    pub separator: Option<Spanned<String>>,
    /// CSV decimal mark, `.` (default) or `,`.
    pub decimal: Option<Spanned<String>>,
    /// Thousands separator in numbers (e.g. `.` with decimal `,`); none by default.
    pub thousands: Option<Spanned<String>>,
    /// Character encoding (default UTF-8; e.g. `windows-1252`, `latin1`).
    pub encoding: Option<Spanned<String>>,
    /// Cell texts that mean "missing" (default: empty, NA, N/A, n/a, NaN, :, ..).
    pub missing_values: Option<Vec<String>>,
    #[serde(default)]
    pub layout: Layout,
    /// Long layout: the column naming the indicator of each row; publishers' sources: the
    /// dimension whose codes are the indicators (`na_item`, `unit`).
    pub indicator_column: Option<Spanned<String>>,
    /// Long layout: the column holding the value.
    pub value_column: Option<Spanned<String>>,
}

/// Pipeline-wide normalisation: the default method of every indicator, and its settings.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NormalisationConfig {
    /// Clip values normalised with goalposts to [0, 100].
    #[serde(default)]
    pub clip: bool,
    /// Statistics of data-driven methods over all years (`global`, default) or each year.
    pub scope: Option<Spanned<Scope>>,
    // The default method, as in [`MethodConfig`] (serde cannot flatten with
    // deny_unknown_fields and spans).
    pub method: Option<Spanned<NormMethod>>,
    pub range: Option<Spanned<[f64; 2]>>,
    pub mean: Option<f64>,
    pub sd: Option<Spanned<f64>>,
    pub cap: Option<bool>,
}

impl NormalisationConfig {
    /// The pipeline's default method settings.
    pub fn default_method(&self) -> MethodConfig {
        MethodConfig {
            method: self.method.clone(),
            range: self.range.clone(),
            mean: self.mean,
            sd: self.sd.clone(),
            cap: self.cap,
        }
    }
}

/// A normalisation method and its parameters (pipeline default or one indicator's).
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct MethodConfig {
    /// Default `goalposts` (utopia/dystopia of each indicator).
    pub method: Option<Spanned<NormMethod>>,
    /// `minmax`: the interval [a, b] (default [0, 100]).
    pub range: Option<Spanned<[f64; 2]>>,
    /// `zscore`: the mean and standard deviation of the result (default 0 and 1).
    pub mean: Option<f64>,
    pub sd: Option<Spanned<f64>>,
    /// `distance_to_target`: scores beyond the target are capped at 100 (default true).
    pub cap: Option<bool>,
}

#[derive(
    Debug,
    Deserialize,
    Clone,
    Copy,
    PartialEq,
    Eq,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum NormMethod {
    /// 100·(x − dystopia)/(utopia − dystopia).
    Goalposts,
    /// (x − min)/(max − min)·(b − a) + a.
    Minmax,
    /// (x − mean)/sd, rescaled to the given mean and sd.
    Zscore,
    /// Rank, 1 = lowest (ties share the lowest rank).
    Rank,
    /// 100·(rank − 1)/(n − 1).
    Percentile,
    /// 100·(1 − (target − x)/(target − min)), capped at 100 unless `cap = false`.
    DistanceToTarget,
    /// 100·(1 − (max − x)/(max − min)).
    DistanceToMax,
}

#[derive(
    Debug,
    Deserialize,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Scope {
    #[default]
    Global,
    PerYear,
}

/// How the children of each level are weighted: `indicator` (within components),
/// `component` (within dimensions), `dimension` (within the index).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WeightsConfig {
    pub indicator: Option<Spanned<WeightMethod>>,
    pub component: Option<Spanned<WeightMethod>>,
    pub dimension: Option<Spanned<WeightMethod>>,
    /// PCA loadings of the opposite sign to their siblings': weigh 0 (default), or
    /// `keep` them as negative weights, as COINr does (weighted arithmetic means only).
    pub negative_loadings: Option<Spanned<NegativeLoadings>>,
}

#[derive(
    Debug,
    Deserialize,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum NegativeLoadings {
    #[default]
    Zero,
    Keep,
}

#[derive(
    Debug,
    Deserialize,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum WeightMethod {
    /// The `weight` of each node (1 when not given).
    #[default]
    Explicit,
    /// All children weigh the same.
    Equal,
    /// Loadings of the first principal component of the standardised children.
    Pca,
}

/// Default aggregation rule of each level; a node's own `aggregation` overrides it.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AggregationDefaults {
    pub component: Option<Spanned<AggregationConfig>>,
    pub dimension: Option<Spanned<AggregationConfig>>,
    pub index: Option<Spanned<AggregationConfig>>,
}

#[derive(
    Debug,
    Deserialize,
    Clone,
    Copy,
    PartialEq,
    Eq,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Method {
    /// Unweighted mean of the available children.
    Arithmetic,
    /// Weighted mean of the available children (children's `weight`).
    Weighted,
    Geometric,
    Harmonic,
    /// Generalised mean with exponent `p`.
    Power,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct AggregationConfig {
    pub method: Method,
    /// Exponent of the power mean.
    pub p: Option<f64>,
    /// Minimum share (0–1) of children that must be present for a score.
    pub min_share: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexConfig {
    pub id: Spanned<String>,
    pub name: Option<String>,
    pub aggregation: Option<Spanned<AggregationConfig>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DimensionConfig {
    pub id: Spanned<String>,
    pub name: Option<String>,
    pub weight: Option<Spanned<f64>>,
    pub aggregation: Option<Spanned<AggregationConfig>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentConfig {
    pub id: Spanned<String>,
    pub name: Option<String>,
    pub dimension: Spanned<String>,
    pub weight: Option<Spanned<f64>>,
    pub aggregation: Option<Spanned<AggregationConfig>>,
}

#[derive(
    Debug,
    Deserialize,
    Clone,
    Copy,
    PartialEq,
    Eq,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Direction {
    HigherIsBetter,
    LowerIsBetter,
}

#[derive(
    Debug,
    Deserialize,
    Clone,
    Copy,
    PartialEq,
    Eq,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum GoalpostKind {
    /// `utopia` and `dystopia` are given.
    Fixed,
    /// Minimum and maximum across all territories and years.
    Observed,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndicatorConfig {
    pub id: Spanned<String>,
    pub name: Option<String>,
    pub unit: Option<String>,
    pub component: Spanned<String>,
    /// Column (wide layout) or indicator code (long layout); defaults to `id`.
    pub column: Option<Spanned<String>>,
    pub direction: Direction,
    pub goalposts: Option<Spanned<GoalpostKind>>,
    /// Best value, in the indicator's original units (transformed like the data).
    pub utopia: Option<Spanned<f64>>,
    /// Worst value, in the indicator's original units (transformed like the data).
    pub dystopia: Option<Spanned<f64>>,
    /// Values above are set to this before any other transform.
    pub cap_max: Option<f64>,
    /// Values below are set to this before any other transform.
    pub cap_min: Option<f64>,
    /// Natural logarithm (after capping).
    #[serde(default)]
    pub log: bool,
    pub weight: Option<Spanned<f64>>,
    /// This indicator's normalisation, instead of the pipeline's [normalisation] method.
    pub normalisation: Option<Spanned<MethodConfig>>,
    /// Target for `distance_to_target`, in the indicator's units.
    pub target: Option<Spanned<f64>>,
    /// Column (wide) or code (long) to divide the indicator by (per capita, per km²…).
    pub denominator: Option<Spanned<String>>,
    /// Multiplies the ratio to the denominator (e.g. 1000 for "per thousand").
    pub scale: Option<Spanned<f64>>,
    /// This indicator's imputation method, instead of [imputation]'s.
    pub imputation: Option<Spanned<ImputeMethod>>,
    /// `false` exempts the indicator from [treatment].
    pub treatment: Option<bool>,
}

/// Which territories (× years) have too few values to be scored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScreeningConfig {
    /// Share of the indicators (0–1) a row needs to keep.
    pub min_availability: Spanned<f64>,
    /// Count availability on the `raw` data (default) or after imputation (`imputed`).
    #[serde(default)]
    pub on: ScreenOn,
    /// Territory ids kept whatever their availability.
    #[serde(default)]
    pub include: Vec<Spanned<String>>,
    /// Territory ids always dropped.
    #[serde(default)]
    pub exclude: Vec<Spanned<String>>,
}

#[derive(
    Debug,
    Deserialize,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ScreenOn {
    #[default]
    Raw,
    Imputed,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImputationConfig {
    pub method: Spanned<ImputeMethod>,
    /// `latest`, `linear`: the most consecutive missing years filled (default 2).
    pub max_gap: Option<Spanned<u32>>,
}

#[derive(
    Debug,
    Deserialize,
    Clone,
    Copy,
    PartialEq,
    Eq,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ImputeMethod {
    None,
    /// Mean of the indicator over the territories (of the same year).
    Mean,
    Median,
    /// Mean over the territories of the same group (and year).
    GroupMean,
    GroupMedian,
    /// The territory's latest earlier value.
    Latest,
    /// Linear interpolation between the territory's values before and after.
    Linear,
}

/// The JRC outlier rule: treat an indicator whose |skewness| and kurtosis are both too
/// high, by winsorising, then if that is not enough by a log transform.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreatmentConfig {
    /// Default 2.
    pub skewness: Option<Spanned<f64>>,
    /// Excess kurtosis threshold, default 3.5.
    pub kurtosis: Option<Spanned<f64>>,
    /// Most points winsorised per indicator (default 5).
    pub max_winsorised: Option<Spanned<u32>>,
    /// Log-transform the original values when winsorising is not enough (default true).
    pub log_fallback: Option<bool>,
}

/// The relational capability section: microdata, item rules, framework and cut-offs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RciConfig {
    pub source: Spanned<MicrodataConfig>,
    /// Capability cut-off on the person score s ∈ [0, 1]: capable when s ≥ k.
    pub k: Spanned<f64>,
    /// Deprivation cut-off on c = Σ w·(1 − a) ∈ [0, 1]: poor when c ≥ k_deprivation.
    pub k_deprivation: Spanned<f64>,
    /// `nested` (default): equal or given weights per dimension, then component, then item.
    /// `flat`: item weights used directly (normalised to sum 1).
    #[serde(default)]
    pub weighting: Weighting,
    /// Respondents with missing items: `drop` them, or `rescale` weights over answered items.
    #[serde(default)]
    pub missing: MissingTreatment,
    /// With `rescale`: the largest share of item weight that may be missing (default 0.25).
    pub max_missing_share: Option<Spanned<f64>>,
    /// Territories with fewer respondents are flagged (default 30).
    pub min_respondents: Option<usize>,
    /// Bootstrap replicates for confidence intervals (default 1000; 0 for none).
    pub bootstrap: Option<usize>,
    /// Seed of the bootstrap (default 1).
    pub seed: Option<u64>,
    /// Confidence level of the intervals (default 0.95).
    pub confidence: Option<Spanned<f64>>,
    #[serde(rename = "dimension", default)]
    pub dimensions: Vec<Spanned<RciNodeConfig>>,
    #[serde(rename = "component", default)]
    pub components: Vec<Spanned<RciNodeConfig>>,
    #[serde(rename = "item", default)]
    pub items: Vec<Spanned<RciItemConfig>>,
}

#[derive(
    Debug,
    Deserialize,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Weighting {
    #[default]
    Nested,
    Flat,
}

#[derive(
    Debug,
    Deserialize,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum MissingTreatment {
    Drop,
    #[default]
    Rescale,
}

/// One respondent per row.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MicrodataConfig {
    pub path: Spanned<String>,
    pub format: Option<Format>,
    pub separator: Option<Spanned<String>>,
    pub decimal: Option<Spanned<String>>,
    /// Thousands separator in numbers (e.g. `.` with decimal `,`); none by default.
    pub thousands: Option<Spanned<String>>,
    /// Character encoding (default UTF-8; e.g. `windows-1252`, `latin1`).
    pub encoding: Option<Spanned<String>>,
    /// Column with the territory of each respondent.
    pub territory: Spanned<String>,
    pub year: Option<Spanned<String>>,
    /// Survey weight column (default: every respondent weighs 1).
    pub weight: Option<Spanned<String>>,
    /// Columns whose values define subgroups reported separately (e.g. sex, urban/rural).
    #[serde(default)]
    pub subgroups: Vec<Spanned<String>>,
    /// Column identifying respondents in `rci_persons` (default: the row number).
    pub respondent_id: Option<Spanned<String>>,
}

/// A dimension (with `weight`) or a component (with `dimension` and `weight`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RciNodeConfig {
    pub id: Spanned<String>,
    pub name: Option<String>,
    pub dimension: Option<Spanned<String>>,
    pub weight: Option<Spanned<f64>>,
}

/// Codes: a list, or an inclusive range.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(untagged)]
pub enum Codes {
    List(Vec<f64>),
    Range { min: f64, max: f64 },
}

/// When an answer counts as achieved.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum AchievedRule {
    AtLeast(f64),
    AtMost(f64),
    Codes(Vec<f64>),
    Range([f64; 2]),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RciItemConfig {
    pub id: Spanned<String>,
    pub name: Option<String>,
    pub component: Spanned<String>,
    /// Answer column (default: the id).
    pub column: Option<Spanned<String>>,
    pub achieved: Spanned<AchievedRule>,
    /// Every valid answer code.
    pub valid: Spanned<Codes>,
    /// Codes meaning missing, refused or don't know (empty cells are missing too).
    #[serde(default)]
    pub missing: Vec<f64>,
    pub weight: Option<Spanned<f64>>,
}

/// The chart pack: which charts, for whom, with which extra data.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartsConfig {
    /// Charts to draw (default: every kind the pipeline's results and settings allow).
    pub include: Option<Vec<Spanned<ChartKind>>>,
    /// Levels with a ranking bar chart and a map (default: index and dimension).
    pub levels: Option<Vec<Spanned<Level>>>,
    /// Territories with a radar chart and a profile page: a list of ids, or "all".
    pub profiles: Option<Spanned<Profiles>>,
    /// Comparison pages: each a list of two or more territory ids shown side by side.
    #[serde(default)]
    pub compare: Vec<Spanned<Vec<String>>>,
    /// Reference drawn on the radar: the median of the territory's `group` (default
    /// when the pipeline has a group column) or of `all` territories.
    pub peers: Option<Spanned<Peers>>,
    /// Year of the charts that show one year (default: the latest).
    pub year: Option<Spanned<i64>>,
    /// Territories per page of rankings and heatmaps (default 60).
    pub per_page: Option<Spanned<usize>>,
    /// Source line printed under every chart (default: the pipeline's name and inputs).
    pub source: Option<String>,
    pub covariate: Option<Spanned<CovariateConfig>>,
    pub map: Option<Spanned<MapConfig>>,
}

#[derive(
    Debug,
    Deserialize,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ChartKind {
    /// Sorted bar chart per level (index, each dimension…).
    Ranking,
    /// Component profile of a territory against its peers' median.
    Radar,
    /// Territories × components.
    Heatmap,
    /// Index against the covariate.
    Scatter,
    /// Choropleth from the GeoJSON.
    Map,
    /// Scores over the years.
    Trend,
    /// Relational capability: dimension contributions to the mean, per territory.
    RciContributions,
    /// Relational capability: mean with its confidence interval, per territory.
    RciIntervals,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Profiles {
    /// "all"
    Keyword(String),
    List(Vec<String>),
}

#[derive(
    Debug,
    Deserialize,
    Clone,
    Copy,
    PartialEq,
    Eq,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Peers {
    Group,
    All,
}

/// A column to plot the index against (e.g. GDP per capita), from its own table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CovariateConfig {
    pub path: Spanned<String>,
    pub format: Option<Format>,
    pub separator: Option<Spanned<String>>,
    pub decimal: Option<Spanned<String>>,
    /// Thousands separator in numbers (e.g. `.` with decimal `,`); none by default.
    pub thousands: Option<Spanned<String>>,
    /// Character encoding (default UTF-8; e.g. `windows-1252`, `latin1`).
    pub encoding: Option<Spanned<String>>,
    /// Column with the territory ids (as in the scores).
    pub territory: Spanned<String>,
    /// Column with the year, when the covariate varies by year.
    pub year: Option<Spanned<String>>,
    pub column: Spanned<String>,
    /// Axis label (default: the column name).
    pub name: Option<String>,
    pub unit: Option<String>,
    /// Logarithmic axis and fit (default: when every value is positive and they span a
    /// factor of 10 or more).
    pub log: Option<bool>,
}

/// Boundaries for choropleth maps.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapConfig {
    /// GeoJSON FeatureCollection of Polygon/MultiPolygon features, longitude/latitude.
    pub path: Spanned<String>,
    /// Feature property holding the territory id (default `id`, falling back to the
    /// feature's own `id`).
    pub id_property: Option<String>,
    /// Feature property holding a display name, for territories the scores do not name.
    pub name_property: Option<String>,
    /// Territory id → feature id, where they differ (e.g. `CY = "CY00"`).
    #[serde(default)]
    pub aliases: std::collections::BTreeMap<String, String>,
    /// Territories known to have no boundary in the file (overseas départements on a
    /// metropolitan map): listed under the map as the others, but no warning.
    #[serde(default)]
    pub not_drawn: Vec<String>,
}

/// Errors loading a pipeline file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read pipeline file {}: {why}", path.display())]
    Read { path: PathBuf, why: String },
    #[error("{0}")]
    Parse(Problem),
    /// Numbers no setting can mean: NaN, ±inf, or beyond f64's range.
    #[error("{0}")]
    Values(crate::diagnostic::Problems),
}

/// A parsed pipeline with the text it came from (spans point into it).
#[derive(Debug)]
pub struct LoadedConfig {
    pub path: PathBuf,
    pub text: String,
    pub config: PipelineConfig,
    lines: crate::diagnostic::LineIndex,
}

impl LoadedConfig {
    /// SHA-256 of the pipeline file, for the manifest.
    pub fn sha256(&self) -> String {
        crate::files::sha256_hex(self.text.as_bytes())
    }

    pub fn new(path: PathBuf, text: String, config: PipelineConfig) -> Self {
        let lines = crate::diagnostic::LineIndex::new(&text);
        LoadedConfig {
            path,
            text,
            config,
            lines,
        }
    }

    /// Location of a span of the pipeline file.
    pub fn at(&self, span: std::ops::Range<usize>) -> Location {
        let (line, column) = self.lines.line_column(&self.text, span.start);
        Location::Config {
            file: self.path.clone(),
            line,
            column,
        }
    }
}

pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
    let read_error = |why: String| ConfigError::Read {
        path: path.to_path_buf(),
        why,
    };
    let bytes = crate::files::read_regular(path).map_err(read_error)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let (line, column) = crate::diagnostic::line_column(
            &String::from_utf8_lossy(e.as_bytes()),
            e.utf8_error().valid_up_to(),
        );
        read_error(format!(
            "invalid UTF-8 at line {line}, column {column} (TOML files are UTF-8)"
        ))
    })?;
    let config = parse(path, &text)?;
    Ok(LoadedConfig::new(path.to_path_buf(), text, config))
}

pub fn parse(path: &Path, text: &str) -> Result<PipelineConfig, ConfigError> {
    let non_finite = non_finite_numbers(path, text);
    if !non_finite.is_empty() {
        return Err(ConfigError::Values(crate::diagnostic::Problems(non_finite)));
    }
    toml::from_str(text).map_err(|e| {
        let location = match e.span() {
            Some(span) => Location::config_at(path, text, span.start),
            None => Location::Config {
                file: path.to_path_buf(),
                line: 1,
                column: 1,
            },
        };
        // toml's message is one line ("unknown field `x`, expected one of …"); its own
        // rendering repeats the file excerpt, which we replace by file:line:column.
        ConfigError::Parse(Problem::new(location, e.message().trim().to_string()))
    })
}

/// Every float of the document that is not a finite number (`nan`, `inf`, `1e400`), with
/// its line and column. No setting of a pipeline (caps, targets, goalposts, weights, `p`,
/// thresholds…) means anything with one, so the whole class is refused here, whatever key
/// it sits under, before serde sees the values.
fn non_finite_numbers(path: &Path, text: &str) -> Vec<Problem> {
    use toml::de::{DeTable, DeValue};
    fn walk(key: &str, v: &Spanned<DeValue<'_>>, out: &mut Vec<(std::ops::Range<usize>, String)>) {
        match v.get_ref() {
            DeValue::Float(f) => {
                let written = f.as_str();
                let plain = written.replace('_', "");
                let lower = plain.to_ascii_lowercase();
                let why = if lower.contains("nan") || lower.contains("inf") {
                    Some("is not a finite number")
                } else if plain.parse::<f64>().is_ok_and(|x| !x.is_finite()) {
                    Some("is out of range (beyond ±1.8e308)")
                } else {
                    None
                };
                if let Some(why) = why {
                    out.push((v.span(), format!("{key} = {written}: {why}")));
                }
            }
            DeValue::Array(a) => {
                for e in a {
                    walk(key, e, out);
                }
            }
            DeValue::Table(t) => {
                for (k, e) in t.iter() {
                    walk(k.get_ref(), e, out);
                }
            }
            _ => {}
        }
    }
    // Syntax errors are left to the deserializer, which reports them with their place.
    let Ok(root) = DeTable::parse(text) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for (k, v) in root.get_ref().iter() {
        walk(k.get_ref(), v, &mut found);
    }
    found
        .into_iter()
        .map(|(span, message)| Problem::new(Location::config_at(path, text, span.start), message))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_numbers_are_refused_wherever_they_are() {
        let text = "a = 1.0\n[x]\ncap_max = nan\nt = [1.0, -inf]\n[[y]]\nw = 1e400\nz = +inf\n";
        let problems = non_finite_numbers(Path::new("p.toml"), text);
        let shown: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            shown,
            [
                "p.toml:3:11: cap_max = nan: is not a finite number",
                "p.toml:4:11: t = -inf: is not a finite number",
                "p.toml:6:5: w = 1e400: is out of range (beyond ±1.8e308)",
                "p.toml:7:5: z = +inf: is not a finite number",
            ]
        );
    }

    const MINIMAL: &str = r#"
[pipeline]
id = "t"
[territories]
id = "code"
[[source]]
path = "x.csv"
[index]
id = "idx"
"#;

    #[test]
    fn minimal_pipeline_parses() {
        let c = parse(Path::new("p.toml"), MINIMAL).unwrap();
        assert_eq!(c.pipeline.id.get_ref(), "t");
        assert_eq!(c.sources.len(), 1);
    }

    #[test]
    fn unknown_key_is_reported_with_line_and_column() {
        let text = MINIMAL.replace("id = \"idx\"", "id = \"idx\"\nwieght = 2");
        let err = parse(Path::new("p.toml"), &text).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("p.toml:10:1: unknown field `wieght`"),
            "{msg}"
        );
    }
}
