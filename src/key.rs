//! Keys: the kinds python-diskcache stores natively, plus encoded composites.

use std::fmt;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::error::{Error, Result};

/// A cache key.
///
/// Integers, floats, text and bytes are stored natively (column `raw = 1`), the
/// way python-diskcache stores `int`, `float`, `str` and `bytes` keys, so both
/// libraries find the same rows. Any other serde type becomes
/// [`Key::Encoded`] (MessagePack, `raw = 0`) through [`Key::encode`].
///
/// Equality follows the stored identity: integer and float keys that are
/// numerically equal (`Key::Int(1)` and `Key::Float(1.0)`, also `0` and
/// `-0.0`) name the same row in a [`Cache`](crate::Cache) (SQLite compares an
/// INTEGER and a REAL numerically in the `UNIQUE(key, raw)` index, as Python
/// does `1 == 1.0`), so they compare equal and hash alike. Text and bytes never
/// equal each other or a number (SQLite's storage classes differ), and an
/// [`Key::Encoded`] key never equals a native one (`raw` differs). Two NaN
/// floats compare equal so that `Key` is [`Eq`]; NaN keys are refused on use.
///
/// A `FanoutCache` picks the shard from the key's stored bytes, the way
/// python-diskcache does, so there `1` and `1.0` may land in different shards
/// and name different rows.
///
/// ```
/// use diskq::Key;
/// assert_eq!(Key::Int(1), Key::Float(1.0));
/// assert_ne!(Key::Int(1), Key::Float(1.5));
/// assert_ne!(Key::from("1"), Key::Int(1));
/// ```
///
/// ```
/// use diskq::Key;
/// assert_eq!(Key::from(7), Key::Int(7));
/// assert_eq!(Key::from("page"), Key::Text("page".into()));
/// let composite = Key::encode(&("user", 42)).unwrap();
/// assert_eq!(composite.decode::<(String, i64)>().unwrap(), ("user".into(), 42));
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Key {
    /// A 64-bit signed integer.
    Int(i64),
    /// A float; NaN cannot be stored (SQLite turns it into NULL) and is refused.
    Float(f64),
    /// UTF-8 text.
    Text(String),
    /// A byte string.
    Bytes(Vec<u8>),
    /// Any other serde value, MessagePack-encoded (stored with `raw = 0`).
    Encoded(Vec<u8>),
}

impl Key {
    /// Encodes any serializable value as a composite key (MessagePack with field names).
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when `value` cannot be serialized as MessagePack (a
    /// failing `Serialize` impl).
    ///
    /// ```
    /// use diskq::Key;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// let key = Key::encode(&("user", 42))?; // a composite key, MessagePack
    /// cache.set(key.clone(), "alice")?;
    /// assert_eq!(cache.get::<String>(key)?.as_deref(), Some("alice"));
    /// assert!(matches!(Key::encode(&7)?, Key::Encoded(_)), "encode never makes a native key");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Key> {
        rmp_serde::to_vec_named(value)
            .map(Key::Encoded)
            .map_err(|e| Error::encode_by("the key as MessagePack", e))
    }

    /// The key for any serializable value: integers, floats, strings and
    /// byte strings (`serde_bytes`) become the native key kinds (the keys a
    /// Python program would use), anything else is [`Key::encode`]d.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when `value` cannot be serialized;
    /// [`Error::InvalidKey`] for a NaN float.
    ///
    /// ```
    /// use diskq::Key;
    /// assert_eq!(Key::of(&7u16).unwrap(), Key::Int(7));
    /// assert_eq!(Key::of("page").unwrap(), Key::Text("page".into()));
    /// assert_eq!(Key::of(&("user", 42)).unwrap(), Key::encode(&("user", 42)).unwrap());
    /// ```
    pub fn of<T: Serialize + ?Sized>(value: &T) -> Result<Key> {
        let key = match crate::codec::encode(value)? {
            crate::codec::Encoded::Native(native) => match native {
                crate::codec::Native::Int(n) => Key::Int(n),
                crate::codec::Native::Float(x) => Key::Float(x),
                crate::codec::Native::Text(s) => Key::Text(s),
                crate::codec::Native::Bytes(b) => Key::Bytes(b),
            },
            crate::codec::Encoded::MsgPack(bytes) => Key::Encoded(bytes),
        };
        key.validate()?;
        Ok(key)
    }

    /// Decodes an [`Key::Encoded`] key back into its type. Native keys decode
    /// too, through the same rules as values (`Key::Int(3)` as `i64`, ...).
    ///
    /// # Errors
    ///
    /// [`Error::Decode`], naming the key and `T`, when the key does not decode
    /// as `T`.
    ///
    /// ```
    /// use diskq::Key;
    /// let key = Key::encode(&("user", 42))?;
    /// assert_eq!(key.decode::<(String, u32)>()?, ("user".to_string(), 42));
    /// assert_eq!(Key::Int(3).decode::<i64>()?, 3);
    /// assert!(Key::Text("x".into()).decode::<i64>().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        let wanted = std::any::type_name::<T>();
        match self {
            Key::Encoded(bytes) => rmp_serde::from_slice(bytes)
                .map_err(|e| Error::decode(self, wanted, "the MessagePack key does not fit", Some(e.into()))),
            native => crate::codec::decode_native(&crate::codec::Native::from_key(native))
                .map_err(|e| Error::decode(self, wanted, "the key does not fit", Some(e.into()))),
        }
    }

    /// The integer, if this is an integer key.
    ///
    /// ```
    /// use diskq::Key;
    /// assert_eq!(Key::from(42).as_int(), Some(42));
    /// assert_eq!(Key::from("42").as_int(), None);
    /// ```
    #[must_use]
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Key::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The text, if this is a text key.
    ///
    /// ```
    /// use diskq::Key;
    /// assert_eq!(Key::from("page").as_str(), Some("page"));
    /// assert_eq!(Key::from(1).as_str(), None);
    /// ```
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Key::Text(s) => Some(s),
            _ => None,
        }
    }

    /// Refuses keys SQLite cannot store faithfully.
    pub(crate) fn validate(&self) -> Result<()> {
        match self {
            Key::Float(f) if f.is_nan() => Err(Error::InvalidKey("a NaN float key".into())),
            _ => Ok(()),
        }
    }

    /// The bytes python-diskcache hashes to pick a FanoutCache shard (also used
    /// for stable internal names).
    pub(crate) fn is_raw(&self) -> bool {
        !matches!(self, Key::Encoded(_))
    }
}

/// The integer a float key equals in SQLite's numeric comparison, if any:
/// integral and exactly representable as an `i64`.
fn integral(x: f64) -> Option<i64> {
    // 2^63 as f64 is just past i64::MAX; every integral float in [-2^63, 2^63) is exact.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if x.fract() == 0.0 && (-TWO_63..TWO_63).contains(&x) {
        #[allow(clippy::cast_possible_truncation)]
        Some(x as i64)
    } else {
        None
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        match (self, other) {
            (Key::Int(a), Key::Int(b)) => a == b,
            (Key::Float(a), Key::Float(b)) => a == b || (a.is_nan() && b.is_nan()),
            (Key::Int(n), Key::Float(x)) | (Key::Float(x), Key::Int(n)) => integral(*x) == Some(*n),
            (Key::Text(a), Key::Text(b)) => a == b,
            (Key::Bytes(a), Key::Bytes(b)) | (Key::Encoded(a), Key::Encoded(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Key {}

impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self {
            Key::Int(n) => (0u8, n).hash(state),
            Key::Float(x) => match integral(*x) {
                Some(n) => (0u8, n).hash(state),
                None if x.is_nan() => (1u8, f64::NAN.to_bits()).hash(state),
                None => (1u8, x.to_bits()).hash(state),
            },
            Key::Text(s) => (2u8, s).hash(state),
            Key::Bytes(b) => (3u8, b).hash(state),
            Key::Encoded(b) => (4u8, b).hash(state),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Int(n) => write!(f, "{n}"),
            Key::Float(x) => write!(f, "{x:?}"),
            Key::Text(s) => write!(f, "{s:?}"),
            Key::Bytes(b) => write!(f, "b\"{}\"", b.escape_ascii()),
            Key::Encoded(b) => write!(f, "encoded({} bytes)", b.len()),
        }
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Key {
            fn from(n: $t) -> Key { Key::Int(i64::from(n)) }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32);

/// An integer key from a `u64`: refused with [`Error::InvalidKey`] above
/// `i64::MAX` (SQLite integers are signed 64-bit).
///
/// ```
/// use diskq::Key;
/// assert_eq!(Key::try_from(42u64).unwrap(), Key::Int(42));
/// assert!(Key::try_from(u64::MAX).is_err());
/// ```
impl TryFrom<u64> for Key {
    type Error = Error;
    fn try_from(n: u64) -> Result<Key> {
        i64::try_from(n)
            .map(Key::Int)
            .map_err(|_| Error::InvalidKey(format!("the integer {n} is above i64::MAX ({})", i64::MAX)))
    }
}

/// An integer key from a `usize`: refused with [`Error::InvalidKey`] above
/// `i64::MAX`.
///
/// ```
/// use diskq::Key;
/// assert_eq!(Key::try_from(7usize).unwrap(), Key::Int(7));
/// ```
impl TryFrom<usize> for Key {
    type Error = Error;
    fn try_from(n: usize) -> Result<Key> {
        Key::try_from(n as u64)
    }
}

impl From<f64> for Key {
    fn from(x: f64) -> Key {
        Key::Float(x)
    }
}
impl From<f32> for Key {
    fn from(x: f32) -> Key {
        Key::Float(f64::from(x))
    }
}
impl From<&str> for Key {
    fn from(s: &str) -> Key {
        Key::Text(s.to_owned())
    }
}
impl From<String> for Key {
    fn from(s: String) -> Key {
        Key::Text(s)
    }
}
impl From<&String> for Key {
    fn from(s: &String) -> Key {
        Key::Text(s.clone())
    }
}
impl From<&[u8]> for Key {
    fn from(b: &[u8]) -> Key {
        Key::Bytes(b.to_vec())
    }
}
impl<const N: usize> From<&[u8; N]> for Key {
    fn from(b: &[u8; N]) -> Key {
        Key::Bytes(b.to_vec())
    }
}
impl From<Vec<u8>> for Key {
    fn from(b: Vec<u8>) -> Key {
        Key::Bytes(b)
    }
}
impl From<&Key> for Key {
    fn from(k: &Key) -> Key {
        k.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_pick_the_native_kind() {
        assert_eq!(Key::from(3u8), Key::Int(3));
        assert_eq!(Key::from(-3i64), Key::Int(-3));
        assert_eq!(Key::from(1.5), Key::Float(1.5));
        assert_eq!(Key::from(String::from("a")), Key::Text("a".into()));
        assert_eq!(Key::from(&b"ab"[..]), Key::Bytes(b"ab".to_vec()));
        assert!(Key::from(f64::NAN).validate().is_err());
        assert!(Key::from(1.0).validate().is_ok());
    }

    #[test]
    fn encoded_keys_round_trip_and_native_keys_decode() {
        let k = Key::encode(&vec![1, 2, 3]).unwrap();
        assert!(!k.is_raw());
        assert_eq!(k.decode::<Vec<i32>>().unwrap(), vec![1, 2, 3]);
        assert_eq!(Key::Int(9).decode::<i64>().unwrap(), 9);
        assert_eq!(Key::from("x").decode::<String>().unwrap(), "x");
        let err = Key::from("x").decode::<i64>().unwrap_err();
        assert!(err.to_string().contains("\"x\""), "{err}");
    }

    #[test]
    fn display_is_readable() {
        assert_eq!(Key::Int(5).to_string(), "5");
        assert_eq!(Key::from("a b").to_string(), "\"a b\"");
        assert_eq!(Key::from(&b"a\x00"[..]).to_string(), "b\"a\\x00\"");
    }
}
