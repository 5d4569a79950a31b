//! Serde helpers: byte strings as lower-case hex in JSON (`#[serde(with = "certhist_model::serde_hex")]`).

use serde::{Deserialize, Deserializer, Serializer};

/// Serialises bytes as lower-case hex.
pub fn serialize<S: Serializer, T: AsRef<[u8]>>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(value.as_ref()))
}

/// Deserialises lower- or upper-case hex into bytes of the target type.
pub fn deserialize<'de, D: Deserializer<'de>, T: TryFrom<Vec<u8>>>(d: D) -> Result<T, D::Error> {
    let text = String::deserialize(d)?;
    let bytes = hex::decode(&text).map_err(serde::de::Error::custom)?;
    T::try_from(bytes).map_err(|_| serde::de::Error::custom("hex value has the wrong length"))
}

/// The same for `Option<bytes>` (`null` when absent).
pub mod option {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises `Some(bytes)` as hex, `None` as null.
    pub fn serialize<S: Serializer, T: AsRef<[u8]>>(
        value: &Option<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => s.serialize_str(&hex::encode(v.as_ref())),
            None => s.serialize_none(),
        }
    }

    /// Deserialises hex or null.
    pub fn deserialize<'de, D: Deserializer<'de>, T: TryFrom<Vec<u8>>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        match text {
            None => Ok(None),
            Some(t) => {
                let bytes = hex::decode(&t).map_err(serde::de::Error::custom)?;
                T::try_from(bytes)
                    .map(Some)
                    .map_err(|_| serde::de::Error::custom("hex value has the wrong length"))
            }
        }
    }
}
