//! A private CA and a server certificate it signed, made with the `openssl`
//! command, for tests of HTTPS.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{ServerOptions, TestServer};

/// A CA and a server certificate for 127.0.0.1 it signed, in a directory
/// removed on drop.
pub struct Pki {
    dir: PathBuf,
}

impl Pki {
    pub fn create() -> Pki {
        let dir = std::env::temp_dir().join(format!(
            "nps-tls-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &dir,
            &[
                &["req", "-x509"],
                &ec[..],
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=nps test CA",
                ],
            ]
            .concat(),
        );
        openssl(
            &dir,
            &[
                &["req"],
                &ec[..],
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=127.0.0.1",
                ],
            ]
            .concat(),
        );
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
        );
        Pki { dir }
    }

    /// A file of the directory: `ca.pem`, `ca.key`, `server.pem`, `server.key`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A server serving HTTPS with `server.pem` and `server.key`.
    pub fn https_server(&self) -> TestServer {
        TestServer::start_with(ServerOptions {
            args: vec![
                "--tls-cert".into(),
                self.path("server.pem").to_str().unwrap().into(),
                "--tls-key".into(),
                self.path("server.key").to_str().unwrap().into(),
            ],
            ..ServerOptions::default()
        })
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `openssl ARGS` in `dir`; panics saying what failed.
pub fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("this test needs the openssl command (apt-get install openssl): {e}")
        });
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
