//! The brain's built-in tools, offered to models whose configuration enables `tools`.
//! They are pure and fast; a tool loop is capped by `--max-tool-steps`.

use serde_json::{Value, json};

use crate::llm::ToolSpec;

pub fn specs() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: "add".into(),
            description: "Add two numbers and return the sum.".into(),
            parameters: json!({
                "type": "object",
                "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                "required": ["a", "b"],
            }),
        },
        ToolSpec {
            name: "word_count".into(),
            description: "Count the words in a text.".into(),
            parameters: json!({
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"],
            }),
        },
    ]
}

/// Runs tool `name` on `input`; the error text is shown to the model and the client.
pub fn call(name: &str, input: &Value) -> Result<Value, String> {
    match name {
        "add" => {
            let number = |key: &str| {
                input
                    .get(key)
                    .and_then(Value::as_f64)
                    .ok_or_else(|| format!("`{key}` must be a number"))
            };
            let sum = number("a")? + number("b")?;
            Ok(json!({"sum": sum}))
        }
        "word_count" => {
            let text = input
                .get("text")
                .and_then(Value::as_str)
                .ok_or("`text` must be a string")?;
            Ok(json!({"words": text.split_whitespace().count()}))
        }
        other => Err(format!("unknown tool `{other}`")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tools_compute_and_reject_bad_input() {
        assert_eq!(
            call("add", &json!({"a": 2, "b": 3.5})).unwrap(),
            json!({"sum": 5.5})
        );
        assert!(call("add", &json!({"a": "2"})).is_err());
        assert_eq!(
            call("word_count", &json!({"text": " a b  c "})).unwrap(),
            json!({"words": 3})
        );
        assert!(call("nope", &json!({})).is_err());
        assert_eq!(specs().len(), 2);
    }
}
