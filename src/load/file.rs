//! Reading one data file (CSV or Parquet) into memory, strictly.
//!
//! CSV is parsed here with the `csv` crate rather than polars' reader, because a nightly
//! batch must refuse what polars would quietly repair: a row with a field too few is an
//! error naming its physical line (polars pads it with nulls and shifts nothing visibly),
//! duplicate header names are an error, and every data row keeps the physical line it
//! started on, so messages stay right after quoted line breaks and skipped blank lines.
//! Before parsing, the bytes are checked to come from a regular file (a FIFO would block
//! forever), gunzipped when they are gzip, and decoded from the declared encoding (French
//! exports are often Windows-1252) or checked as UTF-8, with the line of the first bad
//! byte. The SHA-256 in the manifest is of the bytes as stored.
//!
//! Columns are text, except those the caller asks as numbers (survey answers): those are
//! parsed while reading, with the one cell parser, which keeps a 10-million-row survey
//! from ever existing as text in memory.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Cursor, Read};

pub use crate::files::read_regular;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::cell::{self, CellError, NumberFormat};
use crate::config::Format;
use crate::diagnostic::{Location, Problem};
use crate::plan::FileRef;

/// At most this many bad cells are listed per column; the rest are counted.
pub const MAX_CELL_PROBLEMS: usize = 5;

/// At most this many rows with a wrong number of fields are listed; the rest are counted.
const MAX_RAGGED: usize = 5;

/// A data file read into memory: digest and the parsed table.
#[derive(Debug)]
pub struct RawFile {
    pub path: PathBuf,
    pub sha256: String,
    /// Size as stored (compressed, when gzip).
    pub bytes: u64,
    /// CSV: every column as text (empty cells null) unless asked as numbers.
    /// Parquet: as stored.
    pub df: DataFrame,
    /// CSV: the physical line (1-based) each data row starts on. None for Parquet.
    pub lines: Option<Vec<u32>>,
    pub number: NumberFormat,
    /// Bad cells of the columns parsed as numbers while reading.
    pub bad_cells: Vec<BadCell>,
}

/// A cell that did not parse as a number, found while reading.
#[derive(Debug, Clone)]
pub struct BadCell {
    pub row: usize,
    pub column: String,
    pub error: CellError,
}

/// How to read a file beyond its [`FileRef`].
#[derive(Debug, Default)]
pub struct ReadOptions<'a> {
    /// CSV columns to parse as numbers while reading (missing markers become nulls).
    pub numeric: HashSet<&'a str>,
    /// Cell texts that mean "missing" in the numeric columns.
    pub missing: &'a [String],
}

impl RawFile {
    /// Location of a cell (row 0-based here, shown 1-based, with its physical line).
    pub fn cell(&self, row: usize, column: Option<&str>) -> Location {
        let line = self
            .lines
            .as_ref()
            .and_then(|l| l.get(row))
            .map(|&l| l as usize);
        Location::data_cell(&self.path, Some(row + 1), line, column)
    }

    pub fn is_text(&self) -> bool {
        self.lines.is_some()
    }

    pub fn columns(&self) -> Vec<String> {
        self.df
            .get_column_names()
            .iter()
            .map(|c| c.to_string())
            .collect()
    }

    /// A column as text (numbers formatted), nulls for empty cells.
    pub fn text(&self, name: &str) -> Option<StringChunked> {
        let c = self.df.column(name).ok()?.cast(&DataType::String).ok()?;
        c.str().ok().cloned()
    }
}

/// Reads and parses a whole file.
pub fn read_file(file: &FileRef, options: &ReadOptions<'_>) -> Result<RawFile, Problem> {
    let stored = read_regular(&file.path).map_err(|why| {
        let what = if why == "not found" {
            format!("input file not found: {}", file.path.display())
        } else {
            format!("cannot read input file {}: {why}", file.path.display())
        };
        Problem::new(file.declared_at.clone(), what)
    })?;
    read_bytes(file, stored, options)
}

/// Parses a file's bytes, as stored (a download's body, or a file read): `file.path`
/// names it in messages.
pub fn read_bytes(
    file: &FileRef,
    stored: Vec<u8>,
    options: &ReadOptions<'_>,
) -> Result<RawFile, Problem> {
    let sha256 = crate::files::sha256_hex(&stored);
    let len = stored.len() as u64;
    let here = Location::data_file(&file.path);
    let bytes = if stored.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&stored[..])
            .read_to_end(&mut out)
            .map_err(|e| {
                Problem::new(
                    here.clone(),
                    format!("the file looks gzip-compressed but cannot be decompressed: {e}"),
                )
            })?;
        drop(stored);
        out
    } else {
        stored
    };
    let number = NumberFormat::of(file);
    let (df, lines, bad_cells) = match file.format {
        Format::Csv => {
            let text = decode(&file.path, bytes, file.encoding)?;
            let t = parse_csv(&file.path, &text, file.separator, number, options)?;
            (t.df, Some(t.lines), t.bad_cells)
        }
        Format::Parquet => (read_parquet(&file.path, bytes)?, None, Vec::new()),
        Format::Xlsx => {
            let t = read_xlsx(file, bytes, number, options)?;
            (t.df, Some(t.lines), t.bad_cells)
        }
        Format::Tsv | Format::Json => {
            return Err(Problem::new(
                file.declared_at.clone(),
                format!("format \"{}\" is not a table format", file.format),
            ));
        }
    };
    if df.height() == 0 {
        return Err(Problem::new(
            here,
            "the table is empty: it has a header but no data rows",
        ));
    }
    Ok(RawFile {
        path: file.path.clone(),
        sha256,
        bytes: len,
        df,
        lines,
        number,
        bad_cells,
    })
}

/// Bytes → UTF-8 text: a byte-order mark decides the encoding when present, else the
/// declared encoding, else the bytes must be UTF-8.
fn decode(
    path: &Path,
    bytes: Vec<u8>,
    declared: Option<&'static encoding_rs::Encoding>,
) -> Result<String, Problem> {
    let (encoding, skip) = match encoding_rs::Encoding::for_bom(&bytes) {
        Some((e, n)) => (Some(e), n),
        None => (declared, 0),
    };
    match encoding.filter(|&e| e != encoding_rs::UTF_8) {
        None => {
            let mut bytes = bytes;
            bytes.drain(..skip);
            String::from_utf8(bytes).map_err(|e| {
                let at = e.utf8_error().valid_up_to();
                let bytes = e.as_bytes();
                let line = line_of(bytes, at);
                let bad = bytes[at];
                let mut p = Problem::new(
                    Location::data_line(path, line),
                    format!("invalid UTF-8 (byte 0x{bad:02X})"),
                );
                if declared.is_none() {
                    p = p.with_help(
                        "the file is probably Windows-1252 or Latin-1 (common in French exports): set encoding = \"windows-1252\" on the source",
                    );
                }
                p
            })
        }
        Some(e) => {
            let input = &bytes[skip..];
            match e.decode_without_bom_handling_and_without_replacement(input) {
                Some(text) => Ok(text.into_owned()),
                None => {
                    // Find the first malformed sequence to name its line.
                    let mut decoder = e.new_decoder_without_bom_handling();
                    let mut out = String::with_capacity(input.len() * 2);
                    let (result, read) =
                        decoder.decode_to_string_without_replacement(input, &mut out, true);
                    let at = match result {
                        encoding_rs::DecoderResult::Malformed(len, extra) => {
                            read.saturating_sub(len as usize + extra as usize)
                        }
                        _ => read,
                    };
                    Err(Problem::new(
                        Location::data_line(path, line_of(input, at)),
                        format!("bytes that are not valid {}", e.name()),
                    ))
                }
            }
        }
    }
}

/// The physical line (1-based) of byte `offset`: `\n`, `\r\n` and a lone `\r` each end a line.
fn line_of(bytes: &[u8], offset: usize) -> usize {
    let mut counter = LineCounter::new(bytes);
    counter.advance(offset);
    counter.line
}

/// Counts physical lines while moving forward through a text.
struct LineCounter<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        LineCounter {
            bytes,
            pos: 0,
            line: 1,
        }
    }

    fn advance(&mut self, to: usize) {
        let to = to.min(self.bytes.len());
        let mut i = self.pos;
        while let Some(k) = memchr::memchr2(b'\n', b'\r', &self.bytes[i..to]) {
            let at = i + k;
            // "\r\n" is one break: count it at the '\n'.
            let crlf = self.bytes[at] == b'\r' && self.bytes.get(at + 1) == Some(&b'\n');
            if !crlf {
                self.line += 1;
            }
            i = at + 1;
        }
        self.pos = to;
    }
}

/// A parsed CSV table.
#[derive(Debug)]
struct CsvTable {
    df: DataFrame,
    lines: Vec<u32>,
    bad_cells: Vec<BadCell>,
}

enum Builder {
    /// Text cells go straight into an Arrow string view array: no allocation per cell.
    Text(StringChunkedBuilder),
    Number(Vec<Option<f64>>),
}

/// The columns of a table being read (CSV or a sheet): text, or numbers parsed while
/// reading, with their first bad cells.
struct Columns<'h> {
    header: &'h [String],
    builders: Vec<Builder>,
    bad_cells: Vec<BadCell>,
    bad_per_column: Vec<usize>,
}

impl<'h> Columns<'h> {
    fn new(header: &'h [String], options: &ReadOptions<'_>) -> Self {
        let builders = header
            .iter()
            .map(|name| {
                if options.numeric.contains(name.as_str()) {
                    Builder::Number(Vec::new())
                } else {
                    Builder::Text(StringChunkedBuilder::new(name.as_str().into(), 0))
                }
            })
            .collect();
        Columns {
            header,
            builders,
            bad_cells: Vec::new(),
            bad_per_column: vec![0; header.len()],
        }
    }

    /// A number cell of column `k`, row `row`: its value, or why it is not one.
    fn number(&mut self, k: usize, row: usize, parsed: Result<Option<f64>, CellError>) {
        let Builder::Number(v) = &mut self.builders[k] else {
            unreachable!("numbers go to number columns")
        };
        match parsed {
            Ok(x) => v.push(x),
            Err(error) => {
                v.push(None);
                self.bad_per_column[k] += 1;
                // Keep the first few per column; the count is what matters then.
                if self.bad_per_column[k] <= MAX_CELL_PROBLEMS + 1 {
                    self.bad_cells.push(BadCell {
                        row,
                        column: self.header[k].clone(),
                        error,
                    });
                }
            }
        }
    }

    fn finish(self, path: &Path, lines: Vec<u32>) -> Result<CsvTable, Problem> {
        let columns: Vec<Column> = self
            .header
            .iter()
            .zip(self.builders)
            .map(|(name, b)| match b {
                Builder::Text(b) => b.finish().into_column(),
                Builder::Number(v) => {
                    Float64Chunked::from_iter_options(name.as_str().into(), v.into_iter())
                        .into_column()
                }
            })
            .collect();
        let df = DataFrame::new(lines.len(), columns).map_err(|e| {
            Problem::new(
                Location::data_file(path),
                format!("cannot build the table: {e}"),
            )
        })?;
        Ok(CsvTable {
            df,
            lines,
            bad_cells: self.bad_cells,
        })
    }
}

fn parse_csv(
    path: &Path,
    text: &str,
    separator: u8,
    number: NumberFormat,
    options: &ReadOptions<'_>,
) -> Result<CsvTable, Problem> {
    if text.bytes().all(|b| b.is_ascii_whitespace()) {
        return Err(Problem::new(
            Location::data_file(path),
            "the file is empty (no header, no rows)",
        ));
    }
    let bytes = text.as_bytes();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(separator)
        .from_reader(bytes);
    let mut record = csv::StringRecord::new();
    let mut lines = LineCounter::new(bytes);
    // The start of a record: csv skips blank lines and line ends before it.
    let start_of = |record: &csv::StringRecord, lines: &mut LineCounter<'_>| -> usize {
        let mut at = record.position().map_or(0, |p| p.byte() as usize);
        while at < bytes.len() && (bytes[at] == b'\n' || bytes[at] == b'\r') {
            at += 1;
        }
        lines.advance(at);
        lines.line
    };
    let csv_error = |e: csv::Error| {
        let line = match e.position() {
            Some(p) => line_of(bytes, p.byte() as usize),
            None => 1,
        };
        Problem::new(
            Location::data_line(path, line),
            format!("cannot parse CSV: {e}"),
        )
    };

    if !reader.read_record(&mut record).map_err(csv_error)? {
        return Err(Problem::new(
            Location::data_file(path),
            "the file is empty (no header, no rows)",
        ));
    }
    let header_line = start_of(&record, &mut lines);
    let header: Vec<String> = record.iter().map(str::to_owned).collect();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (k, name) in header.iter().enumerate() {
        if let Some(first) = seen.insert(name.as_str(), k) {
            return Err(Problem::new(
                Location::data_line(path, header_line),
                format!(
                    "the header names column \"{name}\" twice (columns {} and {})",
                    first + 1,
                    k + 1
                ),
            )
            .with_help("rename one of them: every column name must be unique"));
        }
    }
    let width = header.len();
    let mut columns = Columns::new(&header, options);
    let mut row_lines: Vec<u32> = Vec::new();
    let mut ragged: Vec<(usize, usize)> = Vec::new();
    let mut ragged_count = 0usize;
    let mut last_start = 0usize;
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(e)),
        }
        let line = start_of(&record, &mut lines);
        last_start = lines.pos;
        if record.len() != width {
            ragged_count += 1;
            if ragged.len() < MAX_RAGGED {
                ragged.push((line, record.len()));
            }
            continue;
        }
        if ragged_count > 0 {
            // Rows after a ragged one are not kept: the error stops the read anyway.
            continue;
        }
        let row = row_lines.len();
        row_lines.push(u32::try_from(line).unwrap_or(u32::MAX));
        for (k, field) in record.iter().enumerate() {
            match &mut columns.builders[k] {
                Builder::Text(b) if field.is_empty() => b.append_null(),
                Builder::Text(b) => b.append_value(field),
                Builder::Number(_) => {
                    let t = cell::trim(field);
                    let parsed = if cell::is_missing(t, options.missing) {
                        Ok(None)
                    } else {
                        cell::number(t, number).map(Some)
                    };
                    columns.number(k, row, parsed);
                }
            }
        }
    }
    // csv closes a quoted field left open at the end of the file silently.
    let tail = &bytes[last_start.min(bytes.len())..];
    if ends_in_open_quote(tail, separator) {
        return Err(Problem::new(
            Location::data_line(path, line_of(bytes, last_start)),
            "a quoted field opened here is never closed (a stray '\"')",
        ));
    }
    if ragged_count > 0 {
        let mut p = Problem::new(
            Location::data_line(path, ragged[0].0),
            format!(
                "{} fields, expected {width} as in the header (line {header_line})",
                ragged[0].1
            ),
        );
        let others: Vec<String> = ragged[1..]
            .iter()
            .map(|(l, n)| format!("line {l}: {n} fields"))
            .collect();
        let mut help = String::new();
        if !others.is_empty() {
            help = format!("also {}", others.join(", "));
            if ragged_count > ragged.len() {
                help.push_str(&format!(", and {} more rows", ragged_count - ragged.len()));
            }
            help.push_str("; ");
        }
        help.push_str(
            "check the separator and quoting: every row needs one field per header column",
        );
        p = p.with_help(help);
        return Err(p);
    }
    columns.finish(path, row_lines)
}

/// Reads one sheet of an xlsx workbook (the named one, or the first): the first row is
/// the header, every cell text unless its column is asked as numbers (numbers then read
/// as stored, text cells parsed with the cell parser, Excel errors such as `#N/A`
/// reported). `lines` holds each row's number in the sheet, as Excel shows it.
fn read_xlsx(
    file: &FileRef,
    bytes: Vec<u8>,
    number: NumberFormat,
    options: &ReadOptions<'_>,
) -> Result<CsvTable, Problem> {
    use calamine::{Data, Reader, Xlsx};
    let path = &file.path;
    let here = || Location::data_file(path);
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes))
        .map_err(|e| Problem::new(here(), format!("cannot open the xlsx workbook: {e}")))?;
    let names = book.sheet_names();
    let sheet = match &file.sheet {
        Some(s) => {
            if !names.iter().any(|n| n == s) {
                let mut p = Problem::new(
                    file.declared_at.clone(),
                    format!("{}: no sheet \"{s}\"", path.display()),
                )
                .with_help(format!("sheets: {}", names.join(", ")));
                if let Some(c) = crate::diagnostic::closest(s, names.iter().map(String::as_str)) {
                    p = p.with_help(format!(
                        "did you mean \"{c}\"? sheets: {}",
                        names.join(", ")
                    ));
                }
                return Err(p);
            }
            s.clone()
        }
        None => names
            .first()
            .cloned()
            .ok_or_else(|| Problem::new(here(), "the workbook has no sheet"))?,
    };
    let range = book
        .worksheet_range(&sheet)
        .map_err(|e| Problem::new(here(), format!("cannot read sheet \"{sheet}\": {e}")))?;
    // Row numbers as Excel shows them: the range may start below row 1.
    let first_used = range.start().map_or(0, |(r, _)| r) as usize + 1;
    let skip = match file.header_row {
        Some(h) if h < first_used => {
            return Err(Problem::new(
                file.declared_at.clone(),
                format!(
                    "{}: header_row = {h}, but sheet \"{sheet}\" starts at row {first_used}",
                    path.display()
                ),
            ));
        }
        Some(h) => h - first_used,
        None => 0,
    };
    let first_row = first_used + skip;
    let mut rows = range.rows().skip(skip).enumerate();
    let Some((_, head)) = rows.next() else {
        return Err(Problem::new(
            here(),
            format!("sheet \"{sheet}\" is empty (no header, no rows)"),
        ));
    };
    let text_of = |c: &Data| -> Option<String> {
        match c {
            Data::Empty => None,
            Data::String(s) => Some(s.clone()),
            Data::Float(f) => Some(f.to_string()),
            Data::Int(i) => Some(i.to_string()),
            Data::Bool(b) => Some(if *b { "TRUE" } else { "FALSE" }.to_owned()),
            Data::DateTime(d) => Some(d.as_f64().to_string()),
            Data::DateTimeIso(s) | Data::DurationIso(s) => Some(s.clone()),
            Data::Error(e) => Some(e.to_string()),
        }
    };
    let header: Vec<String> = head
        .iter()
        .map(|c| text_of(c).unwrap_or_default().trim().to_owned())
        .collect();
    // Trailing columns with no header and no data are the sheet's padding.
    let mut width = header.len();
    while width > 0 && header[width - 1].is_empty() {
        width -= 1;
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (k, name) in header[..width].iter().enumerate() {
        if name.is_empty() {
            return Err(Problem::new(
                Location::data_line(path, first_row),
                format!(
                    "sheet \"{sheet}\": column {} has no name in the header",
                    k + 1
                ),
            ));
        }
        if let Some(first) = seen.insert(name.as_str(), k) {
            return Err(Problem::new(
                Location::data_line(path, first_row),
                format!(
                    "the header names column \"{name}\" twice (columns {} and {})",
                    first + 1,
                    k + 1
                ),
            )
            .with_help("rename one of them: every column name must be unique"));
        }
    }
    let header = &header[..width];
    let mut columns = Columns::new(header, options);
    let mut lines = Vec::new();
    let data: Vec<(usize, &[Data])> = rows.collect();
    // Trailing blank rows are the sheet's padding too.
    let last = data
        .iter()
        .rposition(|(_, r)| r.iter().any(|c| !matches!(c, Data::Empty)))
        .map_or(0, |p| p + 1);
    for &(k, r) in &data[..last] {
        let row = lines.len();
        lines.push(u32::try_from(first_row + k).unwrap_or(u32::MAX));
        for j in 0..width {
            let c = r.get(j).unwrap_or(&Data::Empty);
            match &mut columns.builders[j] {
                Builder::Text(b) => match text_of(c) {
                    Some(t) if !t.is_empty() => b.append_value(&t),
                    _ => b.append_null(),
                },
                Builder::Number(_) => {
                    let parsed = match c {
                        Data::Empty => Ok(None),
                        Data::Float(f) => Ok(Some(*f)),
                        Data::Int(i) => Ok(Some(*i as f64)),
                        Data::String(s) => {
                            let t = cell::trim(s);
                            if cell::is_missing(t, options.missing) {
                                Ok(None)
                            } else {
                                cell::number(t, number).map(Some)
                            }
                        }
                        Data::Error(e) => Err(CellError::NotANumber {
                            text: e.to_string(),
                            hint: " (an Excel error value)",
                        }),
                        other => Err(CellError::NotANumber {
                            text: text_of(other).unwrap_or_default(),
                            hint: "",
                        }),
                    };
                    columns.number(j, row, parsed);
                }
            }
        }
    }
    columns.finish(path, lines)
}

/// Whether the last record, `tail`, ends inside a quoted field (a quote opens a field only
/// at its start; `""` inside one is an escaped quote).
fn ends_in_open_quote(tail: &[u8], separator: u8) -> bool {
    let mut i = 0;
    let mut field_start = true;
    while i < tail.len() {
        let b = tail[i];
        if field_start && b == b'"' {
            i += 1;
            loop {
                match memchr::memchr(b'"', &tail[i..]) {
                    None => return true,
                    Some(k) if tail.get(i + k + 1) == Some(&b'"') => i += k + 2,
                    Some(k) => {
                        i += k + 1;
                        break;
                    }
                }
            }
            field_start = false;
            continue;
        }
        field_start = b == separator || b == b'\n' || b == b'\r';
        i += 1;
    }
    false
}

/// Reads a Parquet file, every column of a type bienvivre reads (text, integers and
/// floats of every width, booleans); anything else is named.
fn read_parquet(path: &Path, bytes: Vec<u8>) -> Result<DataFrame, Problem> {
    let here = Location::data_file(path);
    if !bytes.starts_with(b"PAR1") {
        return Err(Problem::new(
            here,
            "not a Parquet file (it does not start with the PAR1 mark)",
        )
        .with_help("set format = \"csv\" if it is a CSV file"));
    }
    if bytes.len() < 12 || !bytes.ends_with(b"PAR1") {
        return Err(Problem::new(
            here,
            "the Parquet file is truncated (it does not end with the PAR1 mark): copy it again",
        ));
    }
    let mut reader = ParquetReader::new(Cursor::new(bytes));
    let schema = reader.schema().map_err(|_| {
        Problem::new(
            here.clone(),
            "the Parquet file is damaged: its metadata cannot be read",
        )
    })?;
    let unsupported: Vec<String> = schema
        .iter()
        .filter(|(_, field)| !readable(field.dtype()))
        .map(|(name, field)| format!("\"{name}\" ({:?})", field.dtype()))
        .collect();
    if !unsupported.is_empty() {
        return Err(Problem::new(
            here,
            format!(
                "columns of a type bienvivre cannot read: {}",
                unsupported.join(", ")
            ),
        )
        .with_help("store them as text, integers or floats"));
    }
    reader.finish().map_err(|e| {
        Problem::new(
            here,
            format!(
                "the Parquet file is damaged or truncated ({})",
                first_line(&e.to_string())
            ),
        )
    })
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("").trim()
}

fn readable(dtype: &polars::prelude::ArrowDataType) -> bool {
    use polars::prelude::ArrowDataType as A;
    matches!(
        dtype,
        A::Boolean
            | A::Int8
            | A::Int16
            | A::Int32
            | A::Int64
            | A::UInt8
            | A::UInt16
            | A::UInt32
            | A::UInt64
            | A::Float32
            | A::Float64
            | A::Utf8
            | A::LargeUtf8
            | A::Utf8View
            | A::Null
    ) || matches!(dtype, A::Dictionary(_, v, _) if readable(v))
}

/// Bad cells of one column: the first few with their rows, then a count.
pub struct CellProblems<'a> {
    out: &'a mut Vec<Problem>,
    per_column: BTreeMap<(PathBuf, String), usize>,
}

impl std::fmt::Debug for CellProblems<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CellProblems").finish_non_exhaustive()
    }
}

impl<'a> CellProblems<'a> {
    pub fn new(out: &'a mut Vec<Problem>) -> Self {
        CellProblems {
            out,
            per_column: BTreeMap::new(),
        }
    }

    /// Reports a bad cell of `raw`.
    pub fn cell(&mut self, raw: &RawFile, row: usize, column: &str, message: impl ToString) {
        let n = self
            .per_column
            .entry((raw.path.clone(), column.to_owned()))
            .or_insert(0);
        *n += 1;
        if *n <= MAX_CELL_PROBLEMS {
            self.out.push(Problem::new(
                raw.cell(row, Some(column)),
                message.to_string(),
            ));
        }
    }

    /// Reports the cells found bad while reading `raw`, for the columns `keep` accepts.
    pub fn read_errors(&mut self, raw: &RawFile, keep: impl Fn(&BadCell) -> bool) {
        for b in raw.bad_cells.iter().filter(|b| keep(b)) {
            self.cell(raw, b.row, &b.column, &b.error);
        }
    }

    /// Whether any cell was reported.
    pub fn any(&self) -> bool {
        !self.per_column.is_empty()
    }

    /// Adds the "… and N more" lines.
    pub fn finish(self) {
        for ((file, column), n) in self.per_column {
            if n > MAX_CELL_PROBLEMS {
                self.out.push(Problem::new(
                    Location::data_cell(&file, None, None, Some(&column)),
                    format!(
                        "… and {} more bad cells in this column",
                        n - MAX_CELL_PROBLEMS
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str) -> Result<CsvTable, Problem> {
        parse_csv(
            Path::new("t.csv"),
            text,
            b',',
            NumberFormat::default(),
            &ReadOptions::default(),
        )
    }

    #[test]
    fn lines_are_physical_after_quoted_breaks_blank_lines_and_cr_endings() {
        let t = csv("a,b\n1,\"x\ny\"\n\n2,z\n").unwrap();
        assert_eq!(t.lines, vec![2, 5]);
        let t = csv("a,b\r1,x\r2,y\r").unwrap();
        assert_eq!(t.lines, vec![2, 3]);
        assert_eq!(t.df.height(), 2);
        let t = csv("a,b\r\n1,x\r\n\r\n2,y\r\n").unwrap();
        assert_eq!(t.lines, vec![2, 4]);
    }

    #[test]
    fn ragged_rows_name_line_and_counts() {
        let e = csv("a,b,c\n1,2,3\n4,5\n6,7,8,9\n").unwrap_err().to_string();
        assert!(
            e.starts_with("t.csv: line 3: 2 fields, expected 3 as in the header (line 1)"),
            "{e}"
        );
        assert!(e.contains("line 4: 4 fields"), "{e}");
        let e = csv("a,b\n\"1\n2\",3\n4\n").unwrap_err().to_string();
        assert!(e.starts_with("t.csv: line 4: 1 fields"), "{e}");
    }

    #[test]
    fn duplicate_headers_and_open_quotes_are_errors() {
        let e = csv("a,b,a\n1,2,3\n").unwrap_err().to_string();
        assert!(e.contains("column \"a\" twice (columns 1 and 3)"), "{e}");
        let e = csv("a,b\n1,2\n3,\"4\n5,6\n").unwrap_err().to_string();
        assert!(e.contains("line 3: a quoted field"), "{e}");
        // A quote inside an unquoted field is a character, and "" an escaped quote.
        assert!(csv("a,b\n1,TV 5\" wide\n").is_ok());
        assert!(csv("a,b\n1,\"say \"\"hi\"\"\"\n").is_ok());
    }

    #[test]
    fn invalid_utf8_names_the_line_and_windows_1252_decodes() {
        let bytes = b"a,b\n1,x\n2,caf\xe9\n".to_vec();
        let e = decode(Path::new("t.csv"), bytes.clone(), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("t.csv: line 3: invalid UTF-8 (byte 0xE9)"),
            "{e}"
        );
        assert!(e.contains("windows-1252"), "{e}");
        let text = decode(Path::new("t.csv"), bytes, Some(encoding_rs::WINDOWS_1252)).unwrap();
        assert!(text.ends_with("café\n"));
        // A UTF-8 byte-order mark is dropped.
        let text = decode(Path::new("t.csv"), b"\xef\xbb\xbfa\n1\n".to_vec(), None).unwrap();
        assert_eq!(text, "a\n1\n");
    }

    #[test]
    fn numeric_columns_parse_while_reading() {
        let missing = vec!["NA".to_owned()];
        let options = ReadOptions {
            numeric: ["v"].into_iter().collect(),
            missing: &missing,
        };
        let t = parse_csv(
            Path::new("t.csv"),
            "id,v\na,1.5\nb,NA\nc,x\n",
            b',',
            NumberFormat::default(),
            &options,
        )
        .unwrap();
        let v: Vec<Option<f64>> = t.df.column("v").unwrap().f64().unwrap().iter().collect();
        assert_eq!(v, vec![Some(1.5), None, None]);
        assert_eq!(t.bad_cells.len(), 1);
        assert_eq!(t.bad_cells[0].row, 2);
    }
}
