//! Shared, serialisable types: what the browser and programs see. No database,
//! no secrets, no server-only dependencies, so the same types compile to WASM.

/// Declares a closed set of values kept as text — in the database, in JSON
/// and in forms — so every layer reads and writes the same names: the enum
/// (serialised as those names), `ALL` in declaration order, `as_str`,
/// `parse` and `Display`.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
        $vis enum $name {
            $( $(#[$variant_meta])* #[serde(rename = $text)] $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            /// The name stored and sent.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value a stored or sent name stands for.
            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use text_enum;

pub mod access;
pub mod account;
pub mod api_token;
pub mod catalog;
pub mod chat;
pub mod costs;
pub mod experiments;
pub mod knowledge;
pub mod llm_config;
pub mod money;
pub mod parameters;
pub mod performance;
pub mod pricing;
pub mod recommend;
pub mod settings_form;
