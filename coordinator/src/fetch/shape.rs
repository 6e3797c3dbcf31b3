//! The shape of a JSON document measured without building it: how many values it holds and how
//! many versions each package of its `packages` object lists. Nothing is allocated per value, so
//! a hostile document costs its bytes, not a tree of a million small maps.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// What a document holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Shape {
    /// Every value, containers included.
    pub(super) values: usize,
    /// `(package, versions)` for each entry of the top-level `packages` object.
    pub(super) versions: Vec<(String, usize)>,
    /// Why measuring stopped early.
    stopped: Option<Refusal>,
}

/// Why a document is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Not JSON.
    Json(String),
    /// More values than allowed.
    Values(usize),
    /// A package lists more versions than allowed.
    Versions(String, usize),
}

/// The limits a document is measured against.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds {
    /// Most values in the document.
    pub(super) values: usize,
    /// Most versions of one package.
    pub(super) versions: usize,
}

/// Measures `bytes`, stopping at the first limit it breaks.
pub(super) fn measure(bytes: &[u8], bounds: Bounds) -> Result<Shape, Refusal> {
    let mut shape = Shape::default();
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let outcome = Measure { shape: &mut shape, bounds, role: Role::Root }
        .deserialize(&mut deserializer)
        .and_then(|_| deserializer.end());
    match (outcome, shape.stopped.take()) {
        (Ok(()), _) => Ok(shape),
        (Err(_), Some(refusal)) => Err(refusal),
        (Err(error), None) => Err(Refusal::Json(error.to_string())),
    }
}

/// Where in the document a value is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The document itself.
    Root,
    /// The top-level `packages` object: its entries' lengths are recorded.
    Packages,
    /// One package's versions, named.
    Versions,
    /// Anywhere else.
    Any,
}

/// Counts a value and everything inside it; yields its length (elements or entries).
struct Measure<'a> {
    shape: &'a mut Shape,
    bounds: Bounds,
    role: Role,
}

impl Measure<'_> {
    fn count<E: de::Error>(&mut self) -> Result<usize, E> {
        self.shape.values += 1;
        if self.shape.values > self.bounds.values {
            return self.stop(Refusal::Values(self.bounds.values));
        }
        Ok(0)
    }

    /// Counts one more version of the package being read.
    fn version<E: de::Error>(&mut self, length: usize) -> Result<(), E> {
        if self.role == Role::Versions && length > self.bounds.versions {
            let name = self.shape.versions.last().map(|(name, _)| name.clone()).unwrap_or_default();
            return self.stop(Refusal::Versions(name, self.bounds.versions)).map(|_| ());
        }
        Ok(())
    }

    fn stop<E: de::Error>(&mut self, refusal: Refusal) -> Result<usize, E> {
        self.shape.stopped = Some(refusal);
        Err(E::custom("limit reached"))
    }

    fn child(&mut self, role: Role) -> Measure<'_> {
        Measure { shape: &mut *self.shape, bounds: self.bounds, role }
    }
}

impl<'de> DeserializeSeed<'de> for Measure<'_> {
    type Value = usize;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Measure<'_> {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<usize, A::Error> {
        self.count()?;
        let mut length = 0;
        while let Some(key) = map.next_key::<String>()? {
            self.count()?;
            length += 1;
            self.version(length)?;
            let role = match self.role {
                Role::Root if key == "packages" => Role::Packages,
                Role::Packages => Role::Versions,
                _ => Role::Any,
            };
            if role == Role::Versions {
                self.shape.versions.push((key, 0));
            }
            let inner = map.next_value_seed(self.child(role))?;
            if role == Role::Versions {
                self.shape.versions.last_mut().expect("just pushed").1 = inner;
            }
        }
        Ok(length)
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<usize, A::Error> {
        self.count()?;
        let mut length = 0;
        while seq.next_element_seed(self.child(Role::Any))?.is_some() {
            length += 1;
            self.version(length)?;
        }
        Ok(length)
    }
    fn visit_unit<E: de::Error>(mut self) -> Result<usize, E> {
        self.count()
    }
    fn visit_bool<E: de::Error>(mut self, _: bool) -> Result<usize, E> {
        self.count()
    }
    fn visit_str<E: de::Error>(mut self, _: &str) -> Result<usize, E> {
        self.count()
    }
    fn visit_i64<E: de::Error>(mut self, _: i64) -> Result<usize, E> {
        self.count()
    }
    fn visit_u64<E: de::Error>(mut self, _: u64) -> Result<usize, E> {
        self.count()
    }
    fn visit_f64<E: de::Error>(mut self, _: f64) -> Result<usize, E> {
        self.count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_versions_per_package_and_every_value() {
        let bounds = |values, versions| Bounds { values, versions };
        let document =
            br#"{"minified":"composer/2.0","packages":{"a/b":[{"version":"1"},{"version":"2"}],"c/d":{"1.0":{}}}}"#;
        let shape = measure(document, bounds(100, 10)).unwrap();
        assert_eq!(shape.versions, [("a/b".to_owned(), 2), ("c/d".to_owned(), 1)]);
        // root; minified key and string; packages key and map; a/b key, list, 2 x (object, key,
        // string); c/d key, map, 1.0 key, object
        assert_eq!(shape.values, 17);
        assert_eq!(measure(document, bounds(10, 10)), Err(Refusal::Values(10)));
        assert_eq!(measure(document, bounds(100, 1)), Err(Refusal::Versions("a/b".to_owned(), 1)));
        assert!(matches!(measure(b"{\"a\":", bounds(10, 10)), Err(Refusal::Json(_))));
        assert!(matches!(measure(b"[1,2] x", bounds(10, 10)), Err(Refusal::Json(_))));
        // Nested "packages" keys are plain values.
        assert_eq!(measure(br#"{"x":{"packages":{"a/b":[1]}}}"#, bounds(100, 10)).unwrap().versions, []);
    }
}
