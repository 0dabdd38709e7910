//! What the local-platform tests share: the workload binaries (built once per test
//! process with the same profile as the tests), documents for the local platform, and a
//! `tugboat up` process to drive.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const V1_SHA: &str = "c5c48b0686e5d5c9ac7b4db283ad6376fd90ae4680d05b87472ca588ff6d8b5c";
pub const V2_SHA: &str = "79009fc2c4d7969a85081e29f4b3f6a4ccd0eae3adffd5c4f177c5bc47ec12e6";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// The tugboat binary cargo built for these tests.
pub fn tugboat() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tugboat"))
}

/// The directory with `backend` and `inference`, built (or found up to date) by cargo
/// in the tests' own target directory and profile.
pub fn workload_bins() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = tugboat().parent().expect("target dir").to_path_buf();
            let profile = dir
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("debug")
                .to_string();
            let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            cargo
                .current_dir(repo_root())
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "tugboat-backend",
                    "--bin",
                    "backend",
                ])
                .args(["-p", "tugboat-inference", "--bin", "inference"]);
            if profile != "debug" {
                cargo.args(["--profile", &profile]);
            }
            let status = cargo
                .status()
                .expect("running cargo build for the workloads");
            assert!(status.success(), "building the workload binaries failed");
            dir
        })
        .clone()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The local document of these tests: backend (blue/green, auto-promoted) and the
/// inference canary with `steps`, serving model `version`, router on `listen`, state in
/// `state_dir`.
pub fn document(listen: u16, state_dir: &Path, version: &str, steps: &str) -> String {
    let sha = if version == "v2" { V2_SHA } else { V1_SHA };
    let models = repo_root().join("workloads/inference/models");
    format!(
        r#"apiVersion: tugboat.dev/v1alpha1
kind: Application
metadata: {{name: prediction-app, environment: local}}
spec:
  platform:
    local: {{listen: "127.0.0.1:{listen}", stateDir: "{state}"}}
  status: {{uri: "file://{state}/status.json"}}
  workloads:
    - name: backend
      image: backend
      cpu: 256
      memory: 512
      desiredCount: 1
      containerPort: 8001
      environment: {{ML_SERVICE_URL: "http://127.0.0.1:{listen}/ml", LOG_LEVEL: info}}
      healthCheck: {{command: ["CMD-SHELL", "curl -f http://localhost:8001/health || exit 1"]}}
      route: {{pathPatterns: ["/api/*"], priority: 10, targetGroups: {{blue: backend-blue, green: backend-green}}}}
      strategy: {{blueGreen: {{autoPromotionEnabled: true, scaleDownDelay: 1s}}}}
    - name: ml-model-service
      image: inference
      cpu: 512
      memory: 1024
      desiredCount: 1
      containerPort: 8002
      environment: {{LOG_LEVEL: info}}
      healthCheck: {{command: ["CMD-SHELL", "curl -f http://localhost:8002/ready || exit 1"]}}
      route: {{pathPatterns: ["/ml/*"], priority: 20, targetGroups: {{blue: ml-blue, green: ml-green}}}}
      strategy:
        canary:
          steps: {steps}
          scaleDownDelay: 1s
          abortScaleDownDelay: 1s
      model: classifier
  models:
    - {{name: classifier, storeUri: "file://{models}", version: {version}, sha256: {sha}}}
"#,
        state = state_dir.display(),
        models = models.display(),
    )
}

/// A `tugboat up --no-ui` process; its standard error is collected.
pub struct Up {
    pub child: Child,
    pub stderr: Arc<Mutex<Vec<String>>>,
    pub http: u16,
}

impl Up {
    pub fn start(doc: &Path, bin_dir: &Path) -> Self {
        let http = free_port();
        let mut child = Command::new(tugboat())
            .args(["up", "--no-ui", "--resync", "1s", "--grace", "2s"])
            .arg("-f")
            .arg(doc)
            .arg("--bin-dir")
            .arg(bin_dir)
            .args(["--http-addr", &format!("127.0.0.1:{http}")])
            .env("TUGBOAT_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting tugboat up");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let pipe = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.lock().expect("lock").push(line);
            }
        });
        Self {
            child,
            stderr,
            http,
        }
    }

    pub fn log(&self) -> String {
        self.stderr.lock().expect("lock").join("\n")
    }

    /// Waits for the process to exit (up to `limit`); its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader thread drain the pipe.
                std::thread::sleep(Duration::from_millis(200));
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// The controller's `/status`, once a pass has run.
    pub async fn status(&self) -> Option<serde_json::Value> {
        let r = reqwest::get(format!("http://127.0.0.1:{}/status", self.http))
            .await
            .ok()?;
        if !r.status().is_success() {
            return None;
        }
        r.json().await.ok()
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SIGTERM (a clean stop of every child); SIGKILL if that did not end it.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .stderr(Stdio::null())
            .status();
        if self.wait_exit(Duration::from_secs(10)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `check` every 200 ms until it returns `Some`, or panics after `limit` with
/// `what` and the controller's log.
pub async fn eventually<T, F, Fut>(up: &Up, limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {limit:?}; the controller's log:\n{}",
            tail(&up.log(), 60)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Pids of the live (not zombie) children of `parent`, from /proc.
pub fn children_of(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some((ppid, state)) = stat(pid)
            && ppid == parent
            && state != 'Z'
        {
            out.push(pid);
        }
    }
    out
}

/// (parent pid, state) of a process; `None` when it is gone.
pub fn stat(pid: u32) -> Option<(u32, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`; comm may hold spaces, so split after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((ppid, state))
}

/// Whether `pid` is alive (exists and is not a zombie).
pub fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(_, s)| s != 'Z')
}
