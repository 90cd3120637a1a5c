//! Query engine cost on the sample data, without HTTP: the SQL allowlist plus polars SQL, and
//! the typed JSON query plan, each collected to a DataFrame; and reading the transactions back
//! from Parquet, with the Parquet guard's share. `scripts/bench-data` runs it (in
//! release) together with the HTTP load test; see BENCHMARKS.md.
//!
//! `BENCH_TRANSACTIONS` (default 1_000_000) sets the sample size.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use brain::data::precheck::IngestLimits;
use brain::data::{ingest, json_query, parquet_guard, sample, sql, sql_plan};
use criterion::{Criterion, criterion_group, criterion_main};
use polars::prelude::*;
use polars::sql::SQLContext;
use shared_types::data::JsonQuery;

const GROUP_BY: &str = "SELECT store_id, SUM(quantity) AS units, SUM(quantity * unit_price) AS revenue \
                        FROM transactions GROUP BY store_id";
const JOIN: &str = "SELECT p.category, SUM(t.quantity * t.unit_price) AS revenue, COUNT(*) AS n \
                    FROM transactions t JOIN products p ON p.product_id = t.product_id \
                    GROUP BY p.category";

/// The brain's SQL path (`Data::sql` without HTTP, registry or time limit): allowlist, then
/// polars-sql with the brain's plan rewrite.
fn run_sql(tables: &[(&str, &DataFrame)], text: &str) -> DataFrame {
    let approved = sql::approve(text).unwrap();
    let tables = tables
        .iter()
        .filter(|(name, _)| approved.tables.contains(*name))
        .map(|(name, frame)| ((*name).to_owned(), (*frame).clone().lazy()));
    sql_plan::plan(text, tables).unwrap().collect().unwrap()
}

/// polars-sql as it plans the query, without the brain's rewrite (for comparison).
fn run_polars_sql(tables: &[(&str, &DataFrame)], text: &str) -> DataFrame {
    let mut context = SQLContext::new();
    for (name, frame) in tables {
        context.register(name, (*frame).clone().lazy());
    }
    context.execute(text).unwrap().collect().unwrap()
}

fn benches(c: &mut Criterion) {
    let rows: usize = std::env::var("BENCH_TRANSACTIONS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1_000_000);
    let data = sample::generate(rows).unwrap();
    let tables = [
        ("transactions", &data.transactions),
        ("products", &data.products),
        ("stores", &data.stores),
    ];
    let group_by_json: JsonQuery = serde_json::from_str(
        r#"{"dataset":"transactions","group_by":["store_id"],
            "aggregates":[{"function":"sum","column":"quantity","alias":"units"},
                          {"function":"mean","column":"unit_price","alias":"avg_price"}]}"#,
    )
    .unwrap();
    let filter_sort_json: JsonQuery = serde_json::from_str(
        r#"{"dataset":"transactions","filter":{"op":"and","args":[
              {"op":"eq","column":"promotion","value":true},{"op":"ge","column":"quantity","value":10}]},
            "sort":[{"column":"ts","descending":true}]}"#,
    )
    .unwrap();

    let mut group = c.benchmark_group(format!("sample_{rows}_rows"));
    group.sample_size(30);
    group.bench_function("sql_group_by_store", |b| {
        b.iter(|| black_box(run_sql(&tables, GROUP_BY)))
    });
    group.bench_function("sql_group_by_store_without_rewrite", |b| {
        b.iter(|| black_box(run_polars_sql(&tables, GROUP_BY)))
    });
    // The floor: the same aggregation as lazy expressions with polars' plain `sum()`.
    group.bench_function("lazy_group_by_store_plain_sum", |b| {
        b.iter(|| {
            black_box(
                data.transactions
                    .clone()
                    .lazy()
                    .group_by([col("store_id")])
                    .agg([
                        col("quantity").sum().alias("units"),
                        (col("quantity") * col("unit_price")).sum().alias("revenue"),
                    ])
                    .collect()
                    .unwrap(),
            )
        })
    });
    group.bench_function("sql_join_products_group_by_category", |b| {
        b.iter(|| black_box(run_sql(&tables, JOIN)))
    });
    group.bench_function("sql_join_products_group_by_category_without_rewrite", |b| {
        b.iter(|| black_box(run_polars_sql(&tables, JOIN)))
    });
    group.bench_function("json_group_by_store", |b| {
        b.iter(|| {
            black_box(
                json_query::plan(
                    &group_by_json,
                    data.transactions.clone().lazy(),
                    data.transactions.schema(),
                )
                .unwrap()
                .collect()
                .unwrap(),
            )
        })
    });
    group.bench_function("json_filter_sort_first_100", |b| {
        b.iter(|| {
            black_box(
                json_query::plan(
                    &filter_sort_json,
                    data.transactions.clone().lazy(),
                    data.transactions.schema(),
                )
                .unwrap()
                .slice(0, 100)
                .collect()
                .unwrap(),
            )
        })
    });
    // Loading a dataset's object: the Parquet guard alone, then guard and polars' decode.
    let mut transactions = data.transactions.clone();
    let stored = bytes::Bytes::from(ingest::parquet_bytes(&mut transactions).unwrap());
    let limits = ingest::upload_parquet_limits(&IngestLimits::default());
    group.bench_function("parquet_guard_check", |b| {
        b.iter(|| black_box(parquet_guard::check_bytes(&stored, &limits).unwrap()))
    });
    group.bench_function("parquet_guard_and_read", |b| {
        b.iter(|| black_box(ingest::read_parquet_bytes(stored.clone(), &limits).unwrap()))
    });
    group.finish();
}

criterion_group!(data_queries, benches);
criterion_main!(data_queries);
