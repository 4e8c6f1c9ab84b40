//! Where the server is and how to talk to it: base URL, TLS, timeouts. A
//! [`Connection`] makes the HTTP clients that sign-in and the generated
//! [`Client`] use.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};

use crate::tls::TlsOptions;
use crate::{Client, Error};

/// The address of the server this project's `nps-server` listens on unless
/// told otherwise.
pub const DEFAULT_URL: &str = "http://127.0.0.1:6500";

/// How long one request may take, connection included, unless
/// [`Connection::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A server's base URL and the settings to reach it.
#[derive(Clone, Debug)]
pub struct Connection {
    base_url: String,
    tls: TlsOptions,
    timeout: Duration,
}

impl Connection {
    /// A connection to `base_url` (`http://` or `https://`, with a port and a
    /// path prefix if the server has them).
    pub fn new(base_url: &str) -> Result<Connection, Error> {
        let trimmed = base_url.trim().trim_end_matches('/');
        let parsed = reqwest::Url::parse(trimmed).map_err(|e| {
            Error::Settings(format!(
                "`{base_url}` is not a URL ({e}): give one like {DEFAULT_URL}"
            ))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(Error::Settings(format!(
                "`{base_url}` is not an http:// or https:// URL: give one like {DEFAULT_URL}"
            )));
        }
        Ok(Connection {
            // As the URL parser writes it (scheme and host in lower case, no
            // default port), so that one server has one spelling, under
            // which `nps` keeps its token.
            base_url: parsed.as_str().trim_end_matches('/').to_string(),
            tls: TlsOptions::default(),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Also trusts the CA certificates of this PEM file (see
    /// [`TlsOptions::add_ca_certificate_file`]).
    pub fn with_ca_certificate_file(mut self, path: impl AsRef<Path>) -> Result<Self, Error> {
        self.tls.add_ca_certificate_file(path.as_ref())?;
        Ok(self)
    }

    /// Also trusts the CA certificates of this PEM text.
    pub fn with_ca_certificate_pem(mut self, pem: &[u8]) -> Result<Self, Error> {
        self.tls.add_ca_certificate_pem(pem)?;
        Ok(self)
    }

    /// Accepts any server certificate (see
    /// [`TlsOptions::skip_certificate_check`]): lab servers only.
    pub fn skip_certificate_check(mut self) -> Self {
        self.tls.skip_certificate_check();
        self
    }

    /// The TLS settings.
    pub fn tls(&self) -> &TlsOptions {
        &self.tls
    }

    /// How long one request may take (default [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// A client that sends `Authorization: Bearer <token>` on every request:
    /// for a token saved from an earlier sign-in.
    pub fn client_with_token(&self, token: &str) -> Result<Client, Error> {
        let http = self.http(Some(token), Arc::default())?;
        Ok(Client::new_with_client(&self.base_url, http))
    }

    /// The HTTP client behind a generated [`Client`]: these TLS settings and
    /// timeouts, cookies kept in `cookies`, and the bearer token if any.
    pub(crate) fn http(
        &self,
        bearer: Option<&str>,
        cookies: Arc<reqwest::cookie::Jar>,
    ) -> Result<reqwest::Client, Error> {
        let mut headers = HeaderMap::new();
        if let Some(token) = bearer {
            let mut value = HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| {
                Error::Settings(
                    "the token has characters a header cannot carry: sign in again".into(),
                )
            })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let builder = reqwest::Client::builder()
            .user_agent(concat!("nps-client/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(self.timeout.min(Duration::from_secs(15)))
            .timeout(self.timeout)
            .cookie_provider(cookies)
            .retry(crate::answers::noting_policy())
            .default_headers(headers);
        self.tls.apply(builder).build().map_err(|e| {
            Error::Settings(format!("cannot set up HTTPS: {}", crate::error::chain(&e)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_url_loses_its_trailing_slash() {
        let c = Connection::new("https://nps.example.com:6500/").unwrap();
        assert_eq!(c.base_url(), "https://nps.example.com:6500");
    }

    #[test]
    fn one_server_has_one_spelling() {
        for spelling in [
            "HTTPS://NPS.Example.com:6500",
            "https://nps.example.com:6500/",
            " https://nps.example.com:6500 ",
        ] {
            let c = Connection::new(spelling).unwrap();
            assert_eq!(c.base_url(), "https://nps.example.com:6500", "{spelling}");
        }
        let c = Connection::new("https://nps.example.com:443/nps/").unwrap();
        assert_eq!(c.base_url(), "https://nps.example.com/nps");
    }

    #[test]
    fn urls_that_are_not_http_are_refused_with_an_example() {
        for bad in ["nps.example.com", "ftp://nps.example.com", "http://"] {
            let error = Connection::new(bad).unwrap_err().to_string();
            assert!(error.contains(DEFAULT_URL), "{bad}: {error}");
        }
    }
}
