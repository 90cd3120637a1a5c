//! The shape of an uploaded text file, measured before polars parses it.
//!
//! polars trusts its input's shape: a JSON document nested 100,000 levels deep overflows the
//! stack of the thread that parses it (aborting the whole process), one nested 500 levels deep
//! builds a 3 GB schema, and a CSV with a million columns allocates a builder per column. So
//! every CSV, JSON and NDJSON upload is first scanned here, byte by byte with a constant-size
//! state (no recursion, no allocation that grows with nesting), and refused with a clear
//! message when it is wider, deeper or has bigger cells than [`IngestLimits`] allow, or when the
//! memory polars would need to hold it exceeds the ingest memory limit.
//!
//! The scanners are sans-IO: callers feed them bytes (lines) and ask for the [`Shape`] at the
//! end, so the fuzz targets (`fuzz/`) drive exactly the code uploads do.

use std::collections::HashSet;

use super::DataError;

/// What one ingestion may be. Defaults are the command line's (see `brain::Config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestLimits {
    /// Most columns (CSV header fields; distinct keys of JSON records).
    pub max_columns: usize,
    /// Deepest nesting of JSON arrays and objects, counting the enclosing ones.
    pub max_nesting: usize,
    /// Largest single value: a CSV field, or a JSON record's field value (with its nesting).
    pub max_cell_bytes: u64,
    /// Most memory polars may need to parse the file, by [`Shape::estimated_memory`].
    pub memory_bytes: u64,
}

impl Default for IngestLimits {
    fn default() -> Self {
        Self {
            max_columns: 4_096,
            max_nesting: 16,
            max_cell_bytes: 1024 * 1024,
            memory_bytes: 4 * 1024 * 1024 * 1024,
        }
    }
}

/// What a scan found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shape {
    pub rows: u64,
    pub columns: usize,
    pub bytes: u64,
}

/// Fixed cost per column of polars' readers (a builder, its buffers and chunk bookkeeping per
/// column and thread), in bytes. Measured order of magnitude: a 1,000,000-column CSV of 9.9 MB
/// took about 6 GB.
pub(super) const PER_COLUMN_BYTES: u64 = 16 * 1024;
/// Bytes per value polars needs besides the text itself, at the peak of a CSV read: a string
/// column's 16-byte view (or a number's 8 bytes) and validity, and again while the chunks its
/// threads parsed are concatenated. Measured with scripts/bench-ingest (BENCHMARKS.md, debug
/// build): 1,000-column files took 38 bytes per empty cell, 40 per one-letter text cell and 22
/// per `1`; a 10-column file about 8 beside its text. The bound takes the worst, so narrow
/// files are over-estimated about twofold (refused early rather than run the brain out of
/// memory; Parquet files are estimated from their page headers by [`super::parquet_guard`]).
const PER_CELL_BYTES: u64 = 40;

impl Shape {
    /// An upper estimate of the memory polars needs to parse a file of this shape: CSV keeps
    /// the text of string columns plus the read buffer; JSON also builds a parse tape of the
    /// whole document, a few times its size.
    pub fn estimated_memory(&self, json: bool) -> u64 {
        let text_factor = if json { 4 } else { 2 };
        self.bytes
            .saturating_mul(text_factor)
            .saturating_add(
                self.rows
                    .saturating_mul(self.columns as u64)
                    .saturating_mul(PER_CELL_BYTES),
            )
            .saturating_add((self.columns as u64).saturating_mul(PER_COLUMN_BYTES))
    }

    /// Refuses (413) a shape whose estimate exceeds the ingest memory limit.
    pub fn check_memory(&self, json: bool, limits: &IngestLimits) -> Result<(), DataError> {
        let estimate = self.estimated_memory(json);
        if estimate > limits.memory_bytes {
            return Err(DataError::OverMemory {
                estimate,
                limit: limits.memory_bytes,
            });
        }
        Ok(())
    }
}

/// CSV: UTF-8 is checked by the caller; this counts fields per record (quotes may hold
/// separators, doubled quotes and line breaks) and measures fields.
#[derive(Debug)]
pub struct CsvScan {
    limits: IngestLimits,
    /// Told from the first line ([`sniff_separator`]).
    separator: Option<u8>,
    in_quotes: bool,
    fields: usize,
    field_bytes: u64,
    records: u64,
    record_start_line: u64,
    header_fields: Option<usize>,
    bytes: u64,
}

impl CsvScan {
    pub fn new(limits: IngestLimits) -> Self {
        Self {
            limits,
            separator: None,
            in_quotes: false,
            fields: 1,
            field_bytes: 0,
            records: 0,
            record_start_line: 1,
            header_fields: None,
            bytes: 0,
        }
    }

    /// One line, with its `\n` (and `\r`) if it has them; `number` counts from 1.
    pub fn line(&mut self, number: u64, line: &[u8]) -> Result<(), DataError> {
        let separator = *self.separator.get_or_insert_with(|| sniff_separator(line));
        self.bytes += line.len() as u64;
        if !self.in_quotes {
            self.record_start_line = number;
            self.fields = 1;
            self.field_bytes = 0;
        }
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = if self.in_quotes {
            content
        } else {
            content.strip_suffix(b"\r").unwrap_or(content)
        };
        if !self.in_quotes && content.is_empty() {
            // Blank lines (typically at the end) are skipped by the parser too.
            return Ok(());
        }
        for &byte in content {
            match byte {
                b'"' => self.in_quotes = !self.in_quotes,
                byte if byte == separator && !self.in_quotes => {
                    self.fields += 1;
                    self.field_bytes = 0;
                    if self.fields > self.limits.max_columns {
                        return Err(self.too_many_columns());
                    }
                    continue;
                }
                _ => {}
            }
            self.field_bytes += 1;
            if self.field_bytes > self.limits.max_cell_bytes {
                return Err(DataError::Invalid(format!(
                    "a field of the record starting on line {} is longer than {} bytes",
                    self.record_start_line, self.limits.max_cell_bytes
                )));
            }
        }
        if self.in_quotes {
            // The record continues on the next line (the line break is part of the field).
            self.field_bytes += 1;
            return Ok(());
        }
        self.records += 1;
        match self.header_fields {
            None => self.header_fields = Some(self.fields),
            Some(expected) if expected != self.fields => {
                return Err(DataError::Invalid(format!(
                    "ragged CSV: row {} (line {}) has {} fields, the header has {expected}",
                    self.records - 1,
                    self.record_start_line,
                    self.fields
                )));
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// The field separator, as told from the first line (`,` before any line).
    pub fn separator(&self) -> u8 {
        self.separator.unwrap_or(b',')
    }

    fn too_many_columns(&self) -> DataError {
        DataError::Invalid(format!(
            "the record starting on line {} has more than {} columns (the limit of one dataset)",
            self.record_start_line, self.limits.max_columns
        ))
    }

    pub fn finish(self) -> Result<Shape, DataError> {
        if self.in_quotes {
            return Err(DataError::Invalid(format!(
                "the CSV ends inside a quoted field opened on line {}",
                self.record_start_line
            )));
        }
        let Some(columns) = self.header_fields else {
            return Err(DataError::Invalid("the CSV is empty".to_owned()));
        };
        Ok(Shape {
            rows: self.records.saturating_sub(1),
            columns,
            bytes: self.bytes,
        })
    }
}

/// The field separator of a CSV file, told from its header line: `,` when the header has one
/// outside quotes, else whichever of `;`, tab and `|` it has most (European spreadsheets
/// export `;`, databases `|` and tab). A header with none of them is one column.
pub fn sniff_separator(header: &[u8]) -> u8 {
    let mut counts = [0usize; 4];
    let candidates = [b',', b';', b'\t', b'|'];
    let mut in_quotes = false;
    for &byte in header {
        if byte == b'"' {
            in_quotes = !in_quotes;
        } else if !in_quotes && let Some(index) = candidates.iter().position(|c| *c == byte) {
            counts[index] += 1;
        }
    }
    if counts[0] > 0 {
        return b',';
    }
    let (best, count) = counts
        .iter()
        .enumerate()
        .skip(1)
        .max_by_key(|(index, count)| (**count, usize::MAX - index))
        .unwrap_or((0, &0));
    if *count == 0 { b',' } else { candidates[best] }
}

/// JSON (an array of records, or one record) and NDJSON (one record per line): nesting,
/// distinct record keys and field sizes. Syntax errors are left to the parsers after it; this
/// only guarantees they never see a document deeper, wider or bigger-celled than the limits.
#[derive(Debug)]
pub struct JsonScan {
    limits: IngestLimits,
    /// Depth of record objects: 1 for NDJSON and a top-level object, 2 inside a top-level
    /// array. `None` until the first bracket of a JSON document tells.
    record_depth: Option<usize>,
    depth: usize,
    in_string: bool,
    escaped: bool,
    expecting_key: bool,
    capturing_key: bool,
    key: Vec<u8>,
    keys: HashSet<Box<[u8]>>,
    cell_start: Option<u64>,
    position: u64,
    rows: u64,
    line: u64,
}

impl JsonScan {
    /// `lines`: NDJSON.
    pub fn new(limits: IngestLimits, lines: bool) -> Self {
        Self {
            limits,
            record_depth: lines.then_some(1),
            depth: 0,
            in_string: false,
            escaped: false,
            expecting_key: false,
            capturing_key: false,
            key: Vec::new(),
            keys: HashSet::new(),
            cell_start: None,
            position: 0,
            rows: 0,
            line: 1,
        }
    }

    /// The next bytes of the document (any split; lines are counted for messages).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), DataError> {
        for &byte in bytes {
            self.byte(byte)?;
            self.position += 1;
            if let Some(start) = self.cell_start
                && self.position - start > self.limits.max_cell_bytes
            {
                return Err(DataError::Invalid(format!(
                    "a value on line {} is longer than {} bytes",
                    self.line, self.limits.max_cell_bytes
                )));
            }
        }
        Ok(())
    }

    fn byte(&mut self, byte: u8) -> Result<(), DataError> {
        if byte == b'\n' {
            self.line += 1;
        }
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if byte == b'\\' {
                self.escaped = true;
            } else if byte == b'"' {
                self.in_string = false;
                if self.capturing_key {
                    self.capturing_key = false;
                    return self.record_key();
                }
                return Ok(());
            }
            if self.capturing_key {
                if self.key.len() as u64 >= self.limits.max_cell_bytes {
                    return Err(DataError::Invalid(format!(
                        "a key on line {} is longer than {} bytes",
                        self.line, self.limits.max_cell_bytes
                    )));
                }
                self.key.push(byte);
            }
            return Ok(());
        }
        let at_record = self.record_depth == Some(self.depth);
        match byte {
            b'"' => {
                self.in_string = true;
                if at_record && self.expecting_key {
                    self.capturing_key = true;
                    self.key.clear();
                }
            }
            b'{' | b'[' => {
                if self.record_depth.is_none() {
                    self.record_depth = Some(if byte == b'[' { 2 } else { 1 });
                }
                self.depth += 1;
                if self.depth > self.limits.max_nesting {
                    return Err(DataError::Invalid(format!(
                        "the JSON nests deeper than {} levels (line {}); flatten nested values \
                         or upload them as strings",
                        self.limits.max_nesting, self.line
                    )));
                }
                if byte == b'{' && self.record_depth == Some(self.depth) {
                    self.rows += 1;
                    self.expecting_key = true;
                    self.cell_start = None;
                }
            }
            b'}' | b']' => {
                if at_record {
                    self.cell_start = None;
                    self.expecting_key = false;
                }
                self.depth = self.depth.saturating_sub(1);
            }
            b':' if at_record => {
                self.expecting_key = false;
                self.cell_start = Some(self.position);
            }
            b',' if at_record => {
                self.cell_start = None;
                self.expecting_key = true;
            }
            _ => {}
        }
        Ok(())
    }

    fn record_key(&mut self) -> Result<(), DataError> {
        if self.keys.contains(self.key.as_slice()) {
            return Ok(());
        }
        if self.keys.len() >= self.limits.max_columns {
            return Err(DataError::Invalid(format!(
                "the records have more than {} distinct keys (columns; the limit of one \
                 dataset), the last new one on line {}",
                self.limits.max_columns, self.line
            )));
        }
        self.keys.insert(self.key.as_slice().into());
        Ok(())
    }

    pub fn finish(self) -> Shape {
        Shape {
            rows: self.rows,
            columns: self.keys.len(),
            bytes: self.position,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn limits() -> IngestLimits {
        IngestLimits {
            max_columns: 3,
            max_nesting: 4,
            max_cell_bytes: 8,
            memory_bytes: 1 << 20,
        }
    }

    fn csv(text: &[u8]) -> Result<Shape, DataError> {
        let mut scan = CsvScan::new(limits());
        for (index, line) in text.split_inclusive(|byte| *byte == b'\n').enumerate() {
            scan.line(index as u64 + 1, line)?;
        }
        scan.finish()
    }

    fn json(text: &[u8], lines: bool) -> Result<Shape, DataError> {
        let mut scan = JsonScan::new(limits(), lines);
        scan.feed(text)?;
        Ok(scan.finish())
    }

    fn refused(result: Result<Shape, DataError>) -> String {
        match result {
            Err(DataError::Invalid(message)) => message,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn csv_shape_and_limits() {
        let shape = csv(b"a,b,c\n1,\"x,\ny\",3\n").unwrap();
        assert_eq!((shape.rows, shape.columns), (1, 3));
        assert!(refused(csv(b"a,b,c,d\n")).contains("more than 3 columns"));
        assert!(refused(csv(b"a\n123456789\n")).contains("longer than 8 bytes"));
        // A quoted field running over lines counts its line breaks.
        assert!(refused(csv(b"a\n\"1234\n5678\n\"\n")).contains("longer than 8"));
        assert!(refused(csv(b"a,b\n1\n")).contains("ragged"));
    }

    #[test]
    fn separators_are_told_from_the_header() {
        assert_eq!(sniff_separator(b"a,b;c\n"), b',');
        assert_eq!(sniff_separator(b"a;b;c\n"), b';');
        assert_eq!(sniff_separator(b"a\tb\n"), b'\t');
        assert_eq!(sniff_separator(b"a|b|c\n"), b'|');
        assert_eq!(sniff_separator(b"\"a;b\"\n"), b',');
        assert_eq!(sniff_separator(b"only\n"), b',');
        let shape = csv(b"a;b;c\n1;\"x;y\";3\n").unwrap();
        assert_eq!((shape.rows, shape.columns), (1, 3));
    }

    #[test]
    fn json_depth_is_bounded_without_recursion() {
        assert!(json(b"[[[[1]]]]", false).is_ok());
        assert!(refused(json(b"[[[[[1]]]]]", false)).contains("deeper than 4"));
        // A million levels: refused at the fifth byte, in constant memory.
        let deep = vec![b'['; 1_000_000];
        assert!(refused(json(&deep, false)).contains("deeper"));
        // Brackets inside strings are text.
        assert!(json(br#"[{"a":"[[[[["}]"#, false).is_ok());
    }

    #[test]
    fn json_keys_and_cells() {
        let shape = json(b"{\"a\":1,\"b\":{\"c\":2}}\n{\"a\":3}\n", true).unwrap();
        assert_eq!((shape.rows, shape.columns), (2, 2));
        assert!(refused(json(br#"[{"a":1,"b":2,"c":3,"d":4}]"#, false)).contains("distinct keys"));
        // Same keys in every record count once; escaped quotes stay inside the key.
        let shape = json(br#"[{"a\"b":1},{"a\"b":2}]"#, false).unwrap();
        assert_eq!((shape.rows, shape.columns), (2, 1));
        assert!(refused(json(br#"[{"a":"123456789"}]"#, false)).contains("longer than 8"));
        assert!(refused(json(br#"[{"a":[1,2,3,4,5]}]"#, false)).contains("longer than 8"));
    }

    #[test]
    fn memory_estimate_refuses_wide_and_long() {
        let shape = Shape {
            rows: 1_000,
            columns: 1_000,
            bytes: 10,
        };
        assert!(matches!(
            shape.check_memory(false, &limits()),
            Err(DataError::OverMemory { .. })
        ));
        let small = Shape {
            rows: 10,
            columns: 3,
            bytes: 100,
        };
        assert!(small.check_memory(true, &limits()).is_ok());
    }
}
