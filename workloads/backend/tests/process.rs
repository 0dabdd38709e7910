//! The binary and the server loop: `--help` documents the seed's environment names,
//! and `run` serves over real TCP until its shutdown future resolves.

use std::process::Command;
use std::time::Duration;

use tugboat_backend::{AppState, Settings, UpstreamSettings, run};

#[test]
fn help_names_the_seed_environment_variables() {
    let output = Command::new(env!("CARGO_BIN_EXE_backend"))
        .arg("--help")
        .output()
        .expect("run backend --help");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for name in ["ML_SERVICE_URL", "LOG_LEVEL", "PORT"] {
        assert!(
            help.contains(name),
            "--help does not mention {name}:\n{help}"
        );
    }
}

#[tokio::test]
async fn run_serves_until_shutdown_then_returns() {
    let state = AppState::new(
        Settings::default(),
        UpstreamSettings {
            base_url: "http://127.0.0.1:9".into(),
            timeout: Duration::from_secs(1),
            retries: 0,
            retry_backoff: Duration::ZERO,
        },
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(run(listener, state, async {
        let _ = stopped.await;
    }));

    let response = reqwest::get(format!("http://{addr}/api/health"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap()["service"],
        "backend-api"
    );

    stop.send(()).unwrap();
    server.await.unwrap().expect("server stops cleanly");
}

/// The binary listens on the port PORT names; with nothing at ML_SERVICE_URL it is
/// alive (`/health` 200) but not ready (`/ready` 503).
#[tokio::test]
async fn the_binary_takes_its_port_from_the_environment() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_backend"))
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("ML_SERVICE_URL", "http://127.0.0.1:9")
        .env("ML_TIMEOUT_MS", "500")
        .env("LOG_LEVEL", "warn")
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start backend");
    let base = format!("http://127.0.0.1:{port}");
    let mut health = None;
    // Bounded by attempts: the binary listens within milliseconds of starting.
    for _ in 0..300 {
        if let Ok(r) = reqwest::get(format!("{base}/health")).await {
            health = Some(r.status());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        health,
        Some(reqwest::StatusCode::OK),
        "nothing on PORT {port}"
    );
    let ready = reqwest::get(format!("{base}/ready")).await.unwrap();
    assert_eq!(ready.status(), 503);
    child.kill().await.unwrap();
}
