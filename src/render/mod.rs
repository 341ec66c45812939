//! The chart pack: figures built from a run's results, drawn in parallel to SVG and PNG,
//! and an `index.html` with a profile page per profiled territory — all relative links,
//! so the folder opens from disk and can be mailed as a zip.
//!
//! The pack is drawn from the tidy outputs only (`scores.parquet`, `rci_scores.parquet`),
//! so `bienvivre plot` redraws an earlier run without recomputing it, and `run` draws
//! from the same tables before they are written. The same results always give the same
//! bytes: figures are built in a fixed order, rendering has no randomness, and parallel
//! rendering only changes when, not what, each file is.

pub mod charts;
pub mod compare;
pub mod data;
pub mod geo;
mod html;
pub mod style;

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;

use crate::config::{ChartKind, Peers};
use crate::diagnostic::{Problem, Problems, closest, list};
use crate::load::ChartInputs;
use crate::plan::CovariatePlan;
use crate::plan::charts::{ChartsPlan, ProfileSelection};
use crate::plan::{Level, Pipeline};
use charts::bars::{self, Row};
use charts::heatmap::Heatmap;
use charts::map::{MapChart, Matched};
use charts::radar::Radar;
use charts::xy::{Fit, Point, Scatter, Series, Trend};
use charts::{Chart, Figure, Frame};
use data::{IndexResults, RciResults, RunResults};

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{0}")]
    Problems(Problems),
    #[error(transparent)]
    Geo(#[from] geo::GeoError),
    #[error("cannot read the run's results {}: {message}", path.display())]
    Results {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("drawing {chart}: {message}")]
    Draw { chart: String, message: String },
}

impl From<Problems> for RenderError {
    fn from(p: Problems) -> Self {
        RenderError::Problems(p)
    }
}

/// A rendered pack: files relative to the pack's folder, `index.html` last.
#[derive(Debug)]
pub struct Pack {
    pub files: Vec<(String, Vec<u8>)>,
    pub figures: usize,
    pub warnings: Vec<String>,
}

/// What the figures are built from, checked against the data.
struct Inputs<'a> {
    pipeline: &'a Pipeline,
    plan: &'a ChartsPlan,
    index: Option<&'a IndexResults>,
    /// Position of the chart year in `index.years`.
    year: usize,
    rci: Option<RciResults>,
    profiles: Vec<usize>,
    /// `[charts] compare`: territories side by side, one page each.
    comparisons: Vec<compare::Comparison>,
    covariate: Option<crate::load::Covariate>,
    map: Option<(Vec<geo::Feature>, Vec<Option<usize>>)>,
    warnings: Vec<String>,
}

impl Inputs<'_> {
    fn index_plan(&self) -> Option<&crate::plan::Plan> {
        self.pipeline.index.as_ref()
    }
}

/// Builds and renders the pack.
pub fn pack(
    pipeline: &Pipeline,
    plan: &ChartsPlan,
    loaded: &ChartInputs,
    results: &mut RunResults,
) -> Result<Pack, RenderError> {
    let features = boundaries(plan, loaded, results)?;
    let inputs = inputs(pipeline, plan, loaded, results, features)?;
    let figures = figures(&inputs);
    let rendered: Vec<Result<(String, Vec<u8>), RenderError>> = figures
        .par_iter()
        .map(|f| {
            charts::render(f).map_err(|message| RenderError::Draw {
                chart: f.stem.clone(),
                message,
            })
        })
        .collect();
    let mut files = Vec::with_capacity(2 * figures.len() + 2);
    for (f, r) in figures.iter().zip(rendered) {
        let (svg, png) = r?;
        files.push((format!("{}.svg", f.stem), svg.into_bytes()));
        files.push((format!("{}.png", f.stem), png));
    }
    files.extend(html::pages(&inputs, &figures));
    Ok(Pack {
        figures: figures.len(),
        files,
        warnings: inputs.warnings,
    })
}

/// Reads the map boundaries (when a map is wanted), and names the territories the scores
/// leave unnamed after their feature's `name_property`.
fn boundaries(
    plan: &ChartsPlan,
    loaded: &ChartInputs,
    results: &mut RunResults,
) -> Result<Option<Vec<geo::Feature>>, RenderError> {
    let (Some(mp), Some(text)) = (
        plan.map.as_ref().filter(|_| plan.wants(ChartKind::Map)),
        loaded.map.as_deref(),
    ) else {
        return Ok(None);
    };
    let features = geo::parse(&mp.path, text, &mp.id_property, mp.name_property.as_deref())?;
    if let Some(ix) = results.index.as_mut() {
        let by_id: HashMap<&str, &str> = features
            .iter()
            .filter_map(|f| f.name.as_deref().map(|n| (f.id.as_str(), n)))
            .collect();
        for t in &mut ix.territories {
            let key = mp.aliases.get(&t.id).map_or(t.id.as_str(), String::as_str);
            if t.name == t.id
                && let Some(name) = by_id.get(key)
            {
                t.name = (*name).to_owned();
            }
        }
    }
    Ok(Some(features))
}

fn inputs<'a>(
    pipeline: &'a Pipeline,
    plan: &'a ChartsPlan,
    loaded: &ChartInputs,
    results: &'a RunResults,
    features: Option<Vec<geo::Feature>>,
) -> Result<Inputs<'a>, RenderError> {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let index = results.index.as_ref();

    // The year of single-year charts.
    let mut year = 0;
    let mut year_value = None;
    if let Some(ix) = index {
        year = ix.years.len() - 1;
        if let Some((y, at)) = &plan.year {
            match ix.years.iter().position(|v| *v == Some(*y)) {
                Some(i) => year = i,
                None => problems.push(Problem::new(
                    at.clone(),
                    format!(
                        "year {y} is not in the results (years: {})",
                        list(
                            &ix.years
                                .iter()
                                .flatten()
                                .map(|y| y.to_string())
                                .collect::<Vec<_>>(),
                            20
                        )
                    ),
                )),
            }
        }
        year_value = ix.years[year];
    } else if let Some((y, _)) = &plan.year {
        year_value = Some(*y);
    }

    // Profiled territories.
    let mut profiles = Vec::new();
    if let Some(ix) = index {
        match &plan.profiles {
            ProfileSelection::All => profiles = (0..ix.territories.len()).collect(),
            ProfileSelection::List(ids) => {
                for (id, at) in ids {
                    match ix.territory(id) {
                        Some(t) => profiles.push(t),
                        None => {
                            let mut p = Problem::new(
                                at.clone(),
                                format!("profiled territory \"{id}\" is not in the results"),
                            );
                            if let Some(c) =
                                closest(id, ix.territories.iter().map(|t| t.id.as_str()))
                            {
                                p = p.with_help(format!("did you mean \"{c}\"?"));
                            }
                            problems.push(p);
                        }
                    }
                }
            }
        }
    }

    let rci = match (&pipeline.rci, &results.rci_scores) {
        (Some(_), Some(df)) => {
            let y = if plan.year.is_some() || index.is_some_and(IndexResults::has_years) {
                year_value
            } else {
                None
            };
            Some(
                RciResults::from_scores(pipeline, df, y).map_err(|e| RenderError::Results {
                    path: "rci_scores".into(),
                    message: e.to_string(),
                })?,
            )
        }
        _ => None,
    };

    let covariate = loaded.covariate.clone();

    let mut map = None;
    if let (Some(mp), Some(features)) = (&plan.map, features) {
        let ids: Vec<String> = match index {
            Some(ix) => ix.territories.iter().map(|t| t.id.clone()).collect(),
            None => rci
                .as_ref()
                .map(|r| r.territories.iter().map(|t| t.id.clone()).collect())
                .unwrap_or_default(),
        };
        let (found, unclaimed) = charts::map::match_features(&features, &ids, &mp.aliases);
        let no_shape: Vec<&String> = ids
            .iter()
            .zip(&found)
            .filter(|(_, f)| f.is_none())
            .map(|(i, _)| i)
            .collect();
        if found.iter().all(Option::is_none) {
            let mut p = Problem::new(
                mp.declared_at.clone(),
                format!(
                    "no territory id matches a feature of {} (property \"{}\"; feature ids: {})",
                    mp.path.display(),
                    mp.id_property,
                    list(
                        &features.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
                        8
                    )
                ),
            );
            p = p.with_help("set id_property to the property holding the territory ids, or map them with aliases");
            problems.push(p);
        } else {
            // Those the pipeline says have none are expected.
            let no_shape: Vec<&String> = no_shape
                .into_iter()
                .filter(|id| !mp.not_drawn.contains(id))
                .collect();
            if !no_shape.is_empty() {
                warnings.push(format!(
                    "map: {} territories have no boundary in {} (left off the map): {}",
                    no_shape.len(),
                    mp.path.display(),
                    list(&no_shape, 20)
                ));
            }
            if !unclaimed.is_empty() {
                let names: Vec<&str> = unclaimed.iter().map(|&i| features[i].id.as_str()).collect();
                warnings.push(format!(
                    "map: {} features of {} match no territory (drawn as context): {}",
                    unclaimed.len(),
                    mp.path.display(),
                    list(&names, 20)
                ));
            }
            map = Some((features, found));
        }
    }

    if !problems.is_empty() {
        return Err(RenderError::Problems(Problems(problems)));
    }
    let mut comparisons = Vec::new();
    if let Some(ix) = index {
        for (ids, at) in &plan.compare {
            match compare::from_results(ix, ids, year) {
                Ok(c) => comparisons.push(c),
                Err(message) => problems.push(Problem::new(at.clone(), message)),
            }
        }
    }
    if !problems.is_empty() {
        return Err(RenderError::Problems(Problems(problems)));
    }
    Ok(Inputs {
        pipeline,
        plan,
        index,
        year,
        rci,
        profiles,
        comparisons,
        covariate,
        map,
        warnings,
    })
}

/// Sections of the HTML page, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    Rankings,
    Maps,
    Heatmap,
    Scatter,
    Trends,
    Relational,
    Profile,
}

/// One page of a long chart: its rows, 1-based number, positions and title suffix.
struct Page<T> {
    rows: Vec<T>,
    number: usize,
    first: usize,
    last: usize,
    /// " (page k of n)", or empty when there is one page.
    label: String,
}

fn pages<T: Clone>(rows: &[T], per_page: usize) -> Vec<Page<T>> {
    let per_page = per_page.max(1);
    let total = rows.len().div_ceil(per_page);
    rows.chunks(per_page)
        .enumerate()
        .map(|(k, chunk)| Page {
            rows: chunk.to_vec(),
            number: k + 1,
            first: k * per_page + 1,
            last: k * per_page + chunk.len(),
            label: if total > 1 {
                format!(" (page {} of {total})", k + 1)
            } else {
                String::new()
            },
        })
        .collect()
}

fn year_text(y: Option<i64>) -> String {
    y.map_or(String::new(), |y| format!(", {y}"))
}

/// All figures of the pack, in page order.
fn figures(x: &Inputs<'_>) -> Vec<Figure> {
    let mut out = Vec::new();
    let source = x.plan.source_line.clone();
    let frame = |title: String, subtitle: String, notes: Vec<String>| Frame {
        title,
        subtitle,
        notes,
        source: source.clone(),
    };
    let highlighted: Vec<usize> = if x.profiles.len() <= 12 {
        x.profiles.clone()
    } else {
        Vec::new()
    };

    if let Some(ix) = x.index {
        let y = x.year;
        let yv = ix.years[y];
        let n = ix.territories.len();
        let nodes: Vec<usize> = x
            .plan
            .levels
            .iter()
            .flat_map(|&l| ix.nodes_at(l).collect::<Vec<_>>())
            .collect();
        // Territories by rank of a node (missing last), then by name.
        let order = |node: usize| -> Vec<usize> {
            let mut o: Vec<usize> = (0..n).collect();
            o.sort_by(|&a, &b| {
                let (ra, rb) = (ix.rank(node, y, a), ix.rank(node, y, b));
                ra.is_none()
                    .cmp(&rb.is_none())
                    .then(ra.cmp(&rb))
                    .then(ix.territories[a].name.cmp(&ix.territories[b].name))
            });
            o
        };
        let row = |node: usize, t: usize| Row {
            rank: ix.rank(node, y, t),
            label: ix.territories[t].name.clone(),
            highlight: highlighted.contains(&t),
        };

        if x.plan.wants(ChartKind::Ranking) {
            for &node in &nodes {
                let info = &ix.nodes[node];
                let o = order(node);
                let values: Vec<f64> = o.iter().filter_map(|&t| ix.value(node, y, t)).collect();
                let domain = charts::domain(values.iter().copied(), Some((0.0, 100.0)));
                for p in pages(&o, x.plan.per_page) {
                    let (chunk, page) = (&p.rows, &p.label);
                    let (a, b) = (p.first, p.last);
                    out.push((
                        Section::Rankings,
                        Figure {
                            stem: format!("ranking_{}_{}", style::file_stem(&info.id), p.number),
                            frame: frame(
                                format!("{}: ranking{page}", info.name),
                                format!(
                                    "{} score (0–100){}, positions {a}–{b} of {n}; ties share the best rank",
                                    level_word(info.level),
                                    year_text(yv)
                                ),
                                Vec::new(),
                            ),
                            chart: Chart::Bars(bars::Bars {
                                rows: chunk.iter().map(|&t| row(node, t)).collect(),
                                values: chunk.iter().map(|&t| ix.value(node, y, t)).collect(),
                                domain,
                            }),
                            caption: format!(
                                "{} ranking of the {n} territories by their {} score{}{page}. Ranks {a} to {b}.",
                                info.name,
                                level_word(info.level).to_lowercase(),
                                year_text(yv)
                            ),
                        },
                    ));
                }
            }
        }

        if let Some((features, found)) = &x.map {
            for &node in &nodes {
                let info = &ix.nodes[node];
                let matched: Vec<Matched> = found
                    .iter()
                    .enumerate()
                    .filter_map(|(t, f)| {
                        f.map(|feature| Matched {
                            feature,
                            value: ix.value(node, y, t),
                            label: ix.territories[t].name.clone(),
                        })
                    })
                    .collect();
                let values: Vec<f64> = matched.iter().filter_map(|m| m.value).collect();
                let domain = charts::domain(values.iter().copied(), None);
                let missing: Vec<&str> = matched
                    .iter()
                    .filter(|m| m.value.is_none())
                    .map(|m| m.label.as_str())
                    .collect();
                let mut notes = Vec::new();
                if !missing.is_empty() {
                    notes.push(format!("No score (grey): {}", names(&missing, 12)));
                }
                let no_shape: Vec<&str> = found
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| f.is_none())
                    .map(|(t, _)| ix.territories[t].name.as_str())
                    .collect();
                if !no_shape.is_empty() {
                    notes.push(format!(
                        "Not on the map (no boundary in the map file): {}",
                        names(&no_shape, 12)
                    ));
                }
                out.push((
                    Section::Maps,
                    Figure {
                        stem: format!("map_{}", style::file_stem(&info.id)),
                        frame: frame(
                            format!("{}{}", info.name, year_text(yv)),
                            format!("{} score (0–100) by territory", level_word(info.level)),
                            notes,
                        ),
                        chart: Chart::Map(MapChart::build(features, &matched, domain, "score".into(), charts::TOP)),
                        caption: format!(
                            "Map of the {} score{}. Colours run from the lowest ({}) to the highest ({}) score; grey: no score.",
                            info.name,
                            year_text(yv),
                            style::score(domain.0),
                            style::score(domain.1)
                        ),
                    },
                ));
            }
        }

        let components: Vec<usize> = ix.nodes_at(Level::Component).collect();
        if x.plan.wants(ChartKind::Heatmap) && !components.is_empty() {
            let mut groups: Vec<(String, usize)> = Vec::new();
            let mut columns = Vec::new();
            let mut ordered = Vec::new();
            for d in ix.nodes_at(Level::Dimension) {
                let kids: Vec<usize> = ix.children(d).filter(|c| components.contains(c)).collect();
                if !kids.is_empty() {
                    groups.push((ix.nodes[d].name.clone(), kids.len()));
                    for c in kids {
                        columns.push(ix.nodes[c].name.clone());
                        ordered.push(c);
                    }
                }
            }
            let o = order(0);
            let all: Vec<f64> = o
                .iter()
                .flat_map(|&t| ordered.iter().filter_map(move |&c| ix.value(c, y, t)))
                .collect();
            let domain = charts::domain(all.into_iter(), None);
            for p in pages(&o, x.plan.per_page) {
                let (chunk, page) = (&p.rows, &p.label);
                out.push((
                    Section::Heatmap,
                    Figure {
                        stem: format!("heatmap_{}", p.number),
                        frame: frame(
                            format!("Component scores{page}"),
                            format!(
                                "Territories in order of the {} ranking{}; 0–100 scores, colours from {} to {}",
                                ix.nodes[0].name,
                                year_text(yv),
                                style::score(domain.0),
                                style::score(domain.1)
                            ),
                            Vec::new(),
                        ),
                        chart: Chart::Heatmap(Heatmap {
                            columns: columns.clone(),
                            groups: groups.clone(),
                            rows: chunk.iter().map(|&t| row(0, t)).collect(),
                            values: chunk
                                .iter()
                                .map(|&t| ordered.iter().map(|&c| ix.value(c, y, t)).collect())
                                .collect(),
                            domain,
                        }),
                        caption: format!(
                            "Every component score of every territory{}{page}, grouped by dimension; rows follow the {} ranking.",
                            year_text(yv),
                            ix.nodes[0].name
                        ),
                    },
                ));
            }
        }

        if let (Some(cv), Some(values)) = (&x.plan.covariate, &x.covariate) {
            out.push((
                Section::Scatter,
                scatter(x, ix, cv, values, &highlighted, &frame),
            ));
        }

        if x.plan.wants(ChartKind::Trend) && ix.years.len() > 1 {
            let years: Vec<i64> = ix.years.iter().flatten().copied().collect();
            let mut series = Vec::new();
            let background = n <= 500;
            if background {
                for t in 0..n {
                    series.push(Series {
                        label: ix.territories[t].name.clone(),
                        values: (0..ix.years.len()).map(|yi| ix.value(0, yi, t)).collect(),
                        colour: None,
                        width: 1,
                    });
                }
            }
            let median: Vec<Option<f64>> = (0..ix.years.len())
                .map(|yi| median((0..n).filter_map(|t| ix.value(0, yi, t)).collect()))
                .collect();
            series.push(Series {
                label: "Median".into(),
                values: median,
                colour: Some(style::INK),
                width: 3,
            });
            for (k, &t) in highlighted.iter().take(8).enumerate() {
                series.push(Series {
                    label: ix.territories[t].name.clone(),
                    values: (0..ix.years.len()).map(|yi| ix.value(0, yi, t)).collect(),
                    colour: Some(style::category(k)),
                    width: 2,
                });
            }
            let all = series
                .iter()
                .flat_map(|s| s.values.iter().flatten().copied());
            let domain = charts::domain(all, None);
            let domain = (domain.0.floor(), domain.1.ceil());
            out.push((
                Section::Trends,
                Figure {
                    stem: format!("trend_{}", style::file_stem(&ix.nodes[0].id)),
                    frame: frame(
                        format!("{} over the years", ix.nodes[0].name),
                        format!(
                            "Index score (0–100), {}–{}: {} and the median",
                            years[0],
                            years[years.len() - 1],
                            if background { "every territory (grey)" } else { "profiled territories" }
                        ),
                        Vec::new(),
                    ),
                    chart: Chart::Trend(Trend {
                        years: years.clone(),
                        series,
                        y_title: format!("{} score", ix.nodes[0].name),
                        y_domain: domain,
                    }),
                    caption: format!(
                        "{} of every territory by year (grey), their median (black) and the profiled territories in colour.",
                        ix.nodes[0].name
                    ),
                },
            ));
        }

        if x.plan.wants(ChartKind::Radar) || x.plan.wants(ChartKind::Trend) {
            for &t in &x.profiles {
                out.extend(
                    profile_figures(x, ix, t, &frame)
                        .into_iter()
                        .map(|f| (Section::Profile, f)),
                );
            }
        }
        for c in &x.comparisons {
            let mut f = compare::figure(c, &x.plan.source_line);
            f.stem = format!("compare/{}", f.stem.trim_start_matches("compare_"));
            out.push((Section::Profile, f));
        }
    }

    if let Some(rci) = &x.rci {
        out.extend(
            rci_figures(x, rci, &frame)
                .into_iter()
                .map(|f| (Section::Relational, f)),
        );
    }

    out.sort_by_key(|(s, _)| *s);
    out.into_iter().map(|(_, f)| f).collect()
}

/// Names for a chart note: plain, comma-separated, the rest counted.
fn names(items: &[&str], max: usize) -> String {
    let mut s = items
        .iter()
        .take(max)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > max {
        s.push_str(&format!(" and {} more", items.len() - max));
    }
    s
}

fn level_word(l: Level) -> &'static str {
    match l {
        Level::Index => "Index",
        Level::Dimension => "Dimension",
        Level::Component => "Component",
        Level::Indicator => "Indicator",
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    crate::stats::median(&mut v)
}

fn scatter(
    x: &Inputs<'_>,
    ix: &IndexResults,
    cv: &CovariatePlan,
    values: &crate::load::Covariate,
    highlighted: &[usize],
    frame: &dyn Fn(String, String, Vec<String>) -> Frame,
) -> Figure {
    let y = x.year;
    let yv = ix.years[y];
    let by_year = values.keys().any(|(_, y)| y.is_some());
    let mut groups: Vec<String> = ix
        .territories
        .iter()
        .filter_map(|t| t.group.clone())
        .collect();
    groups.sort();
    groups.dedup();
    let colour_groups = !groups.is_empty() && groups.len() <= 8;
    let mut pts: Vec<(usize, f64, f64)> = Vec::new();
    let mut without = Vec::new();
    for (t, terr) in ix.territories.iter().enumerate() {
        let Some(score) = ix.value(0, y, t) else {
            continue;
        };
        let key = (terr.id.clone(), if by_year { yv } else { None });
        match values.get(&key) {
            Some(&c) => pts.push((t, c, score)),
            None => without.push(terr.name.as_str()),
        }
    }
    let positive = pts.iter().all(|p| p.1 > 0.0);
    let (lo, hi) = charts::domain(pts.iter().map(|p| p.1), None);
    let log =
        cv.log.unwrap_or(positive && lo > 0.0 && hi / lo >= 10.0) && positive && !pts.is_empty();
    let tx = |v: f64| if log { v.ln() } else { v };
    // Least squares fit of the score on t(covariate).
    let fit = (pts.len() >= 3).then(|| {
        let nn = pts.len() as f64;
        let mx = pts.iter().map(|p| tx(p.1)).sum::<f64>() / nn;
        let my = pts.iter().map(|p| p.2).sum::<f64>() / nn;
        let sxy: f64 = pts.iter().map(|p| (tx(p.1) - mx) * (p.2 - my)).sum();
        let sxx: f64 = pts.iter().map(|p| (tx(p.1) - mx).powi(2)).sum();
        let syy: f64 = pts.iter().map(|p| (p.2 - my).powi(2)).sum();
        let b = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        Fit {
            a: my - b * mx,
            b,
            r2: if sxx > 0.0 && syy > 0.0 {
                sxy * sxy / (sxx * syy)
            } else {
                0.0
            },
        }
    });
    // Label the extremes of both axes and the largest departures from the fit.
    let mut labelled = std::collections::BTreeSet::new();
    let mut by = |key: &dyn Fn(&(usize, f64, f64)) -> f64, k: usize| {
        let mut o: Vec<&(usize, f64, f64)> = pts.iter().collect();
        o.sort_by(|a, b| key(a).total_cmp(&key(b)).then(a.0.cmp(&b.0)));
        for p in o.iter().take(k).chain(o.iter().rev().take(k)) {
            labelled.insert(p.0);
        }
    };
    by(&|p| p.2, 4);
    by(&|p| p.1, 3);
    if let Some(f) = fit {
        by(&|p| p.2 - (f.a + f.b * tx(p.1)), 3);
    }
    let points: Vec<Point> = pts
        .iter()
        .map(|&(t, cx, sy)| Point {
            label: ix.territories[t].name.clone(),
            x: cx,
            y: sy,
            group: if colour_groups {
                ix.territories[t]
                    .group
                    .as_ref()
                    .and_then(|g| groups.iter().position(|x| x == g))
                    .unwrap_or(0)
            } else {
                0
            },
            highlight: highlighted.contains(&t),
            labelled: labelled.contains(&t),
        })
        .collect();
    let x_title = match &cv.unit {
        Some(u) => format!("{} ({u}){}", cv.name, if log { ", log scale" } else { "" }),
        None => format!("{}{}", cv.name, if log { " (log scale)" } else { "" }),
    };
    let (ylo, yhi) = charts::domain(pts.iter().map(|p| p.2), None);
    let pad = (yhi - ylo) * 0.05;
    let (xlo, xhi) = if log {
        (lo / 1.08, hi * 1.08)
    } else {
        (lo - (hi - lo) * 0.04, hi + (hi - lo) * 0.04)
    };
    let mut notes = Vec::new();
    if let Some(f) = fit {
        notes.push(format!(
            "Fitted line: score = {:.2} {} {:.2}·{}, R² = {:.2}, n = {}",
            f.a,
            if f.b < 0.0 { "−" } else { "+" },
            f.b.abs(),
            if log { "ln(x)" } else { "x" },
            f.r2,
            pts.len()
        ));
    }
    if !without.is_empty() {
        notes.push(format!("No {} value: {}", cv.name, names(&without, 10)));
    }
    let index = &ix.nodes[0];
    Figure {
        stem: format!("scatter_{}", style::file_stem(&index.id)),
        frame: frame(
            format!("{} and {}", index.name, cv.name),
            format!(
                "Index score (0–100){} against {}; notable territories labelled",
                year_text(yv),
                cv.name
            ),
            notes,
        ),
        chart: Chart::Scatter(Scatter {
            points,
            groups: if colour_groups { groups } else { Vec::new() },
            x_title,
            y_title: format!("{} score", index.name),
            log_x: log,
            x_domain: (xlo, xhi),
            y_domain: (
                (ylo - pad).max(if ylo >= 0.0 { 0.0 } else { f64::MIN }),
                yhi + pad,
            ),
            fit,
        }),
        caption: format!(
            "Each point is a territory: {} score against {}. The line is a least-squares fit{}; territories far from it do better or worse than their {} suggests.",
            index.name,
            cv.name,
            if log {
                " on the logarithm of the covariate"
            } else {
                ""
            },
            cv.name
        ),
    }
}

/// The radar and trend of one profiled territory.
fn profile_figures(
    x: &Inputs<'_>,
    ix: &IndexResults,
    t: usize,
    frame: &dyn Fn(String, String, Vec<String>) -> Frame,
) -> Vec<Figure> {
    let mut out = Vec::new();
    let y = x.year;
    let terr = &ix.territories[t];
    let stem = style::file_stem(&terr.id);
    let rank = ix.rank(0, y, t).map_or("no rank".into(), |r| {
        format!("rank {r} of {}", ix.territories.len())
    });
    let components: Vec<usize> = ix.nodes_at(Level::Component).collect();
    if x.plan.wants(ChartKind::Radar) && components.len() >= 3 {
        let (peers, peer_label) = peer_set(x, ix, t);
        let values: Vec<Option<f64>> = components.iter().map(|&c| ix.value(c, y, t)).collect();
        let medians: Vec<Option<f64>> = components
            .iter()
            .map(|&c| median(peers.iter().filter_map(|&p| ix.value(c, y, p)).collect()))
            .collect();
        out.push(Figure {
            stem: format!("profiles/{stem}_radar"),
            frame: frame(
                format!("{}: component profile", terr.name),
                format!(
                    "{} {}{} ({rank}); component scores 0–100 against {}",
                    ix.nodes[0].name,
                    ix.value(0, y, t).map_or("no score".into(), style::score),
                    year_text(ix.years[y]),
                    peer_label
                ),
                Vec::new(),
            ),
            chart: Chart::Radar(Radar {
                axes: components
                    .iter()
                    .map(|&c| ix.nodes[c].name.clone())
                    .collect(),
                territory: values,
                peers: medians,
                territory_label: terr.name.clone(),
                peer_label: capitalise(&peer_label),
            }),
            caption: format!(
                "{}: each component score (red) against {peer_label} (grey).",
                terr.name
            ),
        });
    }
    if x.plan.wants(ChartKind::Trend) && ix.years.len() > 1 {
        let years: Vec<i64> = ix.years.iter().flatten().copied().collect();
        let mut nodes = vec![0];
        nodes.extend(ix.nodes_at(Level::Dimension));
        let series: Vec<Series> = nodes
            .iter()
            .enumerate()
            .map(|(k, &node)| Series {
                label: ix.nodes[node].name.clone(),
                values: (0..ix.years.len())
                    .map(|yi| ix.value(node, yi, t))
                    .collect(),
                colour: Some(if k == 0 {
                    style::INK
                } else {
                    style::category(k - 1)
                }),
                width: if k == 0 { 3 } else { 2 },
            })
            .collect();
        let domain = charts::domain(
            series
                .iter()
                .flat_map(|s| s.values.iter().flatten().copied()),
            None,
        );
        out.push(Figure {
            stem: format!("profiles/{stem}_trend"),
            frame: frame(
                format!("{}: scores over the years", terr.name),
                format!(
                    "{} and its dimensions, 0–100, {}–{}",
                    ix.nodes[0].name,
                    years[0],
                    years[years.len() - 1]
                ),
                Vec::new(),
            ),
            chart: Chart::Trend(Trend {
                years,
                series,
                y_title: "score".into(),
                y_domain: ((domain.0 - 2.0).floor(), (domain.1 + 2.0).ceil()),
            }),
            caption: format!(
                "{}: the index (black) and each dimension by year.",
                terr.name
            ),
        });
    }
    out
}

/// The territories a profile is compared with, and how to say so.
fn peer_set(x: &Inputs<'_>, ix: &IndexResults, t: usize) -> (Vec<usize>, String) {
    let n = ix.territories.len();
    if x.plan.peers == Peers::Group
        && let Some(g) = &ix.territories[t].group
    {
        let peers: Vec<usize> = (0..n)
            .filter(|&p| p != t && ix.territories[p].group.as_ref() == Some(g))
            .collect();
        if !peers.is_empty() {
            // A code alone ("of 11") says nothing: name the column it comes from.
            let of = match x.index_plan().and_then(|p| p.keys.group.as_deref()) {
                Some(column) if g.chars().all(|c| c.is_ascii_digit()) => {
                    format!("with {column} {g}")
                }
                _ => format!("of {g}"),
            };
            return (
                peers.clone(),
                format!("the median of the {} other territories {of}", peers.len()),
            );
        }
    }
    let peers: Vec<usize> = (0..n).filter(|&p| p != t).collect();
    let label = format!("the median of all {} other territories", peers.len());
    (peers, label)
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn rci_figures(
    x: &Inputs<'_>,
    rci: &RciResults,
    frame: &dyn Fn(String, String, Vec<String>) -> Frame,
) -> Vec<Figure> {
    let mut out = Vec::new();
    let names: BTreeMap<&str, &str> = x
        .index
        .map(|ix| {
            ix.territories
                .iter()
                .map(|t| (t.id.as_str(), t.name.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let name = |id: &str| names.get(id).copied().unwrap_or(id).to_owned();
    let mut order: Vec<&data::RciTerritory> = rci.territories.iter().collect();
    order.sort_by(|a, b| {
        a.rank
            .is_none()
            .cmp(&b.rank.is_none())
            .then(a.rank.cmp(&b.rank))
            .then(a.id.cmp(&b.id))
    });
    let n = order.len();
    let highlighted: Vec<String> = x
        .profiles
        .iter()
        .filter_map(|&t| x.index.map(|ix| ix.territories[t].id.clone()))
        .collect();
    let row = |t: &data::RciTerritory| Row {
        rank: t.rank,
        label: name(&t.id),
        highlight: highlighted.contains(&t.id),
    };
    let small = order.iter().filter(|t| t.small_sample).count();
    let min_n = x.pipeline.rci.as_ref().map_or(30, |r| r.min_respondents);
    let yt = year_text(rci.year);
    if x.plan.wants(ChartKind::RciIntervals) {
        let lo = order
            .iter()
            .filter_map(|t| t.ci.map(|c| c.0).or(t.mean))
            .fold(f64::INFINITY, f64::min);
        let hi = order
            .iter()
            .filter_map(|t| t.ci.map(|c| c.1).or(t.mean))
            .fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
        let pad = ((hi - lo) * 0.05).max(0.01);
        let domain = ((lo - pad).max(0.0), (hi + pad).min(1.0));
        let confidence = x.pipeline.rci.as_ref().map_or(0.95, |r| r.confidence);
        for p in pages(&order, x.plan.per_page) {
            let (chunk, page) = (&p.rows, &p.label);
            let mut notes = vec![format!(
                "Whiskers: {:.0}% bootstrap interval. Neighbours whose intervals overlap cannot be told apart.",
                confidence * 100.0
            )];
            if small > 0 {
                notes.push(format!(
                    "† fewer than {min_n} respondents (hollow dot): read with care."
                ));
            }
            out.push(Figure {
                stem: format!("rci_intervals_{}", p.number),
                frame: frame(
                    format!("Relational capability{page}"),
                    format!("Mean RCI score (0–1) per territory{yt}, ranked, with its confidence interval"),
                    notes,
                ),
                chart: Chart::Intervals(bars::Intervals {
                    rows: chunk.iter().map(|t| row(t)).collect(),
                    values: chunk
                        .iter()
                        .map(|t| bars::Interval {
                            mean: t.mean,
                            ci: t.ci,
                            small: t.small_sample,
                            respondents: t.respondents,
                        })
                        .collect(),
                    domain,
                }),
                caption: format!(
                    "Mean relational capability of the {n} territories{yt}{page}, with {:.0}% bootstrap intervals and respondent counts.",
                    confidence * 100.0
                ),
            });
        }
    }
    if x.plan.wants(ChartKind::RciContributions) {
        let max = order.iter().filter_map(|t| t.mean).fold(0.0, f64::max);
        for p in pages(&order, x.plan.per_page) {
            let (chunk, page) = (&p.rows, &p.label);
            out.push(Figure {
                stem: format!("rci_contributions_{}", p.number),
                frame: frame(
                    format!("What relational capability is made of{page}"),
                    format!("Mean RCI score{yt} split into the contributions of its dimensions"),
                    Vec::new(),
                ),
                chart: Chart::Stacked(bars::Stacked {
                    rows: chunk.iter().map(|t| row(t)).collect(),
                    parts: chunk
                        .iter()
                        .map(|t| t.shares.iter().map(|s| s.zip(t.mean).map(|(s, m)| s * m)).collect())
                        .collect(),
                    part_names: rci.dimensions.iter().map(|d| d.1.clone()).collect(),
                    domain: (0.0, (max * 1.05).clamp(0.05, 1.0)),
                    digits: 3,
                }),
                caption: format!(
                    "Each bar is a territory's mean RCI score{yt}{page}, split by dimension: the longer a colour, the more that dimension adds."
                ),
            });
        }
    }
    out
}

/// Writes a pack into `dir` (replacing what was there only once all is written).
pub fn write(
    pack: Pack,
    target: &crate::write::Target,
) -> Result<Vec<String>, crate::write::WriteError> {
    let mut files = pack.files;
    let last = files.pop().expect("a pack ends with index.html");
    crate::write::commit(
        target,
        files
            .into_iter()
            .map(|(n, b)| crate::write::Output::File(n, b))
            .collect(),
        || crate::write::Output::File(last.0, last.1),
    )
}
