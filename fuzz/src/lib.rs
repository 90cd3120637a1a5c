//! What the fuzz targets share: the tiny frames queries run over, and running a plan the way
//! the brain does (on a large stack of its own, one page plus a row).

use std::sync::OnceLock;

use polars::prelude::*;

/// The stack the brain plans and runs a query on (`brain::data`, `QUERY_STACK_BYTES`).
const QUERY_STACK_BYTES: usize = 64 * 1024 * 1024;
/// Rows one page may return (plus one, telling whether another page follows).
const PAGE_ROWS: IdxSize = 101;

/// `sales`: three rows of every column type an upload can have, with NULLs.
pub fn sales() -> &'static DataFrame {
    static FRAME: OnceLock<DataFrame> = OnceLock::new();
    FRAME.get_or_init(|| {
        let frame = df!(
            "id" => [1i64, 2, 3],
            "region" => [Some("north"), Some("south"), None],
            "product" => ["apple", "pear", "apple"],
            "amount" => [Some(1.5f64), None, Some(-2.25)],
            "quantity" => [Some(3i32), Some(0), None],
            "paid" => [Some(true), None, Some(false)],
            "day" => [Some(19_723i32), Some(19_782), None],
            "at" => [Some(1_704_067_200_000i64), None, Some(1_709_251_199_999)],
        )
        .and_then(|frame| {
            frame
                .lazy()
                .with_columns([
                    col("day").cast(DataType::Date),
                    col("at").cast(DataType::Datetime(TimeUnit::Milliseconds, None)),
                ])
                .collect()
        });
        match frame {
            Ok(frame) => frame,
            Err(error) => panic!("the sales frame: {error}"),
        }
    })
}

/// `regions`: two rows, joinable with `sales` on `region`.
pub fn regions() -> &'static DataFrame {
    static FRAME: OnceLock<DataFrame> = OnceLock::new();
    FRAME.get_or_init(|| {
        let frame = df!(
            "region" => ["north", "south"],
            "manager" => ["ann", "bob"],
            "target" => [10i64, 20],
        );
        match frame {
            Ok(frame) => frame,
            Err(error) => panic!("the regions frame: {error}"),
        }
    })
}

/// Runs `build` and collects one page of its plan on a large stack, as the brain's query path
/// does. Errors are expected answers (a 400); only a panic or an abort is a finding.
pub fn collect_page<E>(build: impl FnOnce() -> Result<LazyFrame, E>) -> Option<DataFrame> {
    stacker::grow(QUERY_STACK_BYTES, || {
        let plan = build().ok()?;
        plan.slice(0, PAGE_ROWS).collect().ok()
    })
}
