//! JSON text with numbers as Bitcoin Core writes them: never in exponent form (an amount of
//! 416 sats is `0.00000416`, not `4.16e-6`, which some parsers and every reader stumble on).

use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter};
use serde_json::Value;

/// A formatter that writes floats in plain decimal and leaves the rest to `F`.
struct Plain<F>(F);

impl<F: Formatter> Formatter for Plain<F> {
    fn write_f64<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        value: f64,
    ) -> std::io::Result<()> {
        if value.is_finite() && value == value.trunc() {
            // Whole numbers keep their decimal point, as serde_json writes them.
            write!(writer, "{value:.1}")
        } else {
            // Rust's `Display` for floats is the shortest exact form, never an exponent.
            write!(writer, "{value}")
        }
    }

    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_array(w)
    }

    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array(w)
    }

    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_array_value(w, first)
    }

    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array_value(w)
    }

    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object(w)
    }

    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object(w)
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_object_key(w, first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object_value(w)
    }

    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_value(w)
    }
}

fn write_with<F: Formatter>(value: &Value, formatter: F) -> String {
    let mut bytes = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut bytes, Plain(formatter));
    // A `Value` serialises into memory without failing, as valid UTF-8.
    let _ = serde::Serialize::serialize(value, &mut serializer);
    String::from_utf8(bytes).unwrap_or_default()
}

/// `value` as compact JSON text, numbers in plain decimal.
pub fn to_text(value: &Value) -> String {
    write_with(value, CompactFormatter)
}

/// `value` as indented JSON text, numbers in plain decimal.
pub fn to_pretty_text(value: &Value) -> String {
    write_with(value, PrettyFormatter::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn amounts_never_take_an_exponent_and_everything_else_is_unchanged() {
        let value = json!({"fee": 4.16e-6, "tiny": 1e-8, "whole": 50.0, "n": 3, "s": "x"});
        assert_eq!(
            to_text(&value),
            r#"{"fee":0.00000416,"tiny":0.00000001,"whole":50.0,"n":3,"s":"x"}"#
        );
        let pretty = to_pretty_text(&json!({"a": [0.00000416]}));
        assert_eq!(pretty, "{\n  \"a\": [\n    0.00000416\n  ]\n}");
        // Parsed back, the same numbers.
        let back: Value = serde_json::from_str(&to_text(&value)).unwrap();
        assert_eq!(back, value);
    }
}
