//! Resolves the `[charts]` section into the chart pack's settings: which kinds of chart,
//! which levels, which territories get a profile, and the covariate and map files.
//!
//! Only what the pipeline file can tell is checked here (kinds that need an index, a
//! covariate or a map; levels; page size). Whether profiled territories exist, whether
//! the covariate column and the GeoJSON are usable, is checked against the data when the
//! pack is rendered (and by `validate`).

use std::collections::BTreeMap;

use toml::Spanned;

use crate::config::{ChartKind, ChartsConfig, Peers, Profiles};
use crate::diagnostic::Location;
use crate::plan::rci::RciPlan;
use crate::plan::{CovariatePlan, Level, Plan, Resolver};

/// Which territories get a radar chart and a profile page.
#[derive(Debug, Clone, PartialEq)]
pub enum ProfileSelection {
    All,
    /// Ids with where each was declared.
    List(Vec<(String, Location)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct MapPlan {
    pub path: std::path::PathBuf,
    pub id_property: String,
    pub name_property: Option<String>,
    /// Territory id → feature id.
    pub aliases: BTreeMap<String, String>,
    /// Territories expected to have no boundary: no warning for them.
    pub not_drawn: Vec<String>,
    pub declared_at: Location,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChartsPlan {
    /// Kinds to draw, in a fixed order.
    pub kinds: Vec<ChartKind>,
    /// Levels with rankings and maps, from the top.
    pub levels: Vec<Level>,
    pub profiles: ProfileSelection,
    /// Comparison pages: territory ids, each set with where it was declared.
    pub compare: Vec<(Vec<String>, Location)>,
    pub peers: Peers,
    pub year: Option<(i64, Location)>,
    pub per_page: usize,
    pub source_line: String,
    pub covariate: Option<CovariatePlan>,
    pub map: Option<MapPlan>,
    pub declared_at: Location,
}

impl ChartsPlan {
    pub fn wants(&self, kind: ChartKind) -> bool {
        self.kinds.contains(&kind)
    }
}

const ALL_KINDS: [ChartKind; 8] = [
    ChartKind::Ranking,
    ChartKind::Map,
    ChartKind::Heatmap,
    ChartKind::Radar,
    ChartKind::Scatter,
    ChartKind::Trend,
    ChartKind::RciIntervals,
    ChartKind::RciContributions,
];

fn kind_name(k: ChartKind) -> &'static str {
    match k {
        ChartKind::Ranking => "ranking",
        ChartKind::Radar => "radar",
        ChartKind::Heatmap => "heatmap",
        ChartKind::Scatter => "scatter",
        ChartKind::Map => "map",
        ChartKind::Trend => "trend",
        ChartKind::RciContributions => "rci_contributions",
        ChartKind::RciIntervals => "rci_intervals",
    }
}

pub(crate) fn resolve(
    r: &mut Resolver<'_>,
    cfg: &Spanned<ChartsConfig>,
    index: Option<&Plan>,
    rci: Option<&RciPlan>,
    pipeline_name: &str,
) -> ChartsPlan {
    let here = r.at(cfg);
    let c = cfg.get_ref();
    let has_group = index.is_some_and(|p| p.keys.group.is_some());
    let has_years = index.is_some_and(Plan::has_years);

    // What each kind needs, and whether this pipeline has it.
    let needs = |k: ChartKind| -> Option<&'static str> {
        match k {
            ChartKind::Ranking | ChartKind::Heatmap | ChartKind::Radar | ChartKind::Trend
                if index.is_none() =>
            {
                Some("an [index]")
            }
            ChartKind::Trend if !has_years => Some("years ([territories] year = …)"),
            ChartKind::Scatter if index.is_none() => Some("an [index]"),
            ChartKind::Scatter if c.covariate.is_none() => Some("a [charts.covariate]"),
            ChartKind::Map if c.map.is_none() => Some("a [charts.map]"),
            ChartKind::RciContributions | ChartKind::RciIntervals if rci.is_none() => {
                Some("an [rci] section")
            }
            _ => None,
        }
    };
    let kinds: Vec<ChartKind> = match &c.include {
        Some(list) => {
            for k in list {
                if let Some(need) = needs(*k.get_ref()) {
                    r.problem(
                        r.at(k),
                        format!("chart \"{}\" needs {need}", kind_name(*k.get_ref())),
                    );
                }
            }
            ALL_KINDS
                .into_iter()
                .filter(|k| list.iter().any(|l| l.get_ref() == k))
                .collect()
        }
        None => ALL_KINDS
            .into_iter()
            .filter(|k| needs(*k).is_none())
            .collect(),
    };

    let mut compare = Vec::new();
    for set in &c.compare {
        let ids: Vec<String> = set.get_ref().iter().map(|s| s.trim().to_owned()).collect();
        if ids.len() < 2 {
            r.problem(
                r.at(set),
                "[charts] compare: each comparison needs two or more territory ids",
            );
        } else if index.is_none() {
            r.problem(r.at(set), "[charts] compare needs an [index]");
        } else {
            compare.push((ids, r.at(set)));
        }
    }
    let levels = match &c.levels {
        None => vec![Level::Index, Level::Dimension],
        Some(list) => {
            let mut levels = r.levels_among(
                list,
                &[Level::Index, Level::Dimension, Level::Component],
                "[charts] levels",
            );
            levels.sort_by(|a, b| b.cmp(a));
            levels.dedup();
            levels
        }
    };

    let profiles = match &c.profiles {
        None => ProfileSelection::List(Vec::new()),
        Some(p) => match p.get_ref() {
            Profiles::Keyword(k) if k == "all" => ProfileSelection::All,
            Profiles::Keyword(k) => {
                r.problem(
                    r.at(p),
                    format!("profiles must be a list of territory ids or \"all\", got \"{k}\""),
                );
                ProfileSelection::List(Vec::new())
            }
            Profiles::List(ids) => {
                // Entries of an untagged list carry no span of their own: point at the list.
                let at = r.at(p);
                let mut out: Vec<(String, Location)> = Vec::new();
                for id in ids {
                    if out.iter().any(|(o, _)| o == id) {
                        r.problem(at.clone(), format!("territory \"{id}\" is listed twice"));
                    } else {
                        out.push((id.clone(), at.clone()));
                    }
                }
                ProfileSelection::List(out)
            }
        },
    };
    if profiles != ProfileSelection::List(Vec::new()) && index.is_none() {
        r.problem(
            r.at(c.profiles.as_ref().expect("profiles given")),
            "territory profiles need an [index] (their radar shows its components)",
        );
    }

    let peers = match &c.peers {
        Some(p) if *p.get_ref() == Peers::Group && !has_group => {
            r.problem(
                r.at(p),
                "peers = \"group\" needs a group column ([territories] group = …)",
            );
            Peers::All
        }
        Some(p) => *p.get_ref(),
        None if has_group => Peers::Group,
        None => Peers::All,
    };

    let per_page = match &c.per_page {
        Some(v) if *v.get_ref() < 5 || *v.get_ref() > 200 => {
            r.problem(
                r.at(v),
                format!("per_page must be between 5 and 200, got {}", v.get_ref()),
            );
            60
        }
        Some(v) => *v.get_ref(),
        None => 60,
    };

    let covariate = c.covariate.as_ref().map(|cv| r.covariate(cv));
    let map = c.map.as_ref().map(|m| {
        let v = m.get_ref();
        MapPlan {
            path: r.relative_path(v.path.get_ref()),
            id_property: v.id_property.clone().unwrap_or_else(|| "id".into()),
            name_property: v.name_property.clone(),
            aliases: v.aliases.clone(),
            not_drawn: v.not_drawn.clone(),
            declared_at: r.at(&v.path),
        }
    });

    ChartsPlan {
        kinds,
        levels,
        profiles,
        compare,
        peers,
        year: c.year.as_ref().map(|y| (*y.get_ref(), r.at(y))),
        per_page,
        source_line: c
            .source
            .clone()
            .unwrap_or_else(|| format!("Source: {pipeline_name}; computed with bienvivre")),
        covariate,
        map,
        declared_at: here,
    }
}
