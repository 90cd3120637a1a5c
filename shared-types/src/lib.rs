//! Wire contracts of edgebrain: every type that crosses a process boundary lives here.
//!
//! Browsers, the edge (wasm32), the brain (native) and third-party clients all (de)serialize
//! these types, so this crate depends on nothing but `serde` (and pure RustCrypto hashing for
//! [`signature`]) and must build for
//! `wasm32-unknown-unknown` as well as native targets.
//!
//! # Layout
//! One module per part of the contract. The map, with the `ts` and `openapi` features, is
//! ARCHITECTURE.md (`shared-types/` and "Client contract"); what a new type or endpoint needs
//! (derives, a round-trip example, its line in [`api::ENDPOINTS`]) is in the README's "Client
//! contract".
//!
//! # Compatibility
//! Fields are only ever added (as `Option` or with a serde default); codes are never renamed.
//! Unknown error codes from a newer server deserialize as [`error::ErrorCode::Unknown`].

pub mod account;
pub mod agent;
pub mod api;
pub mod chat;
pub mod data;
pub mod diag;
pub mod error;
pub mod headers;
pub mod health;
pub mod knowledge;
pub mod signature;
#[cfg(feature = "ts")]
pub mod typescript;

#[cfg(test)]
mod examples;
