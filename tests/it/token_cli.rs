//! The `token` runbook example against the emulator: the binary `cargo test` builds next to the
//! tests, run as a user would.
#![cfg(feature = "reqwest")]

use std::process::Output;

use tower_bearer_emulator::{Emulator, Fault, Provider};

async fn run(args: &[&str], secret: Option<&str>) -> Output {
    let mut command = tokio::process::Command::new(crate::common::example_binary("token"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    if let Some(secret) = secret {
        command.env("CLIENT_SECRET", secret);
    }
    let output = command.output().await.unwrap();
    crate::common::capture::record_output("token example stderr", &output.stderr);
    output
}

fn stdout(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&output.stdout)))
}

#[tokio::test]
async fn kontrolle_token_with_claims_check_as_json() {
    let emulator = Emulator::start().await.unwrap();
    let authority = emulator.authority();
    let scope = format!("{}/.default", emulator.app_id_uri());
    let app = emulator.app_id_uri();
    let client_id = emulator.client_id();
    let args = [
        "--provider",
        "kontrolle",
        "--authority",
        &authority,
        "--client-id",
        &client_id,
        "--scope",
        &scope,
        "--expect-aud",
        &app,
        "--require-role",
        "ProviderApi.Access",
        "--json",
    ];
    let output = run(&args, Some(&emulator.client_secret())).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json = stdout(&output);
    assert_eq!(json["token_type"], "Bearer");
    assert_eq!(json["check"]["passed"], true);
    assert_eq!(json["claims"]["roles"][0], "ProviderApi.Access");
    assert!(json["fingerprint"].as_str().unwrap().starts_with("sha256:"));
    assert!(
        json.get("access_token").is_none(),
        "the token only with --print-token"
    );
    assert_eq!(emulator.token_requests(Provider::KontrollePlus), 1);

    // A role the token lacks: exit 1, the check names the claim.
    let args = [
        "--provider",
        "kontrolle",
        "--authority",
        &authority,
        "--client-id",
        &client_id,
        "--scope",
        &scope,
        "--require-role",
        "Admin",
        "--json",
    ];
    let output = run(&args, Some(&emulator.client_secret())).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output)["check"]["error"]
            .as_str()
            .unwrap()
            .contains("`roles`")
    );
}

#[tokio::test]
async fn failures_are_typed_with_a_hint_and_exit_1() {
    let emulator = Emulator::start().await.unwrap();
    let url = emulator.token_url(Provider::Kpn);
    let client_id = emulator.client_id();
    let output = run(
        &[
            "--provider",
            "kpn",
            "--token-url",
            &url,
            "--client-id",
            &client_id,
            "--json",
        ],
        Some("Wr0ng-s3cret"),
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    let json = stdout(&output);
    assert_eq!(json["error"]["kind"], "credentials_rejected");
    assert_eq!(json["error"]["code"], "invalid_client");
    assert_eq!(json["error"]["status"], 401);
    assert!(
        json["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("client id and secret")
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains("Wr0ng-s3cret"));

    emulator.inject(Provider::Kpn, Fault::Body("<html>login</html>".into()));
    let output = run(
        &[
            "--provider",
            "kpn",
            "--token-url",
            &url,
            "--client-id",
            &client_id,
        ],
        Some(&emulator.client_secret()),
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("malformed_answer") && stderr.contains("hint:"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_secret_is_never_a_flag_and_the_token_only_on_request() {
    let emulator = Emulator::start().await.unwrap();
    let base = emulator.token_url(Provider::ScreeningEagle);
    let client_id = emulator.client_id();
    let output = run(&["--client-secret", "x", "--token-url", &base], None).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("never taken from a flag"));

    let output = run(
        &[
            "--provider",
            "screening-eagle",
            "--token-url",
            &base,
            "--client-id",
            &client_id,
            "--scope",
            "openid",
            "--print-token",
        ],
        Some(&emulator.client_secret()),
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("access token    eyJ"), "{text}");
    assert!(text.contains("refresh token, id token"), "{text}");

    // Plain http to a host that is not loopback is refused unless allowed.
    let output = run(
        &[
            "--token-url",
            "http://token.example/oauth/token",
            "--client-id",
            "c",
        ],
        Some("s"),
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("plain http"));
}

#[cfg(feature = "private-key-jwt")]
#[tokio::test]
async fn kontrolle_with_a_certificate_key() {
    let emulator = Emulator::start().await.unwrap();
    let authority = emulator.authority();
    let scope = format!("{}/.default", emulator.app_id_uri());
    let client_id = emulator.client_id();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let key = format!("{fixtures}/rsa-pkcs8.pem");
    let cert = format!("{fixtures}/rsa-cert.pem");
    let args = [
        "--provider",
        "kontrolle",
        "--authority",
        &authority,
        "--client-id",
        &client_id,
        "--scope",
        &scope,
        "--auth",
        "private-key-jwt",
        "--key",
        &key,
        "--cert",
        &cert,
        "--json",
    ];
    let output = run(&args, None).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(stdout(&output)["claims"]["aud"], emulator.app_id_uri());

    // Without --key: a usage error that says what is missing.
    let args = [
        "--provider",
        "kontrolle",
        "--authority",
        &authority,
        "--client-id",
        &client_id,
        "--scope",
        &scope,
        "--auth",
        "private-key-jwt",
    ];
    let output = run(&args, None).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--key"));
}

#[tokio::test]
async fn userinfo_in_the_token_url_is_refused_and_never_printed() {
    const USER: &str = "cli-userinfo-user";
    const PASSWORD: &str = "Cli-Userinfo-Passw0rd-3b";
    crate::common::capture::register("token_cli.rs userinfo user", USER);
    crate::common::capture::register("token_cli.rs userinfo password", PASSWORD);
    for (url, insecure) in [
        (
            format!("https://{USER}:{PASSWORD}@login.example/token"),
            false,
        ),
        (
            format!("http://{USER}:{PASSWORD}@login.example/token"),
            false,
        ),
        (
            format!("http://{USER}:{PASSWORD}@login.example/token"),
            true,
        ),
    ] {
        for json in [false, true] {
            let mut args = vec!["--token-url", &url, "--client-id", "c"];
            if insecure {
                args.push("--allow-insecure-http");
            }
            if json {
                args.push("--json");
            }
            let output = run(&args, Some("s")).await;
            assert_eq!(output.status.code(), Some(1), "{args:?}");
            let printed = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(printed.contains("user information"), "{printed}");
            assert!(!printed.contains(USER) && !printed.contains(PASSWORD));
        }
    }
}
