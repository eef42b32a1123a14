//! The domain's string values as types (docs/design.md §2): a connection's
//! id, an Atlassian site's cloud id, the app's name for a person (`owner`)
//! and a JQL query. Core and repository functions take and return these,
//! so one cannot be passed where another is meant; rows decode into them
//! inside `store/` (`store/typed.rs` holds their sqlx impls). On the wire
//! each is its plain string (`#[serde(transparent)]`); the edge converts at
//! its boundary (path, body, query) with `From<String>`.

macro_rules! string_newtype {
    ($($(#[$meta:meta])* $name:ident;)+) => {$(
        $(#[$meta])*
        #[derive(
            Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The empty value (for a `static` to borrow where none is set).
            pub const EMPTY: $name = $name(String::new());

            pub fn new(value: impl Into<String>) -> Self {
                $name(value.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(&self.0, f)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                $name(value)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                $name(value.to_string())
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    )+};
}

string_newtype! {
    /// A connection's id (`con_…`).
    ConnectionId;
    /// An Atlassian site's cloud id (a UUID), as accessible-resources names it.
    CloudId;
    /// The app's own name for the person behind a connection.
    Owner;
    /// A JQL query as a sync or a search holds it.
    Jql;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_its_string_on_the_wire() {
        let id = ConnectionId::new("con_1");
        assert_eq!(
            serde_json::to_value(&id).unwrap(),
            serde_json::json!("con_1")
        );
        let back: ConnectionId = serde_json::from_str("\"con_1\"").unwrap();
        assert_eq!(back, id);
        assert_eq!(back, "con_1");
        assert_eq!(format!("{back}"), "con_1");
    }
}
