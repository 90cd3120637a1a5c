//! A tool's result as the model reads it, and as an answer states it when the model left its
//! numbers out.
//!
//! Why: small local models copy short numbers and skip long ones. A `SUM` over prices comes
//! back as `24686.030869999996`; given that, the default model named the five top stores and
//! left their revenues out (BENCHMARKS.md, "Local models"). So the model reads floats rounded
//! to what an answer states (the stream, the stored message and the grounding check keep the
//! exact values; the check accepts rounded forms). And when an answer still leaves out numbers
//! of a small result, the brain states that result itself, as a table after the answer: a
//! reply to a data question always shows the numbers it rests on.

use serde_json::{Map, Value};

use super::grounding;

/// Rows of a result the brain states as a table when the answer did not (a "top N" answer).
/// Larger results are what "How this was computed" shows.
pub const ANSWER_TABLE_MAX_ROWS: usize = 10;
/// Columns of such a table; wider results are left to the provenance view.
pub const ANSWER_TABLE_MAX_COLUMNS: usize = 6;

/// `output` as the text the model reads: compact JSON, floats rounded by [`round_for_reading`].
pub fn for_model(output: &Value) -> String {
    rounded(output).to_string()
}

/// Two decimals at magnitudes of 1 and more (money, averages); four significant digits below
/// (shares, rates). Integers stay as they are.
pub fn round_for_reading(value: f64) -> f64 {
    if !value.is_finite() || value == 0.0 || value.fract() == 0.0 {
        return value;
    }
    let magnitude = value.abs();
    let decimals = if magnitude >= 1.0 {
        2
    } else {
        // Four significant digits: 0.012345 → 0.01235. Tinier values are left as they are
        // (their decimals would overflow the scale).
        let decimals = 3 - magnitude.log10().floor() as i32;
        if decimals > 15 {
            return value;
        }
        decimals
    };
    let scale = 10_f64.powi(decimals);
    let rounded = (value * scale).round() / scale;
    if rounded.is_finite() { rounded } else { value }
}

fn rounded(value: &Value) -> Value {
    match value {
        Value::Number(number) if !number.is_i64() && !number.is_u64() => number
            .as_f64()
            .and_then(|float| serde_json::Number::from_f64(round_for_reading(float)))
            .map_or_else(|| value.clone(), Value::Number),
        Value::Array(items) => Value::Array(items.iter().map(rounded).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, item)| (key.clone(), rounded(item)))
                .collect::<Map<_, _>>(),
        ),
        other => other.clone(),
    }
}

/// The rows a data tool's `output` returned, as `{"columns": [...], "rows": [{...}]}`: the
/// `sql` tool's output itself, or a `chart`'s data with the columns its encoding plots (x, y,
/// then colour or angle). `None` for other tools.
pub fn result_rows(tool: &str, output: &Value) -> Option<Value> {
    match tool {
        "sql" => Some(output.clone()),
        "chart" => {
            let spec = output.get("spec")?;
            let encoding = spec.get("encoding")?;
            let mut columns: Vec<&str> = Vec::new();
            for channel in ["x", "y", "color", "theta"] {
                if let Some(field) = encoding
                    .get(channel)
                    .and_then(|channel| channel.get("field"))
                    .and_then(Value::as_str)
                    && !columns.contains(&field)
                {
                    columns.push(field);
                }
            }
            let rows = spec.get("data")?.get("values")?;
            (!columns.is_empty()).then(|| serde_json::json!({"columns": columns, "rows": rows}))
        }
        _ => None,
    }
}

/// A result of [`result_rows`] as a markdown table, when it
/// is small (at most [`ANSWER_TABLE_MAX_ROWS`] rows and [`ANSWER_TABLE_MAX_COLUMNS`] columns)
/// and `answer` leaves out at least one of its numbers; `None` when the answer states them all
/// (within the rounding it writes them with) or the result is not such a table.
pub fn answer_table(output: &Value, answer: &str) -> Option<String> {
    let columns: Vec<&str> = output
        .get("columns")?
        .as_array()?
        .iter()
        .map(Value::as_str)
        .collect::<Option<_>>()?;
    let rows: Vec<&Map<String, Value>> = output
        .get("rows")?
        .as_array()?
        .iter()
        .map(Value::as_object)
        .collect::<Option<_>>()?;
    if columns.is_empty()
        || columns.len() > ANSWER_TABLE_MAX_COLUMNS
        || rows.is_empty()
        || rows.len() > ANSWER_TABLE_MAX_ROWS
    {
        return None;
    }
    let claims = grounding::claims(answer);
    let stated = |value: f64| claims.iter().any(|claim| claim.covers(value));
    let all_stated = rows
        .iter()
        .flat_map(|row| row.values())
        .filter_map(Value::as_f64)
        .all(stated);
    if all_stated {
        return None;
    }
    let mut table = String::new();
    table.push_str(&row_line(columns.iter().map(|name| cell_text(name))));
    table.push_str(&row_line(columns.iter().map(|_| "---".to_owned())));
    for row in rows {
        table.push_str(&row_line(columns.iter().map(|name| cell(row.get(*name)))));
    }
    Some(table)
}

/// A value as a table cell: floats rounded as the model reads them, nothing for null.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => cell_text(text),
        Some(Value::Number(number)) if !number.is_i64() && !number.is_u64() => {
            number.as_f64().map_or_else(
                || number.to_string(),
                |float| round_for_reading(float).to_string(),
            )
        }
        Some(other) => cell_text(&other.to_string()),
    }
}

fn row_line(cells: impl Iterator<Item = String>) -> String {
    let cells: Vec<String> = cells.collect();
    format!("| {} |\n", cells.join(" | "))
}

/// Text safe inside a markdown table cell: no pipes, no line breaks.
fn cell_text(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_model_reads_floats_rounded_and_integers_as_they_are() {
        assert_eq!(round_for_reading(24_686.030_869_999_996), 24_686.03);
        assert_eq!(round_for_reading(-3.456_789), -3.46);
        assert_eq!(round_for_reading(0.012_345_6), 0.012_35);
        assert_eq!(round_for_reading(0.5), 0.5);
        assert_eq!(round_for_reading(150_561.0), 150_561.0);
        assert_eq!(round_for_reading(1e-300), 1e-300);
        let output = json!({"columns": ["store_id", "revenue"], "rows": [
            {"store_id": 5, "revenue": 24_686.030_869_999_996},
            {"store_id": 28, "revenue": 9_007_199_254_740_993_u64},
        ], "note": "all 2 rows shown"});
        assert_eq!(
            for_model(&output),
            r#"{"columns":["store_id","revenue"],"rows":[{"store_id":5,"revenue":24686.03},{"store_id":28,"revenue":9007199254740993}],"note":"all 2 rows shown"}"#
        );
    }

    fn top_stores() -> Value {
        json!({"columns": ["store_id", "revenue"], "rows": [
            {"store_id": 5, "revenue": 24_686.030_869_999_996},
            {"store_id": 28, "revenue": 23_001.5},
            {"store_id": 20, "revenue": 22_950.004},
        ]})
    }

    #[test]
    fn an_answer_that_leaves_out_numbers_of_a_small_result_gets_the_table() {
        let table = answer_table(
            &top_stores(),
            "The top stores are store 5, store 28 and store 20.",
        )
        .expect("revenues left out");
        assert_eq!(
            table,
            "| store_id | revenue |\n| --- | --- |\n| 5 | 24686.03 |\n| 28 | 23001.5 |\n| 20 | 22950 |\n"
        );
        // One revenue left out is enough.
        assert!(
            answer_table(
                &top_stores(),
                "Store 5: 24,686.03; store 28: 23,001.50; store 20."
            )
            .is_some()
        );
    }

    #[test]
    fn an_answer_stating_every_number_within_its_rounding_gets_none() {
        let answer = "Store 5 had 24,686.03, store 28 had 23,001.5 and store 20 had 22,950.00.";
        assert_eq!(answer_table(&top_stores(), answer), None);
        assert_eq!(
            answer_table(
                &json!({"columns": ["n"], "rows": [{"n": 150_561}]}),
                "150,561 transactions used a promotion."
            ),
            None
        );
    }

    #[test]
    fn large_wide_or_foreign_results_get_no_table() {
        let many: Vec<Value> = (0..=ANSWER_TABLE_MAX_ROWS)
            .map(|index| json!({"n": index}))
            .collect();
        assert_eq!(
            answer_table(&json!({"columns": ["n"], "rows": many}), ""),
            None
        );
        let wide: Vec<String> = (0..=ANSWER_TABLE_MAX_COLUMNS)
            .map(|index| format!("c{index}"))
            .collect();
        assert_eq!(
            answer_table(&json!({"columns": wide, "rows": [{"c0": 1}]}), ""),
            None
        );
        assert_eq!(answer_table(&json!({"spec": {"mark": "bar"}}), ""), None);
        assert_eq!(
            answer_table(&json!({"columns": ["n"], "rows": []}), ""),
            None
        );
    }

    #[test]
    fn a_chart_gives_the_rows_it_plots() {
        let chart = json!({"spec": {"mark": "bar", "encoding": {
            "x": {"field": "store_id", "type": "nominal"},
            "y": {"field": "revenue", "type": "quantitative"}},
            "data": {"values": [{"revenue": 10.5, "store_id": 5}]}}, "rows": 1});
        let rows = result_rows("chart", &chart).expect("a chart has rows");
        assert_eq!(
            answer_table(&rows, "Here is the chart."),
            Some("| store_id | revenue |\n| --- | --- |\n| 5 | 10.5 |\n".to_owned())
        );
        assert_eq!(result_rows("chart", &json!({"spec": {}})), None);
        assert_eq!(result_rows("list_datasets", &json!({"datasets": []})), None);
    }

    #[test]
    fn cells_cannot_break_the_table() {
        let output = json!({"columns": ["name|x", "n"], "rows": [
            {"name|x": "a|b\nc\\", "n": 1.5},
            {"n": null},
        ]});
        assert_eq!(
            answer_table(&output, "").expect("the number is left out"),
            "| name\\|x | n |\n| --- | --- |\n| a\\|b c\\\\ | 1.5 |\n|  |  |\n"
        );
    }
}
