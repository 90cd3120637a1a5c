//! DataFrames to wire formats: JSON values (rows or columns), CSV, Arrow IPC; and the
//! per-column statistics of a description. Blocking; callers run it in `spawn_blocking`.

use polars::prelude::*;
use serde_json::{Map, Number, Value};
use shared_types::data::ColumnStats;

use super::DataError;

/// One polars value as JSON: numbers, strings, booleans and null as themselves (non-finite
/// floats as null), temporal values in their ISO-like text form.
pub fn json_value(value: AnyValue<'_>) -> Value {
    match value {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => Value::Bool(b),
        AnyValue::String(s) => Value::String(s.to_owned()),
        AnyValue::StringOwned(s) => Value::String(s.to_string()),
        AnyValue::UInt8(n) => Value::from(n),
        AnyValue::UInt16(n) => Value::from(n),
        AnyValue::UInt32(n) => Value::from(n),
        AnyValue::UInt64(n) => Value::from(n),
        AnyValue::Int8(n) => Value::from(n),
        AnyValue::Int16(n) => Value::from(n),
        AnyValue::Int32(n) => Value::from(n),
        AnyValue::Int64(n) => Value::from(n),
        AnyValue::Float32(n) => float(f64::from(n)),
        AnyValue::Float64(n) => float(n),
        other => Value::String(other.to_string()),
    }
}

fn float(n: f64) -> Value {
    Number::from_f64(n).map_or(Value::Null, Value::Number)
}

/// One object per row.
pub fn rows(frame: &DataFrame) -> Result<Vec<Map<String, Value>>, DataError> {
    let names: Vec<String> = frame
        .get_column_names()
        .into_iter()
        .map(|name| name.to_string())
        .collect();
    let mut rows = Vec::with_capacity(frame.height());
    for index in 0..frame.height() {
        let mut row = Map::with_capacity(names.len());
        for (name, column) in names.iter().zip(frame.columns()) {
            row.insert(
                name.clone(),
                json_value(column.get(index).map_err(DataError::polars)?),
            );
        }
        rows.push(row);
    }
    Ok(rows)
}

/// One array per column.
pub fn columns(frame: &DataFrame) -> Result<Map<String, Value>, DataError> {
    let mut data = Map::with_capacity(frame.width());
    for column in frame.columns() {
        let mut values = Vec::with_capacity(column.len());
        for index in 0..column.len() {
            values.push(json_value(column.get(index).map_err(DataError::polars)?));
        }
        data.insert(column.name().to_string(), Value::Array(values));
    }
    Ok(data)
}

pub fn csv(frame: &mut DataFrame) -> Result<Vec<u8>, DataError> {
    let mut buffer = Vec::new();
    CsvWriter::new(&mut buffer)
        .include_header(true)
        .finish(frame)
        .map_err(DataError::polars)?;
    Ok(buffer)
}

/// The Arrow IPC file format (the streaming format needs polars' `ipc_streaming` feature, a
/// second IPC code path the brain does not otherwise need).
pub fn arrow_file(frame: &mut DataFrame) -> Result<Vec<u8>, DataError> {
    let mut buffer = Vec::new();
    IpcWriter::new(&mut buffer)
        .finish(frame)
        .map_err(DataError::polars)?;
    Ok(buffer)
}

/// Null count of every column; min/max where the type is ordered; mean for numbers.
pub fn stats(frame: &DataFrame) -> Result<Vec<ColumnStats>, DataError> {
    frame
        .columns()
        .iter()
        .map(|column| {
            let series = column.as_materialized_series();
            let dtype = series.dtype();
            let ordered = ordered(dtype);
            let extreme = |scalar: PolarsResult<Scalar>| -> Option<Value> {
                scalar
                    .ok()
                    .map(|scalar| json_value(scalar.value().clone()))
                    .filter(|value| !value.is_null())
            };
            let (min, max) = if ordered && series.null_count() < series.len() {
                (extreme(series.min_reduce()), extreme(series.max_reduce()))
            } else {
                (None, None)
            };
            let mean = if dtype.is_primitive_numeric() {
                series.mean().filter(|mean| mean.is_finite())
            } else {
                None
            };
            Ok(ColumnStats {
                name: series.name().to_string(),
                dtype: dtype.to_string(),
                null_count: series.null_count() as u64,
                min,
                max,
                mean,
            })
        })
        .collect()
}

/// Whether [`stats`] reports a column's minimum and maximum.
fn ordered(dtype: &DataType) -> bool {
    dtype.is_primitive_numeric()
        || dtype.is_temporal()
        || matches!(dtype, DataType::String | DataType::Boolean)
}

/// [`stats`] of a dataset read by a scan instead of from memory (larger than the memory
/// budget): every column's aggregates in one pass of polars' streaming engine.
pub fn scanned_stats(scan: LazyFrame, schema: &Schema) -> Result<Vec<ColumnStats>, DataError> {
    let mut exprs = vec![len().alias("rows")];
    for (index, (name, dtype)) in schema.iter().enumerate() {
        let column = col(name.clone());
        exprs.push(column.clone().null_count().alias(format!("{index}_nulls")));
        if ordered(dtype) {
            exprs.push(column.clone().min().alias(format!("{index}_min")));
            exprs.push(column.clone().max().alias(format!("{index}_max")));
        }
        if dtype.is_primitive_numeric() {
            exprs.push(column.mean().alias(format!("{index}_mean")));
        }
    }
    let summary = scan
        .select(exprs)
        .collect_with_engine(Engine::Streaming)
        .map(|result| result.unwrap_single())
        .map_err(DataError::polars)?;
    let value = |name: &str| -> Option<AnyValue<'static>> {
        summary
            .column(name)
            .ok()
            .and_then(|column| column.get(0).ok())
            .map(|value| value.into_static())
    };
    let count = |name: &str| {
        value(name)
            .and_then(|value| value.extract::<u64>())
            .unwrap_or_default()
    };
    let rows = count("rows");
    Ok(schema
        .iter()
        .enumerate()
        .map(|(index, (name, dtype))| {
            let null_count = count(&format!("{index}_nulls"));
            let extreme = |which: &str| {
                value(&format!("{index}_{which}"))
                    .map(json_value)
                    .filter(|value| !value.is_null())
            };
            let (min, max) = if ordered(dtype) && null_count < rows {
                (extreme("min"), extreme("max"))
            } else {
                (None, None)
            };
            let mean = value(&format!("{index}_mean"))
                .and_then(|value| value.extract::<f64>())
                .filter(|mean| mean.is_finite());
            ColumnStats {
                name: name.to_string(),
                dtype: dtype.to_string(),
                null_count,
                min,
                max,
                mean,
            }
        })
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stats_and_rows_match_the_data() {
        let frame = df!(
            "n" => [Some(1i64), None, Some(5)],
            "s" => ["b", "a", "c"],
            "f" => [0.5f64, f64::NAN, 1.5]
        )
        .unwrap();
        let stats = stats(&frame).unwrap();
        assert_eq!(stats[0].null_count, 1);
        assert_eq!(stats[0].min, Some(Value::from(1)));
        assert_eq!(stats[0].max, Some(Value::from(5)));
        assert_eq!(stats[0].mean, Some(3.0));
        assert_eq!(stats[1].min, Some(Value::from("a")));
        assert_eq!(stats[1].mean, None);
        let rows = rows(&frame).unwrap();
        assert_eq!(rows[1]["n"], Value::Null);
        assert_eq!(rows[2]["s"], Value::from("c"));
        assert_eq!(rows[1]["f"], Value::Null);
        let columns = columns(&frame).unwrap();
        assert_eq!(columns["n"], serde_json::json!([1, null, 5]));
    }
}
