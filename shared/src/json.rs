//! composer.json as JavaScript reads and writes it: `JSON.parse` then `JSON.stringify(v, null, 2)`.
//!
//! The reference generator regenerates every package's composer.json this way, and the bytes end up
//! in archives whose sha1 users have in their lock files, so the output must match to the byte:
//! key order (array-index keys first, then insertion order), JavaScript number formatting, string
//! escaping, 2-space indentation and no trailing newline.
//!
//! Parsing uses serde_json with `preserve_order` (a duplicated key keeps its first position and takes
//! its last value, as `JSON.parse` does) and `arbitrary_precision` (numbers keep their source text, so
//! they can be converted to an IEEE double with correct rounding, as JavaScript does).

use serde_json::{Map, Number, Value};

/// A composer.json document could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("invalid JSON: {0}")]
pub struct JsonError(#[from] serde_json::Error);

/// Parses JSON text the way `JSON.parse` does.
pub fn parse(text: &str) -> Result<Value, JsonError> {
    Ok(serde_json::from_str(text)?)
}

/// Serialises a value exactly as `JSON.stringify(value, null, 2)` does.
pub fn stringify_pretty(value: &Value) -> String {
    let mut out = String::with_capacity(256);
    write_value(&mut out, value, 0);
    out
}

/// [`stringify_pretty`] of an object, without wrapping it in a [`Value`] (no copy).
pub fn stringify_pretty_object(map: &Map<String, Value>) -> String {
    let mut out = String::with_capacity(256);
    if map.is_empty() {
        out.push_str("{}");
    } else {
        write_object(&mut out, map, 0);
    }
    out
}

/// Serialises a value exactly as `JSON.stringify(value)` does (no whitespace).
pub fn stringify_compact(value: &Value) -> String {
    let mut out = String::with_capacity(256);
    write_compact(&mut out, value);
    out
}

/// [`stringify_compact`] of an object, without wrapping it in a [`Value`] (no copy).
pub fn stringify_compact_object(map: &Map<String, Value>) -> String {
    let mut out = String::with_capacity(256);
    write_compact_object(&mut out, map);
    out
}

/// The [`stringify_compact`] text of the value whose [`stringify_pretty`] text is `pretty`,
/// without parsing it: the two differ only in the whitespace between tokens (strings escape
/// every control character, so whitespace inside a string is a space, kept).
pub fn compact_of_pretty(pretty: &str) -> String {
    let mut out = String::with_capacity(pretty.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in pretty.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if !matches!(c, ' ' | '\n' | '\r' | '\t') {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

/// Orders object keys the way JavaScript enumerates them: array-index keys first, ascending,
/// then every other key in insertion order.
pub fn js_key_order(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut indexed: Vec<(u32, &String, &Value)> = Vec::new();
    let mut named: Vec<(&String, &Value)> = Vec::new();
    for (key, value) in map {
        match array_index(key) {
            Some(index) => indexed.push((index, key, value)),
            None => named.push((key, value)),
        }
    }
    indexed.sort_by_key(|(index, _, _)| *index);
    indexed.into_iter().map(|(_, key, value)| (key, value)).chain(named).collect()
}

/// Returns the numeric value of a canonical array index (`"0"` to `"4294967294"`, no leading zeros).
pub fn array_index(key: &str) -> Option<u32> {
    if key.is_empty() || key.len() > 10 || !key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if key.len() > 1 && key.starts_with('0') {
        return None;
    }
    let value: u64 = key.parse().ok()?;
    (value < u64::from(u32::MAX)).then_some(value as u32)
}

/// Formats a number as JavaScript's `Number.prototype.toString` does (and so `JSON.stringify`).
pub fn format_js_number(number: &Number) -> String {
    // With `arbitrary_precision` the number keeps its source text; Rust's float parser rounds
    // correctly, as JavaScript's does.
    let value: f64 = number.to_string().parse().unwrap_or(f64::NAN);
    format_f64(value)
}

/// Formats a double as ECMAScript `Number::toString(x)`; non-finite values become `null` as in JSON.
pub fn format_f64(value: f64) -> String {
    if !value.is_finite() {
        return "null".to_owned();
    }
    if value == 0.0 {
        return "0".to_owned();
    }
    if value < 0.0 {
        return format!("-{}", format_f64(-value));
    }
    // `{:e}` gives the shortest digits that round-trip, e.g. "1.2345678901234567e19".
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific.split_once('e').expect("LowerExp always has an exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let exponent: i32 = exponent.parse().expect("LowerExp exponent is an integer");
    let k = digits.len() as i32;
    let n = exponent + 1;
    if k <= n && n <= 21 {
        let mut out = digits;
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
        out
    } else if 0 < n && n <= 21 {
        let (int_part, frac_part) = digits.split_at(n as usize);
        format!("{int_part}.{frac_part}")
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let sign = if n - 1 < 0 { '-' } else { '+' };
        let magnitude = (n - 1).abs();
        if k == 1 {
            format!("{digits}e{sign}{magnitude}")
        } else {
            format!("{}.{}e{sign}{magnitude}", &digits[..1], &digits[1..])
        }
    }
}

/// A non-empty object, pretty.
fn write_object(out: &mut String, map: &Map<String, Value>, depth: usize) {
    out.push_str("{\n");
    let entries = js_key_order(map);
    let last = entries.len() - 1;
    for (i, (key, item)) in entries.into_iter().enumerate() {
        indent(out, depth + 1);
        write_string(out, key);
        out.push_str(": ");
        write_value(out, item, depth + 1);
        out.push_str(if i == last { "\n" } else { ",\n" });
    }
    indent(out, depth);
    out.push('}');
}

fn write_value(out: &mut String, value: &Value, depth: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => write_object(out, map, depth),
        Value::Array(items) if !items.is_empty() => {
            out.push_str("[\n");
            let last = items.len() - 1;
            for (i, item) in items.iter().enumerate() {
                indent(out, depth + 1);
                write_value(out, item, depth + 1);
                out.push_str(if i == last { "\n" } else { ",\n" });
            }
            indent(out, depth);
            out.push(']');
        }
        other => write_compact(out, other),
    }
}

fn write_compact(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&format_js_number(n)),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_compact(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => write_compact_object(out, map),
    }
}

fn write_compact_object(out: &mut String, map: &Map<String, Value>) {
    out.push('{');
    for (i, (key, item)) in js_key_order(map).into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, key);
        out.push(':');
        write_compact(out, item);
    }
    out.push('}');
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

/// JSON.stringify's QuoteJSONString: only `"`, `\` and control characters are escaped.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(text: &str) -> String {
        stringify_pretty(&parse(text).unwrap())
    }

    #[test]
    fn numbers_print_as_javascript_does() {
        let cases = [
            ("1.0", "1"),
            ("2.50", "2.5"),
            ("1E3", "1000"),
            ("1.5e-7", "1.5e-7"),
            ("-12.340", "-12.34"),
            ("-0", "0"),
            ("12345678901234567890", "12345678901234567000"),
            ("1e21", "1e+21"),
            ("0.000001", "0.000001"),
            ("0.0000001", "1e-7"),
            ("123e-20", "1.23e-18"),
            ("100", "100"),
            ("1e400", "null"),
        ];
        for (input, expected) in cases {
            assert_eq!(roundtrip(input), expected, "{input}");
        }
    }

    #[test]
    fn array_index_keys_come_first() {
        let text = r#"{"10":1,"2":2,"b":3,"01":4,"-1":5,"1.5":6,"4294967294":7,"4294967295":8}"#;
        let out = stringify_compact(&parse(text).unwrap());
        assert_eq!(out, r#"{"2":2,"10":1,"4294967294":7,"b":3,"01":4,"-1":5,"1.5":6,"4294967295":8}"#);
    }

    #[test]
    fn duplicate_key_keeps_first_position_and_last_value() {
        assert_eq!(stringify_compact(&parse(r#"{"dup":1,"x":2,"dup":3}"#).unwrap()), r#"{"dup":3,"x":2}"#);
    }

    #[test]
    fn strings_escape_like_javascript() {
        let text = "\"a/b \\u00e9 \\u2028 \\u007f \\u0001 \\t \\\" \\\\ \\ud83d\\ude00\"";
        assert_eq!(roundtrip(text), "\"a/b é \u{2028} \u{7f} \\u0001 \\t \\\" \\\\ 😀\"");
    }

    #[test]
    fn the_compact_form_of_the_pretty_text_is_the_compact_text() {
        let texts = [
            r#"{"a":[],"b":{},"c":[1,{"d":null}],"e":true}"#,
            r#"{"s":"two  spaces, a \"quote\" and a \\ {\"x\": [1, 2]}","t":"tab\tnew\nline","n":[1.5,-0,1e21]}"#,
            r#"{"10":1,"2":{"k v":" ","":""},"empty":"","esc\\":"\\"}"#,
            "[]",
            r#""lone string with \" and spaces ""#,
        ];
        for text in texts {
            let value = parse(text).unwrap();
            assert_eq!(compact_of_pretty(&stringify_pretty(&value)), stringify_compact(&value), "{text}");
        }
        let object = parse(texts[1]).unwrap();
        let map = object.as_object().unwrap();
        assert_eq!(stringify_compact_object(map), stringify_compact(&object));
    }

    #[test]
    fn pretty_layout_matches_stringify() {
        let out = roundtrip(r#"{"a":[],"b":{},"c":[1,{"d":null}],"e":true}"#);
        assert_eq!(
            out,
            "{\n  \"a\": [],\n  \"b\": {},\n  \"c\": [\n    1,\n    {\n      \"d\": null\n    }\n  ],\n  \"e\": true\n}"
        );
    }
}
