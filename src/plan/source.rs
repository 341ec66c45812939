//! `[[source]]`, resolved: a local table (CSV, Parquet, xlsx), a table at a URL, or a
//! publisher's dataset (Eurostat, JSON-stat, SDMX-CSV, World Bank) — what to read or
//! fetch, and how the dataset's dimensions map onto the pipeline's territories, years and
//! indicators. URLs are built and checked here, so a bad one is a config error with its
//! line, before anything is fetched.

use std::time::Duration;

use toml::Spanned;

use super::{CsvOptions, FileRef, PipelineConfig, Resolver, default_missing};
use crate::config::{Format, Layout, SourceConfig, SourceKind};
use crate::diagnostic::Location;
use crate::formats::Filters;

/// Columns of the long table a publisher's dataset becomes (beside the territory keys).
pub const CUBE_INDICATOR: &str = "__indicator";
pub const CUBE_VALUE: &str = "__value";
pub const CUBE_FLAG: &str = "__flag";

const EUROSTAT_BASE: &str = "https://ec.europa.eu/eurostat/api/dissemination";
const WORLDBANK_BASE: &str = "https://api.worldbank.org";
/// Eurostat's selectors that are not dimensions.
const EUROSTAT_PSEUDO: [&str; 4] = [
    "geoLevel",
    "sinceTimePeriod",
    "untilTimePeriod",
    "lastTimePeriod",
];

#[derive(Debug, Clone, PartialEq)]
pub struct SourcePlan {
    pub kind: SourceKind,
    /// The table read: a local file; for downloads and publishers' datasets, the place
    /// named in messages (path or URL) and the table options.
    pub file: FileRef,
    pub missing_values: Vec<String>,
    pub layout: Layout,
    pub indicator_column: Option<String>,
    pub value_column: Option<String>,
    /// Publishers' datasets: how to read and map them.
    pub cube: Option<CubeSpec>,
    /// Downloaded sources: what to request.
    pub remote: Option<RemoteSpec>,
    /// The source in words, for messages: `source 2 (eurostat nama_10r_2gdp)`.
    pub what: String,
    /// Set when the source could not be resolved (its problems are reported): nothing
    /// is read from it.
    pub unresolved: bool,
    /// Tables: the columns of this source holding the territory id and the year, when
    /// they are not named as in `[territories]`.
    pub id_column: Option<String>,
    pub year_column: Option<String>,
}

impl SourcePlan {
    /// A plain wide table (the national data of anchoring).
    pub fn wide_file(file: FileRef) -> SourcePlan {
        SourcePlan {
            kind: SourceKind::File,
            what: format!("source {}", file.path.display()),
            file,
            missing_values: default_missing(),
            layout: Layout::Wide,
            indicator_column: None,
            value_column: None,
            cube: None,
            remote: None,
            unresolved: false,
            id_column: None,
            year_column: None,
        }
    }
}

/// The publisher's format of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CubeFormat {
    JsonStat,
    EurostatTsv,
    SdmxCsv,
    WorldBank,
}

/// Eurostat's `geoLevel`, applied by code shape to bulk files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::Display)]
#[strum(serialize_all = "snake_case")]
pub enum GeoLevel {
    Country,
    Nuts1,
    Nuts2,
    Nuts3,
}

impl GeoLevel {
    /// Whether a geo code is at this level: two letters and 0–3 more characters, not an
    /// aggregate (`EU27_2020`, `EA20`) or an extra-regio code (`FRZZ`).
    pub fn matches(self, code: &str) -> bool {
        let len = match self {
            GeoLevel::Country => 2,
            GeoLevel::Nuts1 => 3,
            GeoLevel::Nuts2 => 4,
            GeoLevel::Nuts3 => 5,
        };
        let aggregate = code.contains('_')
            // No country's code starts so: the EU and euro-area aggregates do.
            || code.starts_with("EU")
            || code.starts_with("EA")
            || (code.len() > 2 && code[2..].contains("ZZ"))
            || (code.len() > 2 && code.ends_with('Z') && code[2..].chars().all(|c| c == 'Z'));
        code.len() == len
            && code.is_ascii()
            && code[..2].chars().all(|c| c.is_ascii_uppercase())
            && !aggregate
    }
}

/// How a publisher's dataset maps onto the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct CubeSpec {
    pub format: CubeFormat,
    /// Dimension filters applied to what comes back (the API may have applied them too).
    pub filters: Filters,
    /// The dimension holding the territory (None: the format's default).
    pub territory: Option<String>,
    /// The dimension holding the year (None: the format's default).
    pub time: Option<String>,
    /// The dimension whose codes are indicator codes.
    pub indicator_dimension: Option<String>,
    /// The indicator code of every value, when no dimension names indicators.
    pub indicator: Option<String>,
    /// Eurostat's selectors, applied to what comes back (bulk files get none server-side).
    pub geo_level: Option<GeoLevel>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub last: Option<usize>,
    /// Where the source is declared.
    pub declared_at: Location,
}

/// What a downloaded source requests.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteSpec {
    /// One per request; for the World Bank, the first page of each indicator.
    pub urls: Vec<String>,
    /// World Bank: the answer comes in pages (`&page=N` is added).
    pub paged: bool,
    pub timeout: Duration,
    pub retries: u32,
}

impl Resolver<'_> {
    pub(super) fn sources(&mut self, c: &PipelineConfig) -> Vec<SourcePlan> {
        if c.sources.is_empty() {
            self.problem(
                Location::Config {
                    file: self.loaded.path.clone(),
                    line: 1,
                    column: 1,
                },
                "the pipeline has an [index] but no [[source]]",
            );
        }
        c.sources
            .iter()
            .enumerate()
            .map(|(k, s)| self.source(k + 1, s))
            .collect()
    }

    fn source(&mut self, number: usize, spanned: &Spanned<SourceConfig>) -> SourcePlan {
        let here = self.at(spanned);
        let s = spanned.get_ref();
        let kind = s.kind.as_ref().map_or(SourceKind::File, |k| *k.get_ref());
        let kind_at = s.kind.as_ref().map_or(here.clone(), |k| self.at(k));
        let format = s.format.as_ref().map(|f| *f.get_ref());
        let format_at = s.format.as_ref().map_or(here.clone(), |f| self.at(f));

        // Keys that only some kinds take.
        let mut only = |present: bool, key: &str, kinds: &[SourceKind]| {
            if present && !kinds.contains(&kind) {
                let names: Vec<String> = kinds.iter().map(|k| format!("\"{k}\"")).collect();
                self.problem(
                    here.clone(),
                    format!(
                        "`{key}` does not apply to kind = \"{kind}\" (it is for kind = {})",
                        names.join(", ")
                    ),
                );
            }
        };
        use SourceKind::*;
        only(s.url.is_some(), "url", &[Jsonstat, SdmxCsv, Http]);
        only(s.base_url.is_some(), "base_url", &[Eurostat, Worldbank]);
        only(s.dataset.is_some(), "dataset", &[Eurostat]);
        only(s.indicators.is_some(), "indicators", &[Worldbank]);
        only(s.countries.is_some(), "countries", &[Worldbank]);
        let cube_kinds = [Eurostat, Jsonstat, SdmxCsv, Worldbank];
        let remote_kinds = [Eurostat, Jsonstat, SdmxCsv, Worldbank, Http];
        only(s.filters.is_some(), "filters", &cube_kinds);
        // Tables: the key columns of this source; datasets: the key dimensions.
        only(s.indicator.is_some(), "indicator", &cube_kinds);
        only(
            s.query.is_some(),
            "query",
            &[Jsonstat, SdmxCsv, Worldbank, Http],
        );
        only(s.timeout.is_some(), "timeout", &remote_kinds);
        only(s.retries.is_some(), "retries", &remote_kinds);
        let csv_keys = s.separator.is_some()
            || s.decimal.is_some()
            || s.thousands.is_some()
            || s.encoding.is_some()
            || s.missing_values.is_some();
        only(
            csv_keys,
            "separator/decimal/thousands/encoding/missing_values",
            &[File, Http],
        );
        if cube_kinds.contains(&kind) && s.value_column.is_some() {
            self.problem(
                here.clone(),
                format!("`value_column` does not apply to kind = \"{kind}\": the dataset's values are its observations"),
            );
        }

        let timeout = match &s.timeout {
            Some(t) if !(t.get_ref().is_finite() && *t.get_ref() > 0.0) => {
                self.problem(self.at(t), "timeout must be a positive number of seconds");
                Duration::from_secs(60)
            }
            Some(t) => Duration::from_secs_f64(*t.get_ref()),
            None => Duration::from_secs(60),
        };
        let retries = s.retries.as_ref().map_or(3, |r| *r.get_ref());
        if retries > 10 {
            let at = self.at(s.retries.as_ref().expect("given"));
            self.problem(at, "at most 10 retries");
        }

        match kind {
            File | Http => self.table_source(number, s, kind, &here, format, timeout, retries),
            _ => {
                let _ = kind_at;
                self.cube_source(number, s, kind, &here, format, &format_at, timeout, retries)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn table_source(
        &mut self,
        number: usize,
        s: &SourceConfig,
        kind: SourceKind,
        here: &Location,
        format: Option<Format>,
        timeout: Duration,
        retries: u32,
    ) -> SourcePlan {
        let options = super::csv_options!(s);
        let (mut file, remote, what) = match kind {
            SourceKind::Http => {
                if s.path.is_some() {
                    self.problem(
                        here.clone(),
                        "a kind = \"http\" source has a `url`, not a `path`",
                    );
                }
                let Some(url) = &s.url else {
                    self.problem(here.clone(), "a kind = \"http\" source needs a `url`");
                    return self.placeholder(number, here);
                };
                let url_text = self.url(url, s.query.as_ref());
                // The format from the URL's file name, as for a path.
                let named = Spanned::new(
                    url.span(),
                    url_path(&url_text).unwrap_or_default().to_owned(),
                );
                let mut file = self.file_unlisted(&named, format, options);
                file.path = url_text.clone().into();
                let what = format!("source {number} ({url_text})");
                let remote = RemoteSpec {
                    urls: vec![url_text],
                    paged: false,
                    timeout,
                    retries,
                };
                (file, Some(remote), what)
            }
            _ => {
                let Some(path) = &s.path else {
                    self.problem(
                        here.clone(),
                        "a source needs a `path` (or a `kind`: \"eurostat\", \"jsonstat\", \"sdmx_csv\", \"worldbank\", \"http\")",
                    );
                    return self.placeholder(number, here);
                };
                let file = self.file(path, format, options);
                let what = format!("source {number} ({})", path.get_ref());
                (file, None, what)
            }
        };
        match (&s.sheet, file.format) {
            (Some(sheet), Format::Xlsx) => file.sheet = Some(sheet.get_ref().clone()),
            (Some(sheet), _) => {
                self.problem(self.at(sheet), "`sheet` applies to xlsx sources only");
            }
            _ => {}
        }
        match (&s.header_row, file.format) {
            (Some(r), Format::Xlsx) if *r.get_ref() >= 1 => file.header_row = Some(*r.get_ref()),
            (Some(r), Format::Xlsx) => {
                self.problem(
                    self.at(r),
                    "header_row counts from 1, as Excel numbers rows",
                );
            }
            (Some(r), _) => {
                self.problem(self.at(r), "`header_row` applies to xlsx sources only");
            }
            _ => {}
        }
        if file.format == Format::Parquet && s.missing_values.is_some() {
            self.problem(here.clone(), "`missing_values` applies to CSV sources only");
        }
        let (indicator_column, value_column) = match s.layout {
            Layout::Long => {
                if s.indicator_column.is_none() || s.value_column.is_none() {
                    self.problem(
                        here.clone(),
                        "a long source needs `indicator_column` and `value_column`",
                    );
                }
                (
                    s.indicator_column.as_ref().map(|v| v.get_ref().clone()),
                    s.value_column.as_ref().map(|v| v.get_ref().clone()),
                )
            }
            Layout::Wide => {
                if s.indicator_column.is_some() || s.value_column.is_some() {
                    self.problem(
                        here.clone(),
                        "`indicator_column`/`value_column` apply to layout = \"long\" only",
                    );
                }
                (None, None)
            }
        };
        SourcePlan {
            kind,
            file,
            missing_values: s.missing_values.clone().unwrap_or_else(default_missing),
            layout: s.layout,
            indicator_column,
            value_column,
            cube: None,
            remote,
            what,
            unresolved: false,
            id_column: s.territory.as_ref().map(|t| t.get_ref().clone()),
            year_column: s.time.as_ref().map(|t| t.get_ref().clone()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn cube_source(
        &mut self,
        number: usize,
        s: &SourceConfig,
        kind: SourceKind,
        here: &Location,
        format: Option<Format>,
        format_at: &Location,
        timeout: Duration,
        retries: u32,
    ) -> SourcePlan {
        let cube_format = match (kind, format) {
            (SourceKind::Eurostat, None | Some(Format::Json)) => CubeFormat::JsonStat,
            (SourceKind::Eurostat, Some(Format::Tsv)) => CubeFormat::EurostatTsv,
            (SourceKind::Jsonstat, None | Some(Format::Json)) => CubeFormat::JsonStat,
            (SourceKind::SdmxCsv, None | Some(Format::Csv)) => CubeFormat::SdmxCsv,
            (SourceKind::Worldbank, None | Some(Format::Json)) => CubeFormat::WorldBank,
            (_, Some(f)) => {
                let allowed = if kind == SourceKind::Eurostat {
                    "\"json\" (the Statistics API, default) or \"tsv\" (the bulk file)"
                } else {
                    "left out"
                };
                self.problem(
                    format_at.clone(),
                    format!("format \"{f}\" does not apply to kind = \"{kind}\""),
                )
                .help = Some(format!("the format is {allowed}"));
                CubeFormat::JsonStat
            }
            (_, None) => unreachable!("table kinds are resolved apart"),
        };

        // Filters: Eurostat's selectors apart from dimensions.
        let mut filters = Filters::new();
        let mut pseudo: Vec<(String, Vec<String>)> = Vec::new();
        let (mut geo_level, mut since, mut until, mut last) = (None, None, None, None);
        if let Some(f) = &s.filters {
            let at = self.at(f);
            for (key, codes) in f.get_ref() {
                let is_pseudo = kind == SourceKind::Eurostat
                    && EUROSTAT_PSEUDO.iter().any(|p| p.eq_ignore_ascii_case(key));
                if !is_pseudo {
                    filters.insert(key.clone(), codes.0.iter().cloned().collect());
                    continue;
                }
                pseudo.push((key.clone(), codes.0.clone()));
                let [one] = codes.0.as_slice() else {
                    self.problem(at.clone(), format!("`{key}` takes one value"));
                    continue;
                };
                let year = |r: &mut Self, v: &str| -> Option<i64> {
                    match v.parse::<i64>() {
                        Ok(y) => Some(y),
                        Err(_) => {
                            r.problem(
                                at.clone(),
                                format!("`{key}` = \"{v}\": a year is expected (annual data)"),
                            );
                            None
                        }
                    }
                };
                match key.to_ascii_lowercase().as_str() {
                    "geolevel" => match one.parse::<GeoLevel>() {
                        Ok(l) => geo_level = Some(l),
                        Err(_) if one == "aggregate" || one == "city" => {
                            self.problem(
                                at.clone(),
                                format!("geoLevel = \"{one}\" is not a level of territories bienvivre can map"),
                            )
                            .help = Some("use \"country\", \"nuts1\", \"nuts2\" or \"nuts3\"".into());
                        }
                        Err(_) => {
                            self.problem(at.clone(), format!("unknown geoLevel \"{one}\""))
                                .help =
                                Some("use \"country\", \"nuts1\", \"nuts2\" or \"nuts3\"".into());
                        }
                    },
                    "sincetimeperiod" => since = year(self, one),
                    "untiltimeperiod" => until = year(self, one),
                    _ => {
                        match one.parse::<usize>() {
                            Ok(n) if n > 0 => last = Some(n),
                            _ => {
                                self.problem(
                                at.clone(),
                                format!("lastTimePeriod must be a positive whole number, got \"{one}\""),
                            );
                            }
                        }
                    }
                }
            }
        }

        let text = |v: &Option<Spanned<String>>| v.as_ref().map(|v| v.get_ref().clone());
        let mut indicator = text(&s.indicator);
        let indicator_dimension = text(&s.indicator_column);
        if indicator.is_some() && indicator_dimension.is_some() {
            self.problem(
                here.clone(),
                "give either `indicator` (one code for every value) or `indicator_column` (the dimension naming indicators), not both",
            );
        }

        // Where the bytes come from.
        let (place, remote, what) = match kind {
            SourceKind::Eurostat => {
                let Some(dataset) = &s.dataset else {
                    self.problem(
                        here.clone(),
                        "a kind = \"eurostat\" source needs `dataset` (the online data code, e.g. \"nama_10r_2gdp\")",
                    );
                    return self.placeholder(number, here);
                };
                let code = dataset.get_ref().trim().to_owned();
                if code.is_empty()
                    || !code
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
                {
                    self.problem(
                        self.at(dataset),
                        format!("\"{code}\" is not a Eurostat dataset code"),
                    );
                }
                if indicator.is_none() && indicator_dimension.is_none() {
                    indicator = Some(code.clone());
                }
                let what = format!("source {number} (eurostat {code})");
                match &s.path {
                    // A file downloaded beforehand.
                    Some(path) => (self.local(path), None, what),
                    None => {
                        let base = self.base(s.base_url.as_ref(), EUROSTAT_BASE);
                        let url = if cube_format == CubeFormat::EurostatTsv {
                            format!("{base}/sdmx/2.1/data/{code}?format=TSV&compressed=true")
                        } else {
                            let mut pairs: Vec<(String, String)> = vec![
                                ("format".into(), "JSON".into()),
                                ("lang".into(), "EN".into()),
                            ];
                            for (k, codes) in &filters {
                                pairs.extend(codes.iter().map(|c| (k.clone(), c.clone())));
                            }
                            for (k, codes) in &pseudo {
                                pairs.extend(codes.iter().map(|c| (k.clone(), c.clone())));
                            }
                            with_query(&format!("{base}/statistics/1.0/data/{code}"), &pairs)
                        };
                        let remote = RemoteSpec {
                            urls: vec![url.clone()],
                            paged: false,
                            timeout,
                            retries,
                        };
                        (url, Some(remote), what)
                    }
                }
            }
            SourceKind::Worldbank => {
                if s.path.is_some() {
                    self.problem(
                        here.clone(),
                        "a kind = \"worldbank\" source has `indicators`, not a `path`",
                    );
                }
                let Some(codes) = &s.indicators else {
                    self.problem(
                        here.clone(),
                        "a kind = \"worldbank\" source needs `indicators` (e.g. [\"NY.GDP.PCAP.CD\"])",
                    );
                    return self.placeholder(number, here);
                };
                if codes.get_ref().is_empty() {
                    self.problem(self.at(codes), "`indicators` is empty");
                }
                let countries = s
                    .countries
                    .as_ref()
                    .map_or_else(|| "all".to_owned(), |c| c.get_ref().join(";"));
                let base = self.base(s.base_url.as_ref(), WORLDBANK_BASE);
                let extra: Vec<(String, String)> = s
                    .query
                    .as_ref()
                    .map(|q| {
                        q.get_ref()
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                let urls: Vec<String> = codes
                    .get_ref()
                    .iter()
                    .map(|code| {
                        let mut pairs = vec![
                            ("format".to_owned(), "json".to_owned()),
                            ("per_page".to_owned(), "1000".to_owned()),
                        ];
                        pairs.extend(extra.iter().cloned());
                        with_query(
                            &format!("{base}/v2/country/{countries}/indicator/{}", code.trim()),
                            &pairs,
                        )
                    })
                    .collect();
                let what = format!("source {number} (worldbank {})", codes.get_ref().join(", "));
                let place = urls.first().cloned().unwrap_or_default();
                (
                    place,
                    Some(RemoteSpec {
                        urls,
                        paged: true,
                        timeout,
                        retries,
                    }),
                    what,
                )
            }
            _ => match (&s.url, &s.path) {
                (Some(url), None) => {
                    let url = self.url(url, s.query.as_ref());
                    let what = format!("source {number} ({url})");
                    let remote = RemoteSpec {
                        urls: vec![url.clone()],
                        paged: false,
                        timeout,
                        retries,
                    };
                    (url, Some(remote), what)
                }
                (None, Some(path)) => {
                    let what = format!("source {number} ({})", path.get_ref());
                    (self.local(path), None, what)
                }
                _ => {
                    self.problem(
                        here.clone(),
                        format!("a kind = \"{kind}\" source needs either a `url` or a `path`"),
                    );
                    return self.placeholder(number, here);
                }
            },
        };
        if kind != SourceKind::Worldbank
            && kind != SourceKind::Eurostat
            && indicator.is_none()
            && indicator_dimension.is_none()
        {
            self.problem(
                here.clone(),
                format!("a kind = \"{kind}\" source needs `indicator` (the code all its values take) or `indicator_column` (the dimension whose codes are indicators)"),
            );
        }
        let indicator_dimension = match (kind, &indicator, indicator_dimension) {
            (SourceKind::Worldbank, None, None) => Some("indicator".to_owned()),
            (_, _, d) => d,
        };
        let file = FileRef {
            path: place.into(),
            format: Format::Csv,
            separator: b',',
            decimal_comma: false,
            thousands: None,
            encoding: None,
            sheet: None,
            header_row: None,
            declared_at: here.clone(),
        };
        SourcePlan {
            kind,
            file,
            missing_values: default_missing(),
            layout: Layout::Long,
            indicator_column: Some(CUBE_INDICATOR.to_owned()),
            value_column: Some(CUBE_VALUE.to_owned()),
            cube: Some(CubeSpec {
                format: cube_format,
                filters,
                territory: text(&s.territory),
                time: text(&s.time),
                indicator_dimension,
                indicator,
                geo_level,
                since,
                until,
                last,
                declared_at: here.clone(),
            }),
            remote,
            what,
            unresolved: false,
            id_column: None,
            year_column: None,
        }
    }

    /// A local file of a publisher's format, listed among the pipeline's inputs.
    fn local(&mut self, path: &Spanned<String>) -> String {
        self.relative_path(path.get_ref()).display().to_string()
    }

    /// A source that could not be resolved: problems are reported, nothing is read.
    fn placeholder(&mut self, number: usize, here: &Location) -> SourcePlan {
        let mut p = SourcePlan::wide_file(FileRef {
            path: format!("source {number}").into(),
            format: Format::Csv,
            separator: b',',
            decimal_comma: false,
            thousands: None,
            encoding: None,
            sheet: None,
            header_row: None,
            declared_at: here.clone(),
        });
        p.what = format!("source {number}");
        p.unresolved = true;
        p
    }

    /// A checked http(s) URL, with `query` added.
    fn url(
        &mut self,
        url: &Spanned<String>,
        query: Option<&Spanned<std::collections::BTreeMap<String, String>>>,
    ) -> String {
        let text = url.get_ref().trim();
        match reqwest::Url::parse(text) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {
                let pairs: Vec<(String, String)> = query
                    .map(|q| {
                        q.get_ref()
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                with_query(u.as_str(), &pairs)
            }
            Ok(u) => {
                self.problem(
                    self.at(url),
                    format!(
                        "URL scheme \"{}\" is not supported (http or https)",
                        u.scheme()
                    ),
                );
                text.to_owned()
            }
            Err(e) => {
                self.problem(self.at(url), format!("\"{text}\" is not a URL: {e}"));
                text.to_owned()
            }
        }
    }

    fn base(&mut self, given: Option<&Spanned<String>>, default: &str) -> String {
        match given {
            Some(b) => self.url(b, None).trim_end_matches('/').to_owned(),
            None => default.to_owned(),
        }
    }

    /// Like [`Resolver::file`], for a name that is not a local file (a URL's file name).
    fn file_unlisted(
        &mut self,
        name: &Spanned<String>,
        format: Option<Format>,
        options: CsvOptions<'_>,
    ) -> FileRef {
        let listed = self.inputs.borrow().len();
        let file = self.file(name, format, options);
        self.inputs.borrow_mut().truncate(listed);
        file
    }
}

/// `url` with `pairs` appended to its query, percent-encoded.
pub(crate) fn with_query(url: &str, pairs: &[(String, String)]) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            if !pairs.is_empty() {
                let mut q = u.query_pairs_mut();
                for (k, v) in pairs {
                    q.append_pair(k, v);
                }
            }
            u.to_string()
        }
        Err(_) => url.to_owned(),
    }
}

/// The last segment of a URL's path (its file name), if any.
fn url_path(url: &str) -> Option<&str> {
    let no_query = url.split(['?', '#']).next()?;
    let after_scheme = no_query.split_once("://").map_or(no_query, |(_, r)| r);
    let (_, path) = after_scheme.split_once('/')?;
    path.rsplit('/').next().filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geo_levels_by_code_shape() {
        assert!(GeoLevel::Nuts2.matches("FR10"));
        assert!(GeoLevel::Nuts2.matches("DE21"));
        assert!(!GeoLevel::Nuts2.matches("FR1"));
        assert!(!GeoLevel::Nuts2.matches("EA19"));
        assert!(!GeoLevel::Nuts2.matches("FRZZ"));
        assert!(!GeoLevel::Country.matches("EU"));
        assert!(GeoLevel::Country.matches("FR"));
        assert!(GeoLevel::Nuts1.matches("FRB"));
        assert!(!GeoLevel::Nuts1.matches("FRZ"));
        assert!(!GeoLevel::Nuts3.matches("EU27_"));
        assert!(GeoLevel::Nuts3.matches("FR101"));
    }

    #[test]
    fn urls_get_their_query_encoded() {
        assert_eq!(
            with_query(
                "https://x.org/data/ds",
                &[("geo".into(), "FR10".into()), ("unit".into(), "A B".into())]
            ),
            "https://x.org/data/ds?geo=FR10&unit=A+B"
        );
        assert_eq!(url_path("https://x.org/a/b.csv?x=1"), Some("b.csv"));
        assert_eq!(url_path("https://x.org/"), None);
    }
}
