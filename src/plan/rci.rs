//! Resolves the `[rci]` section: the microdata file, the item rules and the framework
//! (dimensions → components → items) with effective item weights summing to 1.
//!
//! Without declared dimensions/components the default RCI framework applies (three
//! dimensions, fourteen components, after Renouard & Giraud; see ../shared/RCI.md). A
//! survey maps what items it has onto it; components left without items are listed, and
//! their weight goes to the covered components of the same dimension.

use std::collections::HashMap;

use toml::Spanned;

use crate::config::{AchievedRule, Codes, MissingTreatment, RciConfig, RciNodeConfig, Weighting};
use crate::diagnostic::{Location, closest};
use crate::plan::{FileRef, Resolver, is_valid_id};

/// (component id, display name) pairs of a dimension.
type Components = &'static [(&'static str, &'static str)];

/// (dimension id, name, components).
pub const DEFAULT_FRAMEWORK: [(&str, &str, Components); 3] = [
    (
        "integration",
        "Integration into networks",
        &[
            ("employment", "Employment"),
            ("transport", "Transport"),
            ("telecommunication", "Telecommunication"),
            ("information", "Information"),
        ],
    ),
    (
        "private_relations",
        "Private relations",
        &[
            ("household", "Household"),
            ("trust_family", "Trust in family"),
            ("close_friends", "Close friends"),
            ("financial_support", "Financial support"),
            ("trust_community", "Trust in community"),
        ],
    ),
    (
        "civic_commitment",
        "Civic commitment",
        &[
            ("groups", "Groups"),
            ("collective_action", "Collective action"),
            ("vote", "Vote"),
            ("solidarity", "Solidarity"),
            ("trust_strangers", "Trust in strangers"),
        ],
    ),
];

#[derive(Debug, Clone, PartialEq)]
pub struct RciDimension {
    pub id: String,
    pub name: String,
    /// Share of the total weight (sums to 1 over dimensions).
    pub weight: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RciComponent {
    pub id: String,
    pub name: String,
    pub dimension: usize,
    /// Whether any item is mapped to it.
    pub covered: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RciItem {
    pub id: String,
    pub name: String,
    pub column: String,
    pub component: usize,
    pub dimension: usize,
    pub achieved: AchievedRule,
    pub valid: Codes,
    pub missing: Vec<f64>,
    /// Effective weight: items' weights sum to 1.
    pub weight: f64,
    pub declared_at: Location,
}

impl RciItem {
    pub fn is_valid(&self, x: f64) -> bool {
        match &self.valid {
            Codes::List(v) => v.contains(&x),
            Codes::Range { min, max } => *min <= x && x <= *max,
        }
    }

    pub fn is_missing(&self, x: f64) -> bool {
        self.missing.contains(&x)
    }

    pub fn achieved(&self, x: f64) -> bool {
        match &self.achieved {
            AchievedRule::AtLeast(v) => x >= *v,
            AchievedRule::AtMost(v) => x <= *v,
            AchievedRule::Codes(c) => c.contains(&x),
            AchievedRule::Range([lo, hi]) => *lo <= x && x <= *hi,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RciPlan {
    pub source: FileRef,
    pub territory: String,
    pub year: Option<String>,
    pub weight: Option<String>,
    pub subgroups: Vec<String>,
    pub respondent_id: Option<String>,
    pub k: f64,
    pub k_deprivation: f64,
    pub weighting: Weighting,
    pub missing: MissingTreatment,
    pub max_missing_share: f64,
    pub min_respondents: usize,
    pub bootstrap: usize,
    pub seed: u64,
    pub confidence: f64,
    pub dimensions: Vec<RciDimension>,
    pub components: Vec<RciComponent>,
    pub items: Vec<RciItem>,
    pub declared_at: Location,
}

impl RciPlan {
    /// Components of the framework no item covers.
    pub fn uncovered(&self) -> Vec<&str> {
        self.components
            .iter()
            .filter(|c| !c.covered)
            .map(|c| c.id.as_str())
            .collect()
    }
}

pub(crate) fn resolve(r: &mut Resolver<'_>, cfg: &Spanned<RciConfig>) -> RciPlan {
    let here = r.at(cfg);
    let c = cfg.get_ref();
    let src = c.source.get_ref();
    let source = r.file(&src.path, src.format, super::csv_options!(src));

    let unit = |r: &mut Resolver<'_>, v: &Spanned<f64>, what: &str, lo_open: bool| {
        let x = *v.get_ref();
        let ok = if lo_open {
            x > 0.0 && x <= 1.0
        } else {
            (0.0..=1.0).contains(&x)
        };
        if !ok {
            let range = if lo_open { "(0, 1]" } else { "[0, 1]" };
            r.problem(r.at(v), format!("{what} must be in {range}, got {x}"));
        }
        x
    };
    let k = unit(r, &c.k, "k", false);
    let k_deprivation = unit(r, &c.k_deprivation, "k_deprivation", true);
    let max_missing_share = match &c.max_missing_share {
        Some(v) => {
            if c.missing == MissingTreatment::Drop {
                r.problem(
                    r.at(v),
                    "max_missing_share applies to missing = \"rescale\" only",
                );
            }
            let x = *v.get_ref();
            if !(0.0..1.0).contains(&x) {
                r.problem(
                    r.at(v),
                    format!("max_missing_share must be in [0, 1), got {x}"),
                );
            }
            x
        }
        None => 0.25,
    };
    let confidence = match &c.confidence {
        Some(v) => {
            let x = *v.get_ref();
            if !(x > 0.0 && x < 1.0) {
                r.problem(r.at(v), format!("confidence must be in (0, 1), got {x}"));
            }
            x
        }
        None => 0.95,
    };

    // Framework: declared, or the default one.
    let mut dimensions: Vec<(RciDimension, f64, Location)> = Vec::new();
    let mut components: Vec<(RciComponent, f64, Location)> = Vec::new();
    let mut ids: HashMap<String, Location> = HashMap::new();
    let mut declare = |r: &mut Resolver<'_>, id: &Spanned<String>| {
        let v = id.get_ref();
        if !is_valid_id(v) {
            r.problem(r.at(id), format!("\"{v}\" cannot be an id"));
        }
        if let Some(first) = ids.get(v) {
            let msg = format!("id \"{v}\" is used twice in [rci] (first at {first})");
            r.problem(r.at(id), msg);
        } else {
            ids.insert(v.clone(), r.at(id));
        }
    };
    let weight_of = |r: &mut Resolver<'_>, w: Option<&Spanned<f64>>| match w {
        None => 1.0,
        Some(w) => {
            let v = *w.get_ref();
            if !v.is_finite() || v < 0.0 {
                r.problem(
                    r.at(w),
                    format!("weight must be a finite number ≥ 0, got {v}"),
                );
            }
            v
        }
    };
    if c.dimensions.is_empty() {
        for (d, (id, name, _)) in DEFAULT_FRAMEWORK.iter().enumerate() {
            dimensions.push((
                RciDimension {
                    id: id.to_string(),
                    name: name.to_string(),
                    weight: 0.0,
                },
                1.0,
                here.clone(),
            ));
            if c.components.is_empty() {
                for (cid, cname) in DEFAULT_FRAMEWORK[d].2 {
                    components.push((
                        RciComponent {
                            id: cid.to_string(),
                            name: cname.to_string(),
                            dimension: d,
                            covered: false,
                        },
                        1.0,
                        here.clone(),
                    ));
                }
            }
        }
    } else {
        for d in &c.dimensions {
            let at = r.at(d);
            let d: &RciNodeConfig = d.get_ref();
            declare(r, &d.id);
            if let Some(dim) = &d.dimension {
                r.problem(r.at(dim), "a dimension has no `dimension`");
            }
            let w = weight_of(r, d.weight.as_ref());
            dimensions.push((
                RciDimension {
                    id: d.id.get_ref().clone(),
                    name: d.name.clone().unwrap_or_else(|| d.id.get_ref().clone()),
                    weight: 0.0,
                },
                w,
                at,
            ));
        }
    }
    if !c.components.is_empty() {
        let dim_index: HashMap<String, usize> = dimensions
            .iter()
            .enumerate()
            .map(|(i, d)| (d.0.id.clone(), i))
            .collect();
        for comp in &c.components {
            let at = r.at(comp);
            let comp = comp.get_ref();
            declare(r, &comp.id);
            let w = weight_of(r, comp.weight.as_ref());
            let dimension = match &comp.dimension {
                None => {
                    r.problem(
                        at.clone(),
                        format!("component \"{}\" needs a `dimension`", comp.id.get_ref()),
                    );
                    None
                }
                Some(d) => match dim_index.get(d.get_ref()) {
                    Some(&i) => Some(i),
                    None => {
                        let hint = closest(d.get_ref(), dim_index.keys().map(String::as_str))
                            .map(|s| format!("did you mean \"{s}\"?"));
                        let p =
                            r.problem(r.at(d), format!("unknown dimension \"{}\"", d.get_ref()));
                        p.help = hint;
                        None
                    }
                },
            };
            if let Some(dimension) = dimension {
                components.push((
                    RciComponent {
                        id: comp.id.get_ref().clone(),
                        name: comp
                            .name
                            .clone()
                            .unwrap_or_else(|| comp.id.get_ref().clone()),
                        dimension,
                        covered: false,
                    },
                    w,
                    at,
                ));
            }
        }
    }

    // Items.
    let comp_index: HashMap<String, usize> = components
        .iter()
        .enumerate()
        .map(|(i, c)| (c.0.id.clone(), i))
        .collect();
    let mut columns: HashMap<String, String> = HashMap::new();
    let mut items: Vec<(RciItem, f64)> = Vec::new();
    for item in &c.items {
        let at = r.at(item);
        let it = item.get_ref();
        declare(r, &it.id);
        let id = it.id.get_ref().clone();
        let column = it
            .column
            .as_ref()
            .map_or_else(|| id.clone(), |c| c.get_ref().clone());
        if let Some(other) = columns.get(&column) {
            let where_ = it.column.as_ref().map_or(at.clone(), |c| r.at(c));
            r.problem(
                where_,
                format!("column \"{column}\" is mapped twice: by items \"{other}\" and \"{id}\""),
            )
            .help = Some("each answer may count once; derive one item per column".into());
        } else {
            columns.insert(column.clone(), id.clone());
        }
        let w = weight_of(r, it.weight.as_ref());
        let component = match comp_index.get(it.component.get_ref()) {
            Some(&i) => i,
            None => {
                let hint = closest(
                    it.component.get_ref(),
                    comp_index.keys().map(String::as_str),
                )
                .map(|s| format!("did you mean \"{s}\"?"));
                let p = r.problem(
                    r.at(&it.component),
                    format!("unknown component \"{}\"", it.component.get_ref()),
                );
                p.help = hint.or_else(|| {
                    Some(format!(
                        "components: {}",
                        crate::diagnostic::list(&comp_index.keys().collect::<Vec<_>>(), 20)
                    ))
                });
                continue;
            }
        };
        check_codes(r, it, &at);
        components[component].0.covered = true;
        items.push((
            RciItem {
                id,
                name: it.name.clone().unwrap_or_else(|| it.id.get_ref().clone()),
                column,
                component,
                dimension: components[component].0.dimension,
                achieved: it.achieved.get_ref().clone(),
                valid: it.valid.get_ref().clone(),
                missing: it.missing.clone(),
                weight: 0.0,
                declared_at: at,
            },
            w,
        ));
    }
    if items.is_empty() {
        r.problem(here.clone(), "[rci] maps no [[rci.item]]");
    }

    // Effective weights.
    let total_dim: f64 = dimensions.iter().map(|d| d.1).sum();
    for (d, (dim, dw, at)) in dimensions.iter_mut().enumerate() {
        let item_total: f64 = items
            .iter()
            .filter(|(i, _)| i.dimension == d)
            .map(|(_, w)| *w)
            .sum();
        let has_items = items.iter().any(|(i, _)| i.dimension == d);
        let positive = match c.weighting {
            Weighting::Nested => *dw > 0.0 && item_total > 0.0,
            Weighting::Flat => item_total > 0.0,
        };
        if !positive && !items.is_empty() {
            let why = if !has_items {
                "no item is mapped to it".to_string()
            } else if c.weighting == Weighting::Nested && *dw <= 0.0 {
                format!("its weight is {dw}")
            } else {
                "its items' weights are all zero".to_string()
            };
            r.problem(
                at.clone(),
                format!("dimension \"{}\" gets no positive weight: {why}", dim.id),
            )
            .help = Some("every dimension needs at least one item with a positive weight".into());
        }
        dim.weight = if total_dim > 0.0 {
            *dw / total_dim
        } else {
            0.0
        };
    }
    match c.weighting {
        Weighting::Nested => {
            let effective: Vec<f64> = items
                .iter()
                .map(|(item, iw)| {
                    let (comp, dim) = (item.component, item.dimension);
                    let comp_total: f64 = components
                        .iter()
                        .filter(|c| c.0.dimension == dim && c.0.covered)
                        .map(|c| c.1)
                        .sum();
                    let item_total: f64 = items
                        .iter()
                        .filter(|(it, _)| it.component == comp)
                        .map(|(_, w)| *w)
                        .sum();
                    if comp_total > 0.0 && item_total > 0.0 {
                        dimensions[dim].0.weight * components[comp].1 / comp_total * iw / item_total
                    } else {
                        0.0
                    }
                })
                .collect();
            for ((item, _), w) in items.iter_mut().zip(effective) {
                item.weight = w;
            }
            for (comp, cw, at) in &components {
                let item_total: f64 = items
                    .iter()
                    .filter(|(it, _)| it.component == comp_index[&comp.id])
                    .map(|(_, w)| *w)
                    .sum();
                if comp.covered && *cw > 0.0 && item_total == 0.0 {
                    r.problem(
                        at.clone(),
                        format!(
                            "the weights of the items of component \"{}\" are all zero",
                            comp.id
                        ),
                    );
                }
            }
        }
        Weighting::Flat => {
            let total: f64 = items.iter().map(|(_, w)| *w).sum();
            for (item, w) in &mut items {
                item.weight = if total > 0.0 { *w / total } else { 0.0 };
            }
            // In flat weighting, dimension weights are what their items add up to.
            for (d, dim) in dimensions.iter_mut().enumerate() {
                dim.0.weight = items
                    .iter()
                    .filter(|(i, _)| i.dimension == d)
                    .map(|(i, _)| i.weight)
                    .sum();
            }
        }
    }

    RciPlan {
        source,
        territory: src.territory.get_ref().clone(),
        year: src.year.as_ref().map(|v| v.get_ref().clone()),
        weight: src.weight.as_ref().map(|v| v.get_ref().clone()),
        subgroups: src.subgroups.iter().map(|v| v.get_ref().clone()).collect(),
        respondent_id: src.respondent_id.as_ref().map(|v| v.get_ref().clone()),
        k,
        k_deprivation,
        weighting: c.weighting,
        missing: c.missing,
        max_missing_share,
        min_respondents: c.min_respondents.unwrap_or(30),
        bootstrap: c.bootstrap.unwrap_or(1000),
        seed: c.seed.unwrap_or(1),
        confidence,
        dimensions: dimensions.into_iter().map(|d| d.0).collect(),
        components: components.into_iter().map(|c| c.0).collect(),
        items: items.into_iter().map(|i| i.0).collect(),
        declared_at: here,
    }
}

/// Rule codes must be valid codes; valid and missing codes must not overlap.
fn check_codes(r: &mut Resolver<'_>, it: &crate::config::RciItemConfig, at: &Location) {
    let id = it.id.get_ref();
    let valid = it.valid.get_ref();
    let is_valid = |x: f64| match valid {
        Codes::List(v) => v.contains(&x),
        Codes::Range { min, max } => *min <= x && x <= *max,
    };
    if let Codes::List(v) = valid
        && v.is_empty()
    {
        r.problem(
            r.at(&it.valid),
            format!("item \"{id}\": `valid` lists no code"),
        );
    }
    if let Codes::Range { min, max } = valid
        && min > max
    {
        r.problem(
            r.at(&it.valid),
            format!("item \"{id}\": valid range min {min} is above max {max}"),
        );
    }
    for m in &it.missing {
        if is_valid(*m) {
            r.problem(
                at.clone(),
                format!("item \"{id}\": code {m} is listed both as valid and as missing"),
            );
        }
    }
    if let AchievedRule::Codes(codes) = it.achieved.get_ref() {
        for code in codes {
            if !is_valid(*code) {
                r.problem(
                    r.at(&it.achieved),
                    format!("item \"{id}\": achieved code {code} is not a valid code"),
                );
            }
        }
    }
}
