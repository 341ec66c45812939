//! Fetching sources from their publishers, through a cache. The stage before
//! [`crate::load`]: every remote source is downloaded (or revalidated) here, parsed by its
//! format ([`crate::formats`]) and only then cached, so a response that cannot be read
//! never poisons the cache; `load` then maps the parsed tables without touching the
//! network.
//!
//! Nightly behaviour: a cached copy is revalidated (ETag / Last-Modified → 304, nothing
//! downloaded); when the network or the server fails after the retries, the run goes on
//! from the cached copy with a warning; `--offline` never touches the network (a source
//! with no cached copy is an error naming it and the cache); `--refresh` downloads again.
//! Every download is recorded for the manifest: URL, retrieval time, bytes, SHA-256, HTTP
//! status and how the cache was used.

pub mod cache;
pub mod http;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::diagnostic::{Location, Problem};
use crate::formats::FormatError;
pub use cache::Cache;
use cache::{CacheError, EntryMeta};
use http::{Conditional, Http};

/// How the network and the cache are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Revalidate cached copies, download the rest; fall back on the cache when the
    /// network fails.
    #[default]
    Normal,
    /// The cache only.
    Offline,
    /// Download everything again, ignoring cached copies (they are replaced).
    Refresh,
}

#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    /// Default: the user's cache directory.
    pub cache_dir: Option<PathBuf>,
    pub mode: Mode,
}

/// How a download was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::Display)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum CacheUse {
    /// Downloaded (nothing cached, or the cached copy had changed).
    Miss,
    /// The server said the cached copy is current (304).
    Hit,
    /// Read from the cache without asking (`--offline`).
    Offline,
    /// The network or the server failed: the cached copy was used.
    Stale,
}

/// One download, for the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct Download {
    pub url: String,
    /// When the body was downloaded from the publisher (UTC).
    pub retrieved: String,
    pub bytes: u64,
    pub sha256: String,
    /// The status of the last answer (200, or 304 for a revalidated copy); None when the
    /// server was not asked (offline) or did not answer (stale).
    pub http_status: Option<u16>,
    pub cache: CacheUse,
}

/// One request of a source.
#[derive(Debug, Clone)]
pub struct Request {
    pub url: String,
    /// The source, in words, for messages (`source "gdp" (eurostat nama_10r_2gdp)`).
    pub what: String,
    pub declared_at: Location,
    pub timeout: Duration,
    pub retries: u32,
}

/// The network and the cache, for one command.
#[derive(Debug)]
pub struct Fetcher {
    http: Option<Http>,
    pub cache: Cache,
    mode: Mode,
    /// What the run should say but that does not stop it (a stale copy used, a cache
    /// entry that could not be written).
    pub warnings: Vec<String>,
}

impl Fetcher {
    pub fn new(options: &FetchOptions) -> Result<Fetcher, Problem> {
        let dir = match &options.cache_dir {
            Some(d) => d.clone(),
            None => Cache::default_dir().ok_or_else(|| {
                Problem::new(
                    Location::Nowhere,
                    "no cache directory on this system: pass --cache-dir",
                )
            })?,
        };
        Ok(Fetcher {
            http: None,
            cache: Cache::new(dir),
            mode: options.mode,
            warnings: Vec::new(),
        })
    }

    fn http(&mut self, req: &Request) -> Result<&Http, Problem> {
        if self.http.is_none() {
            let h = Http::new().map_err(|why| Problem::new(req.declared_at.clone(), why))?;
            self.http = Some(h);
        }
        Ok(self.http.as_ref().expect("just set"))
    }

    /// Fetches one URL and parses it with `parse`; the response is cached only once it
    /// parsed.
    pub fn fetch<T>(
        &mut self,
        req: &Request,
        parse: impl Fn(&[u8]) -> Result<T, FormatError>,
    ) -> Result<(Download, T), Problem> {
        let cached = match self.cache.get(&req.url) {
            Ok(e) => Some(e),
            Err(CacheError::Missing) => None,
            Err(e) => {
                if self.mode != Mode::Offline {
                    self.warnings.push(format!("{e}: downloading it again"));
                }
                if self.mode == Mode::Offline {
                    return Err(Problem::new(
                        req.declared_at.clone(),
                        format!("{}: offline, and {e}", req.what),
                    )
                    .with_help("run `bienvivre fetch` while connected to download it again"));
                }
                None
            }
        };
        let from_cache = |entry: cache::Entry, cache: CacheUse, status: Option<u16>| {
            let value = parse(&entry.body).map_err(|e| {
                Problem::new(
                    req.declared_at.clone(),
                    format!(
                        "{}: the cached copy of {} cannot be read: {e}",
                        req.what, req.url
                    ),
                )
            })?;
            Ok((
                Download {
                    url: req.url.clone(),
                    retrieved: entry.meta.retrieved,
                    bytes: entry.meta.bytes,
                    sha256: entry.meta.sha256,
                    http_status: status,
                    cache,
                },
                value,
            ))
        };
        if self.mode == Mode::Offline {
            return match cached {
                Some(entry) => from_cache(entry, CacheUse::Offline, None),
                None => Err(Problem::new(
                    req.declared_at.clone(),
                    format!(
                        "{}: offline, and {} is not in the cache ({})",
                        req.what,
                        req.url,
                        self.cache.path_of(&req.url).display()
                    ),
                )
                .with_help("run `bienvivre fetch PIPELINE` while connected, or drop --offline")),
            };
        }
        let conditional = match (&cached, self.mode) {
            (Some(e), Mode::Normal) => Conditional {
                etag: e.meta.etag.clone(),
                last_modified: e.meta.last_modified.clone(),
            },
            _ => Conditional::default(),
        };
        let answer = self
            .http(req)?
            .get(&req.url, &conditional, req.timeout, req.retries);
        let response = match answer {
            Ok(r) => r,
            Err(failure) => {
                let why = match &failure.response {
                    Some(r) => match http::api_message(&r.body) {
                        Some(m) => format!("{}: {m}", failure.why),
                        None => failure.why.clone(),
                    },
                    None => failure.why.clone(),
                };
                let tries = match failure.attempts {
                    1 => "1 attempt".to_owned(),
                    n => format!("{n} attempts"),
                };
                if let Some(entry) = cached {
                    self.warnings.push(format!(
                        "{}: {} failed after {tries} ({why}); using the copy cached on {}",
                        req.what, req.url, entry.meta.retrieved
                    ));
                    return from_cache(entry, CacheUse::Stale, None);
                }
                return Err(Problem::new(
                    req.declared_at.clone(),
                    format!("{}: {} failed after {tries}: {why}", req.what, req.url),
                )
                .with_help("no cached copy to fall back on; check the network, or raise `timeout` / `retries` on the source"));
            }
        };
        if response.status == 304 {
            return match cached {
                Some(entry) => from_cache(entry, CacheUse::Hit, Some(304)),
                None => Err(Problem::new(
                    req.declared_at.clone(),
                    format!(
                        "{}: {} answered 304 Not Modified to a request without validators",
                        req.what, req.url
                    ),
                )),
            };
        }
        if !(200..300).contains(&response.status) {
            let mut message = format!("{}: HTTP {} from {}", req.what, response.status, req.url);
            if let Some(m) = http::api_message(&response.body) {
                message = format!("{message}: {m}");
            }
            let mut p = Problem::new(req.declared_at.clone(), message);
            let text = String::from_utf8_lossy(&response.body);
            if response.status == 413 || text.contains("EXTRACTION_TOO_BIG") {
                p = p.with_help(
                    "the extraction is too big for the API: narrow the filters (fewer geo, unit or time codes), or read the bulk file with format = \"tsv\"",
                );
            } else if response.status == 404 {
                p = p.with_help("check the dataset or indicator code and the base URL");
            }
            return Err(p);
        }
        let value = parse(&response.body).map_err(|e| {
            Problem::new(
                req.declared_at.clone(),
                format!(
                    "{}: the response from {} cannot be read: {e}",
                    req.what, req.url
                ),
            )
            .with_help("nothing was cached; the previous copy, if any, is kept")
        })?;
        let meta = EntryMeta {
            url: req.url.clone(),
            status: response.status,
            etag: response.etag,
            last_modified: response.last_modified,
            content_type: response.content_type,
            sha256: crate::files::sha256_hex(&response.body),
            bytes: response.body.len() as u64,
            retrieved: crate::clock::run_time_readable(std::time::SystemTime::now()),
        };
        if let Err(e) = self.cache.put(&meta, &response.body) {
            self.warnings.push(e.to_string());
        }
        Ok((
            Download {
                url: meta.url,
                retrieved: meta.retrieved,
                bytes: meta.bytes,
                sha256: meta.sha256,
                http_status: Some(response.status),
                cache: CacheUse::Miss,
            },
            value,
        ))
    }
}

/// What a source's downloads gave.
#[derive(Debug)]
pub enum Payload {
    /// A publisher's dataset, parsed.
    Cube(crate::formats::Cube),
    /// A table's bytes (kind = "http"), read by [`crate::load`]'s table reader.
    Bytes(Vec<u8>),
}

#[derive(Debug)]
pub struct FetchedSource {
    pub downloads: Vec<Download>,
    pub payload: Payload,
}

/// Every downloaded source of a plan, by its position in `plan.sources`.
#[derive(Debug, Default)]
pub struct Fetched {
    pub sources: Vec<Option<FetchedSource>>,
    /// Warnings of the fetch (stale copies used, cache writes that failed).
    pub warnings: Vec<String>,
}

impl Fetched {
    /// Every download, in source order.
    pub fn downloads(&self) -> Vec<Download> {
        self.sources
            .iter()
            .flatten()
            .flat_map(|s| s.downloads.iter().cloned())
            .collect()
    }
}

/// The most pages of one World Bank indicator we follow (1,000 records a page).
const MAX_PAGES: u32 = 500;

/// Parses a publisher's format, with the source's filters applied while parsing.
pub fn parse_cube(
    format: crate::plan::CubeFormat,
    filters: &crate::formats::Filters,
    bytes: &[u8],
) -> Result<crate::formats::Cube, FormatError> {
    use crate::formats;
    use crate::plan::CubeFormat;
    match format {
        CubeFormat::JsonStat => formats::jsonstat::parse(bytes, filters),
        CubeFormat::EurostatTsv => formats::eurostat_tsv::parse(bytes, filters),
        CubeFormat::SdmxCsv => formats::sdmx_csv::parse(bytes, filters),
        CubeFormat::WorldBank => formats::worldbank::parse_page(bytes, filters).map(|(_, c)| c),
    }
}

/// Fetches every downloaded source of `plan` (local files are left to `load`); all
/// problems of all sources are reported together.
pub fn fetch_plan(
    plan: &crate::plan::Plan,
    fetcher: &mut Fetcher,
) -> Result<Fetched, crate::diagnostic::Problems> {
    use crate::formats::worldbank;
    let mut out = Fetched::default();
    let mut problems = Vec::new();
    for sp in &plan.sources {
        let Some(remote) = &sp.remote else {
            out.sources.push(None);
            continue;
        };
        let request = |url: &str| Request {
            url: url.to_owned(),
            what: sp.what.clone(),
            declared_at: sp.file.declared_at.clone(),
            timeout: remote.timeout,
            retries: remote.retries,
        };
        let got: Result<FetchedSource, Problem> = (|| {
            let Some(spec) = &sp.cube else {
                let url = &remote.urls[0];
                let (d, body) = fetcher.fetch(&request(url), |b| Ok(b.to_vec()))?;
                return Ok(FetchedSource {
                    downloads: vec![d],
                    payload: Payload::Bytes(body),
                });
            };
            let mut downloads = Vec::new();
            let mut cube: Option<crate::formats::Cube> = None;
            let mut add = |c: crate::formats::Cube, url: &str| -> Result<(), Problem> {
                match &mut cube {
                    None => cube = Some(c),
                    Some(acc) => acc.append(c).map_err(|e| {
                        Problem::new(
                            sp.file.declared_at.clone(),
                            format!("{}: {url}: {e}", sp.what),
                        )
                    })?,
                }
                Ok(())
            };
            for url in &remote.urls {
                if !remote.paged {
                    let (d, c) = fetcher
                        .fetch(&request(url), |b| parse_cube(spec.format, &spec.filters, b))?;
                    downloads.push(d);
                    add(c, url)?;
                    continue;
                }
                let (d, (page, c)) =
                    fetcher.fetch(&request(url), |b| worldbank::parse_page(b, &spec.filters))?;
                downloads.push(d);
                add(c, url)?;
                if page.pages > MAX_PAGES {
                    return Err(Problem::new(
                        sp.file.declared_at.clone(),
                        format!(
                            "{}: {url} has {} pages of {}: narrow the request (countries, or query = {{ date = \"2015:2024\" }})",
                            sp.what, page.pages, page.per_page
                        ),
                    ));
                }
                for p in 2..=page.pages {
                    let paged =
                        crate::plan::source::with_query(url, &[("page".into(), p.to_string())]);
                    let (d, (_, c)) = fetcher.fetch(&request(&paged), |b| {
                        worldbank::parse_page(b, &spec.filters)
                    })?;
                    downloads.push(d);
                    add(c, &paged)?;
                }
            }
            Ok(FetchedSource {
                downloads,
                payload: Payload::Cube(cube.unwrap_or_default()),
            })
        })();
        match got {
            Ok(f) => out.sources.push(Some(f)),
            Err(p) => {
                problems.push(p);
                out.sources.push(None);
            }
        }
    }
    out.warnings = std::mem::take(&mut fetcher.warnings);
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(crate::diagnostic::Problems(problems))
    }
}
