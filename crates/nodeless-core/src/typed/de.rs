//! A `serde::Deserializer` over a JSON value that behaves like kube-apiserver's JSON decoder.
//!
//! Decoding straight from `serde_json::Value` would differ from upstream in ways clients
//! notice: `null` is an error for a string, numbers are refused for a `Quantity`, dropped
//! fields vanish silently and an error says nothing of where it happened. This deserializer
//! follows Go's `encoding/json` instead: `null` leaves the zero value, a number is a valid
//! `Quantity`, every field the typed struct ignores is recorded with its path (the fields
//! strict field validation reports), and a type error names the Go struct and field path.

use serde::de::value::{BorrowedStrDeserializer, StringDeserializer};
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde_json::{Map, Number, Value};
use std::cell::RefCell;

use super::error::{go_kind, DeError, Location};

/// One step of the path from the object's root to the value being decoded.
#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

/// State shared by every node of one decode: where we are, and what was ignored.
#[derive(Debug, Default)]
pub(super) struct Ctx {
    path: RefCell<Vec<Seg>>,
    unknown: RefCell<Vec<String>>,
}

impl Ctx {
    /// Fields present in the input that the typed struct ignored, as dotted paths.
    pub(super) fn into_unknown(self) -> Vec<String> {
        self.unknown.into_inner()
    }

    fn push(&self, seg: Seg) {
        self.path.borrow_mut().push(seg);
    }

    fn pop(&self) {
        self.path.borrow_mut().pop();
    }

    /// Deserializes `value` as the child `seg` of the current node, so that errors inside it
    /// are located at the child's path.
    fn descend<'de, S: DeserializeSeed<'de>>(
        &self,
        seg: Seg,
        value: &'de Value,
        owner: &'static str,
        seed: S,
    ) -> Result<S::Value, DeError> {
        self.push(seg);
        let node = Node {
            value,
            cx: self,
            owner,
        };
        let result = seed
            .deserialize(node)
            .map_err(|e| e.located(|| self.location(owner)));
        self.pop();
        result
    }

    /// `spec.containers[0].image`: the form strict field validation reports.
    fn indexed_path(&self) -> String {
        let mut out = String::new();
        for seg in self.path.borrow().iter() {
            match seg {
                Seg::Key(k) if out.is_empty() => out.push_str(k),
                Seg::Key(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    /// `spec.containers.image`: the form Go's decode errors use (no list indexes).
    fn go_path(&self) -> String {
        let path = self.path.borrow();
        let keys: Vec<&str> = path
            .iter()
            .filter_map(|s| match s {
                Seg::Key(k) => Some(k.as_str()),
                Seg::Index(_) => None,
            })
            .collect();
        keys.join(".")
    }

    fn location(&self, go_struct: &'static str) -> Location {
        Location {
            go_struct,
            go_path: self.go_path(),
            path: self.indexed_path(),
        }
    }
}

/// Reads `n` as an integer of type `T`, refusing fractions and out-of-range values as Go does.
fn int_of<T: TryFrom<i64> + TryFrom<u64>>(n: &Number) -> Option<T> {
    n.as_i64()
        .and_then(|i| T::try_from(i).ok())
        .or_else(|| n.as_u64().and_then(|u| T::try_from(u).ok()))
}

/// One JSON value being decoded, with the name of the Go struct it sits in.
#[derive(Clone, Copy)]
pub(super) struct Node<'de, 'c> {
    value: &'de Value,
    cx: &'c Ctx,
    owner: &'static str,
}

impl<'de, 'c> Node<'de, 'c> {
    pub(super) fn root(value: &'de Value, cx: &'c Ctx) -> Self {
        Self {
            value,
            cx,
            owner: "",
        }
    }

    fn mismatch(&self, want: &str) -> DeError {
        DeError::mismatch(go_kind(self.value), want)
    }

    fn visit_object<V: Visitor<'de>>(
        self,
        owner: &'static str,
        visitor: V,
        want: &str,
    ) -> Result<V::Value, DeError> {
        match self.value {
            Value::Object(map) => visitor.visit_map(ObjectAccess::new(Some(map), self.cx, owner)),
            // Go leaves a struct or map alone when it meets `null`.
            Value::Null => visitor.visit_map(ObjectAccess::new(None, self.cx, owner)),
            _ => Err(self.mismatch(want)),
        }
    }

    fn visit_array<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::Array(items) => visitor.visit_seq(ArrayAccess::new(items, self.cx, self.owner)),
            Value::Null => visitor.visit_seq(ArrayAccess::new(&[], self.cx, self.owner)),
            _ => Err(self.mismatch("[]interface {}")),
        }
    }
}

macro_rules! int_method {
    ($method:ident, $visit:ident, $ty:ty, $go:literal) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            match self.value {
                Value::Null => visitor.$visit(0),
                Value::Number(n) => match int_of::<$ty>(n) {
                    Some(i) => visitor.$visit(i),
                    None => Err(DeError::mismatch(format!("number {n}"), $go)),
                },
                _ => Err(self.mismatch($go)),
            }
        }
    };
}

macro_rules! float_method {
    ($method:ident, $visit:ident, $ty:ty, $go:literal) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            match self.value {
                Value::Null => visitor.$visit(0.0),
                // Narrowing to f32 is what Go's float32 decoding does as well.
                Value::Number(n) => visitor.$visit(n.as_f64().unwrap_or_default() as $ty),
                _ => Err(self.mismatch($go)),
            }
        }
    };
}

impl<'de> de::Deserializer<'de> for Node<'de, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or_default())
                }
            }
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(_) => self.visit_array(visitor),
            Value::Object(_) => self.visit_object(self.owner, visitor, "map[string]interface {}"),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::Null => visitor.visit_bool(false),
            Value::Bool(b) => visitor.visit_bool(*b),
            _ => Err(self.mismatch("bool")),
        }
    }

    int_method!(deserialize_i8, visit_i8, i8, "int8");
    int_method!(deserialize_i16, visit_i16, i16, "int16");
    int_method!(deserialize_i32, visit_i32, i32, "int32");
    int_method!(deserialize_i64, visit_i64, i64, "int64");
    int_method!(deserialize_u8, visit_u8, u8, "uint8");
    int_method!(deserialize_u16, visit_u16, u16, "uint16");
    int_method!(deserialize_u32, visit_u32, u32, "uint32");
    int_method!(deserialize_u64, visit_u64, u64, "uint64");
    float_method!(deserialize_f32, visit_f32, f32, "float32");
    float_method!(deserialize_f64, visit_f64, f64, "float64");

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::Null => visitor.visit_borrowed_str(""),
            Value::String(s) => visitor.visit_borrowed_str(s),
            _ => Err(self.mismatch("string")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::String(s) => visitor.visit_borrowed_str(s),
            _ => Err(self.mismatch("[]uint8")),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            _ => Err(self.mismatch("struct {}")),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match (name, self.value) {
            // Go's Quantity accepts a bare JSON number (YAML `cpu: 1` arrives as one) and
            // keeps it as the string it spelled.
            ("Quantity", Value::Number(n)) => {
                visitor.visit_newtype_struct(StringDeserializer::<DeError>::new(n.to_string()))
            }
            // ... and reads `null` as the zero quantity.
            ("Quantity", Value::Null) => {
                visitor.visit_newtype_struct(StringDeserializer::<DeError>::new("0".into()))
            }
            _ => visitor.visit_newtype_struct(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.visit_array(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.visit_array(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.visit_array(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.visit_object(self.owner, visitor, "map[string]string")
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let want = format!("v1.{name}");
        self.visit_object(name, visitor, &want)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.value {
            Value::String(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            _ => Err(self.mismatch("string")),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    /// Typed structs skip fields they do not know through `IgnoredAny`: that is the moment a
    /// field is dropped, so it is recorded here with its full path.
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let path = self.cx.indexed_path();
        self.cx.unknown.borrow_mut().push(path);
        visitor.visit_unit()
    }
}

/// The entries of a JSON object, given to a struct's or a map's visitor.
struct ObjectAccess<'de, 'c> {
    entries: Option<serde_json::map::Iter<'de>>,
    pending: Option<(&'de String, &'de Value)>,
    cx: &'c Ctx,
    owner: &'static str,
}

impl<'de, 'c> ObjectAccess<'de, 'c> {
    fn new(map: Option<&'de Map<String, Value>>, cx: &'c Ctx, owner: &'static str) -> Self {
        Self {
            entries: map.map(|m| m.iter()),
            pending: None,
            cx,
            owner,
        }
    }
}

impl<'de> de::MapAccess<'de> for ObjectAccess<'de, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, value)) = self.entries.as_mut().and_then(Iterator::next) else {
            return Ok(None);
        };
        self.pending = Some((key, value));
        seed.deserialize(BorrowedStrDeserializer::<DeError>::new(key))
            .map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, DeError> {
        let Some((key, value)) = self.pending.take() else {
            return Err(de::Error::custom("value requested before its key"));
        };
        self.cx
            .descend(Seg::Key(key.clone()), value, self.owner, seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.entries.as_ref().map(|it| it.len())
    }
}

/// The items of a JSON array, given to a sequence's visitor.
struct ArrayAccess<'de, 'c> {
    items: std::iter::Enumerate<std::slice::Iter<'de, Value>>,
    cx: &'c Ctx,
    owner: &'static str,
}

impl<'de, 'c> ArrayAccess<'de, 'c> {
    fn new(items: &'de [Value], cx: &'c Ctx, owner: &'static str) -> Self {
        Self {
            items: items.iter().enumerate(),
            cx,
            owner,
        }
    }
}

impl<'de> de::SeqAccess<'de> for ArrayAccess<'de, '_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some((index, value)) = self.items.next() else {
            return Ok(None);
        };
        self.cx
            .descend(Seg::Index(index), value, self.owner, seed)
            .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}
