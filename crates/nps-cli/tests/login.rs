//! `nps login` against a real server: from flags and the environment as a
//! script does it, and at a terminal (a tmux pseudo-terminal) as a person
//! does it, with the password and code never shown.

mod common;

use std::process::Command;

use common::{nps_binary, server, Nps, Tmux};
use nps_testkit::{code_at_step, current_step, Credentials};

#[test]
fn a_script_signs_in_from_flags_and_environment_and_the_token_is_private() {
    let server = server();
    let nps = Nps::new(&server);
    let login = nps.login().expect_code(0);
    assert!(
        login
            .stdout
            .contains(&format!("Signed in to {} as admin", server.url)),
        "{login:#?}"
    );
    // No expiry is claimed: the server does not say, and its token
    // lifetime is its own configuration.
    assert!(login.stdout.contains("The token is saved in"), "{login:#?}");
    assert!(!login.stdout.contains("expire"), "{login:#?}");

    let file = nps.config_dir.join("credentials.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved["lastUrl"], server.url.as_str());
    assert_eq!(saved["servers"][&server.url]["login"], "admin");

    // Later commands need no --url: the login's server is the default.
    nps.run(&["session", "list"]).expect_code(0);
}

#[test]
fn login_answers_json_for_scripts() {
    let server = server();
    let nps = Nps::new(&server);
    let admin = Credentials::admin();
    let code = code_at_step(&admin.totp_secret, current_step());
    let mut cmd = nps.command(&["login", "-o", "json"]);
    cmd.env("NPS_URL", &server.url)
        .env("NPS_LOGIN", &admin.login)
        .env("NPS_PASSWORD", &admin.password)
        .env("NPS_MFA_CODE", &code);
    let run = Nps::run_command(cmd).expect_code(0);
    let answer = run.json();
    assert_eq!(answer["url"], server.url.as_str());
    assert!(answer["signedInAt"].is_string(), "{run:#?}");
    assert!(answer.get("expiresAround").is_none(), "{run:#?}");
    assert!(!run.stdout.contains(&code) && !run.stdout.contains(&admin.password));
}

#[test]
fn a_wrong_password_exits_4_with_the_servers_reason() {
    let server = server();
    let nps = Nps::new(&server);
    let mut cmd = nps.command(&["login", "--url", &server.url, "--login", "admin"]);
    cmd.env("NPS_PASSWORD", "not the password")
        .env("NPS_MFA_CODE", "123456");
    let run = Nps::run_command(cmd).expect_code(4);
    assert!(run.stderr.contains("Unauthorized (HTTP 401)"), "{run:#?}");
    assert!(
        run.stderr.contains("check the login and password"),
        "{run:#?}"
    );
}

#[test]
fn without_a_terminal_a_missing_password_is_asked_for_by_name() {
    let server = server();
    let nps = Nps::new(&server);
    let mut cmd = nps.command(&["login", "--url", &server.url, "--login", "admin"]);
    // No controlling terminal, so nothing can be asked.
    no_controlling_terminal(&mut cmd);
    let run = Nps::run_command(cmd).expect_code(2);
    assert!(run.stderr.contains("NPS_PASSWORD"), "{run:#?}");
}

#[test]
fn commands_before_login_say_to_run_nps_login() {
    let server = server();
    let nps = Nps::new(&server);
    let run = nps
        .run(&["session", "list", "--url", &server.url])
        .expect_code(4);
    assert!(
        run.stderr
            .contains(&format!("not signed in to {}", server.url)),
        "{run:#?}"
    );
    assert!(run.stderr.contains("nps login"), "{run:#?}");
}

#[test]
fn a_refused_token_exits_4_and_says_to_sign_in_again() {
    let server = server();
    let nps = Nps::new(&server);
    let mut cmd = nps.command(&["session", "list", "--url", &server.url]);
    cmd.env("NPS_TOKEN", "not-a-token");
    let run = Nps::run_command(cmd).expect_code(4);
    assert!(run.stderr.contains("Unauthorized (HTTP 401)"), "{run:#?}");
    assert!(run.stderr.contains("nps login"), "{run:#?}");
    // `nps login` alone would not help: NPS_TOKEN wins over a saved token.
    assert!(
        run.stderr.contains("the token in NPS_TOKEN was refused")
            && run.stderr.contains("unset NPS_TOKEN"),
        "{run:#?}"
    );
}

#[test]
fn nps_token_goes_only_to_a_server_named_with_it() {
    let server = server();
    let nps = Nps::new(&server);
    // The last login names this server; NPS_TOKEN may be another's.
    nps.login().expect_code(0);
    let mut cmd = nps.command(&["session", "list"]);
    cmd.env("NPS_TOKEN", server.admin_token());
    let run = Nps::run_command(cmd).expect_code(2);
    assert!(
        run.stderr
            .contains("NPS_TOKEN is set, but no server is named"),
        "{run:#?}"
    );
    assert!(run.stderr.contains("--url or NPS_URL"), "{run:#?}");
    // Named by flag or by NPS_URL, it is sent.
    let mut cmd = nps.command(&["session", "list", "--url", &server.url]);
    cmd.env("NPS_TOKEN", server.admin_token());
    Nps::run_command(cmd).expect_code(0);
    let mut cmd = nps.command(&["session", "list"]);
    cmd.env("NPS_TOKEN", server.admin_token())
        .env("NPS_URL", &server.url);
    Nps::run_command(cmd).expect_code(0);
}

#[test]
fn a_refused_saved_token_names_when_it_was_saved_and_claims_no_expiry() {
    let server = server();
    let nps = Nps::new(&server);
    // A file of an earlier version, which stored an expiry of sign-in plus
    // 8 hours: still far off, yet the server refuses the token (its
    // lifetime is configurable, and it does not say).
    std::fs::create_dir_all(&nps.config_dir).unwrap();
    let file = serde_json::json!({
        "lastUrl": server.url,
        "servers": {
            server.url.as_str(): {
                "login": "admin",
                "token": "a-token-the-server-refuses",
                "signedInAt": "2026-11-29T08:00:00Z",
                "expiresAround": "2099-01-01T00:00:00Z",
            }
        }
    });
    std::fs::write(
        nps.config_dir.join("credentials.json"),
        serde_json::to_vec_pretty(&file).unwrap(),
    )
    .unwrap();
    let run = nps.run(&["session", "list"]).expect_code(4);
    assert!(
        run.stderr
            .contains("the token of admin saved at 2026-11-29 08:00:00Z was refused"),
        "{run:#?}"
    );
    assert!(
        run.stderr
            .contains(&format!("run `nps login --url {}`", server.url)),
        "{run:#?}"
    );
    assert!(!run.stderr.contains("2099"), "{run:#?}");
    assert!(!run.stderr.contains("expire around"), "{run:#?}");
}

#[test]
fn a_person_types_login_password_and_code_at_the_prompts_without_echo() {
    let server = server();
    let nps = Nps::new(&server);
    let admin = Credentials::admin();
    let tmux = Tmux::start(
        &[
            ("NPS_CONFIG_DIR", nps.config_dir.to_str().unwrap()),
            ("NPS_URL", &server.url),
        ],
        &format!("{} login; echo exit=$?; sleep 60", nps_binary()),
    );

    tmux.wait_for("Login: ");
    tmux.type_line(&admin.login);
    tmux.wait_for("Password: ");
    tmux.type_line(&admin.password);
    tmux.wait_for("MFA code: ");
    // A wrong code first (none the server would accept now): a person gets
    // another try.
    let step = current_step();
    let accepted: Vec<String> = (step - 1..=step + 2)
        .map(|s| code_at_step(&admin.totp_secret, s))
        .collect();
    let wrong = ["000000", "111111", "222222"]
        .into_iter()
        .find(|c| !accepted.iter().any(|a| a == c))
        .unwrap();
    tmux.type_line(wrong);
    tmux.wait_for("Try the next code.");
    tmux.type_line(&code_at_step(&admin.totp_secret, current_step()));
    let screen = tmux.wait_for("exit=");

    assert!(screen.contains("exit=0"), "{screen}");
    assert!(
        screen.contains(&format!("Signed in to {} as admin", server.url)),
        "{screen}"
    );
    assert!(screen.contains("The token is saved in"), "{screen}");
    assert!(
        !screen.contains(&admin.password),
        "the password was echoed:\n{screen}"
    );
    assert!(!screen.contains(wrong), "the code was echoed:\n{screen}");
    nps.run(&["session", "list"]).expect_code(0);
}

/// Runs the command in its own session so that it has no controlling
/// terminal, even when the tests run from one.
fn no_controlling_terminal(cmd: &mut Command) {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid is async-signal-safe and touches no memory.
        unsafe {
            cmd.pre_exec(|| {
                if libc_setsid() == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

#[cfg(unix)]
fn libc_setsid() -> i32 {
    extern "C" {
        fn setsid() -> i32;
    }
    // SAFETY: setsid has no preconditions.
    unsafe { setsid() }
}

#[test]
fn an_unreadable_ca_certificate_is_a_usage_error_naming_the_file() {
    let server = server();
    let nps = Nps::new(&server);
    let missing = server.dir().join("no-such-ca.pem");
    let run = nps
        .run(&[
            "session",
            "list",
            "--url",
            &server.url,
            "--ca-cert",
            missing.to_str().unwrap(),
        ])
        .expect_code(2);
    assert!(run.stderr.contains("no-such-ca.pem"), "{run:#?}");
}

#[test]
fn a_credentials_file_others_can_read_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let server = server();
    let nps = Nps::new(&server);
    nps.login().expect_code(0);
    let file = nps.config_dir.join("credentials.json");
    let quiet = nps.run(&["session", "list"]).expect_code(0);
    assert!(!quiet.stderr.contains("warning"), "{quiet:#?}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = nps.run(&["session", "list"]).expect_code(0);
    assert!(
        run.stderr.contains("can be read by other users") && run.stderr.contains("chmod 600"),
        "{run:#?}"
    );
}

#[test]
fn variables_set_but_empty_are_unset() {
    let server = server();
    let nps = Nps::new(&server);
    nps.login().expect_code(0);
    let mut cmd = nps.command(&["session", "list"]);
    for name in [
        "NPS_URL",
        "NPS_OUTPUT",
        "NPS_CA_CERT",
        "NPS_LOGIN",
        "NPS_MFA_CODE",
        "NPS_REQUEST_TIMEOUT",
    ] {
        cmd.env(name, "");
    }
    let run = Nps::run_command(cmd).expect_code(0);
    assert!(!run.stderr.contains("error"), "{run:#?}");
}
