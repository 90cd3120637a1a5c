//! Reading uploaded files into DataFrames and keeping them as Parquet.
//!
//! All functions here are blocking (file I/O and polars): callers run them in
//! `spawn_blocking`. Text formats are checked in one streaming pass before polars parses them,
//! so a malformed file is refused with the line (and column) of its first problem: invalid
//! UTF-8, a CSV row whose field count differs from the header's, or an NDJSON line that is not
//! JSON; and a file polars could not hold safely (too deep, too wide, too big a cell, too much
//! memory: [`super::precheck`]) is refused before polars sees it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::num::NonZeroUsize;
use std::path::Path;

use polars::prelude::*;
use shared_types::data::{ColumnInfo, ColumnType, DataFormat};

use super::DataError;
use super::parquet_guard::{self, ParquetLimits, ParquetRefusal};
use super::precheck::{CsvScan, IngestLimits, JsonScan, Shape};

/// Type overrides by column name, applied instead of the inferred types.
pub type SchemaOverrides = BTreeMap<String, ColumnType>;

/// Options of one ingestion.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub format: DataFormat,
    pub overrides: SchemaOverrides,
    /// Rows CSV/JSON schema inference looks at.
    pub infer_schema_rows: usize,
    pub limits: IngestLimits,
}

/// Parses `column:type,column:type` (the `schema` upload parameter).
pub fn parse_overrides(text: &str) -> Result<SchemaOverrides, DataError> {
    let mut overrides = SchemaOverrides::new();
    for item in text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        let (column, kind) = item.split_once(':').ok_or_else(|| {
            DataError::BadRequest(format!(
                "schema override `{item}` is not `column:type` (types: bool, int32, int64, \
                 float64, string, date, datetime)"
            ))
        })?;
        let kind: ColumnType =
            serde_json::from_value(serde_json::Value::String(kind.trim().to_ascii_lowercase()))
                .map_err(|_| {
                    DataError::BadRequest(format!(
                        "unknown type `{kind}` for column `{column}` (types: bool, int32, int64, \
                 float64, string, date, datetime)"
                    ))
                })?;
        overrides.insert(column.trim().to_owned(), kind);
    }
    Ok(overrides)
}

/// The format a `Content-Type` names, if any.
pub fn format_from_content_type(content_type: &str) -> Option<DataFormat> {
    match content_type.to_ascii_lowercase().as_str() {
        "text/csv" | "application/csv" => Some(DataFormat::Csv),
        "application/vnd.apache.parquet" | "application/x-parquet" => Some(DataFormat::Parquet),
        "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/jsonlines" => Some(DataFormat::Ndjson),
        "application/json" => Some(DataFormat::Json),
        _ => None,
    }
}

/// The format a file name's extension names, if any.
pub fn format_from_file_name(name: &str) -> Option<DataFormat> {
    DataFormat::from_extension(Path::new(name).extension()?.to_str()?)
}

fn polars_type(kind: ColumnType) -> DataType {
    match kind {
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Int32 => DataType::Int32,
        ColumnType::Int64 => DataType::Int64,
        ColumnType::Float64 => DataType::Float64,
        ColumnType::String => DataType::String,
        ColumnType::Date => DataType::Date,
        ColumnType::Datetime => DataType::Datetime(TimeUnit::Milliseconds, None),
    }
}

fn overrides_schema(overrides: &SchemaOverrides) -> Schema {
    overrides
        .iter()
        .map(|(name, kind)| Field::new(name.as_str().into(), polars_type(*kind)))
        .collect()
}

/// Reads the file at `path` (checked first for text formats) into a DataFrame.
pub fn read_file(path: &Path, options: &IngestOptions) -> Result<DataFrame, DataError> {
    let infer = NonZeroUsize::new(options.infer_schema_rows.max(1)).unwrap_or(NonZeroUsize::MIN);
    let frame = match options.format {
        DataFormat::Csv => {
            let (shape, separator) = check_csv(path, &options.limits)?;
            shape.check_memory(false, &options.limits)?;
            CsvReadOptions::default()
                .with_has_header(true)
                .with_infer_schema_length(Some(infer.get()))
                .with_schema_overwrite(Some(Arc::new(overrides_schema(&options.overrides))))
                .map_parse_options(|parse| {
                    parse.with_try_parse_dates(true).with_separator(separator)
                })
                .try_into_reader_with_file_path(Some(path.to_path_buf()))
                .and_then(|reader| reader.finish())
                .map_err(|error| DataError::Invalid(format!("cannot parse the CSV: {error}")))?
        }
        DataFormat::Ndjson | DataFormat::Json => {
            let lines = options.format == DataFormat::Ndjson;
            check_json_text(path, lines, &options.limits)?.check_memory(true, &options.limits)?;
            let file = File::open(path).map_err(DataError::io)?;
            let schema = overrides_schema(&options.overrides);
            let mut reader = JsonReader::new(file)
                .with_json_format(if lines {
                    JsonFormat::JsonLines
                } else {
                    JsonFormat::Json
                })
                .infer_schema_len(Some(infer));
            if !options.overrides.is_empty() {
                reader = reader.with_schema_overwrite(&schema);
            }
            reader
                .finish()
                .map_err(|error| DataError::Invalid(format!("cannot parse the JSON: {error}")))?
        }
        DataFormat::Parquet => read_parquet(path, &upload_parquet_limits(&options.limits))?,
    };
    if frame.width() == 0 {
        return Err(DataError::Invalid("the file has no columns".to_owned()));
    }
    apply_overrides(frame, &options.overrides)
}

/// Casts overridden columns (strictly: a value that does not convert is an error naming the
/// column). CSV and JSON already parsed with the overrides; this also covers Parquet.
fn apply_overrides(frame: DataFrame, overrides: &SchemaOverrides) -> Result<DataFrame, DataError> {
    if overrides.is_empty() {
        return Ok(frame);
    }
    let schema = frame.schema().clone();
    let mut casts = Vec::new();
    for (name, kind) in overrides {
        let Some(current) = schema.get(name.as_str()) else {
            return Err(DataError::Invalid(format!(
                "the schema override names `{name}`, which is not a column of the file"
            )));
        };
        let wanted = polars_type(*kind);
        if *current != wanted {
            casts.push(col(name.as_str()).strict_cast(wanted));
        }
    }
    if casts.is_empty() {
        return Ok(frame);
    }
    frame.lazy().with_columns(casts).collect().map_err(|error| {
        DataError::Invalid(format!("cannot convert to the requested types: {error}"))
    })
}

/// What an uploaded or imported Parquet file may claim: the ingest limits' columns and memory
/// (its rows are bounded by the memory estimate, as a CSV's are).
pub fn upload_parquet_limits(limits: &IngestLimits) -> ParquetLimits {
    ParquetLimits {
        max_rows: u64::MAX,
        max_columns: limits.max_columns,
        memory_bytes: limits.memory_bytes,
    }
}

/// Reads an uploaded or imported Parquet file: checked by [`parquet_guard`] first, so a
/// malformed file is a 422 naming the cause (413 when it would need too much memory), never
/// an abort or a panic.
pub fn read_parquet(path: &Path, limits: &ParquetLimits) -> Result<DataFrame, DataError> {
    let file = File::open(path).map_err(DataError::io)?;
    let refused = |refusal| match refusal {
        ParquetRefusal::Malformed(cause) => {
            DataError::Invalid(format!("not a readable Parquet file: {cause}"))
        }
        ParquetRefusal::OverMemory { estimate, limit } => DataError::OverMemory { estimate, limit },
    };
    parquet_guard::check_file(&file, limits).map_err(refused)?;
    parquet_without_panics(|| ParquetReader::new(file).finish()).map_err(refused)
}

/// Reads a dataset's Parquet object, checked by [`parquet_guard`] first against `limits` (what
/// the dataset's row records). A refusal names the cause; the caller reports the object as
/// damaged.
pub fn read_parquet_bytes(
    bytes: bytes::Bytes,
    limits: &ParquetLimits,
) -> Result<DataFrame, ParquetRefusal> {
    parquet_guard::check_bytes(&bytes, limits)?;
    parquet_without_panics(|| ParquetReader::new(std::io::Cursor::new(bytes)).finish())
}

/// polars' read of a file the guard accepted. A failure or a panic the guard did not foresee
/// (it checks what decoding allocates from, not every value) is a refusal too.
fn parquet_without_panics(
    read: impl FnOnce() -> PolarsResult<DataFrame>,
) -> Result<DataFrame, ParquetRefusal> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)) {
        Ok(Ok(frame)) => Ok(frame),
        Ok(Err(error)) => Err(ParquetRefusal::Malformed(error.to_string())),
        Err(panic) => Err(ParquetRefusal::Malformed(format!(
            "the reader panicked: {}",
            parquet_guard::panic_detail(panic.as_ref())
        ))),
    }
}

/// `frame` as a Parquet file in memory (what a dataset's object holds).
pub fn parquet_bytes(frame: &mut DataFrame) -> Result<Vec<u8>, DataError> {
    let mut buffer = Vec::new();
    ParquetWriter::new(&mut buffer)
        .finish(frame)
        .map_err(|error| DataError::Internal(anyhow::anyhow!("writing Parquet: {error}")))?;
    Ok(buffer)
}

/// Name and dtype of every column.
pub fn column_infos(frame: &DataFrame) -> Vec<ColumnInfo> {
    frame
        .schema()
        .iter()
        .map(|(name, dtype)| ColumnInfo {
            name: name.to_string(),
            dtype: dtype.to_string(),
        })
        .collect()
}

/// Brings `rows` to the columns and types of `existing` for an append: same column names (any
/// order), each value castable to the existing type.
pub fn conform_for_append(existing: &DataFrame, rows: DataFrame) -> Result<DataFrame, DataError> {
    let wanted = existing.schema();
    let got = rows.schema().clone();
    let missing: Vec<&str> = wanted
        .iter_names()
        .filter(|name| !got.contains(name.as_str()))
        .map(|name| name.as_str())
        .collect();
    let unexpected: Vec<&str> = got
        .iter_names()
        .filter(|name| !wanted.contains(name.as_str()))
        .map(|name| name.as_str())
        .collect();
    if !missing.is_empty() || !unexpected.is_empty() {
        return Err(DataError::Invalid(format!(
            "appended rows must have the dataset's columns; missing: [{}], unexpected: [{}]",
            missing.join(", "),
            unexpected.join(", ")
        )));
    }
    let casts: Vec<Expr> = wanted
        .iter()
        .map(|(name, dtype)| col(name.as_str()).strict_cast(dtype.clone()))
        .collect();
    rows.lazy().select(casts).collect().map_err(|error| {
        DataError::Invalid(format!(
            "appended rows do not convert to the dataset's column types: {error}"
        ))
    })
}

/// Longest line the text checks accept; beyond it the file is refused (guards memory).
const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// Reads `path` line by line (`\n`-terminated, `\r` kept), calling `check(line_number, line)`.
fn for_each_line(
    path: &Path,
    mut check: impl FnMut(u64, &[u8]) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path).map_err(DataError::io)?);
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let read = std::io::Read::take(&mut reader, MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(DataError::io)?;
        if read == 0 {
            return Ok(());
        }
        number += 1;
        if line.len() > MAX_LINE_BYTES {
            return Err(DataError::Invalid(format!(
                "line {number} is longer than {MAX_LINE_BYTES} bytes"
            )));
        }
        check(number, &line)?;
    }
}

fn check_utf8(number: u64, line: &[u8]) -> Result<(), DataError> {
    std::str::from_utf8(line).map(|_| ()).map_err(|error| {
        DataError::Invalid(format!(
            "the file is not valid UTF-8: line {number}, byte {} of the line (re-encode it as \
             UTF-8)",
            error.valid_up_to() + 1
        ))
    })
}

/// UTF-8 everywhere, every CSV record with as many fields as the header, and the limits.
/// Quoted fields may contain separators, doubled quotes and line breaks.
/// Returns the shape and the separator told from the header.
fn check_csv(path: &Path, limits: &IngestLimits) -> Result<(Shape, u8), DataError> {
    let mut scan = CsvScan::new(*limits);
    for_each_line(path, |number, line| {
        check_utf8(number, line)?;
        scan.line(number, line)
    })?;
    let separator = scan.separator();
    Ok((scan.finish()?, separator))
}

/// UTF-8 everywhere, the limits, and for NDJSON every non-blank line one JSON value.
fn check_json_text(path: &Path, lines: bool, limits: &IngestLimits) -> Result<Shape, DataError> {
    let mut scan = JsonScan::new(*limits, lines);
    for_each_line(path, |number, line| {
        check_utf8(number, line)?;
        // The scan first: serde_json below never sees a line nested beyond the limit.
        scan.feed(line)?;
        if lines && !line.trim_ascii().is_empty() {
            serde_json::from_slice::<serde::de::IgnoredAny>(line).map_err(|error| {
                DataError::Invalid(format!(
                    "line {number} is not JSON: {error} (NDJSON needs one object per line)"
                ))
            })?;
        }
        Ok(())
    })?;
    Ok(scan.finish())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn file(content: &[u8]) -> tempfile_path::TempPath {
        tempfile_path::TempPath::with(content)
    }

    /// A file under the system temp dir, removed on drop (no tempfile dependency).
    mod tempfile_path {
        pub(super) struct TempPath(pub(super) std::path::PathBuf);
        impl TempPath {
            pub(super) fn with(content: &[u8]) -> Self {
                let path = std::env::temp_dir().join(format!(
                    "edgebrain-ingest-{}",
                    uuid::Uuid::new_v4().simple()
                ));
                std::fs::write(&path, content).unwrap();
                Self(path)
            }
        }
        impl Drop for TempPath {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    fn options(format: DataFormat) -> IngestOptions {
        IngestOptions {
            format,
            overrides: SchemaOverrides::new(),
            infer_schema_rows: 100,
            limits: IngestLimits::default(),
        }
    }

    fn message(result: Result<DataFrame, DataError>) -> String {
        match result {
            Err(DataError::Invalid(message)) => message,
            other => panic!("expected an Invalid error, got {other:?}"),
        }
    }

    #[test]
    fn ragged_csv_rows_are_named() {
        let csv = file(b"a,b\n1,2\n\"x,y\",3\n4,5,6\n");
        let text = message(read_file(&csv.0, &options(DataFormat::Csv)));
        assert!(text.contains("row 3") && text.contains("line 4"), "{text}");
    }

    #[test]
    fn semicolon_tab_and_pipe_separated_files_are_read_as_such() {
        for separator in [";", "\t", "|"] {
            let text = format!("store{separator}qty\n1{separator}2,5\n3{separator}4\n");
            let csv = file(text.as_bytes());
            let frame = read_file(&csv.0, &options(DataFormat::Csv)).unwrap();
            assert_eq!(frame.width(), 2, "{separator:?}");
            assert_eq!(frame.height(), 2, "{separator:?}");
        }
    }

    #[test]
    fn quoted_line_breaks_do_not_count_as_rows() {
        let csv = file(b"a,b\n\"multi\nline\",2\n3,4\n");
        let frame = read_file(&csv.0, &options(DataFormat::Csv)).unwrap();
        assert_eq!(frame.height(), 2);
    }

    #[test]
    fn invalid_utf8_is_located() {
        let csv = file(b"a,b\n1,2\n3,caf\xe9\n");
        let text = message(read_file(&csv.0, &options(DataFormat::Csv)));
        assert!(text.contains("UTF-8") && text.contains("line 3"), "{text}");
    }

    #[test]
    fn bad_ndjson_lines_are_located() {
        let json = file(b"{\"a\":1}\n{\"a\":2\n");
        let text = message(read_file(&json.0, &options(DataFormat::Ndjson)));
        assert!(text.contains("line 2"), "{text}");
    }

    #[test]
    fn overrides_change_inferred_types_and_unknown_columns_are_refused() {
        let csv = file(b"id,price\n1,2\n3,4\n");
        let mut with = options(DataFormat::Csv);
        with.overrides = parse_overrides("price:float64, id:string").unwrap();
        let frame = read_file(&csv.0, &with).unwrap();
        assert_eq!(frame.schema().get("price"), Some(&DataType::Float64));
        assert_eq!(frame.schema().get("id"), Some(&DataType::String));
        assert!(parse_overrides("price:decimal").is_err());
        assert!(parse_overrides("price").is_err());
    }

    #[test]
    fn truncated_parquet_is_refused_as_invalid() {
        let mut frame = df!("x" => [1i64, 2, 3]).unwrap();
        let bytes = parquet_bytes(&mut frame).unwrap();
        let truncated = file(&bytes[..bytes.len() / 2]);
        let text = message(read_file(&truncated.0, &options(DataFormat::Parquet)));
        assert!(text.contains("Parquet"), "{text}");
        let limits = upload_parquet_limits(&IngestLimits::default());
        let half = bytes::Bytes::from(bytes[..bytes.len() / 2].to_vec());
        assert!(read_parquet_bytes(half, &limits).is_err());
        let fake = bytes::Bytes::from_static(b"PAR1 not parquet PAR1");
        assert!(read_parquet_bytes(fake, &limits).is_err());
        let whole = read_parquet_bytes(bytes::Bytes::from(bytes), &limits).unwrap();
        assert_eq!(whole.height(), 3);
    }

    #[test]
    fn the_fuzzers_malformed_parquet_uploads_are_refused_as_invalid_naming_the_cause() {
        // The fuzz inputs are a format byte, then the file. Reading the first one without the
        // Parquet guard aborts this test process (a 2^61-byte allocation).
        for (input, cause) in [
            (
                &include_bytes!("../../../fuzz/open-crashes/ingest-parquet-alloc-2e61")[..],
                "negative count",
            ),
            (
                &include_bytes!("../../../fuzz/open-crashes/ingest-parquet-crash-3429e0cd")[..],
                "metadata",
            ),
        ] {
            let upload = file(&input[1..]);
            let text = message(read_file(&upload.0, &options(DataFormat::Parquet)));
            assert!(
                text.starts_with("not a readable Parquet file: ") && text.contains(cause),
                "{text}"
            );
        }
    }
}
