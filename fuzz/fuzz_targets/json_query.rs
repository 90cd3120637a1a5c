//! The typed JSON query: arbitrary bytes as a `JsonQuery`, planned by
//! `brain::data::json_query::plan` and one page collected over a tiny frame, as the brain's
//! query path does. A parse error or a query error is a fine answer; a panic, an abort or
//! running out of memory is not.
#![no_main]

use brain::data::json_query;
use edgebrain_fuzz::{collect_page, sales};
use libfuzzer_sys::fuzz_target;
use polars::prelude::IntoLazy;
use shared_types::data::JsonQuery;

fuzz_target!(|data: &[u8]| {
    let Ok(query) = serde_json::from_slice::<JsonQuery>(data) else {
        return;
    };
    collect_page(|| json_query::plan(&query, sales().clone().lazy(), sales().schema()));
});
