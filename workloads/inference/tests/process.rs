//! The binary and the server loop: `--help` documents the seed's environment names,
//! and `run` serves over real TCP until its shutdown future resolves.

mod common;

use std::process::Command;

use tugboat_inference::{Settings, run};

#[test]
fn help_names_the_seed_environment_variables() {
    let output = Command::new(env!("CARGO_BIN_EXE_inference"))
        .arg("--help")
        .output()
        .expect("run inference --help");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for name in [
        "MODEL_URI",
        "S3_MODEL_BUCKET",
        "S3_MODEL_KEY",
        "MODEL_VERSION",
        "MODEL_SHA256",
        "LOG_LEVEL",
        "PORT",
    ] {
        assert!(
            help.contains(name),
            "--help does not mention {name}:\n{help}"
        );
    }
}

#[tokio::test]
async fn run_serves_until_shutdown_then_returns() {
    let state = common::ready_state("v1", Settings::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(run(listener, state, async {
        let _ = stopped.await;
    }));

    // A raw HTTP/1.1 request: no client crate needed for one GET.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /ml/health HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"model_version\":\"v1\""), "{response}");

    stop.send(()).unwrap();
    server.await.unwrap().expect("server stops cleanly");
}
