//! The HTTPS certificate and key: read and checked before anything else
//! starts, so that a mistake is one line saying what to do, not a panic
//! inside dropshot after the database was created.

use std::path::Path;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The server's TLS configuration from a PEM certificate chain (the
/// server's certificate first, then its intermediates) and the PEM private
/// key of its first certificate (PKCS#8, PKCS#1 or SEC1, unencrypted).
pub fn load(cert: &Path, key: &Path) -> anyhow::Result<rustls::ServerConfig> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            anyhow::anyhow!("cannot read the certificate {}: {}", cert.display(), why(e))
        })?;
    if certs.is_empty() {
        anyhow::bail!(
            "{} holds no certificate: --tls-cert takes a PEM file of `BEGIN CERTIFICATE` \
             blocks, the server's own first, then its intermediates",
            cert.display()
        );
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| match e {
        pem::Error::NoItemsFound => anyhow::anyhow!(
            "{} holds no private key this server can use: --tls-key takes an unencrypted PEM \
             key (PKCS#8, PKCS#1 or SEC1); `openssl pkey -in KEY -out PLAIN.pem` writes one \
             from an encrypted PEM key, or from a DER one with `-inform DER`",
            key.display()
        ),
        e => anyhow::anyhow!("cannot read the key {}: {}", key.display(), why(e)),
    })?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, private)
        .map_err(|e| {
            anyhow::anyhow!(
                "the certificate {} and the key {} cannot serve HTTPS together ({e}): \
                 the key must be the private key of the first certificate in the file",
                cert.display(),
                key.display()
            )
        })?;
    // What dropshot offers for the certificate files it reads itself.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn why(e: pem::Error) -> String {
    match e {
        pem::Error::Io(e) => e.to_string(),
        // Its Display writes the marker as a list of byte values.
        pem::Error::MissingSectionEnd { end_marker } => format!(
            "not a whole PEM file: `-----END {}-----` is missing (a truncated copy?)",
            String::from_utf8_lossy(&end_marker)
        ),
        e => format!("not a PEM file ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_says_why() {
        let e = load(
            Path::new("/nonexistent/cert.pem"),
            Path::new("/nonexistent/key.pem"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("/nonexistent/cert.pem") && e.contains("No such file"),
            "{e}"
        );
    }

    #[test]
    fn a_truncated_certificate_names_the_missing_end_line() {
        let dir = std::env::temp_dir().join(format!("nps-tls-cut-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = dir.join("cert.pem");
        std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n").unwrap();
        let e = load(&cert, &dir.join("key.pem")).unwrap_err().to_string();
        assert!(
            e.contains("`-----END CERTIFICATE-----` is missing") && !e.contains("[45, 45"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
