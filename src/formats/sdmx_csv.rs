//! SDMX-CSV 1.0 (first column `DATAFLOW`; OECD, Eurostat, ECB) and 2.x (first columns
//! `STRUCTURE`, `STRUCTURE_ID`, then optional `STRUCTURE_NAME`, `ACTION`, `SERIES_KEY`,
//! `OBS_KEY`).
//!
//! Header-driven, never positional: the dimensions are the columns before `OBS_VALUE`,
//! skipping the structure and bookkeeping columns (`LAST UPDATE`, `STRUCTURE_NAME`,
//! `ACTION`, `SERIES_KEY`, `OBS_KEY`); the flag comes from `OBS_STATUS` (or Eurostat's
//! `OBS_FLAG`), joined with `CONF_STATUS` as `obs|conf` when that cell is not empty.
//!
//! Accepted: plain or gzipped bytes, a UTF-8 BOM, LF or CRLF, RFC 4180 quoting; `,` or
//! the localised `;` separator (sniffed from the header; with `;` the decimal mark is
//! `,`); `labels=both` (`ID: Name` in header and cells: the ID is kept, the name becomes
//! the category's label); a sub-field separator declared in the first header cell
//! (`STRUCTURE[|]`). Rows with ACTION `D` (delete) are not observations and are skipped.
//! An empty `OBS_VALUE` (or `NaN`, SDMX's missing value) is missing: a row only if it has
//! a flag. A value that is not a number is an error naming the line and column.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{BufRead, Read};
use std::rc::Rc;

use super::{Cube, Dimension, Filters, FormatError, Interner, RowFilter, read_line, text_reader};

/// Columns that are neither dimensions nor the observation, wherever they appear.
const NOT_DIMENSIONS: [&str; 8] = [
    "DATAFLOW",
    "STRUCTURE",
    "STRUCTURE_ID",
    "STRUCTURE_NAME",
    "ACTION",
    "SERIES_KEY",
    "OBS_KEY",
    "LAST UPDATE",
];

/// Parses an SDMX-CSV 1.0 or 2.x message, keeping the rows `filters` wants.
pub fn parse(bytes: &[u8], filters: &Filters) -> Result<Cube, FormatError> {
    let mut reader = text_reader(bytes);
    // The header line is read first to sniff the separator, then handed back to the CSV
    // reader through `Lines`, which also keeps the physical line numbers.
    let mut first = Vec::new();
    let more = read_line(&mut *reader, &mut first).map_err(|e| super::gzip_error(&e, 0))?;
    if !more {
        return Err(FormatError::new("the file is empty: no header line"));
    }
    let mut header_line = super::strip_bom(&first).to_vec();
    let separator = sniff(&header_line);
    header_line.push(b'\n');
    let seen = Rc::new(RefCell::new(Seen {
        lines: 1,
        blanks: VecDeque::new(),
    }));
    let lines_in: Box<dyn Read + '_> = Box::new(Lines {
        inner: reader,
        line: header_line,
        pos: 0,
        seen: Rc::clone(&seen),
    });
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(separator)
        .has_headers(false)
        .flexible(true)
        .from_reader(lines_in);

    let mut record = csv::StringRecord::new();
    if !read(&mut csv, &mut record, &seen)? {
        return Err(FormatError::new("the file is empty: no header line"));
    }
    let layout = Layout::new(&record)?;
    let mut filter = RowFilter::new(filters, &layout.dimension_names());

    let mut interners = layout
        .dimensions
        .iter()
        .map(|_| Interner::default())
        .collect::<Vec<_>>();
    let mut dimensions = layout
        .dimensions
        .iter()
        .map(|(_, id)| Dimension {
            id: id.clone(),
            ..Dimension::default()
        })
        .collect::<Vec<_>>();
    let mut keys: Vec<Vec<u32>> = vec![Vec::new(); dimensions.len()];
    let mut values = Vec::new();
    let mut flags = Vec::new();
    let mut lines = Vec::new();
    let strip = |cell: &str| -> String {
        let cell = cell.trim();
        if layout.labelled {
            id_of(cell).to_owned()
        } else {
            cell.to_owned()
        }
    };

    while read(&mut csv, &mut record, &seen)? {
        let line = physical_line(&record, &seen);
        if record.len() == 1 && record[0].trim().is_empty() {
            continue;
        }
        if record.len() != layout.width {
            return Err(FormatError::at(
                line,
                format!(
                    "{} fields where the header has {} columns",
                    record.len(),
                    layout.width
                ),
            ));
        }
        if let Some(a) = layout.action
            && strip(&record[a]).eq_ignore_ascii_case("D")
        {
            continue;
        }
        let codes = layout
            .dimensions
            .iter()
            .map(|&(c, _)| {
                let cell = record[c].trim();
                if layout.labelled { id_of(cell) } else { cell }
            })
            .collect::<Vec<_>>();
        if !codes.iter().enumerate().all(|(d, c)| filter.wants(d, c)) {
            continue;
        }

        let raw = record[layout.value].trim();
        let value = if raw.is_empty() || raw.eq_ignore_ascii_case("NaN") {
            None
        } else {
            let text = if separator == b';' {
                std::borrow::Cow::Owned(raw.replace(',', "."))
            } else {
                std::borrow::Cow::Borrowed(raw)
            };
            Some(super::parse_number(&text).ok_or_else(|| {
                FormatError::at(
                    line,
                    format!(
                        "column {}: '{raw}' is not a number",
                        layout.names[layout.value]
                    ),
                )
            })?)
        };
        let observation = layout.status.map(|c| strip(&record[c])).unwrap_or_default();
        let confidentiality = layout.conf.map(|c| strip(&record[c])).unwrap_or_default();
        let flag = match (observation.is_empty(), confidentiality.is_empty()) {
            (true, true) => None,
            (false, true) => Some(observation),
            _ => Some(format!("{observation}|{confidentiality}")),
        };
        if value.is_none() && flag.is_none() {
            continue;
        }
        for (d, code) in codes.iter().enumerate() {
            let before = interners[d].len();
            let k = interners[d].intern(code)?;
            if interners[d].len() > before && layout.labelled {
                let cell = record[layout.dimensions[d].0].trim();
                if let Some((_, name)) = cell.split_once(": ") {
                    dimensions[d]
                        .labels
                        .insert((*code).to_owned(), name.trim().to_owned());
                }
            }
            keys[d].push(k);
        }
        values.push(value);
        flags.push(flag);
        lines.push(
            u32::try_from(line).map_err(|_| FormatError::at(line, "more than 4 billion lines"))?,
        );
    }

    for (dimension, interner) in dimensions.iter_mut().zip(interners) {
        dimension.codes = interner.into_codes();
    }
    Ok(Cube {
        dimensions,
        keys,
        values,
        flags,
        lines: Some(lines),
    })
}

/// `;` only when the header has more of them than commas: SDMX's default is `,`, and a
/// `labels=both` name may itself contain either.
fn sniff(header: &[u8]) -> u8 {
    let count = |b: u8| header.iter().filter(|&&c| c == b).count();
    if count(b';') > count(b',') {
        b';'
    } else {
        b','
    }
}

/// The ID of a `labels=both` cell, `ID: Name`.
fn id_of(cell: &str) -> &str {
    cell.split_once(": ").map_or(cell, |(id, _)| id).trim()
}

/// What [`Lines`] has seen, for the line numbers of the records.
#[derive(Debug)]
struct Seen {
    /// Physical lines read so far.
    lines: usize,
    /// Empty lines not yet passed by the records: the CSV reader skips them.
    blanks: VecDeque<usize>,
}

/// Feeds the CSV reader the physical lines, LF-terminated. The csv crate miscounts lines
/// after a CRLF (the OECD's files are CRLF) and gives an empty line's number to the record
/// that follows it, so its line numbers are only trusted on LF text and corrected for
/// the empty lines recorded here.
struct Lines<'a> {
    inner: Box<dyn BufRead + 'a>,
    line: Vec<u8>,
    pos: usize,
    seen: Rc<RefCell<Seen>>,
}

impl Read for Lines<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.line.len() {
            if !read_line(&mut *self.inner, &mut self.line)? {
                return Ok(0);
            }
            let mut seen = self.seen.borrow_mut();
            seen.lines += 1;
            if self.line.is_empty() {
                let n = seen.lines;
                seen.blanks.push_back(n);
            }
            self.line.push(b'\n');
            self.pos = 0;
        }
        let n = out.len().min(self.line.len() - self.pos);
        out[..n].copy_from_slice(&self.line[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The physical line a record starts on.
fn physical_line(record: &csv::StringRecord, seen: &RefCell<Seen>) -> usize {
    corrected(record.position().map_or(0, |p| p.line() as usize), seen)
}

/// A line number from the csv crate, moved past the empty lines it skipped.
fn corrected(mut line: usize, seen: &RefCell<Seen>) -> usize {
    let blanks = &mut seen.borrow_mut().blanks;
    while let Some(&blank) = blanks.front() {
        if blank > line {
            break;
        }
        if blank == line {
            line += 1;
        }
        blanks.pop_front();
    }
    line
}

fn read(
    csv: &mut csv::Reader<Box<dyn Read + '_>>,
    record: &mut csv::StringRecord,
    seen: &RefCell<Seen>,
) -> Result<bool, FormatError> {
    csv.read_record(record).map_err(|e| {
        let line = e.position().map(|p| corrected(p.line() as usize, seen));
        match e.kind() {
            csv::ErrorKind::Io(io) => super::gzip_error(io, seen.borrow().lines),
            csv::ErrorKind::Utf8 { .. } => FormatError {
                line,
                message: "the line is not UTF-8 text".into(),
            },
            _ => FormatError {
                line,
                message: format!("unreadable CSV: {e}"),
            },
        }
    })
}

/// Where things are, from the header.
#[derive(Debug)]
struct Layout {
    names: Vec<String>,
    width: usize,
    /// Column and id of each dimension, in column order.
    dimensions: Vec<(usize, String)>,
    value: usize,
    status: Option<usize>,
    conf: Option<usize>,
    action: Option<usize>,
    /// `labels=both`: cells read `ID: Name`.
    labelled: bool,
}

impl Layout {
    fn new(header: &csv::StringRecord) -> Result<Layout, FormatError> {
        let labelled = header.iter().any(|h| h.contains(": "));
        let names = header
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let mut name = id_of(h.trim());
                if i == 0 {
                    // `STRUCTURE[|]`: the declared sub-field separator is not part of the
                    // name (we read no multi-valued attribute, so it is not needed).
                    if let Some((n, _)) = name.split_once('[') {
                        name = n.trim();
                    }
                }
                name.to_owned()
            })
            .collect::<Vec<_>>();
        let find = |wanted: &str| names.iter().position(|n| n.eq_ignore_ascii_case(wanted));
        let first = names.first().map(String::as_str).unwrap_or_default();
        if !first.eq_ignore_ascii_case("DATAFLOW") && !first.eq_ignore_ascii_case("STRUCTURE") {
            return Err(FormatError::at(
                1,
                format!(
                    "not SDMX-CSV: the first column is '{}'; expected DATAFLOW (SDMX-CSV \
                     1.0) or STRUCTURE (2.x)",
                    super::excerpt(first.as_bytes())
                ),
            ));
        }
        let value = find("OBS_VALUE").ok_or_else(|| {
            FormatError::at(
                1,
                format!(
                    "no OBS_VALUE column (columns: {}); a message with several measures \
                     or without observations is not supported",
                    names.join(", ")
                ),
            )
        })?;
        let dimensions = names[..value]
            .iter()
            .enumerate()
            .filter(|(_, n)| !NOT_DIMENSIONS.iter().any(|s| s.eq_ignore_ascii_case(n)))
            .map(|(i, n)| (i, n.clone()))
            .collect::<Vec<_>>();
        for (k, (_, id)) in dimensions.iter().enumerate() {
            if id.is_empty() {
                return Err(FormatError::at(1, "a dimension column has no name"));
            }
            if dimensions[..k].iter().any(|(_, other)| other == id) {
                return Err(FormatError::at(1, format!("the column {id} appears twice")));
            }
        }
        Ok(Layout {
            width: names.len(),
            dimensions,
            value,
            status: find("OBS_STATUS").or_else(|| find("OBS_FLAG")),
            conf: find("CONF_STATUS"),
            action: find("ACTION"),
            labelled,
            names,
        })
    }

    fn dimension_names(&self) -> Vec<&str> {
        self.dimensions.iter().map(|(_, n)| n.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::parse;
    use crate::formats::test_support::{cell, check_shape, filters, has, parsed, sample};
    use crate::formats::{Cube, Filters, Flag};

    fn ok(text: &str) -> Cube {
        parsed(parse(text.as_bytes(), &Filters::new()))
    }

    fn ids(cube: &Cube) -> Vec<&str> {
        cube.dimensions.iter().map(|d| d.id.as_str()).collect()
    }

    /// Eurostat's 1.0 variant: LAST UPDATE, lower-case dimensions, OBS_FLAG, CONF_STATUS.
    const EUROSTAT_1_0: &str = "DATAFLOW,LAST UPDATE,freq,unit,geo,TIME_PERIOD,OBS_VALUE,OBS_FLAG,CONF_STATUS\r\n\
        ESTAT:NAMA_10R_2GDP(1.0),20/02/25 23:00:00,A,EUR_HAB,FR10,2021,59800,p,\r\n\
        ESTAT:NAMA_10R_2GDP(1.0),20/02/25 23:00:00,A,EUR_HAB,FR10,2022,,,C\r\n\
        ESTAT:NAMA_10R_2GDP(1.0),20/02/25 23:00:00,A,EUR_HAB,FRB0,2021,,,\r\n\
        ESTAT:NAMA_10R_2GDP(1.0),20/02/25 23:00:00,A,EUR_HAB,FRB0,2022,\"27,5\",e,\r\n";

    #[test]
    fn sdmx_csv_1_0_with_conf_status() {
        let e = parse(EUROSTAT_1_0.as_bytes(), &Filters::new()).unwrap_err();
        // `,` separator: "27,5" is not a number here.
        assert_eq!(e.line, Some(5));
        assert!(
            e.message
                .contains("column OBS_VALUE: '27,5' is not a number"),
            "{e}"
        );
        let cube = ok(&EUROSTAT_1_0.replace("\"27,5\"", "27.5"));
        assert_eq!(ids(&cube), ["freq", "unit", "geo", "TIME_PERIOD"]);
        assert_eq!(cube.len(), 3);
        assert_eq!(
            cell(&cube, &["A", "EUR_HAB", "FR10", "2021"]),
            (Some(59800.0), Some("p"))
        );
        let (value, flag) = cell(&cube, &["A", "EUR_HAB", "FR10", "2022"]);
        assert_eq!((value, flag), (None, Some("|C")));
        assert!(Flag::parse(flag.unwrap()).confidential);
        // Empty value and no flag: no row.
        assert!(!has(&cube, &["A", "EUR_HAB", "FRB0", "2021"]));
        assert_eq!(
            cell(&cube, &["A", "EUR_HAB", "FRB0", "2022"]),
            (Some(27.5), Some("e"))
        );
        assert_eq!(cube.lines.as_ref().unwrap(), &[2, 3, 5]);
    }

    /// 2.0: ACTION, an extra column after the attributes, a quoted attribute with a comma.
    const V2: &str = "STRUCTURE,STRUCTURE_ID,ACTION,REF_AREA,TIME_PERIOD,OBS_VALUE,OBS_STATUS,CONF_STATUS,UPDATED\n\
        dataflow,ESTAT:X(1.0),I,FR,2020,1.5,A,F,2021-01-22\n\
        dataflow,ESTAT:X(1.0),D,FR,2021,,,,2021-01-22\n\
        dataflow,ESTAT:X(1.0),M,DE,2020,NaN,M,,\"a, b\"\n\
        dataflow,ESTAT:X(1.0),R,DE,2021,-3e-2,,,\n";

    #[test]
    fn sdmx_csv_2_0_actions_and_flags() {
        let cube = ok(V2);
        assert_eq!(ids(&cube), ["REF_AREA", "TIME_PERIOD"]);
        // `F` (free) is written as published; Flag reads it as not confidential.
        let (_, flag) = cell(&cube, &["FR", "2020"]);
        assert_eq!(flag, Some("A|F"));
        assert!(!Flag::parse(flag.unwrap()).confidential);
        // The delete is not an observation.
        assert!(!has(&cube, &["FR", "2021"]));
        // NaN is SDMX's missing value.
        assert_eq!(cell(&cube, &["DE", "2020"]), (None, Some("M")));
        assert_eq!(cell(&cube, &["DE", "2021"]), (Some(-0.03), None));
        let cube = parse(
            V2.as_bytes(),
            &filters(&[("ref_area", &["de"]), ("time_period", &["2021"])]),
        )
        .unwrap();
        assert_eq!(cube.len(), 1);
        assert_eq!(cube.dimensions[0].codes, ["DE"]);
    }

    /// The localised form: `;`, decimal comma, labels=both, `STRUCTURE[|]`, keys.
    const LOCALISED: &str = "STRUCTURE[|];STRUCTURE_ID;ACTION;SERIES_KEY;OBS_KEY;\
        REF_AREA: Zone de référence;TIME_PERIOD: Période;OBS_VALUE: Valeur;OBS_STATUS: Statut\n\
        dataflow;ESTAT:X(1.0): Agrégats;I;FR;FR.2020;FR: France;2020: 2020;\"1 234,5\";A: Normale\n\
        dataflow;ESTAT:X(1.0): Agrégats;I;FR;FR.2021;FR: France;2021: 2021;12,25;P: Provisoire\n\
        dataflow;ESTAT:X(1.0): Agrégats;D;DE;DE.2021;DE: Allemagne;2021: 2021;;\n";

    #[test]
    fn localised_labels_both() {
        let e = parse(LOCALISED.as_bytes(), &Filters::new()).unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(
            e.message
                .contains("column OBS_VALUE: '1 234,5' is not a number"),
            "{e}"
        );
        let cube = ok(&LOCALISED.replace("\"1 234,5\"", "1234,5"));
        assert_eq!(ids(&cube), ["REF_AREA", "TIME_PERIOD"]);
        assert_eq!(cell(&cube, &["FR", "2020"]), (Some(1234.5), Some("A")));
        assert_eq!(cell(&cube, &["FR", "2021"]), (Some(12.25), Some("P")));
        assert_eq!(cube.dimensions[0].labels["FR"], "France");
        assert_eq!(cube.len(), 2);
    }

    #[test]
    fn bom_gzip_and_errors() {
        let text = format!("\u{feff}{V2}");
        let cube = ok(&text);
        assert_eq!(ids(&cube), ["REF_AREA", "TIME_PERIOD"]);
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(text.as_bytes()).unwrap();
        let packed = encoder.finish().unwrap();
        assert_eq!(parse(&packed, &Filters::new()).unwrap(), cube);
        let e = parse(&packed[..packed.len() - 6], &Filters::new()).unwrap_err();
        assert!(
            e.message.contains("gzip stream is truncated or corrupt"),
            "{e}"
        );

        let e = parse(b"geo,TIME_PERIOD,OBS_VALUE\nFR,2020,1\n", &Filters::new()).unwrap_err();
        assert!(
            e.message
                .contains("not SDMX-CSV: the first column is 'geo'"),
            "{e}"
        );
        let e = parse(b"DATAFLOW,geo,TIME_PERIOD\nX,FR,2020\n", &Filters::new()).unwrap_err();
        assert!(
            e.message
                .contains("no OBS_VALUE column (columns: DATAFLOW, geo, TIME_PERIOD)"),
            "{e}"
        );
        let e = parse(b"DATAFLOW,geo,OBS_VALUE\nX,FR,1\nX,DE\n", &Filters::new()).unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(
            e.message
                .contains("2 fields where the header has 3 columns"),
            "{e}"
        );
        let e = parse(
            b"DATAFLOW,geo,OBS_VALUE\nX,FR,1\nX,D\xffE,2\n",
            &Filters::new(),
        )
        .unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(
            parse(b"", &Filters::new())
                .unwrap_err()
                .message
                .contains("empty")
        );
        // A header alone is an empty cube.
        assert!(ok("DATAFLOW,geo,OBS_VALUE\n").is_empty());
        // Filtered-out rows are not read: their bad number is not an error.
        let text = "DATAFLOW,geo,OBS_VALUE\nX,FR,1\nX,DE,n/a\n";
        let cube = parse(text.as_bytes(), &filters(&[("GEO", &["fr"])])).unwrap();
        assert_eq!(cube.values, [Some(1.0)]);
    }

    #[test]
    fn physical_lines_with_crlf_blank_lines_and_quoted_newlines() {
        let text = "DATAFLOW,geo,OBS_VALUE,NOTE\r\n\r\nX,FR,1,\"two\r\nlines\"\r\nX,DE,2,\r\n\r\n\r\nX,IT,x,\r\n";
        let e = parse(text.as_bytes(), &Filters::new()).unwrap_err();
        assert_eq!(e.line, Some(8), "{e}");
        let cube = parse(text.as_bytes(), &filters(&[("geo", &["FR", "DE"])])).unwrap();
        assert_eq!(cube.lines.as_ref().unwrap(), &[3, 5]);
    }

    // ---- Captured files (README.md and FORMATS.md in shared/data/official_samples).

    #[test]
    #[ignore = "needs ../shared/data"]
    fn oecd_g20_prices() {
        let cube = parse(
            &sample(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/data/official_samples/sdmx_csv/oecd_g20_prices_data.csv"
            )),
            &Filters::new(),
        )
        .unwrap();
        check_shape(&cube);
        assert_eq!(
            ids(&cube),
            [
                "REF_AREA",
                "FREQ",
                "METHODOLOGY",
                "MEASURE",
                "UNIT_MEASURE",
                "EXPENDITURE",
                "ADJUSTMENT",
                "TRANSFORMATION",
                "TIME_PERIOD"
            ]
        );
        // wc -l → 42 lines (CRLF), header + 41 years 1985–2025, all OBS_STATUS "A".
        assert_eq!(cube.len(), 41);
        assert!(cube.flags.iter().all(|f| f.as_deref() == Some("A")));
        // grep ',1988,' → "…,GY,1988,18.8,A,0,,,1" (line 5); grep ',2025,' → "…,2025,0,A,…".
        let at = |y| ["CHN", "A", "N", "CPI", "PA", "_T", "N", "GY", y];
        assert_eq!(cell(&cube, &at("1988")), (Some(18.8), Some("A")));
        assert_eq!(cell(&cube, &at("2025")), (Some(0.0), Some("A")));
        let row = (0..cube.len())
            .find(|&r| cube.code(8, r) == "1988")
            .unwrap();
        assert_eq!(cube.lines.as_ref().unwrap()[row], 5);
    }

    #[test]
    #[ignore = "needs ../shared/data"]
    fn sdmx_csv_2_0_spec_examples() {
        let cube = parse(
            &sample(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/data/official_samples/sdmx_csv/example-01.csv"
            )),
            &Filters::new(),
        )
        .unwrap();
        check_shape(&cube);
        // cat example-01.csv: DIM_1,DIM_2,DIM_3 = A,B,2014-01 → 12.4 and A,B,2014-02 → 10.8;
        // no OBS_STATUS column (its attributes are ATTR_1..3), so no flags.
        assert_eq!(ids(&cube), ["DIM_1", "DIM_2", "DIM_3"]);
        assert_eq!(cell(&cube, &["A", "B", "2014-01"]), (Some(12.4), None));
        assert_eq!(cell(&cube, &["A", "B", "2014-02"]), (Some(10.8), None));
        assert_eq!(cube.len(), 2);

        let localised = parse(
            &sample(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/data/official_samples/sdmx_csv/example-04.csv"
            )),
            &Filters::new(),
        )
        .unwrap();
        check_shape(&localised);
        // cat example-04.csv: `;`, "STRUCTURE[|]", SERIES_KEY/OBS_KEY, "DIM_1: Dimension 1",
        // cells "A: Value A", values "12,4" and "10,8": the same observations.
        assert_eq!(ids(&localised), ["DIM_1", "DIM_2", "DIM_3"]);
        assert_eq!(cell(&localised, &["A", "B", "2014-01"]), (Some(12.4), None));
        assert_eq!(cell(&localised, &["A", "B", "2014-02"]), (Some(10.8), None));
        assert_eq!(localised.dimensions[0].labels["A"], "Value A");
        assert_eq!(localised.values, cube.values);
    }
}
