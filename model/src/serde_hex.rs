//! Serde helpers: byte strings as lower-case hex in JSON (`#[serde(with = "certhist_model::serde_hex")]`).

use serde::{Deserialize, Deserializer, Serializer};

/// Lower-case hex of `data`: the text of `hex::encode`, built from a table instead of a char
/// iterator (issue 17: every row of a page carries one or two digests).
pub fn encode<T: AsRef<[u8]>>(data: T) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let bytes = data.as_ref();
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Serialises bytes as lower-case hex.
pub fn serialize<S: Serializer, T: AsRef<[u8]>>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&encode(value))
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
            Some(v) => s.serialize_str(&super::encode(v)),
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

#[cfg(test)]
mod tests {
    #[test]
    fn encode_is_hex_encode() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(super::encode(&all), hex::encode(&all));
        assert_eq!(super::encode([0xde, 0xad, 0x0f]), "dead0f");
        assert_eq!(super::encode([]), "");
    }
}
