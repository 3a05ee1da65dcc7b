//! Values to and from their stored form.
//!
//! python-diskcache stores `int`, `float`, `str` and `bytes` natively (mode 1,
//! or a file in modes 2 and 3) and pickles everything else (mode 4). diskq
//! stores the same scalars the same way and every other serde value as
//! MessagePack with field names under a mode of its own ([`MODE_MSGPACK`]);
//! it never reads pickles.

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::ser::{self, Impossible, Serialize};

use crate::error::{Error, Result};
use crate::key::Key;

/// python-diskcache's value modes, and ours.
pub(crate) const MODE_RAW: i64 = 1;
pub(crate) const MODE_BINARY: i64 = 2;
pub(crate) const MODE_TEXT: i64 = 3;
pub(crate) const MODE_PICKLE: i64 = 4;
/// MessagePack (diskq only; python-diskcache reads such a row as `None`).
pub(crate) const MODE_MSGPACK: i64 = 5;

/// A scalar in python-diskcache's native form.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Native {
    Int(i64),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
}

impl Native {
    /// What the value is, for messages ("the stored text does not fit").
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Native::Int(_) => "integer",
            Native::Float(_) => "float",
            Native::Text(_) => "text",
            Native::Bytes(_) => "bytes",
        }
    }

    pub(crate) fn from_key(key: &Key) -> Native {
        match key {
            Key::Int(n) => Native::Int(*n),
            Key::Float(x) => Native::Float(*x),
            Key::Text(s) => Native::Text(s.clone()),
            Key::Bytes(b) | Key::Encoded(b) => Native::Bytes(b.clone()),
        }
    }
}

/// One SQLite value as stored in a column (a Settings value, a Cache value).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// A value ready to store: a native scalar or MessagePack bytes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Encoded {
    Native(Native),
    MsgPack(Vec<u8>),
}

/// Encodes a value: scalars natively, everything else as named MessagePack.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Encoded> {
    match value.serialize(ScalarCapture) {
        Ok(native) => Ok(Encoded::Native(native)),
        Err(NotScalar) => rmp_serde::to_vec_named(value)
            .map(Encoded::MsgPack)
            .map_err(|e| Error::encode_by("the value as MessagePack", e)),
    }
}

/// A stored value read back: what it decodes from.
#[derive(Debug)]
pub(crate) enum Stored {
    Native(Native),
    MsgPack(Vec<u8>),
    Pickle,
}

/// Decodes a stored value into `T`; `key` names the row in the error.
pub(crate) fn decode<T: DeserializeOwned>(stored: Stored, key: &Key) -> Result<T> {
    let wanted = std::any::type_name::<T>();
    match stored {
        Stored::Native(native) => decode_native(&native).map_err(|e| {
            Error::decode(
                key,
                wanted,
                format!("the stored {} does not fit", native.kind()),
                Some(e.into()),
            )
        }),
        Stored::MsgPack(bytes) => rmp_serde::from_slice(&bytes)
            .map_err(|e| Error::decode(key, wanted, "the stored MessagePack does not fit", Some(e.into()))),
        Stored::Pickle => Err(Error::Pickled { key: key.to_string() }),
    }
}

pub(crate) fn decode_native<T: DeserializeOwned>(native: &Native) -> std::result::Result<T, de::value::Error> {
    T::deserialize(NativeDeserializer(native))
}

/// Marks a value that is not a top-level scalar (so it goes to MessagePack).
#[derive(Debug)]
struct NotScalar;

impl std::fmt::Display for NotScalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a scalar")
    }
}
impl std::error::Error for NotScalar {}
impl ser::Error for NotScalar {
    fn custom<T: std::fmt::Display>(_msg: T) -> Self {
        NotScalar
    }
}

/// A serializer that accepts only the scalars python-diskcache stores natively.
struct ScalarCapture;

type No = Impossible<Native, NotScalar>;

impl ser::Serializer for ScalarCapture {
    type Ok = Native;
    type Error = NotScalar;
    type SerializeSeq = No;
    type SerializeTuple = No;
    type SerializeTupleStruct = No;
    type SerializeTupleVariant = No;
    type SerializeMap = No;
    type SerializeStruct = No;
    type SerializeStructVariant = No;

    fn serialize_bool(self, _v: bool) -> Result<Native, NotScalar> {
        // Python pickles bools; MessagePack keeps them bools for us.
        Err(NotScalar)
    }
    fn serialize_i8(self, v: i8) -> Result<Native, NotScalar> {
        Ok(Native::Int(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<Native, NotScalar> {
        Ok(Native::Int(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<Native, NotScalar> {
        Ok(Native::Int(v.into()))
    }
    fn serialize_i64(self, v: i64) -> Result<Native, NotScalar> {
        Ok(Native::Int(v))
    }
    fn serialize_i128(self, v: i128) -> Result<Native, NotScalar> {
        i64::try_from(v).map(Native::Int).map_err(|_| NotScalar)
    }
    fn serialize_u8(self, v: u8) -> Result<Native, NotScalar> {
        Ok(Native::Int(v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<Native, NotScalar> {
        Ok(Native::Int(v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<Native, NotScalar> {
        Ok(Native::Int(v.into()))
    }
    fn serialize_u64(self, v: u64) -> Result<Native, NotScalar> {
        i64::try_from(v).map(Native::Int).map_err(|_| NotScalar)
    }
    fn serialize_u128(self, v: u128) -> Result<Native, NotScalar> {
        i64::try_from(v).map(Native::Int).map_err(|_| NotScalar)
    }
    fn serialize_f32(self, v: f32) -> Result<Native, NotScalar> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<Native, NotScalar> {
        // SQLite stores NaN as NULL; MessagePack keeps it.
        if v.is_nan() {
            Err(NotScalar)
        } else {
            Ok(Native::Float(v))
        }
    }
    fn serialize_char(self, v: char) -> Result<Native, NotScalar> {
        Ok(Native::Text(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Native, NotScalar> {
        Ok(Native::Text(v.to_owned()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Native, NotScalar> {
        Ok(Native::Bytes(v.to_vec()))
    }
    fn serialize_none(self) -> Result<Native, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<Native, NotScalar> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Native, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Native, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
    ) -> Result<Native, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Native, NotScalar> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<Native, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<No, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_tuple(self, _len: usize) -> Result<No, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<No, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<No, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<No, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<No, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<No, NotScalar> {
        Err(NotScalar)
    }
}

/// Deserializes a native scalar into any type that accepts it.
struct NativeDeserializer<'a>(&'a Native);

impl<'de> de::Deserializer<'de> for NativeDeserializer<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Native::Int(n) => visitor.visit_i64(*n),
            Native::Float(x) => visitor.visit_f64(*x),
            Native::Text(s) => visitor.visit_str(s),
            Native::Bytes(b) => visitor.visit_bytes(b),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            // So that a plain `Vec<u8>` reads a bytes value.
            Native::Bytes(b) => visitor.visit_seq(de::value::SeqDeserializer::new(b.iter().copied())),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Native::Text(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            _ => self.deserialize_any(visitor),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct tuple tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Page {
        url: String,
        status: u16,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct UserId(i64);

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Color {
        Red,
        Green,
    }

    fn round<T: Serialize + DeserializeOwned>(v: &T) -> (Encoded, T) {
        let enc = encode(v).unwrap();
        let stored = match enc.clone() {
            Encoded::Native(n) => Stored::Native(n),
            Encoded::MsgPack(b) => Stored::MsgPack(b),
        };
        (enc, decode(stored, &Key::Int(0)).unwrap())
    }

    #[test]
    fn scalars_are_native() {
        assert_eq!(round(&5i32).0, Encoded::Native(Native::Int(5)));
        assert_eq!(round(&u64::from(u32::MAX)).1, u64::from(u32::MAX));
        assert_eq!(round(&2.5f64).0, Encoded::Native(Native::Float(2.5)));
        assert_eq!(round(&String::from("hi")).0, Encoded::Native(Native::Text("hi".into())));
        let bytes = serde_bytes::ByteBuf::from(vec![1u8, 2]);
        assert_eq!(round(&bytes).0, Encoded::Native(Native::Bytes(vec![1, 2])));
        assert_eq!(round(&Some(3i64)).0, Encoded::Native(Native::Int(3)));
        assert_eq!(round(&UserId(4)), (Encoded::Native(Native::Int(4)), UserId(4)));
        assert_eq!(round(&'c').1, 'c');
    }

    #[test]
    fn everything_else_is_messagepack() {
        let page = Page {
            url: "/a".into(),
            status: 200,
        };
        let (enc, back) = round(&page);
        assert!(matches!(enc, Encoded::MsgPack(_)));
        assert_eq!(back, page);
        assert!(matches!(round(&true).0, Encoded::MsgPack(_)));
        assert!(matches!(round(&None::<i64>).0, Encoded::MsgPack(_)));
        assert!(matches!(round(&u64::MAX).0, Encoded::MsgPack(_)));
        assert_eq!(round(&u64::MAX).1, u64::MAX);
        assert!(round(&f64::NAN).1.is_nan());
        assert_eq!(round(&vec![1, 2]).1, vec![1, 2]);
        assert_eq!(round(&Color::Green).1, Color::Green);
    }

    #[test]
    fn native_values_decode_into_compatible_types() {
        let n = |v: Native| Stored::Native(v);
        let k = Key::from("k");
        assert_eq!(decode::<Vec<u8>>(n(Native::Bytes(vec![7, 8])), &k).unwrap(), vec![7, 8]);
        assert_eq!(decode::<f64>(n(Native::Int(2)), &k).unwrap(), 2.0);
        assert_eq!(
            decode::<Option<String>>(n(Native::Text("x".into())), &k).unwrap(),
            Some("x".into())
        );
        assert_eq!(decode::<Color>(n(Native::Text("Red".into())), &k).unwrap(), Color::Red);
        let err = decode::<i64>(n(Native::Text("x".into())), &k).unwrap_err();
        match err {
            Error::Decode { key, wanted, .. } => {
                assert_eq!(key, "\"k\"");
                assert_eq!(wanted, "i64");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(decode::<i64>(Stored::Pickle, &k), Err(Error::Pickled { .. })));
        assert!(decode::<Page>(Stored::MsgPack(vec![0xc1]), &k).is_err());
    }
}
