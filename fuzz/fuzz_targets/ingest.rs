//! Uploads: arbitrary bytes as a CSV, JSON, NDJSON or Parquet file, read by
//! `brain::data::ingest::read_file` (the precheck scanners first, then polars) with small
//! limits. Any error is a fine answer; a panic, an abort or running out of memory is not.
//!
//! Input: the first byte picks the format (low two bits) and whether a schema override
//! (`column:type,…`) follows (bit 2), up to the first NUL byte; the rest is the file.
//!
//! Parquet: the brain checks a Parquet file's footer and page headers before polars decodes it
//! (`brain::data::parquet_guard`), which refuses the two files this target found on 2026-12-02
//! in polars-parquet 0.55.2 (a page claiming −7 values made its decoder reserve 2^61 bytes and
//! abort the process; a mistyped footer field made it panic, `thrift bool field`). The guard
//! checks what decoding allocates from, not every encoded value, so polars may still panic on
//! some page data; the brain catches that (a 422). Here a panic raised inside polars-parquet's
//! own source is caught and counted as a refusal (each distinct location printed once), so the
//! run goes on to find other failures; any other panic (the guard's included) still aborts the
//! run as a finding, as does an abort or running out of memory.
#![no_main]

use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Mutex, Once, OnceLock};

use brain::data::ingest::{IngestOptions, SchemaOverrides, parse_overrides, read_file};
use brain::data::precheck::IngestLimits;
use libfuzzer_sys::fuzz_target;
use shared_types::data::DataFormat;

const LIMITS: IngestLimits = IngestLimits {
    max_columns: 64,
    max_nesting: 8,
    max_cell_bytes: 4096,
    memory_bytes: 64 * 1024 * 1024,
};

/// One file per fuzzing process, rewritten for every input.
fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("edgebrain-fuzz-ingest-{}", std::process::id()))
    })
}

/// Lets panics located in polars-parquet's source unwind (to the `catch_unwind` below) instead
/// of libFuzzer's abort; every other panic goes to the hook libfuzzer-sys installed.
fn tolerate_polars_parquet_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let fuzzer_hook = panic::take_hook();
        let seen: Mutex<HashSet<String>> = Mutex::default();
        panic::set_hook(Box::new(move |info| {
            let location = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()));
            match location {
                Some(location) if location.contains("/polars-parquet-") => {
                    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                    if seen.insert(location.clone()) {
                        eprintln!("known polars-parquet panic (tolerated): {info}");
                    }
                }
                _ => fuzzer_hook(info),
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    tolerate_polars_parquet_panics();
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let format = match first & 0b11 {
        0 => DataFormat::Csv,
        1 => DataFormat::Json,
        2 => DataFormat::Ndjson,
        _ => DataFormat::Parquet,
    };
    let (overrides, file) = if first & 0b100 != 0 {
        let Some(split) = rest.iter().position(|&byte| byte == 0) else {
            return;
        };
        let Ok(text) = std::str::from_utf8(&rest[..split]) else {
            return;
        };
        let Ok(overrides) = parse_overrides(text) else {
            return;
        };
        (overrides, &rest[split + 1..])
    } else {
        (SchemaOverrides::new(), rest)
    };
    if std::fs::write(path(), file).is_err() {
        return;
    }
    let options = IngestOptions {
        format,
        overrides,
        infer_schema_rows: 100,
        limits: LIMITS,
    };
    if format == DataFormat::Parquet {
        let _ = panic::catch_unwind(AssertUnwindSafe(|| read_file(path(), &options)));
    } else {
        let _ = read_file(path(), &options);
    }
});
