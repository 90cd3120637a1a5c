//! Checks a Parquet file's footer and every page header before polars decodes it.
//!
//! polars-parquet 0.55 trusts what a file claims: a data page whose header says −7 values makes
//! its decoder reserve 2^61 bytes (the failed allocation aborts the process, it is no panic); a
//! footer list that claims 2^31 elements is pre-sized before one is read; a schema nested a
//! million groups deep is built recursively (a stack overflow, an abort too); a page that claims
//! 2 GiB once decompressed gets a zeroed 2 GiB buffer; and some malformed footers panic
//! (`expect("thrift bool field")`). Found by fuzzing (BENCHMARKS.md, "Fuzzing").
//!
//! So before polars sees a file, [`check_file`] / [`check_bytes`]:
//! 1. walk the footer's Thrift with bounded work: every list at most as long as the bytes left
//!    (and [`MAX_FOOTER_LIST`]), every string inside the footer, nesting at most
//!    [`MAX_THRIFT_DEPTH`], and each field polars reads of the type polars reads it as (its
//!    decoder goes by field id alone, so a mistyped field would be read from other bytes than
//!    this walk read); the schema tree at most [`MAX_SCHEMA_DEPTH`] deep; every column chunk's
//!    byte range computable (polars unwraps an overflowing one);
//! 2. only then let polars parse the footer (a panic is caught and is a refusal);
//! 3. check what the footer claims: row counts consistent and within the limits, each column
//!    chunk inside the file, fixed-size values of a sane width;
//! 4. read every page header (never a page's values) of every column chunk, exactly the pages
//!    polars' page reader would visit, and refuse negative counts, more values in a flat
//!    column's pages than its row group has rows, nulls or rows beyond a page's values, a page
//!    that decompresses to more than [`MAX_PAGE_BYTES`] or extends past its chunk, a dictionary
//!    with more entries than its chunk has values;
//! 5. estimate the memory decoding needs (values × their width, the decompressed pages, a fixed
//!    cost per column) and refuse it beyond the limit ([`ParquetRefusal::OverMemory`]).
//!
//! The guard allocates only the footer (at most [`MAX_FOOTER_BYTES`]) and a small read buffer,
//! recurses at most [`MAX_THRIFT_DEPTH`] deep, and does no arithmetic that can overflow. Its
//! cost is one read of the footer and of each page header (measured in BENCHMARKS.md).

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};

use polars_parquet::parquet::metadata::FileMetadata;
use polars_parquet::parquet::read::deserialize_metadata;
use polars_parquet::parquet::schema::types::PhysicalType;
use polars_parquet_format::thrift::protocol::TCompactInputProtocol;
use polars_parquet_format::{PageHeader, PageType};

use super::precheck::PER_COLUMN_BYTES;

/// Largest footer (the file's metadata) read. Real footers are kilobytes to a few megabytes
/// (about 150 bytes per column chunk); this bounds the footer buffer and, with
/// [`MAX_FOOTER_LIST`], what polars pre-sizes while parsing it.
pub const MAX_FOOTER_BYTES: u64 = 64 * 1024 * 1024;
/// Most elements of one list in the footer (schema elements, row groups, column chunks of a row
/// group, …): polars reserves room for a list's claimed length before reading it.
pub const MAX_FOOTER_LIST: u64 = 1 << 20;
/// Deepest nesting of Thrift structs in the footer (polars' own footers nest 6 deep).
pub const MAX_THRIFT_DEPTH: usize = 32;
/// Deepest schema tree: polars builds it recursively. A list column takes three levels, a struct
/// one; 64 holds the 16 levels of nesting JSON uploads may have, and more.
pub const MAX_SCHEMA_DEPTH: usize = 64;
/// Largest page, compressed or decompressed: polars allocates the decompressed size up front
/// (zeroed). Writers cut pages at about 1 MiB (polars, Arrow, Spark, DuckDB).
pub const MAX_PAGE_BYTES: u64 = 256 * 1024 * 1024;
/// Largest page header (with its statistics): a budget for what decoding it may allocate.
const MAX_PAGE_HEADER_BYTES: usize = 16 * 1024 * 1024;
/// Widest fixed-size value (decimals take up to 32 bytes, UUIDs 16).
pub const MAX_FIXED_LEN_BYTES: usize = 4096;

/// What a Parquet file may claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParquetLimits {
    /// Most rows (a stored object: its dataset's recorded row count).
    pub max_rows: u64,
    /// Most top-level columns.
    pub max_columns: usize,
    /// Most memory decoding may need, by [`ParquetShape::estimated_memory`].
    pub memory_bytes: u64,
}

/// What the guard found in an accepted file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParquetShape {
    pub rows: u64,
    /// Top-level columns.
    pub columns: usize,
    /// Leaf (primitive) columns: a struct column has one per primitive field it holds.
    pub leaf_columns: usize,
    /// Values the decoder materialises (a flat column: one per row; a nested one: one per
    /// entry), each counted with its width in bits plus one for validity.
    pub value_bits: u64,
    /// Bytes of the pages once decompressed.
    pub page_bytes: u64,
}

impl ParquetShape {
    /// An upper estimate of the memory polars needs to decode the file: its values, its
    /// decompressed pages (held while their values are decoded; strings keep their bytes), and
    /// the fixed cost per column of polars' readers ([`PER_COLUMN_BYTES`]).
    pub fn estimated_memory(&self) -> u64 {
        (self.value_bits / 8)
            .saturating_add(self.page_bytes)
            .saturating_add((self.leaf_columns as u64).saturating_mul(PER_COLUMN_BYTES))
    }
}

/// Why a file is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParquetRefusal {
    /// Malformed, or claiming more than its bytes justify: the message names what and where.
    Malformed(String),
    /// Decoding it would need more memory than the limit.
    OverMemory { estimate: u64, limit: u64 },
}

impl std::fmt::Display for ParquetRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(cause) => f.write_str(cause),
            Self::OverMemory { estimate, limit } => write!(
                f,
                "decoding it would need about {estimate} bytes of memory, more than the limit of \
                 {limit} bytes"
            ),
        }
    }
}

type Checked<T> = Result<T, ParquetRefusal>;

fn malformed<T>(cause: impl Into<String>) -> Checked<T> {
    Err(ParquetRefusal::Malformed(cause.into()))
}

/// Checks the Parquet file `file` (see the module documentation).
pub fn check_file(file: &File, limits: &ParquetLimits) -> Checked<ParquetShape> {
    let len = file
        .metadata()
        .or_else(|error| malformed(format!("the file cannot be read: {error}")))?
        .len();
    // Small: the guard reads headers, then seeks past each page.
    check(&mut BufReader::with_capacity(8 * 1024, file), len, limits)
}

/// Checks a Parquet file held in memory (see the module documentation).
pub fn check_bytes(bytes: &[u8], limits: &ParquetLimits) -> Checked<ParquetShape> {
    check(&mut std::io::Cursor::new(bytes), bytes.len() as u64, limits)
}

fn check<R: Read + Seek>(
    reader: &mut R,
    len: u64,
    limits: &ParquetLimits,
) -> Checked<ParquetShape> {
    // The guard itself must not take the process down either: any panic (polars' footer parser
    // has some) is a refusal.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_unwinding(reader, len, limits)
    }))
    .unwrap_or_else(|panic| {
        malformed(format!(
            "malformed Parquet metadata (the reader panicked: {})",
            panic_detail(panic.as_ref())
        ))
    })
}

/// The message of a caught panic.
pub(super) fn panic_detail(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned())
}

fn check_unwinding<R: Read + Seek>(
    reader: &mut R,
    len: u64,
    limits: &ParquetLimits,
) -> Checked<ParquetShape> {
    let io = |error: std::io::Error| {
        ParquetRefusal::Malformed(format!("the file cannot be read: {error}"))
    };
    const MAGIC: &[u8; 4] = b"PAR1";
    if len < 12 {
        return malformed("not a Parquet file (too short)");
    }
    let mut head = [0u8; 4];
    reader.seek(SeekFrom::Start(0)).map_err(io)?;
    reader.read_exact(&mut head).map_err(io)?;
    let mut tail = [0u8; 8];
    reader.seek(SeekFrom::Start(len - 8)).map_err(io)?;
    reader.read_exact(&mut tail).map_err(io)?;
    if &head != MAGIC || &tail[4..] != MAGIC {
        return malformed("not a Parquet file (it must start and end with PAR1)");
    }
    let footer_len = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    if footer_len > len - 12 {
        return malformed(format!(
            "the footer claims {footer_len} bytes, more than the file holds"
        ));
    }
    if footer_len > MAX_FOOTER_BYTES {
        return malformed(format!(
            "the footer is {footer_len} bytes, more than the limit of {MAX_FOOTER_BYTES}"
        ));
    }
    let data_end = len - 8 - footer_len;
    let mut footer = vec![0u8; footer_len as usize];
    reader.seek(SeekFrom::Start(data_end)).map_err(io)?;
    reader.read_exact(&mut footer).map_err(io)?;

    FooterWalk::new(&footer).file_metadata()?;
    let metadata = deserialize_metadata(footer.into())
        .or_else(|error| malformed(format!("malformed Parquet metadata: {error}")))?;
    check_columns(reader, &metadata, data_end, limits)
}

/// Row groups and column chunks as the footer describes them, then every chunk's pages.
fn check_columns<R: Read + Seek>(
    reader: &mut R,
    metadata: &FileMetadata,
    data_end: u64,
    limits: &ParquetLimits,
) -> Checked<ParquetShape> {
    let schema = &metadata.schema_descr;
    let mut shape = ParquetShape {
        columns: schema.fields().len(),
        leaf_columns: schema.columns().len(),
        ..ParquetShape::default()
    };
    if shape.columns > limits.max_columns {
        return malformed(format!(
            "the file has {} columns, more than the limit of {}",
            shape.columns, limits.max_columns
        ));
    }
    for column in schema.columns() {
        if let PhysicalType::FixedLenByteArray(width) =
            column.descriptor.primitive_type.physical_type
            && width > MAX_FIXED_LEN_BYTES
        {
            return malformed(format!(
                "column `{}` has {width}-byte values, more than the limit of \
                 {MAX_FIXED_LEN_BYTES}",
                column.path_in_schema.join(".")
            ));
        }
    }
    for group in &metadata.row_groups {
        shape.rows = shape.rows.saturating_add(group.num_rows() as u64);
    }
    if shape.rows != metadata.num_rows as u64 {
        return malformed(format!(
            "the footer claims {} rows but its row groups hold {}",
            metadata.num_rows, shape.rows
        ));
    }
    if shape.rows > limits.max_rows {
        return malformed(format!(
            "the file claims {} rows, more than the {} expected",
            shape.rows, limits.max_rows
        ));
    }
    for (index, group) in metadata.row_groups.iter().enumerate() {
        let rows = group.num_rows() as u64;
        for chunk in group.parquet_columns() {
            let column = &chunk.descriptor();
            let at = |what: String| {
                ParquetRefusal::Malformed(format!(
                    "row group {index}, column `{}`: {what}",
                    column.path_in_schema.join(".")
                ))
            };
            let chunk_values = u64::try_from(chunk.num_values())
                .map_err(|_| at(format!("{} values claimed", chunk.num_values())))?;
            let flat = column.descriptor.max_rep_level == 0;
            if flat && chunk_values > rows {
                return Err(at(format!(
                    "{chunk_values} values in a row group of {rows} rows"
                )));
            }
            let start = chunk
                .dictionary_page_offset()
                .unwrap_or_else(|| chunk.data_page_offset());
            let range = u64::try_from(start)
                .ok()
                .zip(u64::try_from(chunk.compressed_size()).ok())
                .and_then(|(start, size)| Some(start..start.checked_add(size)?))
                .filter(|range| range.start >= 4 && range.end <= data_end)
                .ok_or_else(|| {
                    at(format!(
                        "its bytes ({} from offset {start}) are not inside the file",
                        chunk.compressed_size()
                    ))
                })?;
            let pages = Pages {
                range,
                values: chunk_values,
                rows,
                flat,
            }
            .walk(reader)
            .map_err(at)?;
            let width = value_bits(&column.descriptor.primitive_type.physical_type) + 1;
            // What polars materialises: a flat column's rows; a nested one's entries (the pages
            // polars reads cover at least the chunk's claimed values, which it reserves).
            let materialised = if flat { rows } else { pages.values };
            shape.value_bits = shape
                .value_bits
                .saturating_add(materialised.saturating_mul(width))
                .saturating_add(pages.dictionary_values.saturating_mul(width));
            shape.page_bytes = shape.page_bytes.saturating_add(pages.bytes);
        }
    }
    let estimate = shape.estimated_memory();
    if estimate > limits.memory_bytes {
        return Err(ParquetRefusal::OverMemory {
            estimate,
            limit: limits.memory_bytes,
        });
    }
    Ok(shape)
}

/// Bits of one decoded value (a string is a 16-byte view; its bytes are counted with the pages).
fn value_bits(physical: &PhysicalType) -> u64 {
    match physical {
        PhysicalType::Boolean => 1,
        PhysicalType::Int32 | PhysicalType::Float => 32,
        PhysicalType::Int64 | PhysicalType::Double => 64,
        PhysicalType::Int96 => 96,
        PhysicalType::ByteArray => 128,
        PhysicalType::FixedLenByteArray(width) => (*width as u64).saturating_mul(8),
    }
}

/// One column chunk's pages, read the way polars' page reader reads them: from the chunk's
/// start, page after page, until the data pages' values reach the chunk's.
#[derive(Debug)]
struct Pages {
    range: std::ops::Range<u64>,
    /// Values the chunk claims.
    values: u64,
    /// Rows of its row group.
    rows: u64,
    /// Not repeated: one value per row.
    flat: bool,
}

/// What a chunk's pages hold.
#[derive(Debug, Default)]
struct PagesFound {
    /// Values of its data pages.
    values: u64,
    /// Entries of its dictionary.
    dictionary_values: u64,
    /// Bytes of its pages once decompressed.
    bytes: u64,
}

impl Pages {
    fn walk<R: Read + Seek>(&self, reader: &mut R) -> Result<PagesFound, String> {
        let mut found = PagesFound::default();
        let mut position = self.range.start;
        let mut data_pages = 0u64;
        reader
            .seek(SeekFrom::Start(position))
            .map_err(|error| format!("cannot be read: {error}"))?;
        // polars reads a chunk's first page as a possible dictionary whatever values the chunk
        // claims (even none), then data pages until their values reach the chunk's.
        while found.values < self.values || (position == self.range.start && !self.range.is_empty())
        {
            let left = self.range.end - position;
            if left == 0 {
                return Err(format!(
                    "its pages end after {} of its {} values",
                    found.values, self.values
                ));
            }
            let mut limited = (&mut *reader).take(left);
            let header = {
                let mut protocol = TCompactInputProtocol::new(&mut limited, MAX_PAGE_HEADER_BYTES);
                PageHeader::read_from_in_protocol(&mut protocol).map_err(|error| {
                    format!("unreadable page header at byte {position}: {error}")
                })?
            };
            position += left - limited.limit();
            let page = position;
            let compressed = u64::try_from(header.compressed_page_size).ok();
            let uncompressed = u64::try_from(header.uncompressed_page_size).ok();
            let (Some(compressed), Some(uncompressed)) = (compressed, uncompressed) else {
                return Err(format!(
                    "the page at byte {page} claims a negative size ({} compressed, {} \
                     decompressed)",
                    header.compressed_page_size, header.uncompressed_page_size
                ));
            };
            if compressed > self.range.end - position {
                return Err(format!(
                    "the page at byte {page} ({compressed} bytes) extends past its column chunk"
                ));
            }
            if uncompressed > MAX_PAGE_BYTES {
                return Err(format!(
                    "the page at byte {page} decompresses to {uncompressed} bytes, more than the \
                     limit of {MAX_PAGE_BYTES}"
                ));
            }
            found.bytes = found.bytes.saturating_add(uncompressed);
            match header.type_ {
                PageType::DATA_PAGE => {
                    let Some(data) = &header.data_page_header else {
                        return Err(format!("the data page at byte {page} has no data header"));
                    };
                    found.values = self.data_page(page, &found, data.num_values, None, None)?;
                    data_pages += 1;
                }
                PageType::DATA_PAGE_V2 => {
                    let Some(data) = &header.data_page_header_v2 else {
                        return Err(format!("the data page at byte {page} has no data header"));
                    };
                    let levels = i64::from(data.definition_levels_byte_length)
                        + i64::from(data.repetition_levels_byte_length);
                    if data.definition_levels_byte_length < 0
                        || data.repetition_levels_byte_length < 0
                        || levels > i64::from(header.compressed_page_size)
                    {
                        return Err(format!(
                            "the data page at byte {page} claims levels of {} + {} bytes in a \
                             page of {compressed}",
                            data.definition_levels_byte_length, data.repetition_levels_byte_length
                        ));
                    }
                    found.values = self.data_page(
                        page,
                        &found,
                        data.num_values,
                        Some(data.num_nulls),
                        Some(data.num_rows),
                    )?;
                    data_pages += 1;
                }
                PageType::DICTIONARY_PAGE => {
                    let Some(dictionary) = &header.dictionary_page_header else {
                        return Err(format!(
                            "the dictionary page at byte {page} has no dictionary header"
                        ));
                    };
                    if data_pages > 0 || found.dictionary_values > 0 {
                        return Err(format!(
                            "the dictionary page at byte {page} is not the chunk's first page"
                        ));
                    }
                    // A dictionary holds values of its chunk: never more entries than those.
                    match u64::try_from(dictionary.num_values) {
                        Ok(entries) if entries <= self.values => {
                            found.dictionary_values = entries;
                        }
                        _ => {
                            return Err(format!(
                                "the dictionary page at byte {page} claims {} entries for a \
                                 chunk of {} values",
                                dictionary.num_values, self.values
                            ));
                        }
                    }
                }
                other => {
                    return Err(format!(
                        "the page at byte {page} is of a type polars does not read ({})",
                        other.0
                    ));
                }
            }
            position += compressed;
            reader
                .seek(SeekFrom::Start(position))
                .map_err(|error| format!("cannot be read: {error}"))?;
        }
        Ok(found)
    }

    /// Checks one data page's counts; returns the chunk's values so far with this page's.
    fn data_page(
        &self,
        page: u64,
        found: &PagesFound,
        values: i32,
        nulls: Option<i32>,
        rows: Option<i32>,
    ) -> Result<u64, String> {
        let counts = [("values", Some(values)), ("nulls", nulls), ("rows", rows)];
        let claimed = || {
            counts
                .iter()
                .filter_map(|(name, count)| Some(format!("{} {name}", (*count)?)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if counts
            .iter()
            .any(|(_, count)| count.is_some_and(|count| count < 0))
        {
            return Err(format!(
                "the data page at byte {page} claims a negative count ({})",
                claimed()
            ));
        }
        let beyond_values = |count: Option<i32>| count.is_some_and(|count| count > values);
        if beyond_values(nulls) || beyond_values(rows) {
            return Err(format!(
                "the data page at byte {page} claims more nulls or rows than values ({})",
                claimed()
            ));
        }
        let total = found.values.saturating_add(values as u64);
        // A flat column has one value per row: its pages hold no more than the row group.
        if self.flat && total > self.rows {
            return Err(format!(
                "the data page at byte {page} brings its values to {total}, more than the row \
                 group's {} rows",
                self.rows
            ));
        }
        if rows.is_some_and(|rows| rows as u64 > self.rows) {
            return Err(format!(
                "the data page at byte {page} claims {} rows, more than the row group's {}",
                rows.unwrap_or(0),
                self.rows
            ));
        }
        Ok(total)
    }
}

/// Thrift compact types (the low nibble of a field or list header).
mod compact {
    pub(super) const STOP: u8 = 0;
    pub(super) const TRUE: u8 = 1;
    pub(super) const FALSE: u8 = 2;
    pub(super) const BYTE: u8 = 3;
    pub(super) const I16: u8 = 4;
    pub(super) const I32: u8 = 5;
    pub(super) const I64: u8 = 6;
    pub(super) const DOUBLE: u8 = 7;
    pub(super) const BINARY: u8 = 8;
    pub(super) const LIST: u8 = 9;
    pub(super) const SET: u8 = 10;
    pub(super) const MAP: u8 = 11;
    pub(super) const STRUCT: u8 = 12;
}

/// The footer structs polars decodes field by field; [`Struct::Any`] is one whose fields it
/// skips by their declared type (as this walk does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Struct {
    FileMetaData,
    SchemaElement,
    RowGroup,
    ColumnChunk,
    ColumnMetaData,
    Statistics,
    KeyValue,
    SortingColumn,
    ColumnOrder,
    LogicalType,
    DecimalType,
    TimeType,
    TimeUnit,
    IntType,
    Any,
}

/// The type polars reads a field as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// A varint (i16, i32 or i64: polars reads any of them the same way).
    Int,
    Byte,
    Bool,
    Binary,
    Struct(Struct),
    ListOfInt,
    ListOfBinary,
    ListOf(Struct),
}

impl Field {
    /// What a list field holds.
    fn element(self) -> Option<Field> {
        match self {
            Self::ListOfInt => Some(Self::Int),
            Self::ListOfBinary => Some(Self::Binary),
            Self::ListOf(kind) => Some(Self::Struct(kind)),
            _ => None,
        }
    }

    fn name(self) -> String {
        match self {
            Self::Int => "an integer".to_owned(),
            Self::Byte => "a byte".to_owned(),
            Self::Bool => "a bool".to_owned(),
            Self::Binary => "binary".to_owned(),
            Self::Struct(kind) => format!("a {kind:?} struct"),
            Self::ListOfInt => "a list of integers".to_owned(),
            Self::ListOfBinary => "a list of binary".to_owned(),
            Self::ListOf(kind) => format!("a list of {kind:?} structs"),
        }
    }
}

/// Whether a field declared as compact type `declared` is what polars reads as `field`.
fn declared_as(field: Field, declared: u8) -> bool {
    match field {
        Field::Int => matches!(declared, compact::I16 | compact::I32 | compact::I64),
        Field::Byte => declared == compact::BYTE,
        Field::Bool => matches!(declared, compact::TRUE | compact::FALSE),
        Field::Binary => declared == compact::BINARY,
        Field::Struct(_) => declared == compact::STRUCT,
        Field::ListOfInt | Field::ListOfBinary | Field::ListOf(_) => declared == compact::LIST,
    }
}

/// A compact type's name, for messages.
fn type_name(kind: u8) -> &'static str {
    match kind {
        compact::TRUE | compact::FALSE => "bool",
        compact::BYTE => "byte",
        compact::I16 => "i16",
        compact::I32 => "i32",
        compact::I64 => "i64",
        compact::DOUBLE => "double",
        compact::BINARY => "binary",
        compact::LIST => "list",
        compact::SET => "set",
        compact::MAP => "map",
        compact::STRUCT => "struct",
        _ => "an unknown type",
    }
}

/// The fields polars' footer decoder (polars-parquet 0.55.2, `handwritten_thrift`) reads, by
/// struct and field id; other fields it skips by their declared type.
fn expected_field(parent: Struct, id: i16) -> Option<Field> {
    use Field::{Binary, Bool, Byte, Int, ListOf, ListOfBinary, ListOfInt};
    let field = match (parent, id) {
        (Struct::FileMetaData, 1 | 3) => Int,
        (Struct::FileMetaData, 2) => ListOf(Struct::SchemaElement),
        (Struct::FileMetaData, 4) => ListOf(Struct::RowGroup),
        (Struct::FileMetaData, 5) => ListOf(Struct::KeyValue),
        (Struct::FileMetaData, 6) => Binary,
        (Struct::FileMetaData, 7) => ListOf(Struct::ColumnOrder),
        (Struct::SchemaElement, 1..=3 | 5..=9) => Int,
        (Struct::SchemaElement, 4) => Binary,
        (Struct::SchemaElement, 10) => Field::Struct(Struct::LogicalType),
        (Struct::RowGroup, 1) => ListOf(Struct::ColumnChunk),
        (Struct::RowGroup, 2 | 3 | 5..=7) => Int,
        (Struct::RowGroup, 4) => ListOf(Struct::SortingColumn),
        (Struct::ColumnChunk, 1) => Binary,
        (Struct::ColumnChunk, 2 | 4..=7) => Int,
        (Struct::ColumnChunk, 3) => Field::Struct(Struct::ColumnMetaData),
        (Struct::ColumnMetaData, 1 | 4..=7 | 9..=11 | 14 | 15) => Int,
        (Struct::ColumnMetaData, 2) => ListOfInt,
        (Struct::ColumnMetaData, 3) => ListOfBinary,
        (Struct::ColumnMetaData, 12) => Field::Struct(Struct::Statistics),
        (Struct::Statistics, 1 | 2 | 5 | 6) => Binary,
        (Struct::Statistics, 3 | 4) => Int,
        (Struct::Statistics, 7 | 8) => Bool,
        (Struct::KeyValue, 1 | 2) => Binary,
        (Struct::SortingColumn, 1) => Int,
        (Struct::SortingColumn, 2 | 3) => Bool,
        (Struct::ColumnOrder, 1 | 2) => Field::Struct(Struct::Any),
        (Struct::LogicalType, 1..=4 | 6 | 11..=15) => Field::Struct(Struct::Any),
        (Struct::LogicalType, 5) => Field::Struct(Struct::DecimalType),
        (Struct::LogicalType, 7 | 8) => Field::Struct(Struct::TimeType),
        (Struct::LogicalType, 10) => Field::Struct(Struct::IntType),
        (Struct::DecimalType, 1 | 2) => Int,
        (Struct::TimeType, 1) => Bool,
        (Struct::TimeType, 2) => Field::Struct(Struct::TimeUnit),
        (Struct::TimeUnit, 1..=3) => Field::Struct(Struct::Any),
        (Struct::IntType, 1) => Byte,
        (Struct::IntType, 2) => Bool,
        _ => return None,
    };
    Some(field)
}

/// A bounded walk over the footer's Thrift compact encoding (see the module documentation):
/// it reads, allocates nothing but the schema depth stack, and fails on the first thing polars
/// could not safely decode.
struct FooterWalk<'a> {
    bytes: &'a [u8],
    position: usize,
    /// Children still expected by each open group of the schema tree, innermost last.
    open_groups: Vec<i64>,
}

impl<'a> FooterWalk<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            position: 0,
            open_groups: Vec::new(),
        }
    }

    fn fail<T>(&self, what: &str) -> Checked<T> {
        malformed(format!(
            "malformed Parquet metadata: {what} (footer byte {})",
            self.position
        ))
    }

    fn left(&self) -> usize {
        self.bytes.len() - self.position
    }

    fn file_metadata(&mut self) -> Checked<()> {
        self.structure(Struct::FileMetaData, 1).map(|_| ())
    }

    fn byte(&mut self) -> Checked<u8> {
        let Some(&byte) = self.bytes.get(self.position) else {
            return self.fail("it ends early");
        };
        self.position += 1;
        Ok(byte)
    }

    fn skip(&mut self, count: usize) -> Checked<()> {
        if count > self.left() {
            return self.fail("a value extends past its end");
        }
        self.position += count;
        Ok(())
    }

    /// An unsigned LEB128 varint of at most 10 bytes.
    fn varint(&mut self) -> Checked<u64> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f).checked_shl(shift).unwrap_or(0);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        self.fail("a number is longer than 10 bytes")
    }

    fn zigzag(&mut self) -> Checked<i64> {
        let raw = self.varint()?;
        Ok((raw >> 1) as i64 ^ -((raw & 1) as i64))
    }

    /// A list or set length: its elements take a byte each at least, so never more than the
    /// bytes left, nor [`MAX_FOOTER_LIST`].
    fn length(&mut self, length: u64) -> Checked<usize> {
        match usize::try_from(length) {
            Ok(length) if length <= self.left() && length as u64 <= MAX_FOOTER_LIST => Ok(length),
            _ => self.fail(&format!(
                "a list claims {length} elements, more than it can hold"
            )),
        }
    }

    /// A list or set header: the element type and the checked length.
    fn list_header(&mut self) -> Checked<(u8, usize)> {
        let header = self.byte()?;
        let short = u64::from(header >> 4);
        let length = if short == 15 { self.varint()? } else { short };
        Ok((header & 0x0f, self.length(length)?))
    }

    /// A struct's fields up to its stop; the struct's own checks (schema depth) after.
    fn structure(&mut self, kind: Struct, depth: usize) -> Checked<()> {
        if depth > MAX_THRIFT_DEPTH {
            return self.fail("structures nested too deep");
        }
        let mut last_id = 0i16;
        // The integer fields with ids below 16 (all the struct checks below need).
        let mut ints = [None; 16];
        loop {
            let header = self.byte()?;
            let declared = header & 0x0f;
            if declared == compact::STOP {
                break;
            }
            let delta = header >> 4;
            let id = if delta == 0 {
                i16::try_from(self.zigzag()?)
                    .or_else(|_| self.fail("a field id is out of range"))?
            } else {
                last_id
                    .checked_add(i16::from(delta))
                    .map_or_else(|| self.fail("a field id is out of range"), Ok)?
            };
            last_id = id;
            match expected_field(kind, id) {
                None => self.value(declared, depth, true)?,
                Some(field) => {
                    if !declared_as(field, declared) {
                        return self.fail(&format!(
                            "field {id} of {kind:?} is declared {}, polars reads it as {}",
                            type_name(declared),
                            field.name()
                        ));
                    }
                    let value = self.expected(field, declared, depth)?;
                    if let Some(slot) = usize::try_from(id).ok().and_then(|id| ints.get_mut(id)) {
                        *slot = value;
                    }
                }
            }
        }
        match kind {
            Struct::SchemaElement => self.schema_element(ints[5]),
            Struct::ColumnMetaData => self.column_range(ints[11].or(ints[9]), ints[7]),
            _ => Ok(()),
        }
    }

    /// polars computes a column chunk's byte range (from its dictionary or first data page
    /// offset, and its compressed size, as `u64`) with a checked addition it unwraps: a panic
    /// for an overflowing one. The guard checks the range against the file later.
    fn column_range(&self, start: Option<i64>, size: Option<i64>) -> Checked<()> {
        let (start, size) = (start.unwrap_or(0) as u64, size.unwrap_or(0) as u64);
        if start.checked_add(size).is_none() {
            return self.fail("a column chunk's byte range overflows");
        }
        Ok(())
    }

    /// A field polars reads as `field` (declared so: see [`declared_as`]); an integer's value
    /// is returned.
    fn expected(&mut self, field: Field, declared: u8, depth: usize) -> Checked<Option<i64>> {
        if let Some(wanted) = field.element() {
            let (element, length) = self.list_header()?;
            // An empty list's element type means nothing (fastparquet writes 0x00).
            if length > 0 && !declared_as(wanted, element) {
                return self.fail(&format!(
                    "a list of {} where polars reads {}",
                    type_name(element),
                    field.name()
                ));
            }
            for _ in 0..length {
                match wanted {
                    Field::Struct(kind) => self.structure(kind, depth + 1)?,
                    _ => self.value(element, depth, false)?,
                }
            }
            return Ok(None);
        }
        match field {
            Field::Int => return self.zigzag().map(Some),
            Field::Struct(kind) => self.structure(kind, depth + 1)?,
            _ => self.value(declared, depth, true)?,
        }
        Ok(None)
    }

    /// Any value of a declared type. A bool is in its field header; in a list it is a byte.
    fn value(&mut self, kind: u8, depth: usize, in_field: bool) -> Checked<()> {
        if depth > MAX_THRIFT_DEPTH {
            return self.fail("values nested too deep");
        }
        match kind {
            compact::TRUE | compact::FALSE if in_field => Ok(()),
            compact::TRUE | compact::FALSE | compact::BYTE => self.skip(1),
            compact::I16 | compact::I32 | compact::I64 => self.varint().map(|_| ()),
            compact::DOUBLE => self.skip(8),
            compact::BINARY => {
                let length = self.varint()?;
                self.skip(usize::try_from(length).unwrap_or(usize::MAX))
            }
            compact::LIST | compact::SET => {
                let (element, length) = self.list_header()?;
                for _ in 0..length {
                    self.value(element, depth + 1, false)?;
                }
                Ok(())
            }
            compact::MAP => {
                let length = self.varint()?;
                let length = self.length(length)?;
                if length > 0 {
                    let kinds = self.byte()?;
                    for _ in 0..length {
                        self.value(kinds >> 4, depth + 1, false)?;
                        self.value(kinds & 0x0f, depth + 1, false)?;
                    }
                }
                Ok(())
            }
            compact::STRUCT => self.structure(Struct::Any, depth + 1),
            other => self.fail(&format!("a value of unknown compact type {other}")),
        }
    }

    /// One element of the schema's pre-order list: a child of the innermost open group, and a
    /// group itself when it has children. polars builds the tree recursively, so its depth is
    /// bounded here.
    fn schema_element(&mut self, num_children: Option<i64>) -> Checked<()> {
        if let Some(children) = self.open_groups.last_mut() {
            *children -= 1;
        }
        if let Some(children) = num_children.filter(|children| *children > 0) {
            self.open_groups.push(children);
            if self.open_groups.len() > MAX_SCHEMA_DEPTH {
                return self.fail(&format!(
                    "the schema is nested more than {MAX_SCHEMA_DEPTH} levels deep"
                ));
            }
        }
        while self.open_groups.last() == Some(&0) {
            self.open_groups.pop();
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use std::io::Cursor;

    use polars::prelude::*;
    use polars_parquet::parquet::read::read_metadata;
    use polars_parquet_format::thrift::protocol::TCompactOutputProtocol;

    use super::*;
    use crate::data::ingest::{parquet_bytes, read_parquet_bytes};

    const GENEROUS: ParquetLimits = ParquetLimits {
        max_rows: u64::MAX,
        max_columns: 4096,
        memory_bytes: 4 * 1024 * 1024 * 1024,
    };

    /// The fuzzer's inputs are a format byte, then the file (fuzz/fuzz_targets/ingest.rs).
    fn fuzz_file(input: &'static [u8]) -> &'static [u8] {
        &input[1..]
    }

    fn refusal(bytes: &[u8], limits: &ParquetLimits) -> String {
        match check_bytes(bytes, limits) {
            Err(ParquetRefusal::Malformed(cause)) => cause,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// `rows` rows of every kind of column an upload has, with nulls (and a list column).
    fn frame(rows: usize) -> DataFrame {
        let tags: Vec<Series> = (0..rows)
            .map(|i| Series::new(PlSmallStr::EMPTY, vec![i as i64; i % 3]))
            .collect();
        df!(
            "id" => (0..rows as i64).collect::<Vec<_>>(),
            "store" => (0..rows).map(|i| ["north", "south", "east"][i % 3]).collect::<Vec<_>>(),
            "note" => (0..rows).map(|i| (i % 7 != 0).then(|| format!("note number {i}"))).collect::<Vec<_>>(),
            "price" => (0..rows).map(|i| (i % 5 != 0).then_some(i as f64 / 4.0)).collect::<Vec<_>>(),
            "paid" => (0..rows).map(|i| (i % 11 != 0).then_some(i % 2 == 0)).collect::<Vec<_>>(),
            "small" => (0..rows).map(|i| (i % 4) as i32).collect::<Vec<_>>(),
            "tags" => tags,
        )
        .unwrap()
    }

    fn written(
        frame: &mut DataFrame,
        compression: ParquetCompression,
        row_group: usize,
    ) -> Vec<u8> {
        let mut bytes = Vec::new();
        ParquetWriter::new(&mut bytes)
            .with_compression(compression)
            .with_row_group_size(Some(row_group))
            .with_data_page_size(Some(4096))
            .finish(frame)
            .unwrap();
        bytes
    }

    #[test]
    fn files_polars_writes_pass_and_read_back_whole() {
        let mut original = frame(10_000);
        for compression in [
            ParquetCompression::Uncompressed,
            ParquetCompression::Snappy,
            ParquetCompression::Zstd(None),
            ParquetCompression::Gzip(None),
            ParquetCompression::Lz4Raw,
            ParquetCompression::Brotli(None),
        ] {
            let bytes = written(&mut original, compression, 1_000);
            let shape = check_bytes(&bytes, &GENEROUS).unwrap();
            assert_eq!((shape.rows, shape.columns), (10_000, 7), "{compression:?}");
            assert!(shape.estimated_memory() < 16 * 1024 * 1024, "{shape:?}");
            let read = read_parquet_bytes(bytes.into(), &GENEROUS).unwrap();
            assert!(read.equals_missing(&original), "{compression:?}");
        }
        // What the brain stores (`parquet_bytes`: polars' defaults) passes as well.
        let stored = parquet_bytes(&mut original).unwrap();
        assert_eq!(check_bytes(&stored, &GENEROUS).unwrap().rows, 10_000);
        let mut empty = frame(0);
        let stored = parquet_bytes(&mut empty).unwrap();
        assert_eq!(check_bytes(&stored, &GENEROUS).unwrap().rows, 0);
    }

    #[test]
    fn the_fuzzers_aborting_and_panicking_files_are_refused() {
        // Without the guard, decoding this one reserves 2^61 bytes and aborts the test process.
        let alloc = fuzz_file(include_bytes!(
            "../../../fuzz/open-crashes/ingest-parquet-alloc-2e61"
        ));
        let cause = refusal(alloc, &GENEROUS);
        assert!(cause.contains("negative count"), "{cause}");
        assert!(read_parquet_bytes(alloc.to_vec().into(), &GENEROUS).is_err());
        // This one makes polars' footer parser panic (`thrift bool field`).
        let panics = fuzz_file(include_bytes!(
            "../../../fuzz/open-crashes/ingest-parquet-crash-3429e0cd"
        ));
        let cause = refusal(panics, &GENEROUS);
        assert!(cause.contains("metadata"), "{cause}");
    }

    /// Which page of a column chunk to change.
    #[derive(Debug, Clone, Copy)]
    enum Page {
        Dictionary,
        FirstData,
    }

    /// `file` with `change` applied to the header of a `page` of `column` in the first row
    /// group; the header must keep its length.
    fn with_page_header(
        file: &[u8],
        column: usize,
        page: Page,
        change: impl FnOnce(&mut PageHeader),
    ) -> Vec<u8> {
        let metadata = read_metadata(&mut Cursor::new(file)).unwrap();
        let chunk = &metadata.row_groups[0].parquet_columns()[column];
        let offset = match page {
            Page::Dictionary => chunk.dictionary_page_offset().unwrap(),
            Page::FirstData => chunk.data_page_offset(),
        } as usize;
        let mut cursor = Cursor::new(&file[offset..]);
        let mut header = PageHeader::read_from_in_protocol(&mut TCompactInputProtocol::new(
            &mut cursor,
            1 << 20,
        ))
        .unwrap();
        let length = cursor.position() as usize;
        change(&mut header);
        let mut encoded = Vec::new();
        header
            .write_to_out_protocol(&mut TCompactOutputProtocol::new(&mut encoded))
            .unwrap();
        assert_eq!(encoded.len(), length, "the changed header keeps its length");
        let mut changed = file.to_vec();
        changed[offset..offset + length].copy_from_slice(&encoded);
        changed
    }

    fn one_page_file(rows: usize) -> Vec<u8> {
        written(
            &mut frame(rows),
            ParquetCompression::Uncompressed,
            rows.max(1),
        )
    }

    #[test]
    fn page_headers_claiming_what_the_file_does_not_hold_are_refused() {
        let file = one_page_file(1_000);
        let values = |change: fn(i32) -> i32| {
            move |header: &mut PageHeader| {
                let data = header.data_page_header.as_mut().unwrap();
                data.num_values = change(data.num_values);
            }
        };
        let negative = with_page_header(&file, 0, Page::FirstData, values(|values| -values));
        assert!(refusal(&negative, &GENEROUS).contains("negative count"));
        let beyond_rows = with_page_header(&file, 0, Page::FirstData, values(|values| values + 1));
        let cause = refusal(&beyond_rows, &GENEROUS);
        assert!(
            cause.contains("more than the row group's 1000 rows"),
            "{cause}"
        );
        assert!(cause.contains("row group 0, column `id`"), "{cause}");
        let negative_size = with_page_header(&file, 0, Page::FirstData, |header| {
            header.uncompressed_page_size = -header.uncompressed_page_size;
        });
        assert!(refusal(&negative_size, &GENEROUS).contains("negative size"));
        // The chunk's data pages take less than 8,000 bytes (a two-byte size, as the original).
        let past_chunk = with_page_header(&file, 0, Page::FirstData, |header| {
            header.compressed_page_size = 8_000;
        });
        let cause = refusal(&past_chunk, &GENEROUS);
        assert!(cause.contains("past its column chunk"), "{cause}");
    }

    #[test]
    fn a_dictionary_larger_than_its_chunk_is_refused() {
        let file = one_page_file(40);
        // `store` has three values: polars writes it with a dictionary page first.
        let inflated = with_page_header(&file, 1, Page::Dictionary, |header| {
            let dictionary = header.dictionary_page_header.as_mut().unwrap();
            assert_eq!(dictionary.num_values, 3);
            dictionary.num_values = 50;
        });
        let cause = refusal(&inflated, &GENEROUS);
        assert!(
            cause.contains("claims 50 entries for a chunk of 40 values"),
            "{cause}"
        );
        // polars reads a chunk's dictionary even when the chunk claims no values.
        let valueless = with_footer(&file, |footer| {
            let chunk = footer.row_groups[0].columns[1].meta_data.as_mut().unwrap();
            chunk.num_values = 0;
        });
        let cause = refusal(&valueless, &GENEROUS);
        assert!(
            cause.contains("claims 3 entries for a chunk of 0 values"),
            "{cause}"
        );
    }

    /// `file` with `change` applied to its footer (re-encoded; the column chunks stay).
    fn with_footer(
        file: &[u8],
        change: impl FnOnce(&mut polars_parquet_format::FileMetaData),
    ) -> Vec<u8> {
        let footer_len =
            u32::from_le_bytes(file[file.len() - 8..file.len() - 4].try_into().unwrap());
        let data_end = file.len() - 8 - footer_len as usize;
        let mut footer = polars_parquet_format::FileMetaData::read_from_in_protocol(
            &mut TCompactInputProtocol::new(&file[data_end..], usize::MAX),
        )
        .unwrap();
        change(&mut footer);
        let mut encoded = Vec::new();
        footer
            .write_to_out_protocol(&mut TCompactOutputProtocol::new(&mut encoded))
            .unwrap();
        let mut changed = file[..data_end].to_vec();
        changed.extend_from_slice(&encoded);
        changed.extend_from_slice(&(encoded.len() as u32).to_le_bytes());
        changed.extend_from_slice(b"PAR1");
        changed
    }

    /// A file around `footer` (no row groups' data).
    fn file_with_footer(footer: &[u8]) -> Vec<u8> {
        let mut file = b"PAR1".to_vec();
        file.extend_from_slice(footer);
        file.extend_from_slice(&(footer.len() as u32).to_le_bytes());
        file.extend_from_slice(b"PAR1");
        file
    }

    #[test]
    fn footers_polars_would_over_allocate_or_recurse_on_are_refused() {
        // FileMetaData.schema (field 2) as a list claiming 2^31 - 1 structs: polars reserves
        // room for all of them before reading one.
        let huge_list = file_with_footer(&[0x29, 0xfc, 0xff, 0xff, 0xff, 0xff, 0x07, 0x00]);
        let cause = refusal(&huge_list, &GENEROUS);
        assert!(cause.contains("claims 2147483647 elements"), "{cause}");
        // 100 schema elements each the only child of the one before: polars builds the tree
        // recursively.
        let element = [0x48, 0x01, b'a', 0x15, 0x02, 0x00]; // name "a", num_children 1
        let mut footer = vec![0x15, 0x04, 0x19, 0xfc, 100];
        for _ in 0..100 {
            footer.extend_from_slice(&element);
        }
        footer.push(0x00);
        let cause = refusal(&file_with_footer(&footer), &GENEROUS);
        assert!(cause.contains("nested more than 64 levels"), "{cause}");
        // A field polars reads as a list, declared as an integer.
        let mistyped = file_with_footer(&[0x25, 0x02, 0x00]);
        let cause = refusal(&mistyped, &GENEROUS);
        assert!(
            cause.contains("field 2 of FileMetaData is declared i32, polars reads it as a list"),
            "{cause}"
        );
        assert!(refusal(b"PAR1\x00\x00\x00\x00PAR1", &GENEROUS).contains("metadata"));
        assert!(refusal(b"not parquet at all", &GENEROUS).contains("PAR1"));
    }

    #[test]
    fn rows_columns_and_memory_beyond_the_limits_are_refused() {
        let file = one_page_file(1_000);
        let fewer_rows = ParquetLimits {
            max_rows: 999,
            ..GENEROUS
        };
        assert!(refusal(&file, &fewer_rows).contains("claims 1000 rows, more than the 999"));
        let fewer_columns = ParquetLimits {
            max_columns: 6,
            ..GENEROUS
        };
        assert!(refusal(&file, &fewer_columns).contains("7 columns"));
        let little_memory = ParquetLimits {
            memory_bytes: 64 * 1024,
            ..GENEROUS
        };
        match check_bytes(&file, &little_memory) {
            Err(ParquetRefusal::OverMemory { estimate, limit }) => {
                assert_eq!(limit, 64 * 1024);
                assert!(estimate > limit);
            }
            other => panic!("expected OverMemory, got {other:?}"),
        }
    }

    /// Random byte edits of files polars writes, each checked by the guard and, when accepted,
    /// decoded by polars: every one is an answer. Without the guard the 265th aborts the test
    /// process (a 2^61-byte allocation); 43,000 edits (seeds 1-3) found no abort with it.
    #[test]
    fn random_byte_edits_are_refused_or_read_never_an_abort() {
        let mut rng = fastrand::Rng::with_seed(2);
        let mut frame = frame(200);
        let files: Vec<Vec<u8>> = [
            ParquetCompression::Uncompressed,
            ParquetCompression::Snappy,
            ParquetCompression::Zstd(None),
        ]
        .into_iter()
        .map(|compression| {
            let mut bytes = Vec::new();
            ParquetWriter::new(&mut bytes)
                .with_compression(compression)
                .with_row_group_size(Some(50))
                .with_data_page_size(Some(512))
                .finish(&mut frame)
                .unwrap();
            bytes
        })
        .collect();
        let limits = ParquetLimits {
            max_rows: u64::MAX,
            max_columns: 64,
            memory_bytes: 64 << 20,
        };
        let (mut refused, mut read) = (0, 0);
        for i in 0..400 {
            let mut bytes = files[i % files.len()].clone();
            for _ in 0..1 + rng.usize(0..4) {
                let at = rng.usize(0..bytes.len());
                match rng.u8(0..3) {
                    0 => bytes[at] = rng.u8(..),
                    1 => bytes[at] ^= 1 << rng.u8(0..8),
                    _ => bytes[at] = [0x00, 0xff, 0x7f, 0x80, 0x15, 0x19, 0x29][rng.usize(0..7)],
                }
            }
            if check_bytes(&bytes, &limits).is_err() {
                refused += 1;
            } else if read_parquet_bytes(bytes.into(), &limits).is_ok() {
                read += 1;
            }
        }
        assert!(
            refused > 100 && read > 100,
            "refused {refused}, read {read}"
        );
    }
}
