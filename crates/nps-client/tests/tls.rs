//! The TLS options against the real server serving HTTPS with a certificate
//! of a private CA (made here with the `openssl` command): trusted with the
//! CA's certificate, refused without it, accepted blindly on request.

use std::path::{Path, PathBuf};
use std::process::Command;

use nps_client::{Connection, Error};
use nps_testkit::{code_at_step, current_step, Credentials, ServerOptions, TestServer};

/// A CA and a server certificate for 127.0.0.1 it signed, in a directory
/// removed on drop.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new() -> Pki {
        let dir = std::env::temp_dir().join(format!(
            "nps-client-tls-{}-{}",
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

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn https_server(&self) -> TestServer {
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

fn openssl(dir: &Path, args: &[&str]) {
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

async fn sign_in(connection: &Connection) -> Result<nps_client::SignedIn, Error> {
    let admin = Credentials::admin();
    let code = code_at_step(&admin.totp_secret, current_step());
    connection
        .sign_in(&admin.login, &admin.password, &code)
        .await
}

#[tokio::test]
async fn a_server_signed_by_a_private_ca_is_trusted_with_that_ca() {
    let pki = Pki::new();
    let server = pki.https_server();
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let connection = Connection::new(&server.url)
        .unwrap()
        .with_ca_certificate_file(pki.path("ca.pem"))
        .unwrap();
    let nps = sign_in(&connection).await.unwrap().client;
    nps.get_all_activity_sessions_by_status_async(None, None, None, None, None)
        .await
        .unwrap();
}

#[tokio::test]
async fn without_the_ca_the_certificate_is_refused_and_the_error_says_so() {
    let pki = Pki::new();
    let server = pki.https_server();
    let error = sign_in(&Connection::new(&server.url).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Unreachable(_)), "{error:?}");
    let message = error.to_string().to_lowercase();
    assert!(message.contains("certificate"), "{message}");
}

#[tokio::test]
async fn skipping_the_certificate_check_reaches_a_lab_server() {
    let pki = Pki::new();
    let server = pki.https_server();
    let connection = Connection::new(&server.url)
        .unwrap()
        .skip_certificate_check();
    assert!(!connection.tls().checks_certificates());
    sign_in(&connection).await.unwrap();
}
