//! SQL: arbitrary text through the allowlist (`brain::data::sql::approve`); approved text is
//! rewritten (`sql_dates`), planned (`sql_plan::plan`) and one page collected over tiny frames
//! named like the tables it reads, as the brain's query path does. A refusal or a query error
//! is a fine answer; a panic, an abort or running out of memory is not.
#![no_main]

use std::ops::ControlFlow;

use brain::data::sql::{approve, parse};
use brain::data::{sql_dates, sql_plan};
use edgebrain_fuzz::{collect_page, regions, sales};
use libfuzzer_sys::fuzz_target;
use polars::prelude::*;
use sqlparser::ast::{TableFactor, Visit, Visitor};

/// Most `FROM`/`JOIN` items (tables, subqueries, table functions) a query run here may have:
/// every one can multiply the rows (a cross join), and the tiny frames keep 3^4 rows small.
/// The brain bounds this with its row limit and query timeout instead.
const MAX_TABLE_FACTORS: usize = 4;

#[derive(Default)]
struct CountFactors(usize);

impl Visitor for CountFactors {
    type Break = ();
    fn pre_visit_table_factor(&mut self, _: &TableFactor) -> ControlFlow<()> {
        self.0 += 1;
        if self.0 > MAX_TABLE_FACTORS {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(approved) = approve(text) else {
        return;
    };
    let Ok(statements) = parse(text) else {
        return;
    };
    let mut factors = CountFactors::default();
    if statements.visit(&mut factors).is_break() {
        return;
    }
    // `sales` and `regions` are themselves; other names alternate between the two frames.
    let tables: Vec<(String, &DataFrame)> = approved
        .tables
        .iter()
        .enumerate()
        .map(|(index, name)| {
            let frame = match name.as_str() {
                "sales" => sales(),
                "regions" => regions(),
                _ if index % 2 == 0 => sales(),
                _ => regions(),
            };
            (name.clone(), frame)
        })
        .collect();
    collect_page(|| -> Result<LazyFrame, ()> {
        let temporal =
            sql_dates::TemporalColumns::of(tables.iter().map(|(_, frame)| &**frame.schema()));
        let rewritten = sql_dates::rewrite(text, &temporal).map_err(|_| ())?;
        let named = tables
            .iter()
            .map(|(name, frame)| (name.clone(), (*frame).clone().lazy()));
        sql_plan::plan(&rewritten, named).map_err(|_| ())
    });
});
