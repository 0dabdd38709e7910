//! A document on moto's infrastructure with a canary `api` (20%, a pause for an
//! operator, 100%), `tugboat run` and the verbs as processes, and ECS played by the test.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::moto::{self, World};
use tugboat::status::AppStatus;

pub fn tugboat() -> Command {
    moto::endpoint();
    let mut command = Command::new(env!("CARGO_BIN_EXE_tugboat"));
    command.env("AWS_REGION", moto::REGION);
    for (key, default) in [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ] {
        if std::env::var(key).is_err() {
            command.env(key, default);
        }
    }
    command
}

pub struct App {
    pub world: World,
    pub dir: tempfile::TempDir,
    pub manifest: PathBuf,
    pub status: PathBuf,
    pub prefix: String,
}

impl App {
    pub async fn new() -> Self {
        Self::with_targets(2).await
    }

    /// With `targets` registered in each target group (0: the test registers them).
    pub async fn with_targets(targets: usize) -> Self {
        let world = moto::world(&["api"], targets).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let status = dir.path().join("status.json");
        let manifest = dir.path().join("app.yaml");
        let prefix = format!("/tugboat-test/{}", moto::unique("ops"));
        let app = App {
            world,
            dir,
            manifest,
            status,
            prefix,
        };
        app.write("api:1");
        app
    }

    /// The document with `api` on `image`: a canary of 20%, a pause for an operator, 100%.
    pub fn write(&self, image: &str) {
        self.write_with(image, None);
    }

    /// The document, `api` serving model `clf` from `(storeUri, versionParameter)`.
    pub fn write_with(&self, image: &str, model: Option<(&str, &str)>) {
        let (models, uses) = match model {
            Some((store, pointer)) => (
                format!(
                    "  models:\n    - {{name: clf, storeUri: \"{store}\", versionParameter: \"{pointer}\"}}\n"
                ),
                "      model: clf\n",
            ),
            None => (String::new(), ""),
        };
        let i = &self.world.infra;
        let (blue, green) = self.world.tg("api");
        let text = format!(
            "apiVersion: tugboat.dev/v1alpha1
kind: Application
metadata: {{name: {name}, environment: test}}
spec:
  platform:
    aws:
      region: us-east-1
      cluster: {cluster}
      subnets: [{subnet}]
      securityGroups: [{sg}]
      executionRoleArn: arn:aws:iam::123456789012:role/exec
      listenerArn: {listener}
{models}  overrides: {{ssmPrefix: {prefix}}}
  status: {{uri: \"file://{status}\"}}
  workloads:
    - name: api
      image: {image}
{uses}      cpu: 256
      memory: 512
      desiredCount: 2
      containerPort: 8000
      route:
        pathPatterns: [\"/api/*\"]
        priority: 10
        targetGroups: {{blue: {blue}, green: {green}}}
      strategy:
        canary:
          steps: [{{setWeight: 20}}, {{pause: {{}}}}, {{setWeight: 100}}]
          scaleDownDelay: 1s
          abortScaleDownDelay: 1s
",
            name = i.app_name,
            cluster = i.cluster,
            subnet = i.subnets[0],
            sg = i.security_groups[0],
            listener = i.listener_arn.as_deref().expect("listener"),
            prefix = self.prefix,
            status = self.status.display(),
        );
        // Written beside and renamed, so the controller never reads half a document.
        let tmp = self.dir.path().join(".app.yaml.tmp");
        std::fs::write(&tmp, text).expect("write manifest");
        std::fs::rename(&tmp, &self.manifest).expect("rename manifest");
    }

    pub fn run(&self) -> Child {
        self.run_via(None)
    }

    /// `tugboat run`, its AWS calls sent to `endpoint` (a proxy) when given.
    pub fn run_via(&self, endpoint: Option<&str>) -> Child {
        let mut command = tugboat();
        if let Some(endpoint) = endpoint {
            command.env("AWS_ENDPOINT_URL", endpoint);
        }
        command
            .args(["run", "--poll", "200ms", "--resync", "2s"])
            .args(["--http-addr", "127.0.0.1:0", "--source"])
            .arg(format!("file://{}", self.manifest.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tugboat starts")
    }

    pub fn verb(&self, args: &[&str]) -> Output {
        tugboat()
            .args(args)
            .arg("-f")
            .arg(&self.manifest)
            .env("TUGBOAT_OPERATOR", "alice")
            .output()
            .expect("tugboat runs")
    }

    pub fn read_status(&self) -> Option<AppStatus> {
        let text = std::fs::read_to_string(&self.status).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// (blue, green) weights of the api rule.
    pub async fn weights(&self) -> Option<(i32, i32)> {
        let (_, w) = moto::rule_weights(&self.world, 10).await?;
        let (blue, green) = self.world.tg("api");
        Some((
            w.get(&blue).copied().unwrap_or(0),
            w.get(&green).copied().unwrap_or(0),
        ))
    }

    /// Plays ECS until `done` holds of the status and the rule, or fails after a
    /// deadline generous enough for a loaded machine (this is no timing assertion: it
    /// only keeps a broken build from hanging).
    pub async fn until(&self, what: &str, done: impl Fn(&AppStatus, Option<(i32, i32)>) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            moto::settle(&self.world).await;
            let weights = self.weights().await;
            if let Some(s) = self.read_status()
                && done(&s, weights)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "never reached: {what}; status {:#?}, weights {weights:?}",
                self.read_status()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub fn phase(s: &AppStatus) -> String {
    s.workloads
        .get("api")
        .map(|w| w.phase.to_string())
        .unwrap_or_default()
}

pub fn step(s: &AppStatus) -> Option<usize> {
    s.workloads
        .get("api")?
        .canary
        .as_ref()
        .map(|c| c.step_index)
}

pub fn text(out: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until the first deployment of api:1 serves all traffic, then starts api:2 and
/// waits at its operator pause with 20% on green.
pub async fn at_the_pause(app: &App) {
    app.until("first deployment", |s, w| {
        phase(s) == "Healthy" && w == Some((100, 0))
    })
    .await;
    app.write("api:2");
    app.until("the canary at its pause with 20%", |s, w| {
        step(s) == Some(1) && phase(s) == "Paused" && w == Some((80, 20))
    })
    .await;
}
