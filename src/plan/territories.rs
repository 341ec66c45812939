//! Territories across sources and levels: the id rules every source's ids go through
//! (case, leading zeros, aliases), and `[rollup]`, which aggregates finer territories into
//! coarser ones (by id prefix or through a mapping table), per indicator a sum, a mean or
//! a weighted mean.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::{CovariatePlan, FileRef, PipelineConfig, Plan, Resolver, csv_options};
use crate::config::{IdCase, RollupMethod, TerritoryColumns};
use crate::diagnostic::Location;

/// How territory ids are normalised, in every source, before joining.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IdRules {
    pub case: Option<IdCase>,
    /// Digit-only ids are left-padded with zeros to this width.
    pub width: Option<usize>,
    pub aliases: BTreeMap<String, String>,
}

impl IdRules {
    pub fn is_empty(&self) -> bool {
        self.case.is_none() && self.width.is_none() && self.aliases.is_empty()
    }

    /// An id as the pipeline knows it (borrowed when no rule changes it).
    pub fn apply<'a>(&self, id: &'a str) -> Cow<'a, str> {
        let mut s = match self.case {
            Some(IdCase::Upper) if id.chars().any(char::is_lowercase) => {
                Cow::Owned(id.to_uppercase())
            }
            Some(IdCase::Lower) if id.chars().any(char::is_uppercase) => {
                Cow::Owned(id.to_lowercase())
            }
            _ => Cow::Borrowed(id),
        };
        if let Some(w) = self.width
            && !s.is_empty()
            && s.len() < w
            && s.bytes().all(|b| b.is_ascii_digit())
        {
            s = Cow::Owned(format!("{s:0>w$}"));
        }
        match self.aliases.get(s.as_ref()) {
            Some(a) => Cow::Owned(a.clone()),
            None => s,
        }
    }
}

/// Where a territory's parent comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Parent {
    /// The first characters of its id.
    Prefix(usize),
    /// A table: territory column, parent column, parent name column.
    Mapping(Box<MappingPlan>),
}

/// A table mapping territories to their parents.
#[derive(Debug, Clone, PartialEq)]
pub struct MappingPlan {
    pub file: FileRef,
    pub territory: String,
    pub parent: String,
    pub name: Option<String>,
    pub declared_at: Location,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RollupPlan {
    pub parent: Parent,
    pub weight: Option<CovariatePlan>,
    /// The method of each indicator, by id.
    pub methods: BTreeMap<String, RollupMethod>,
    pub min_coverage: f64,
    pub declared_at: Location,
}

impl Resolver<'_> {
    pub(super) fn id_rules(&mut self, t: &TerritoryColumns) -> IdRules {
        let width = t.id_width.as_ref().and_then(|w| {
            let v = *w.get_ref();
            if v == 0 || v > 32 {
                self.problem(self.at(w), "id_width must be between 1 and 32");
                None
            } else {
                Some(v)
            }
        });
        IdRules {
            case: t.id_case.as_ref().map(|c| *c.get_ref()),
            width,
            aliases: t
                .id_aliases
                .as_ref()
                .map(|a| a.get_ref().clone())
                .unwrap_or_default(),
        }
    }

    pub(super) fn rollup(&mut self, c: &PipelineConfig, plan: &Plan) -> Option<RollupPlan> {
        let cfg = c.rollup.as_ref()?;
        let here = self.at(cfg);
        let r = cfg.get_ref();
        let parent = match (&r.prefix, &r.mapping) {
            (Some(p), None) => {
                if *p.get_ref() == 0 {
                    self.problem(self.at(p), "prefix must be at least 1 character");
                }
                Parent::Prefix(*p.get_ref())
            }
            (None, Some(m)) => {
                let at = self.at(m);
                let m = m.get_ref();
                let mut file = self.file(&m.path, m.format, csv_options!(m));
                file.sheet = m.sheet.as_ref().map(|s| s.get_ref().clone());
                Parent::Mapping(Box::new(MappingPlan {
                    file,
                    territory: m.territory.get_ref().clone(),
                    parent: m.parent.get_ref().clone(),
                    name: m.name.as_ref().map(|n| n.get_ref().clone()),
                    declared_at: at,
                }))
            }
            _ => {
                self.problem(
                    here.clone(),
                    "[rollup] needs one of `prefix` (parents by the start of the ids) or `mapping` (a table of parents)",
                );
                return None;
            }
        };
        let weight = r.weight.as_ref().map(|w| self.covariate(w));
        let default = match &r.method {
            Some(m) => *m.get_ref(),
            None if weight.is_some() => RollupMethod::WeightedMean,
            None => RollupMethod::Mean,
        };
        let mut methods = BTreeMap::new();
        let ids: Vec<&str> = plan.indicators().map(|(n, _)| n.id.as_str()).collect();
        for (id, m) in &r.methods {
            if !ids.contains(&id.as_str()) {
                let mut p = crate::diagnostic::Problem::new(
                    self.at(m),
                    format!("[rollup] methods: \"{id}\" is not an indicator"),
                );
                if let Some(c) = crate::diagnostic::closest(id, ids.iter().copied()) {
                    p = p.with_help(format!("did you mean \"{c}\"?"));
                }
                self.problems.push(p);
            }
        }
        for id in &ids {
            let m = r.methods.get(*id).map_or(default, |m| *m.get_ref());
            let denominated = plan
                .indicators()
                .any(|(n, s)| n.id == *id && s.denominator.is_some());
            if denominated && m != RollupMethod::Sum {
                let at = r.methods.get(*id).map_or(here.clone(), |m| self.at(m));
                self.problem(
                    at,
                    format!("[rollup]: indicator \"{id}\" is divided by a denominator, so its numerator must be summed (method \"sum\"), not \"{m}\""),
                )
                .help = Some("the parent's rate is its total over its total: methods = { … = \"sum\" } (denominators are always summed)".into());
            }
            if m == RollupMethod::WeightedMean && weight.is_none() {
                let at = r.methods.get(*id).map_or(here.clone(), |m| self.at(m));
                self.problem(
                    at,
                    format!(
                        "[rollup]: indicator \"{id}\" is a weighted mean, but there is no `weight`"
                    ),
                )
                .help = Some(
                    "add weight = { path = …, territory = …, column = … } (e.g. population)".into(),
                );
            }
            methods.insert((*id).to_owned(), m);
        }
        let min_coverage = match &r.min_coverage {
            Some(v) if !(*v.get_ref() > 0.0 && *v.get_ref() <= 1.0) => {
                self.problem(self.at(v), "min_coverage must be in (0, 1]");
                1.0
            }
            Some(v) => *v.get_ref(),
            None => 1.0,
        };
        if plan.anchoring.is_some() {
            self.problem(
                here.clone(),
                "[rollup] and [anchoring] cannot be combined yet: anchoring shifts the finer territories' scores",
            );
        }
        Some(RollupPlan {
            parent,
            weight,
            methods,
            min_coverage,
            declared_at: here,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_rules_apply_in_order() {
        let rules = IdRules {
            case: Some(IdCase::Upper),
            width: Some(2),
            aliases: [("CY".to_owned(), "CY00".to_owned())].into(),
        };
        assert_eq!(rules.apply("cy"), "CY00");
        assert_eq!(rules.apply("1"), "01");
        assert_eq!(rules.apply("2a"), "2A");
        assert_eq!(rules.apply("971"), "971");
        assert_eq!(rules.apply(""), "");
        let communes = IdRules {
            width: Some(5),
            ..Default::default()
        };
        assert_eq!(communes.apply("1001"), "01001");
        assert_eq!(communes.apply("2A004"), "2A004");
    }
}
