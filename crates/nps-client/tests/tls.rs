//! The TLS options against the real server serving HTTPS with a certificate
//! of a private CA (made here with the `openssl` command): trusted with the
//! CA's certificate, refused without it, accepted blindly on request.

use nps_client::{Connection, Error};
use nps_testkit::pki::Pki;
use nps_testkit::{code_at_step, current_step, Credentials};

async fn sign_in(connection: &Connection) -> Result<nps_client::SignedIn, Error> {
    let admin = Credentials::admin();
    let code = code_at_step(&admin.totp_secret, current_step());
    connection
        .sign_in(&admin.login, &admin.password, &code)
        .await
}

#[tokio::test]
async fn a_server_signed_by_a_private_ca_is_trusted_with_that_ca() {
    let pki = Pki::create();
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
    let pki = Pki::create();
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
    let pki = Pki::create();
    let server = pki.https_server();
    let connection = Connection::new(&server.url)
        .unwrap()
        .skip_certificate_check();
    assert!(!connection.tls().checks_certificates());
    sign_in(&connection).await.unwrap();
}
