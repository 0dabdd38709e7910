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
        "FAULT_RATE",
        "FAULT_LATENCY",
        "MODEL_LOAD_ATTEMPTS",
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

#[test]
fn a_bad_fault_setting_stops_the_binary_with_a_message_naming_it() {
    let output = Command::new(env!("CARGO_BIN_EXE_inference"))
        .env("FAULT_RATE", "1.5")
        .env("PORT", "0")
        .output()
        .expect("run inference");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("FAULT_RATE"), "{stderr}");
}

/// The binary listens on the port PORT names, serves the model MODEL_URI names,
/// and applies FAULT_RATE read from the environment.
#[tokio::test]
async fn the_binary_takes_its_port_and_faults_from_the_environment() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_inference"))
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("MODEL_URI", common::model_dir("v1"))
        .env("FAULT_RATE", "1")
        .env("LOG_LEVEL", "warn")
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start inference");
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut ready = false;
    // Bounded by attempts: the model loads in well under a second.
    for _ in 0..300 {
        if let Ok(r) = client.get(format!("{base}/ready")).send().await
            && r.status() == 200
        {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready, "inference never became ready on PORT {port}");
    let answer = client
        .post(format!("{base}/predict"))
        .header("content-type", "application/json")
        .body(common::features_json(
            &common::held_out("v1").rows[0].features,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 500);
    child.kill().await.unwrap();
}
