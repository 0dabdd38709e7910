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
