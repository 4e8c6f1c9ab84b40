//! A `--url` that is not the NPS server's base URL, and a server or proxy
//! that fails: the error names the HTTP status and the request, and says
//! what to check; a 5xx is the server's failure (exit 8), not a refusal.

mod common;

use common::{server, FakeServer, Nps, Run};

const ID: &str = "00000000-0000-4000-8000-000000000007";

/// `nps <args> --url <url>` with a token the fake server does not check,
/// expected to exit `code`.
fn run_at(nps: &Nps, args: &[&str], url: &str, code: i32) -> Run {
    let mut cmd = nps.command(args);
    cmd.args(["--url", url]).env("NPS_TOKEN", "any token");
    Nps::run_command(cmd).expect_code(code)
}

#[test]
fn a_url_with_a_path_the_server_does_not_have_names_the_404_and_says_check_url() {
    let server = server();
    let nps = Nps::new(&server);
    // The real server's router answers its own 404 body, not ProblemDetails.
    let url = format!("{}/nps", server.url);
    for (args, path) in [
        (
            vec!["session", "list"],
            "/nps/api/v1/ActivitySession".to_string(),
        ),
        (
            vec!["session", "get", ID],
            format!("/nps/api/v1/ActivitySession/{ID}"),
        ),
    ] {
        let mut cmd = nps.command(&args);
        cmd.args(["--url", &url])
            .env("NPS_TOKEN", server.admin_token());
        let run = Nps::run_command(cmd).expect_code(1);
        assert!(
            run.stderr
                .contains(&format!("HTTP 404 for GET {}{path}", server.url)),
            "{run:#?}"
        );
        assert!(run.stderr.contains("check --url"), "{run:#?}");
    }
}

#[test]
fn a_web_page_answering_200_names_the_status_and_says_check_url() {
    let page = FakeServer::start("200 OK", "text/html", "<!DOCTYPE html><p>Welcome</p>");
    let server = server();
    let nps = Nps::new(&server);
    let run = run_at(&nps, &["session", "get", ID], &page.url, 1);
    assert!(
        run.stderr.contains(&format!(
            "HTTP 200 for GET {}/api/v1/ActivitySession/{ID}",
            page.url
        )),
        "{run:#?}"
    );
    assert!(run.stderr.contains("<!DOCTYPE html>"), "{run:#?}");
    assert!(run.stderr.contains("check --url"), "{run:#?}");
}

#[test]
fn a_server_failure_is_exit_8_and_not_called_a_refusal() {
    let failing = FakeServer::start(
        "500 Internal Server Error",
        "application/problem+json",
        r#"{"type":"about:blank","title":"Internal Server Error","status":500,
            "detail":"Something went wrong (request id 42)."}"#,
    );
    let server = server();
    let nps = Nps::new(&server);
    let run = run_at(&nps, &["session", "end", ID], &failing.url, 8);
    assert!(
        run.stderr.contains(
            "the server failed: Internal Server Error (HTTP 500): Something went wrong (request id 42)."
        ),
        "{run:#?}"
    );
    assert!(run.stderr.contains("may not have been done"), "{run:#?}");

    // A proxy's error page: the status and request, and where to look.
    let proxy = FakeServer::start("502 Bad Gateway", "text/html", "<h1>502 Bad Gateway</h1>");
    let run = run_at(&nps, &["session", "list"], &proxy.url, 8);
    assert!(
        run.stderr.contains(&format!(
            "HTTP 502 for GET {}/api/v1/ActivitySession",
            proxy.url
        )),
        "{run:#?}"
    );
    assert!(run.stderr.contains("the server failed"), "{run:#?}");
    assert!(run.stderr.contains("check --url"), "{run:#?}");
}

#[test]
fn a_request_sent_but_not_answered_is_exit_8_and_not_called_unreachable() {
    let server = server();
    let nps = Nps::new(&server);
    // The connection closes once the request is in: the server may have
    // created the session. Exit 5 ("could not reach") would invite a retry.
    let hang_up = FakeServer::raw(String::new());
    let run = run_at(
        &nps,
        &["session", "create", "--activity-name", "x"],
        &hang_up.url,
        8,
    );
    assert!(
        run.stderr
            .contains("no complete answer came from the server"),
        "{run:#?}"
    );
    assert!(
        run.stderr.contains("may or may not have been done"),
        "{run:#?}"
    );
    assert!(!run.stderr.contains("could not reach"), "{run:#?}");

    // No answer within --request-timeout: the same, after that long.
    let silent = FakeServer::silent();
    let started = std::time::Instant::now();
    let mut cmd = nps.command(&["session", "end", ID, "--request-timeout", "1"]);
    cmd.args(["--url", &silent.url])
        .env("NPS_TOKEN", "any token");
    let run = Nps::run_command(cmd).expect_code(8);
    assert!(
        run.stderr
            .contains("no complete answer came from the server"),
        "{run:#?}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{run:#?}"
    );

    // An answer cut off after its head: the same.
    let cut = FakeServer::raw(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"id\":"
            .to_string(),
    );
    let run = run_at(&nps, &["session", "get", ID], &cut.url, 8);
    assert!(
        run.stderr
            .contains("no complete answer came from the server"),
        "{run:#?}"
    );
    assert!(!run.stderr.contains("check --url"), "{run:#?}");

    // Nothing listening: nothing was sent, exit 5 as before.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let run = run_at(&nps, &["session", "get", ID], &closed, 5);
    assert!(run.stderr.contains("could not reach"), "{run:#?}");
}
