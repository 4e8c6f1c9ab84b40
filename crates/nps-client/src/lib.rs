//! Rust client of the NPS ActivitySession API.
//!
//! - [`generated`]: written by `cargo xtask generate` from `openapi.json` with
//!   progenitor; never edited by hand.
//! - The rest of this crate is hand-written and calls into it.

#[rustfmt::skip]
#[allow(clippy::all, clippy::pedantic, missing_docs, unused)]
pub mod generated;

pub use generated::{types, Client};
