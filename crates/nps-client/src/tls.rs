//! How the client trusts an HTTPS server: the system's roots, plus CA
//! certificates the deployer names, or (for lab servers only) no check at all.

use std::path::Path;

use crate::Error;

/// TLS settings of a [`Connection`](crate::Connection).
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// CA certificates trusted in addition to the system's roots.
    ca_certificates: Vec<reqwest::Certificate>,
    /// Accept any certificate: the server is not authenticated.
    skip_certificate_check: bool,
}

impl TlsOptions {
    /// Trusts the CA certificates of a PEM file (one or more certificates),
    /// beside the system's roots: for a server whose certificate an internal
    /// CA signed.
    pub fn add_ca_certificate_file(&mut self, path: &Path) -> Result<(), Error> {
        let pem = std::fs::read(path).map_err(|e| {
            Error::Settings(format!(
                "cannot read the CA certificate file {}: {e}",
                path.display()
            ))
        })?;
        self.add_ca_certificate_pem(&pem)
            .map_err(|e| Error::Settings(format!("{}: {e}", path.display())))
    }

    /// Trusts the CA certificates of a PEM text.
    pub fn add_ca_certificate_pem(&mut self, pem: &[u8]) -> Result<(), Error> {
        let certificates = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| Error::Settings(format!("not a PEM certificate: {e}")))?;
        if certificates.is_empty() {
            return Err(Error::Settings(
                "no certificate in the PEM text: expected a -----BEGIN CERTIFICATE----- block"
                    .into(),
            ));
        }
        self.ca_certificates.extend(certificates);
        Ok(())
    }

    /// Accepts any server certificate, as PowerShell's `-SkipCertificateCheck`
    /// does. Only for lab servers with a self-signed certificate: anyone
    /// between the client and the server can then read the password and the
    /// token.
    pub fn skip_certificate_check(&mut self) {
        self.skip_certificate_check = true;
    }

    /// Whether the server's certificate is checked.
    pub fn checks_certificates(&self) -> bool {
        !self.skip_certificate_check
    }

    pub(crate) fn apply(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        builder
            .tls_certs_merge(self.ca_certificates.iter().cloned())
            .tls_danger_accept_invalid_certs(self.skip_certificate_check)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_a_certificate_is_refused_with_its_name() {
        let dir = std::env::temp_dir().join(format!("nps-client-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("not-a-cert.pem");
        std::fs::write(&path, "hello").unwrap();
        let error = TlsOptions::default()
            .add_ca_certificate_file(&path)
            .unwrap_err()
            .to_string();
        assert!(error.contains("not-a-cert.pem"), "{error}");
        assert!(error.contains("BEGIN CERTIFICATE"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_file_is_named() {
        let error = TlsOptions::default()
            .add_ca_certificate_file(Path::new("/nonexistent/ca.pem"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("/nonexistent/ca.pem"), "{error}");
    }
}
