//! Seeded synthetic territorial data: the tests' synthetic pipeline (`data/synthetic.csv`)
//! and benchmark inputs of any size. Clearly synthetic: territories are "Territory 0001", values come from
//! a latent development factor per territory plus a region effect, a yearly trend and noise.
//!
//! The generator is self-contained (splitmix64, Box–Muller) rather than built on `rand`, so
//! the bytes of `data/synthetic.csv` never change with a dependency upgrade.

use std::fmt::Write as _;
use std::io::{self, Write};

/// Size and shape of a generated table.
#[derive(Debug, Clone)]
pub struct SynthSpec {
    pub territories: usize,
    pub groups: usize,
    pub years: usize,
    pub first_year: i64,
    pub indicators: usize,
    /// Share of indicator cells left empty.
    pub missing: f64,
    pub seed: u64,
    /// Values as computed (shortest round-trip text) instead of rounded to their kind's
    /// published decimals: indicators an analyst derives (rates, ratios per inhabitant)
    /// have full precision, and a Parquet file of them is some 3.5 times larger.
    pub full_precision: bool,
}

/// An indicator of the catalogue: plausible range and direction.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    pub id: &'static str,
    pub name: &'static str,
    pub unit: &'static str,
    pub higher_is_better: bool,
    /// Typical worst and best values of the generated data.
    pub low: f64,
    pub high: f64,
    pub decimals: usize,
}

pub const CATALOGUE: [Kind; 12] = [
    Kind {
        id: "life_expectancy",
        name: "Life expectancy at birth",
        unit: "years",
        higher_is_better: true,
        low: 74.0,
        high: 85.0,
        decimals: 1,
    },
    Kind {
        id: "infant_mortality",
        name: "Infant mortality",
        unit: "deaths per 1,000 live births",
        higher_is_better: false,
        low: 1.5,
        high: 9.0,
        decimals: 2,
    },
    Kind {
        id: "median_income",
        name: "Median disposable income",
        unit: "EUR per year",
        higher_is_better: true,
        low: 14000.0,
        high: 36000.0,
        decimals: 0,
    },
    Kind {
        id: "unemployment_rate",
        name: "Unemployment rate",
        unit: "% of labour force",
        higher_is_better: false,
        low: 3.0,
        high: 22.0,
        decimals: 1,
    },
    Kind {
        id: "broadband_coverage",
        name: "Households with fast broadband",
        unit: "%",
        higher_is_better: true,
        low: 45.0,
        high: 99.0,
        decimals: 1,
    },
    Kind {
        id: "pm25_exposure",
        name: "Exposure to fine particulate matter",
        unit: "µg/m³",
        higher_is_better: false,
        low: 5.0,
        high: 24.0,
        decimals: 1,
    },
    Kind {
        id: "early_school_leavers",
        name: "Early leavers from education",
        unit: "% of 18-24",
        higher_is_better: false,
        low: 3.0,
        high: 20.0,
        decimals: 1,
    },
    Kind {
        id: "tertiary_attainment",
        name: "Tertiary attainment",
        unit: "% of 25-34",
        higher_is_better: true,
        low: 18.0,
        high: 60.0,
        decimals: 1,
    },
    Kind {
        id: "doctors_density",
        name: "Practising doctors",
        unit: "per 10,000 inhabitants",
        higher_is_better: true,
        low: 12.0,
        high: 55.0,
        decimals: 1,
    },
    Kind {
        id: "property_crime",
        name: "Recorded property crime",
        unit: "per 1,000 inhabitants",
        higher_is_better: false,
        low: 8.0,
        high: 60.0,
        decimals: 1,
    },
    Kind {
        id: "voter_turnout",
        name: "Turnout at local elections",
        unit: "% of registered voters",
        higher_is_better: true,
        low: 38.0,
        high: 82.0,
        decimals: 1,
    },
    Kind {
        id: "green_space",
        name: "Accessible green space",
        unit: "m² per inhabitant",
        higher_is_better: true,
        low: 6.0,
        high: 70.0,
        decimals: 1,
    },
];

/// The catalogue kind and column name of the `j`-th generated indicator.
pub fn indicator(j: usize) -> (Kind, String) {
    let kind = CATALOGUE[j % CATALOGUE.len()];
    let round = j / CATALOGUE.len();
    let id = if round == 0 {
        kind.id.to_string()
    } else {
        format!("{}_{}", kind.id, round + 1)
    };
    (kind, id)
}

pub use crate::stats::Rng;

/// Writes the wide CSV: `code,name,region,[year,]` then one column per indicator.
pub fn write_csv(spec: &SynthSpec, out: &mut impl Write) -> io::Result<()> {
    let mut rng = Rng::new(spec.seed);
    let kinds: Vec<(Kind, String)> = (0..spec.indicators).map(indicator).collect();
    // Per-indicator loading on the development factor, so indicators correlate like real ones.
    let loadings: Vec<f64> = kinds.iter().map(|_| 0.5 + 0.4 * rng.uniform()).collect();
    let group_effect: Vec<f64> = (0..spec.groups.max(1))
        .map(|_| 0.6 * rng.normal())
        .collect();

    let mut header = String::from("code,name,region");
    if spec.years > 1 {
        header.push_str(",year");
    }
    for (_, id) in &kinds {
        header.push(',');
        header.push_str(id);
    }
    writeln!(out, "{header}")?;

    let mut line = String::new();
    for t in 0..spec.territories {
        let g = t % spec.groups.max(1);
        let development = group_effect[g] + 0.8 * rng.normal();
        let specific: Vec<f64> = kinds.iter().map(|_| rng.normal()).collect();
        for y in 0..spec.years.max(1) {
            line.clear();
            write!(
                line,
                "T{:05},Territory {:05},Region {:02}",
                t + 1,
                t + 1,
                g + 1
            )
            .expect("string");
            if spec.years > 1 {
                write!(line, ",{}", spec.first_year + y as i64).expect("string");
            }
            for (j, (kind, _)) in kinds.iter().enumerate() {
                line.push(',');
                if rng.uniform() < spec.missing {
                    continue;
                }
                let trend = 0.08 * y as f64;
                let z = loadings[j] * (development + trend)
                    + (1.0 - loadings[j]) * specific[j]
                    + 0.1 * rng.normal();
                // Map z (≈ N(0,1)) into the indicator's range, best side by direction.
                let share = 1.0 / (1.0 + (-1.3 * z).exp());
                let share = if kind.higher_is_better {
                    share
                } else {
                    1.0 - share
                };
                let value = kind.low + share * (kind.high - kind.low);
                if spec.full_precision {
                    write!(line, "{value}").expect("string");
                } else {
                    write!(line, "{value:.prec$}", prec = kind.decimals).expect("string");
                }
            }
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

/// A pipeline over a generated table: components of 5 indicators, dimensions of 4
/// components, observed goalposts (the generated ranges are not real-world goalposts).
pub fn pipeline_toml(spec: &SynthSpec, data_path: &str, id: &str) -> String {
    let mut s = String::new();
    let components = spec.indicators.div_ceil(5);
    let dimensions = components.div_ceil(4);
    writeln!(
        s,
        "# Generated by `bienvivre generate`: synthetic data, synthetic framework."
    )
    .expect("string");
    writeln!(s, "[pipeline]\nid = \"{id}\"\nname = \"Synthetic benchmark ({} territories × {} indicators × {} years)\"\n", spec.territories, spec.indicators, spec.years).expect("string");
    writeln!(
        s,
        "[territories]\nid = \"code\"\nname = \"name\"\ngroup = \"region\""
    )
    .expect("string");
    if spec.years > 1 {
        writeln!(s, "year = \"year\"").expect("string");
    }
    writeln!(s, "\n[[source]]\npath = \"{data_path}\"\n").expect("string");
    writeln!(s, "[aggregation]\ncomponent = {{ method = \"arithmetic\", min_share = 0.5 }}\ndimension = {{ method = \"power\", p = 0.5 }}\nindex = {{ method = \"power\", p = 0.5 }}\n").expect("string");
    writeln!(
        s,
        "[index]\nid = \"synthetic_index\"\nname = \"Synthetic index\"\n"
    )
    .expect("string");
    for d in 0..dimensions {
        writeln!(s, "[[dimension]]\nid = \"dim_{:02}\"\n", d + 1).expect("string");
    }
    for c in 0..components {
        writeln!(
            s,
            "[[component]]\nid = \"comp_{:02}\"\ndimension = \"dim_{:02}\"\n",
            c + 1,
            c / 4 + 1
        )
        .expect("string");
    }
    for j in 0..spec.indicators {
        let (kind, id) = indicator(j);
        let direction = if kind.higher_is_better {
            "higher_is_better"
        } else {
            "lower_is_better"
        };
        writeln!(
            s,
            "[[indicator]]\nid = \"{id}\"\ncomponent = \"comp_{:02}\"\ndirection = \"{direction}\"\ngoalposts = \"observed\"\n",
            j / 5 + 1
        )
        .expect("string");
    }
    s
}

/// Size of a generated survey (one row per respondent).
#[derive(Debug, Clone)]
pub struct SurveySpec {
    pub respondents: usize,
    pub territories: usize,
    pub items: usize,
    /// Share of answers coded 9 (don't know).
    pub missing: f64,
    pub seed: u64,
}

/// The 14 components of the default RCI framework, in order; items cycle over them.
const RCI_COMPONENTS: [&str; 14] = [
    "employment",
    "transport",
    "telecommunication",
    "information",
    "household",
    "trust_family",
    "close_friends",
    "financial_support",
    "trust_community",
    "groups",
    "collective_action",
    "vote",
    "solidarity",
    "trust_strangers",
];

/// A generated survey, column by column: `id`, `territory`, `weight`, `sex`, then the
/// answers `q01…` coded 0–4 (9 = don't know). Answers depend on a per-territory and a
/// per-person latent level, so territories differ.
#[derive(Debug)]
pub struct Survey {
    pub territory: Vec<u32>,
    pub weight: Vec<f64>,
    pub female: Vec<bool>,
    /// Per item, per respondent.
    pub answers: Vec<Vec<i8>>,
}

pub fn survey(spec: &SurveySpec) -> Survey {
    let mut rng = Rng::new(spec.seed);
    let territory_level: Vec<f64> = (0..spec.territories.max(1))
        .map(|_| 0.5 * rng.normal())
        .collect();
    let n = spec.respondents;
    let mut s = Survey {
        territory: Vec::with_capacity(n),
        weight: Vec::with_capacity(n),
        female: Vec::with_capacity(n),
        answers: vec![Vec::with_capacity(n); spec.items],
    };
    for i in 0..n {
        let t = i % spec.territories.max(1);
        let level = territory_level[t] + rng.normal();
        // Weights with three decimals, as the CSV writes them.
        let weight = ((0.5 + rng.uniform()) * 1000.0).round() / 1000.0;
        s.territory.push(t as u32);
        s.weight.push(weight);
        s.female.push(rng.uniform() < 0.5);
        for answers in s.answers.iter_mut() {
            if rng.uniform() < spec.missing {
                answers.push(9);
                continue;
            }
            let z = level + rng.normal();
            answers.push(((z + 2.5).floor() as i64).clamp(0, 4) as i8);
        }
    }
    s
}

fn territory_code(t: u32) -> String {
    format!("R{:04}", t + 1)
}

/// Writes a generated survey as CSV: `id,territory,weight,sex,q01,…`.
pub fn write_survey_csv(spec: &SurveySpec, out: &mut impl Write) -> io::Result<()> {
    let s = survey(spec);
    let mut header = String::from("id,territory,weight,sex");
    for j in 0..spec.items {
        write!(header, ",q{:02}", j + 1).expect("string");
    }
    writeln!(out, "{header}")?;
    let mut line = String::with_capacity(16 + 2 * spec.items);
    for i in 0..spec.respondents {
        line.clear();
        let sex = if s.female[i] { 'f' } else { 'm' };
        write!(
            line,
            "{},{},{:.3},{sex}",
            i + 1,
            territory_code(s.territory[i]),
            s.weight[i]
        )
        .expect("string");
        for answers in &s.answers {
            write!(line, ",{}", answers[i]).expect("string");
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// Writes a generated survey as Parquet, typed as a statistics package exports it:
/// `id` Int64, `territory` and `sex` text, `weight` Float64, answers Int8 (zstd).
pub fn write_survey_parquet(
    spec: &SurveySpec,
    out: impl Write,
) -> polars::prelude::PolarsResult<()> {
    use polars::prelude::*;
    let s = survey(spec);
    let n = spec.respondents;
    let names: Vec<String> = (0..spec.territories.max(1) as u32)
        .map(territory_code)
        .collect();
    let mut columns = vec![
        Column::new("id".into(), (1..=n as i64).collect::<Vec<_>>()),
        Column::new(
            "territory".into(),
            s.territory
                .iter()
                .map(|&t| names[t as usize].as_str())
                .collect::<Vec<_>>(),
        ),
        Column::new("weight".into(), s.weight),
        Column::new(
            "sex".into(),
            s.female
                .iter()
                .map(|&f| if f { "f" } else { "m" })
                .collect::<Vec<_>>(),
        ),
    ];
    for (j, answers) in s.answers.into_iter().enumerate() {
        columns.push(Column::new(format!("q{:02}", j + 1).into(), answers));
    }
    let mut df = DataFrame::new(n, columns)?;
    ParquetWriter::new(out)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(&mut df)?;
    Ok(())
}

/// An RCI pipeline over a generated survey: items achieved at code ≥ 2, over the default
/// framework (items cycle over the 14 components).
pub fn survey_pipeline_toml(spec: &SurveySpec, data_path: &str, bootstrap: usize) -> String {
    let mut s = String::new();
    writeln!(
        s,
        "# Generated: synthetic survey.\n[pipeline]\nid = \"survey_bench\"\n\n[rci]\nk = 0.5\nk_deprivation = 0.3333333333333333\nbootstrap = {bootstrap}\nseed = 5\n\n[rci.source]\npath = \"{data_path}\"\nterritory = \"territory\"\nweight = \"weight\"\nsubgroups = [\"sex\"]\nrespondent_id = \"id\"\n"
    )
    .expect("string");
    for j in 0..spec.items {
        writeln!(
            s,
            "[[rci.item]]\nid = \"q{:02}\"\ncomponent = \"{}\"\nachieved = {{ at_least = 2 }}\nvalid = {{ min = 0, max = 4 }}\nmissing = [9]\n",
            j + 1,
            RCI_COMPONENTS[j % RCI_COMPONENTS.len()]
        )
        .expect("string");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_shaped() {
        let spec = SynthSpec {
            territories: 7,
            groups: 3,
            years: 2,
            first_year: 2020,
            indicators: 14,
            missing: 0.1,
            seed: 9,
            full_precision: false,
        };
        let mut a = Vec::new();
        let mut b = Vec::new();
        write_csv(&spec, &mut a).unwrap();
        write_csv(&spec, &mut b).unwrap();
        assert_eq!(a, b);
        let text = String::from_utf8(a).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + 7 * 2);
        assert!(lines[0].ends_with("green_space,life_expectancy_2,infant_mortality_2"));
        assert!(lines.iter().all(|l| l.split(',').count() == 4 + 14));
    }

    #[test]
    fn uniform_stays_in_unit_interval() {
        let mut r = Rng::new(1);
        assert!(
            (0..10_000)
                .map(|_| r.uniform())
                .all(|u| (0.0..1.0).contains(&u))
        );
    }
}
