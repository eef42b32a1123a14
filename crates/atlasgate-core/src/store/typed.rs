//! How a stored column becomes a typed field of a row, inside `store/`
//! (docs/design.md §2: rows carry their enums, booleans and parsed JSON).
//!
//! A state enum decodes itself (see `text_enum!` in `store/mod.rs`); for the
//! rest a row struct names the stored form in `#[sqlx(try_from = "…")]`:
//! [`Flag`] for a 0/1 column read as `bool`, [`JsonText`] for a JSON column
//! read as the value it holds. A JSON column is written by binding
//! [`AsJson`]`(&value)`: the one place a column's JSON is serialised.

use sqlx::any::{AnyTypeInfo, AnyValueRef};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Any, Database, Decode, Encode, Type, ValueRef};

type ArgumentBuffer<'q> = <Any as Database>::ArgumentBuffer<'q>;

/// A stored text that is not one of its enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: unknown stored value {value:?}")]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
}

/// A 0/1 INTEGER column (the schema has no BOOLEAN: see `store/mod.rs`),
/// decoded as `bool` with `#[sqlx(try_from = "Flag")]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl From<Flag> for bool {
    fn from(f: Flag) -> bool {
        f.0
    }
}

impl Type<Any> for Flag {
    fn type_info() -> AnyTypeInfo {
        <i64 as Type<Any>>::type_info()
    }

    fn compatible(ty: &AnyTypeInfo) -> bool {
        <i64 as Type<Any>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Any> for Flag {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Flag(<i64 as Decode<Any>>::decode(value)? != 0))
    }
}

/// A JSON TEXT column (NULL allowed), decoded into the value it holds with
/// `#[sqlx(try_from = "JsonText")]`; the target types are listed below.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonText(pub Option<String>);

impl Type<Any> for JsonText {
    fn type_info() -> AnyTypeInfo {
        <String as Type<Any>>::type_info()
    }

    fn compatible(ty: &AnyTypeInfo) -> bool {
        <String as Type<Any>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Any> for JsonText {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        if value.is_null() {
            return Ok(JsonText(None));
        }
        Ok(JsonText(Some(<String as Decode<Any>>::decode(value)?)))
    }
}

/// The domain's string types (`crate::ids`) as TEXT columns: a row field
/// or a bound value is the type itself.
macro_rules! text_columns {
    ($($ty:ty),+ $(,)?) => {$(
        impl Type<Any> for $ty {
            fn type_info() -> AnyTypeInfo {
                <String as Type<Any>>::type_info()
            }

            fn compatible(ty: &AnyTypeInfo) -> bool {
                <String as Type<Any>>::compatible(ty)
            }
        }

        impl<'r> Decode<'r, Any> for $ty {
            fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
                Ok(<String as Decode<Any>>::decode(value)?.into())
            }
        }

        impl<'q> Encode<'q, Any> for $ty {
            fn encode_by_ref(&self, buf: &mut ArgumentBuffer<'q>) -> Result<IsNull, BoxDynError> {
                <String as Encode<'q, Any>>::encode(self.as_str().to_string(), buf)
            }
        }

        impl From<$ty> for super::Bind {
            fn from(v: $ty) -> super::Bind {
                super::Bind::Text(v.into_string())
            }
        }
    )+};
}

text_columns!(
    crate::ids::ConnectionId,
    crate::ids::CloudId,
    crate::ids::Owner,
    crate::ids::Jql,
);

/// Why a JSON column did not decode.
#[derive(Debug, thiserror::Error)]
pub enum JsonColumnError {
    #[error("a JSON column that may not be NULL is NULL")]
    Null,
    #[error("a JSON column does not parse: {0}")]
    Parse(#[from] serde_json::Error),
}

impl JsonText {
    fn parse<T: serde::de::DeserializeOwned>(self) -> Result<T, JsonColumnError> {
        let text = self.0.ok_or(JsonColumnError::Null)?;
        Ok(serde_json::from_str(&text)?)
    }

    fn parse_nullable<T: serde::de::DeserializeOwned>(self) -> Result<Option<T>, JsonColumnError> {
        self.0
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(JsonColumnError::from)
    }
}

/// `TryFrom<JsonText>` for each type a row reads from a JSON column (a
/// blanket `impl<T> TryFrom<JsonText> for T` is not allowed by coherence).
macro_rules! json_columns {
    ($($ty:ty),+ $(,)?) => {
        $(
            impl TryFrom<JsonText> for $ty {
                type Error = JsonColumnError;
                fn try_from(j: JsonText) -> Result<Self, JsonColumnError> {
                    j.parse()
                }
            }

            impl TryFrom<JsonText> for Option<$ty> {
                type Error = JsonColumnError;
                fn try_from(j: JsonText) -> Result<Self, JsonColumnError> {
                    j.parse_nullable()
                }
            }
        )+
    };
}

json_columns!(
    serde_json::Value,
    Vec<String>,
    Vec<crate::atlassian::AccessibleSite>,
);

/// The write side of a JSON TEXT column: `.bind(AsJson(&value))` stores
/// `value` serialised (`Option<AsJson<…>>` binds NULL for `None`).
#[derive(Debug, Clone, Copy)]
pub struct AsJson<'a, T: ?Sized>(pub &'a T);

impl<T: serde::Serialize + ?Sized> Type<Any> for AsJson<'_, T> {
    fn type_info() -> AnyTypeInfo {
        <String as Type<Any>>::type_info()
    }

    fn compatible(ty: &AnyTypeInfo) -> bool {
        <String as Type<Any>>::compatible(ty)
    }
}

impl<'q, T: serde::Serialize + ?Sized> Encode<'q, Any> for AsJson<'_, T> {
    fn encode_by_ref(&self, buf: &mut ArgumentBuffer<'q>) -> Result<IsNull, BoxDynError> {
        <String as Encode<'q, Any>>::encode(serde_json::to_string(self.0)?, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_columns_parse_or_fail_with_the_reason() {
        let v: Vec<String> = JsonText(Some(r#"["a","b"]"#.into())).try_into().unwrap();
        assert_eq!(v, ["a", "b"]);
        let none: Option<Vec<String>> = JsonText(None).try_into().unwrap();
        assert_eq!(none, None);
        let null: Result<Vec<String>, _> = JsonText(None).try_into();
        assert!(matches!(null, Err(JsonColumnError::Null)));
        let bad: Result<serde_json::Value, _> = JsonText(Some("{".into())).try_into();
        assert!(matches!(bad, Err(JsonColumnError::Parse(_))));
    }
}
