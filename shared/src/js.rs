//! JavaScript semantics the reference generator relies on, reproduced for JSON values: truthiness
//! (`a || b` with empty strings being false), `String(value)`, `part++` on a digit string and
//! `Object.assign`. The configuration, the distribution rules and the composer.json rules share them.

use serde_json::{Map, Value};

use crate::json;

/// JavaScript truthiness of a JSON value.
pub fn js_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.to_string().parse::<f64>().is_ok_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// A string that JavaScript treats as true (`None` is `undefined`).
pub(crate) fn truthy(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

/// JavaScript's `String(value)` (`None` is `undefined`).
pub(crate) fn js_string(value: Option<&Value>) -> String {
    match value {
        None => "undefined".to_owned(),
        Some(Value::Null) => "null".to_owned(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => json::format_js_number(n),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| if item.is_null() { String::new() } else { js_string(Some(item)) })
            .collect::<Vec<_>>()
            .join(","),
        Some(Value::Object(_)) => "[object Object]".to_owned(),
    }
}

/// JavaScript's `part++` on a digit string: `Number(part) + 1`, printed as JavaScript prints it.
pub(crate) fn js_increment(digits: &str) -> String {
    let next = digits.parse::<f64>().unwrap_or(f64::NAN) + 1.0;
    if next.is_infinite() { "Infinity".to_owned() } else { json::format_f64(next) }
}

/// `Object.assign(target, source)` for JSON objects.
pub(crate) fn assign(target: &mut Map<String, Value>, source: &Map<String, Value>) {
    for (key, value) in source {
        target.insert(key.clone(), value.clone());
    }
}
