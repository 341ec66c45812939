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
    /// Relative to the pipeline file's directory.
    pub path: Spanned<String>,
    pub format: Option<Format>,
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
    /// Long layout: the column naming the indicator of each row.
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
