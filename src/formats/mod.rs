//! The publishers' formats, parsed into one shape: a [`Cube`], one row per observation with
//! its dimension codes, value and flag as published. Pure: bytes in, cube out, no I/O;
//! used by [`crate::fetch`] to check a response before it is cached, and by
//! [`crate::load`] to map the cube onto a pipeline's territories, years and indicators.
//!
//! - [`jsonstat`]: JSON-stat 2.0 datasets (Eurostat's Statistics API and the many national
//!   offices that publish it): `value` and `status` dense or sparse, `category.index` as
//!   array, object or absent.
//! - [`eurostat_tsv`]: Eurostat's TSV (bulk `.tsv.gz` and `format=TSV`): the
//!   `dim1,dim2,geo\TIME_PERIOD` header, cells like `12.3 p`, `: c`, `:C`.
//! - [`sdmx_csv`]: SDMX-CSV 1.0 and 2.x (OECD, Eurostat, INSEE, ECB), header-driven.
//! - [`worldbank`]: one page of the World Bank API v2 JSON (its errors come with HTTP 200).
//!
//! Flags are kept as published; [`Flag`] reads them (confidential and missing cells carry
//! no value; the others travel with the value).

pub mod eurostat_tsv;
pub mod jsonstat;
pub mod sdmx_csv;
pub mod worldbank;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{BufRead, BufReader};

/// A statistical table as published: one row per observation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cube {
    /// One per dimension, in the publisher's order (e.g. freq, unit, geo, time).
    pub dimensions: Vec<Dimension>,
    /// For each dimension (same order), the position in its `codes` of each row's code.
    pub keys: Vec<Vec<u32>>,
    /// The value of each row; None when not published (missing or confidential).
    pub values: Vec<Option<f64>>,
    /// The flag of each row as published (`p`, `e`, `bu`, `|C`, `c`, …); None when none.
    pub flags: Vec<Option<String>>,
    /// Text formats: the physical line (1-based) each row comes from, for messages.
    pub lines: Option<Vec<u32>>,
}

/// One dimension of a cube and its categories.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dimension {
    /// As published (`geo`, `TIME_PERIOD`, `REF_AREA`).
    pub id: String,
    /// Category codes, each once.
    pub codes: Vec<String>,
    /// Category labels by code, when the format has them (JSON-stat, World Bank).
    pub labels: BTreeMap<String, String>,
    /// JSON-stat roles (`geo`, `time`, `metric`) this dimension has, when declared.
    pub roles: BTreeSet<String>,
}

/// Rows kept while parsing: dimension id → the codes wanted (matched case-insensitively,
/// as Eurostat does). Dimensions not named are not filtered. Filtering while parsing keeps
/// a large bulk file from ever existing whole in memory.
pub type Filters = BTreeMap<String, BTreeSet<String>>;

/// Why a response cannot be read: a message in the publisher's terms, and where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{message}", line.map_or(String::new(), |l| format!("line {l}: ")))]
pub struct FormatError {
    /// The physical line (1-based) in text formats, when known.
    pub line: Option<usize>,
    pub message: String,
}

impl FormatError {
    pub fn new(message: impl Into<String>) -> Self {
        FormatError {
            line: None,
            message: message.into(),
        }
    }

    pub fn at(line: usize, message: impl Into<String>) -> Self {
        FormatError {
            line: Some(line),
            message: message.into(),
        }
    }
}

/// A published flag, read. Eurostat writes the observation flags as letters (`bu`), and
/// since 2025 the confidentiality flag after a bar (`|C`, `p|C`); older files use `c`.
/// SDMX-CSV carries OBS_STATUS and CONF_STATUS apart; they are joined as `obs|conf` first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Flag {
    /// The observation flags, one letter each, as published (`b`, `e`, `p`, `u`, …).
    pub observation: String,
    /// Confidential (`c`, `C`, `N`, `P` confidentiality): the value is not used.
    pub confidential: bool,
}

impl Flag {
    /// Reads a flag as published; `:` (not available) is no flag (the value is missing),
    /// and neither is SDMX's `A` (OBS_STATUS "normal value", which the OECD writes on
    /// every observation).
    pub fn parse(text: &str) -> Flag {
        let text = text.trim();
        let (obs, conf) = match text.split_once('|') {
            Some((o, c)) => (o, Some(c.trim())),
            None => (text, None),
        };
        let mut observation = String::new();
        let mut confidential = matches!(conf, Some(c) if !c.is_empty() && c != "F");
        for ch in obs
            .chars()
            .filter(|c| !c.is_whitespace() && *c != ':' && *c != 'A')
        {
            if ch == 'c' && conf.is_none() {
                // The legacy lower-case confidentiality flag.
                confidential = true;
            } else {
                observation.push(ch);
            }
        }
        Flag {
            observation,
            confidential,
        }
    }
}

impl Cube {
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The position of a dimension by id (case-insensitive).
    pub fn dimension(&self, id: &str) -> Option<usize> {
        self.dimensions
            .iter()
            .position(|d| d.id.eq_ignore_ascii_case(id))
    }

    /// The code of dimension `d` on row `row`.
    pub fn code(&self, d: usize, row: usize) -> &str {
        &self.dimensions[d].codes[self.keys[d][row] as usize]
    }
}

impl Cube {
    /// Appends `other`'s rows (World Bank pages, split requests). Both cubes must have the
    /// same dimension ids in the same order; `other`'s codes are remapped into this cube's
    /// categories (new ones added at the end), labels and roles merged. Lines only mean
    /// something when every row has one, so they are dropped if either side lacks them.
    /// An empty cube with no dimensions (`Cube::default()`) takes `other` whole, so pages
    /// can be folded into a default accumulator.
    pub fn append(&mut self, other: Cube) -> Result<(), FormatError> {
        if self.dimensions.is_empty() && self.values.is_empty() {
            *self = other;
            return Ok(());
        }
        let ids = |c: &Cube| {
            c.dimensions
                .iter()
                .map(|d| d.id.clone())
                .collect::<Vec<_>>()
        };
        if ids(self) != ids(&other) {
            return Err(FormatError::new(format!(
                "cannot join two tables with different dimensions: [{}] and [{}]",
                ids(self).join(", "),
                ids(&other).join(", ")
            )));
        }
        // Everything is checked before anything changes, so that a refused page leaves
        // this cube as it was.
        if self.keys.len() != self.dimensions.len() || other.keys.len() != other.dimensions.len() {
            return Err(FormatError::new(
                "cannot join: a table has keys for a different number of dimensions",
            ));
        }
        for (d, (theirs, their_keys)) in other.dimensions.iter().zip(&other.keys).enumerate() {
            if their_keys.len() != other.values.len() {
                return Err(FormatError::new(format!(
                    "dimension {}: {} keys for {} rows",
                    theirs.id,
                    their_keys.len(),
                    other.values.len()
                )));
            }
            if let Some(k) = their_keys
                .iter()
                .find(|&&k| k as usize >= theirs.codes.len())
            {
                return Err(FormatError::new(format!(
                    "dimension {}: a row points to category {k}, which does not exist",
                    theirs.id
                )));
            }
            if self.dimensions[d].codes.len() + theirs.codes.len() > u32::MAX as usize {
                return Err(FormatError::new(format!(
                    "dimension {}: more than 4 billion distinct codes",
                    theirs.id
                )));
            }
        }
        if other.flags.len() != other.values.len() {
            return Err(FormatError::new(
                "the table to join has a flag count unlike its rows",
            ));
        }
        let Cube {
            dimensions,
            keys,
            values,
            flags,
            lines,
        } = other;
        for (d, (theirs, their_keys)) in dimensions.into_iter().zip(keys).enumerate() {
            let ours = &mut self.dimensions[d];
            let mut interner = Interner::from_codes(std::mem::take(&mut ours.codes))?;
            let remap = theirs
                .codes
                .iter()
                .map(|code| interner.intern(code))
                .collect::<Result<Vec<u32>, _>>()?;
            ours.codes = interner.into_codes();
            for (code, label) in theirs.labels {
                ours.labels.entry(code).or_insert(label);
            }
            ours.roles.extend(theirs.roles);
            // In bounds: checked above.
            self.keys[d].extend(their_keys.into_iter().map(|k| remap[k as usize]));
        }
        self.lines = match (self.lines.take(), lines) {
            (Some(mut a), Some(b)) => {
                a.extend(b);
                Some(a)
            }
            _ => None,
        };
        self.values.extend(values);
        self.flags.extend(flags);
        Ok(())
    }
}

/// Codes interned per dimension: each distinct code stored once, rows keep its position.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    index: HashMap<String, u32>,
    codes: Vec<String>,
}

impl Interner {
    pub(crate) fn from_codes(codes: Vec<String>) -> Result<Self, FormatError> {
        let mut interner = Interner::default();
        for code in codes {
            interner.intern_owned(code)?;
        }
        Ok(interner)
    }

    /// The position of `code`, added if new.
    pub(crate) fn intern(&mut self, code: &str) -> Result<u32, FormatError> {
        match self.index.get(code) {
            Some(&i) => Ok(i),
            None => self.intern_owned(code.to_owned()),
        }
    }

    fn intern_owned(&mut self, code: String) -> Result<u32, FormatError> {
        if let Some(&i) = self.index.get(&code) {
            return Ok(i);
        }
        let i = u32::try_from(self.codes.len())
            .map_err(|_| FormatError::new("more than 4 billion distinct codes in one dimension"))?;
        self.index.insert(code.clone(), i);
        self.codes.push(code);
        Ok(i)
    }

    pub(crate) fn len(&self) -> usize {
        self.codes.len()
    }

    pub(crate) fn into_codes(self) -> Vec<String> {
        self.codes
    }
}

/// [`Filters`] resolved against one file's dimension ids, asked once per code while
/// parsing. Codes are compared lower-cased (Eurostat matches filters case-insensitively).
#[derive(Debug)]
pub(crate) struct RowFilter {
    wanted: Vec<Option<HashSet<String>>>,
    scratch: String,
}

impl RowFilter {
    /// A filter naming a dimension the table does not have is not applied and not an
    /// error: a parse failure would make the fetcher treat a good response as a bad one,
    /// and the loader reports such a filter itself, with the closest dimension id.
    pub(crate) fn new<S: AsRef<str>>(filters: &Filters, ids: &[S]) -> Self {
        let wanted = ids
            .iter()
            .map(|id| {
                let id = id.as_ref();
                let sets = filters
                    .iter()
                    .filter(|(name, _)| name.eq_ignore_ascii_case(id))
                    .collect::<Vec<_>>();
                if sets.is_empty() {
                    return None;
                }
                // Several filter entries for one dimension (`geo` and `GEO`): a row must
                // satisfy each.
                let mut set: Option<HashSet<String>> = None;
                for (_, codes) in sets {
                    let these = codes.iter().map(|c| fold(c)).collect::<HashSet<_>>();
                    set = Some(match set {
                        None => these,
                        Some(prev) => prev.intersection(&these).cloned().collect(),
                    });
                }
                set
            })
            .collect();
        RowFilter {
            wanted,
            scratch: String::new(),
        }
    }

    /// Whether rows with `code` in dimension `d` are kept.
    pub(crate) fn wants(&mut self, d: usize, code: &str) -> bool {
        match self.wanted.get(d) {
            Some(Some(set)) => {
                self.scratch.clear();
                self.scratch
                    .extend(code.chars().flat_map(char::to_lowercase));
                set.contains(self.scratch.as_str())
            }
            _ => true,
        }
    }
}

fn fold(code: &str) -> String {
    code.chars().flat_map(char::to_lowercase).collect()
}

/// A number as the text formats write it; None unless it is finite, so that `inf` or
/// `NaN` never reach a computation as if they were published values.
pub(crate) fn parse_number(text: &str) -> Option<f64> {
    let bytes = text.as_bytes();
    // f64::from_str also takes `inf`, `infinity`, `nan`; a published number starts with
    // a digit, a sign or a point.
    match bytes.first() {
        Some(b'0'..=b'9' | b'-' | b'+' | b'.') => {}
        _ => return None,
    }
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Bulk files come gzipped (`.tsv.gz`, `compressed=true`); they are recognised by their
/// magic bytes rather than by a name or a header the caller may not have.
pub(crate) fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// The text of `bytes`, decompressed on the fly when gzipped, so that a bulk file is
/// never held decompressed in memory.
pub(crate) fn text_reader(bytes: &[u8]) -> Box<dyn BufRead + '_> {
    if is_gzip(bytes) {
        Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::read::MultiGzDecoder::new(bytes),
        ))
    } else {
        Box::new(bytes)
    }
}

/// A read error from [`text_reader`]: with plain bytes reading cannot fail, so it is the
/// gzip stream. `line` is the last line read whole.
pub(crate) fn gzip_error(error: &std::io::Error, line: usize) -> FormatError {
    FormatError::new(format!(
        "the gzip stream is truncated or corrupt after line {line} of the decompressed \
         text ({error}); the download was probably cut short: fetch it again"
    ))
}

/// Reads the next physical line into `buf` without its LF or CRLF; false at the end.
pub(crate) fn read_line(reader: &mut dyn BufRead, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    buf.clear();
    if reader.read_until(b'\n', buf)? == 0 {
        return Ok(false);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(true)
}

pub(crate) fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// The first characters of a body, for messages about a response that is not what was
/// expected (an HTML error page, an XML fault).
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(120)]);
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if bytes.len() > 120 {
        format!("{one_line}…")
    } else {
        one_line
    }
}

/// Helpers shared by the parsers' tests.
#[cfg(test)]
pub(crate) mod test_support {
    use super::{Cube, Filters};

    /// Filters from `(dimension, [codes])` pairs.
    pub(crate) fn filters(pairs: &[(&str, &[&str])]) -> Filters {
        pairs
            .iter()
            .map(|(d, codes)| {
                (
                    (*d).to_owned(),
                    codes.iter().map(|c| (*c).to_owned()).collect(),
                )
            })
            .collect()
    }

    /// The codes of row `row`, one per dimension.
    pub(crate) fn codes(cube: &Cube, row: usize) -> Vec<&str> {
        (0..cube.dimensions.len())
            .map(|d| cube.code(d, row))
            .collect()
    }

    /// The row whose codes are `wanted` (exactly one), as (value, flag).
    pub(crate) fn cell<'a>(cube: &'a Cube, wanted: &[&str]) -> (Option<f64>, Option<&'a str>) {
        let rows = (0..cube.len())
            .filter(|&r| codes(cube, r) == wanted)
            .collect::<Vec<_>>();
        assert_eq!(rows.len(), 1, "rows with codes {wanted:?}: {rows:?}");
        (cube.values[rows[0]], cube.flags[rows[0]].as_deref())
    }

    /// Whether any row has the codes `wanted`.
    pub(crate) fn has(cube: &Cube, wanted: &[&str]) -> bool {
        (0..cube.len()).any(|r| codes(cube, r) == wanted)
    }

    /// A captured response (give the path with `concat!(env!("CARGO_MANIFEST_DIR"), …)`).
    pub(crate) fn sample(path: &str) -> Vec<u8> {
        std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// A parser's cube, which must parse and be well shaped.
    pub(crate) fn parsed<E: std::fmt::Display>(result: Result<Cube, E>) -> Cube {
        let cube = result.unwrap_or_else(|e| panic!("{e}"));
        check_shape(&cube);
        cube
    }

    /// Every row has one key per dimension, pointing at an existing code.
    pub(crate) fn check_shape(cube: &Cube) {
        assert_eq!(cube.keys.len(), cube.dimensions.len());
        assert_eq!(cube.flags.len(), cube.values.len());
        for (d, keys) in cube.keys.iter().enumerate() {
            assert_eq!(keys.len(), cube.len(), "dimension {d}");
            let n = cube.dimensions[d].codes.len() as u32;
            assert!(keys.iter().all(|&k| k < n), "dimension {d}");
        }
        if let Some(lines) = &cube.lines {
            assert_eq!(lines.len(), cube.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{cell, check_shape, filters};
    use super::{Cube, Dimension, RowFilter, parse_number};

    #[test]
    fn flags_as_published() {
        use super::Flag;
        let f = |t: &str| {
            let f = Flag::parse(t);
            (f.observation, f.confidential)
        };
        assert_eq!(f("p"), ("p".into(), false));
        assert_eq!(f("bu"), ("bu".into(), false));
        assert_eq!(f(": "), ("".into(), false));
        assert_eq!(f(": c"), ("".into(), true));
        assert_eq!(f("bc"), ("b".into(), true));
        assert_eq!(f("|C"), ("".into(), true));
        assert_eq!(f("p|C"), ("p".into(), true));
        assert_eq!(f("e|F"), ("e".into(), false));
        // SDMX's normal value.
        assert_eq!(f("A"), ("".into(), false));
    }

    fn cube(ids: &[&str], rows: &[(&[&str], f64)], lines: bool) -> Cube {
        let mut dims = ids
            .iter()
            .map(|id| Dimension {
                id: (*id).to_owned(),
                ..Dimension::default()
            })
            .collect::<Vec<_>>();
        let mut keys = vec![Vec::new(); ids.len()];
        for (codes, _) in rows {
            for (d, code) in codes.iter().enumerate() {
                let at = match dims[d].codes.iter().position(|c| c == code) {
                    Some(i) => i,
                    None => {
                        dims[d].codes.push((*code).to_owned());
                        dims[d].codes.len() - 1
                    }
                };
                keys[d].push(at as u32);
            }
        }
        Cube {
            dimensions: dims,
            keys,
            values: rows.iter().map(|(_, v)| Some(*v)).collect(),
            flags: vec![None; rows.len()],
            lines: lines.then(|| (1..=rows.len() as u32).collect()),
        }
    }

    #[test]
    fn append_remaps_codes_and_merges() {
        let mut a = cube(
            &["geo", "time"],
            &[(&["FR", "2020"], 1.0), (&["DE", "2020"], 2.0)],
            true,
        );
        a.dimensions[0].labels.insert("FR".into(), "France".into());
        let mut b = cube(
            &["geo", "time"],
            &[(&["IT", "2021"], 3.0), (&["FR", "2021"], 4.0)],
            true,
        );
        b.dimensions[0]
            .labels
            .insert("FR".into(), "Frankreich".into());
        b.dimensions[0].labels.insert("IT".into(), "Italy".into());
        b.dimensions[1].roles.insert("time".into());
        a.append(b).unwrap();
        check_shape(&a);
        assert_eq!(a.dimensions[0].codes, ["FR", "DE", "IT"]);
        assert_eq!(a.dimensions[1].codes, ["2020", "2021"]);
        assert_eq!(cell(&a, &["FR", "2021"]), (Some(4.0), None));
        assert_eq!(cell(&a, &["IT", "2021"]), (Some(3.0), None));
        // Existing labels win; new ones are added; roles are united.
        assert_eq!(a.dimensions[0].labels["FR"], "France");
        assert_eq!(a.dimensions[0].labels["IT"], "Italy");
        assert!(a.dimensions[1].roles.contains("time"));
        assert_eq!(a.lines.as_deref(), Some(&[1, 2, 1, 2][..]));
        // One side without lines: none.
        a.append(cube(&["geo", "time"], &[(&["ES", "2020"], 5.0)], false))
            .unwrap();
        assert_eq!(a.len(), 5);
        assert!(a.lines.is_none());
    }

    #[test]
    fn append_into_default_and_mismatches() {
        let mut all = Cube::default();
        all.append(cube(&["geo"], &[(&["FR"], 1.0)], false))
            .unwrap();
        all.append(cube(&["geo"], &[(&["DE"], 2.0)], false))
            .unwrap();
        assert_eq!(all.dimensions[0].codes, ["FR", "DE"]);
        let e = all
            .append(cube(&["time"], &[(&["2020"], 1.0)], false))
            .unwrap_err();
        assert!(e.message.contains("[geo] and [time]"), "{e}");
        let e = all
            .append(cube(&["geo", "time"], &[(&["FR", "2020"], 1.0)], false))
            .unwrap_err();
        assert!(e.message.contains("different dimensions"), "{e}");
        // A key pointing past its codes is refused, not a panic.
        let mut broken = cube(&["geo"], &[(&["IT"], 1.0)], false);
        broken.keys[0][0] = 7;
        assert!(all.append(broken).is_err());
        assert_eq!(all.len(), 2);
        assert_eq!(all.dimensions[0].codes, ["FR", "DE"]);
        check_shape(&all);
    }

    #[test]
    fn row_filter() {
        let f = filters(&[("GEO", &["fr10", "De"])]);
        let mut rf = RowFilter::new(&f, &["unit", "geo"]);
        assert!(rf.wants(0, "anything"));
        assert!(rf.wants(1, "FR10") && rf.wants(1, "de") && !rf.wants(1, "FR1"));
        // A dimension the table lacks: nothing to filter on (the loader reports it).
        let mut rf = RowFilter::new(&f, &["unit", "country"]);
        assert!(rf.wants(0, "x") && rf.wants(1, "y"));
        // Two entries for one dimension: both must hold.
        let f = filters(&[("geo", &["FR", "DE"]), ("GEO", &["de", "IT"])]);
        let mut rf = RowFilter::new(&f, &["geo"]);
        assert!(rf.wants(0, "DE") && !rf.wants(0, "FR") && !rf.wants(0, "IT"));
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number("12.5"), Some(12.5));
        assert_eq!(parse_number("-3e2"), Some(-300.0));
        assert_eq!(parse_number(".5"), Some(0.5));
        for bad in [
            "", "inf", "-inf", "NaN", "infinity", "1e999", "12,5", "KG", "1 2",
        ] {
            assert_eq!(parse_number(bad), None, "{bad}");
        }
    }
}

/// Whatever the bytes, the parsers answer with a cube or an error, never a panic.
#[cfg(test)]
mod robustness {
    use proptest::prelude::*;

    use super::test_support::filters;
    use super::{Filters, eurostat_tsv, jsonstat, sdmx_csv, worldbank};

    const SEEDS: [&str; 5] = [
        r#"{"version":"2.0","class":"dataset","id":["a","b"],"size":[2,2],
           "dimension":{"a":{"category":{"index":{"x":0,"y":1}}},"b":{"category":{"index":["1","2"]}}},
           "value":{"0":1.5,"3":2},"status":{"1":"|C","3":"e"}}"#,
        r#"{"version":"2.0","class":"dataset","id":["a"],"size":[3],"status":["p"],
           "dimension":{"a":{"category":{"label":{"only":"x"}}}},"value":[1,null,"2"]}"#,
        "unit,geo\\time\t2015 \t2014 \nTHS,AT\t26.3 \t: c\nTHS,BE\t:C\t4.4 bu\n",
        "STRUCTURE[|];STRUCTURE_ID;ACTION;A: a;OBS_VALUE;OBS_STATUS;CONF_STATUS\n\
         dataflow;X;I;x: X;1,5;A;C\ndataflow;X;D;y;\"2\";;\n",
        r#"[{"page":"1","pages":1,"per_page":2,"total":2},[{"indicator":{"id":"I","value":"i"},
           "country":{"id":"FR","value":"France"},"countryiso3code":"FRA","date":"2020",
           "value":1.5,"obs_status":""}]]"#,
    ];

    fn all(bytes: &[u8], f: &Filters) {
        let _ = jsonstat::parse(bytes, f);
        let _ = eurostat_tsv::parse(bytes, f);
        let _ = sdmx_csv::parse(bytes, f);
        let _ = worldbank::parse_page(bytes, f);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            all(&bytes, &Filters::new());
        }

        #[test]
        fn mutated_samples(
            seed in 0..SEEDS.len(),
            gzipped in any::<bool>(),
            cut in any::<prop::sample::Index>(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            filtered in any::<bool>(),
        ) {
            let mut bytes = SEEDS[seed].as_bytes().to_vec();
            if gzipped {
                use std::io::Write;
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(&bytes).unwrap();
                bytes = e.finish().unwrap();
            }
            for (at, byte) in edits {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            let f = if filtered {
                filters(&[("a", &["x"]), ("geo", &["AT"]), ("country", &["fra"])])
            } else {
                Filters::new()
            };
            all(&bytes, &f);
        }
    }
}
