//! Rust client of the NPS ActivitySession API.
//!
//! ```no_run
//! # async fn run() -> Result<(), nps_client::Error> {
//! use std::time::Duration;
//! use nps_client::{types::ActivitySessionRequest, Connection};
//!
//! let nps = Connection::new("https://nps.example.com")?
//!     .with_ca_certificate_file("/etc/nps/ca.pem")?
//!     .sign_in("alice", "her password", "123456")
//!     .await?
//!     .client;
//! let request = ActivitySessionRequest {
//!     activity_name: Some("Patch web01".into()),
//!     ..Default::default()
//! };
//! let session = nps.create_async(&request).await?.into_inner();
//! let ended = nps.end_session_and_wait(&session.id, Duration::from_secs(120)).await?;
//! println!("{} is {}", ended.id, ended.status);
//! # Ok(()) }
//! ```
//!
//! What is where, named after what it does:
//! - [`generated`]: the operations, one method per operationId, written by
//!   `cargo xtask generate` from `openapi.json` with progenitor (positional
//!   arguments); never edited by hand.
//! - [`connect`]: [`Connection`], the base URL, TLS and timeouts.
//! - [`tls`]: trusting a deployer's CA, or (lab servers only) no check.
//! - [`signin`]: `signinBody` then `signin2fa`, giving an authenticated
//!   [`Client`] that sends the Bearer token on every request.
//! - [`wait`]: ending a session and waiting for its terminal status.
//! - [`error`]: [`Error`], what went wrong, with the server's ProblemDetails
//!   when the server refused. `?` converts the generated client's errors.
//! - [`answers`]: the status and URL of each answer, so that one whose body
//!   does not follow the API is reported with them ([`remember_answers`]).
//!
//! No mock server is generated (progenitor can emit httpmock helpers): the
//! build stays lean, and this crate's tests run against the real server.

#[rustfmt::skip]
#[allow(clippy::all, clippy::pedantic, missing_docs, unused)]
pub mod generated;

pub mod answers;
pub mod connect;
pub mod error;
pub mod signin;
pub mod tls;
pub mod wait;

pub use answers::remember_answers;
pub use connect::{Connection, DEFAULT_TIMEOUT, DEFAULT_URL};
pub use error::Error;
pub use generated::{types, Client};
pub use signin::{sign_in, PendingSignIn, SignedIn, DEFAULT_TOKEN_LIFETIME};
pub use tls::TlsOptions;
pub use wait::{ended_cleanly, is_terminal, Progress, WaitOptions};
