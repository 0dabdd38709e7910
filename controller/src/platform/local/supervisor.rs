//! Child processes for the local platform: each service is a set of replicas, each a
//! process of the workload's binary on a free loopback port.
//!
//! Guarantees:
//! - **No orphans.** Every child runs in its own process group and carries the
//!   parent-death signal (SIGKILL): when the controller dies, even by SIGKILL, the kernel
//!   kills the child. The workspace forbids `unsafe`, and `CommandExt::pre_exec` (where
//!   `prctl` would normally go) is unsafe, so children start through a tiny re-exec
//!   shim instead: the controller's own binary, run as `tugboat __exec --parent PID --
//!   PROGRAM ARGS`, calls `prctl(PR_SET_PDEATHSIG, SIGKILL)` through rustix's safe
//!   wrapper, checks its parent is still the controller (closing the race where the
//!   controller died before the `prctl`), then `exec`s the program in place (same pid,
//!   same process group; the signal survives `execve`). Linux sends the signal when the
//!   *thread* that forked the child exits, so every child is forked from one dedicated
//!   thread that lives as long as the process.
//! - **Stopping** sends SIGTERM to the child's process group, waits up to the grace
//!   period, then SIGKILLs the group; [`Supervisor::shutdown`] returns once every child
//!   has been reaped.
//! - **Restarts** with exponential backoff (0.5 s doubling to 30 s, reset after a child
//!   ran 30 s) while the replica is wanted. A child that exits within
//!   [`EARLY_EXIT`] of starting is reported with its last log lines.
//! - **Logs**: every line a child writes is prefixed with `workload/slot#replica` and
//!   appended to a file per replica in the log directory; the last lines are kept for
//!   error messages; `echo` also copies them to standard error.
//! - **Health**: with a probe, a replica is healthy after one successful `GET` of the
//!   probe path and unhealthy after `unhealthy_after` consecutive failures (or at once
//!   when its process exits). Every change bumps [`Supervisor::changes`].

use std::collections::{BTreeMap, VecDeque};
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::AsyncBufReadExt as _;
use tokio::sync::{oneshot, watch};

/// A child that exits this soon after starting "exits at once": its last log lines are
/// reported.
pub const EARLY_EXIT: Duration = Duration::from_secs(3);
/// How many log lines of each replica are kept in memory.
const KEPT_LINES: usize = 20;
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
const BACKOFF_RESET: Duration = Duration::from_secs(30);

/// Why the supervisor could not do something.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("the spawner thread is gone; the supervisor is shutting down")]
    SpawnerGone,
    #[error("starting {label} ({program}) failed")]
    Spawn {
        label: String,
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no free loopback port for {label}")]
    NoPort {
        label: String,
        #[source]
        source: std::io::Error,
    },
}

/// How a replica's health is probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthProbe {
    /// e.g. `/ready`.
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive failed probes before a healthy replica is unhealthy.
    pub unhealthy_after: u32,
}

/// What a service's replicas run. Two specs that differ restart the replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// For log prefixes: `workload/slot`.
    pub label: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Set on top of the controller's environment (`PORT` and `HOST` are added).
    pub env: BTreeMap<String, String>,
    pub cwd: PathBuf,
    pub health: Option<HealthProbe>,
    /// An opaque tag the platform reads back (the task-definition ARN).
    pub tag: String,
}

/// One replica as seen now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicaView {
    pub index: u32,
    pub pid: Option<u32>,
    pub port: Option<u16>,
    /// The process runs.
    pub running: bool,
    /// Running and (with a probe) passed its health check.
    pub healthy: bool,
    pub restarts: u32,
    /// Why it last stopped on its own, with its last log lines when it exited at once.
    pub last_problem: Option<String>,
}

/// A service as seen now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceView {
    pub spec: ServiceSpec,
    pub desired: u32,
    pub replicas: Vec<ReplicaView>,
}

/// Where children come from: the shim binary and the one thread that forks them.
#[derive(Debug, Clone)]
pub struct Launcher {
    shim: PathBuf,
    spawner: std::sync::mpsc::Sender<(Command, oneshot::Sender<std::io::Result<Child>>)>,
}

impl Launcher {
    /// `shim` is the tugboat binary (it has the `__exec` command): `current_exe()` for
    /// the CLI, `env!("CARGO_BIN_EXE_tugboat")` in tests.
    pub fn new(shim: impl Into<PathBuf>) -> Self {
        let (tx, rx) =
            std::sync::mpsc::channel::<(Command, oneshot::Sender<std::io::Result<Child>>)>();
        // Lives as long as the process: the parent-death signal is tied to the thread
        // that forked the child, so this thread must not end while children run.
        std::thread::Builder::new()
            .name("tugboat-spawner".into())
            .spawn(move || {
                while let Ok((mut command, reply)) = rx.recv() {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("starting the spawner thread");
        Self {
            shim: shim.into(),
            spawner: tx,
        }
    }

    async fn spawn(&self, mut command: Command) -> Result<std::io::Result<Child>, SupervisorError> {
        // Own process group: signals to the controller's group (a terminal's ctrl-c)
        // do not reach children directly; the supervisor stops them in order.
        command.process_group(0);
        let (tx, rx) = oneshot::channel();
        self.spawner
            .send((command, tx))
            .map_err(|_| SupervisorError::SpawnerGone)?;
        rx.await.map_err(|_| SupervisorError::SpawnerGone)
    }
}

/// The `__exec` shim's body: sets the parent-death signal, checks the parent is still
/// `parent`, and replaces this process with `program`. Returns only on failure.
pub fn exec_with_parent_death_signal(parent: u32, program: &Path, args: &[String]) -> String {
    if let Err(e) =
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
    {
        return format!("setting the parent-death signal failed: {e}");
    }
    let ppid = rustix::process::getppid().map(|p| p.as_raw_pid());
    if ppid != i32::try_from(parent).ok() {
        return format!(
            "the controller (pid {parent}) is gone; not starting {}",
            program.display()
        );
    }
    let error = Command::new(program).args(args).exec();
    format!("starting {} failed: {error}", program.display())
}

/// Sends `signal` to the process group led by `pid`.
fn signal_group(pid: u32, signal: rustix::process::Signal) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, signal);
    }
}

#[derive(Debug, Default)]
struct ReplicaState {
    view: ReplicaView,
    log: VecDeque<String>,
}

#[derive(Debug)]
struct Replica {
    state: Arc<Mutex<ReplicaState>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
struct Service {
    spec: ServiceSpec,
    desired: u32,
    replicas: BTreeMap<u32, Replica>,
}

/// Settings of a supervisor.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    pub log_dir: PathBuf,
    /// Copy children's log lines to standard error (`tugboat up --no-ui`).
    pub echo: bool,
    /// Between SIGTERM and SIGKILL.
    pub grace: Duration,
}

/// The child processes of every service.
#[derive(Debug, Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    launcher: Launcher,
    config: SupervisorConfig,
    services: Mutex<BTreeMap<String, Service>>,
    changes: watch::Sender<u64>,
    probe: Client<HttpConnector, Empty<Bytes>>,
}

impl Supervisor {
    pub fn new(launcher: Launcher, config: SupervisorConfig) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(1)));
        Self {
            inner: Arc::new(Inner {
                launcher,
                config,
                services: Mutex::new(BTreeMap::new()),
                changes: watch::channel(0).0,
                probe: Client::builder(TokioExecutor::new())
                    .pool_max_idle_per_host(0)
                    .build(connector),
            }),
        }
    }

    /// Bumped on every change of a replica's pid, health or problem.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    fn services(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Service>> {
        self.inner
            .services
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Makes `service` run `desired` replicas of `spec`: replicas of another spec are
    /// replaced, extra replicas stopped, missing ones started. Returns at once; the
    /// processes start in the background.
    pub fn ensure(&self, service: &str, spec: ServiceSpec, desired: u32) {
        let mut stopping = Vec::new();
        {
            let mut services = self.services();
            let entry = services
                .entry(service.to_string())
                .or_insert_with(|| Service {
                    spec: spec.clone(),
                    desired: 0,
                    replicas: BTreeMap::new(),
                });
            if entry.spec != spec {
                stopping.extend(std::mem::take(&mut entry.replicas).into_values());
                entry.spec = spec;
            }
            entry.desired = desired;
            let extra: Vec<u32> = entry.replicas.range(desired..).map(|(i, _)| *i).collect();
            for i in extra {
                stopping.extend(entry.replicas.remove(&i));
            }
            for i in 0..desired {
                if !entry.replicas.contains_key(&i) {
                    let replica = self.start(entry.spec.clone(), i);
                    entry.replicas.insert(i, replica);
                }
            }
        }
        for replica in stopping {
            let _ = replica.stop.send(true);
        }
        self.bump();
    }

    /// Stops every replica of `service` and forgets it.
    pub fn remove(&self, service: &str) {
        let removed = self.services().remove(service);
        for replica in removed.into_iter().flat_map(|s| s.replicas.into_values()) {
            let _ = replica.stop.send(true);
        }
        self.bump();
    }

    pub fn view(&self, service: &str) -> Option<ServiceView> {
        let services = self.services();
        let s = services.get(service)?;
        Some(ServiceView {
            spec: s.spec.clone(),
            desired: s.desired,
            replicas: s
                .replicas
                .values()
                .map(|r| {
                    r.state
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .view
                        .clone()
                })
                .collect(),
        })
    }

    pub fn service_names(&self) -> Vec<String> {
        self.services().keys().cloned().collect()
    }

    /// The last log lines of a replica.
    pub fn last_lines(&self, service: &str, index: u32) -> Vec<String> {
        self.services()
            .get(service)
            .and_then(|s| s.replicas.get(&index))
            .map(|r| {
                r.state
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .log
                    .iter()
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Stops every child (SIGTERM, then SIGKILL after the grace period) and waits until
    /// all are reaped.
    pub async fn shutdown(&self) {
        let all: Vec<Replica> = std::mem::take(&mut *self.services())
            .into_values()
            .flat_map(|s| s.replicas.into_values())
            .collect();
        for r in &all {
            let _ = r.stop.send(true);
        }
        for r in all {
            let _ = r.task.await;
        }
    }

    fn bump(&self) {
        self.inner.changes.send_modify(|n| *n += 1);
    }

    fn start(&self, spec: ServiceSpec, index: u32) -> Replica {
        let state = Arc::new(Mutex::new(ReplicaState {
            view: ReplicaView {
                index,
                ..ReplicaView::default()
            },
            log: VecDeque::new(),
        }));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run_replica(
            self.clone(),
            spec,
            index,
            state.clone(),
            stopped,
        ));
        Replica { state, stop, task }
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The next backoff after `current`.
///
/// ```text
/// 0.5 s -> 1 s -> 2 s -> ... -> 30 s -> 30 s
/// ```
fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(BACKOFF_MAX)
}

/// One replica's life: start, probe, restart with backoff, until told to stop.
async fn run_replica(
    supervisor: Supervisor,
    spec: ServiceSpec,
    index: u32,
    state: Arc<Mutex<ReplicaState>>,
    mut stop: watch::Receiver<bool>,
) {
    let label = format!("{}#{index}", spec.label);
    let log_path = supervisor
        .inner
        .config
        .log_dir
        .join(format!("{}-{index}.log", spec.label.replace('/', "-")));
    let mut backoff = BACKOFF_MIN;
    let update = |f: &dyn Fn(&mut ReplicaState)| {
        f(&mut state.lock().unwrap_or_else(|p| p.into_inner()));
        supervisor.bump();
    };
    loop {
        if *stop.borrow() {
            return;
        }
        let started = Instant::now();
        let outcome = run_once(&supervisor, &spec, &label, &log_path, &state, &mut stop).await;
        update(&|s| {
            s.view.running = false;
            s.view.healthy = false;
            s.view.pid = None;
        });
        let problem = match outcome {
            RunOutcome::Stopped => return,
            RunOutcome::Exited(status) => {
                let ran = started.elapsed();
                if ran >= BACKOFF_RESET {
                    backoff = BACKOFF_MIN;
                }
                let lines = state
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .log
                    .iter()
                    .rev()
                    .take(8)
                    .rev()
                    .cloned()
                    .collect::<Vec<_>>();
                if ran < EARLY_EXIT {
                    format!(
                        "{label} exited at once ({status}, after {} ms); its last log lines:\n{}",
                        ran.as_millis(),
                        lines.join("\n")
                    )
                } else {
                    format!("{label} exited ({status}) after {} s", ran.as_secs())
                }
            }
            RunOutcome::Failed(message) => message,
        };
        tracing::warn!(replica = %label, restart_in_ms = backoff.as_millis() as u64, "{problem}");
        update(&|s| {
            s.view.restarts += 1;
            s.view.last_problem = Some(problem.clone());
        });
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stopped(&mut stop) => return,
        }
        backoff = next_backoff(backoff);
    }
}

enum RunOutcome {
    Stopped,
    Exited(std::process::ExitStatus),
    Failed(String),
}

async fn run_once(
    supervisor: &Supervisor,
    spec: &ServiceSpec,
    label: &str,
    log_path: &Path,
    state: &Arc<Mutex<ReplicaState>>,
    stop: &mut watch::Receiver<bool>,
) -> RunOutcome {
    let inner = &supervisor.inner;
    let port = match free_port() {
        Ok(p) => p,
        Err(source) => {
            return RunOutcome::Failed(
                SupervisorError::NoPort {
                    label: label.into(),
                    source,
                }
                .to_string(),
            );
        }
    };
    let mut command = Command::new(&inner.launcher.shim);
    command
        .arg("__exec")
        .arg("--parent")
        .arg(std::process::id().to_string())
        .arg("--")
        .arg(&spec.program)
        .args(&spec.args)
        .envs(&spec.env)
        .env("PORT", port.to_string())
        .env("HOST", "127.0.0.1")
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match inner.launcher.spawn(command).await {
        Ok(Ok(child)) => child,
        Ok(Err(source)) => {
            return RunOutcome::Failed(
                SupervisorError::Spawn {
                    label: label.into(),
                    program: inner.launcher.shim.display().to_string(),
                    source,
                }
                .to_string(),
            );
        }
        Err(e) => return RunOutcome::Failed(e.to_string()),
    };
    let pid = child.id();
    {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        s.view.pid = Some(pid);
        s.view.port = Some(port);
        s.view.running = true;
        s.view.healthy = spec.health.is_none();
    }
    supervisor.bump();
    let log = Arc::new(Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .ok(),
    ));
    let mut pumps = Vec::new();
    if let Some(out) = child
        .stdout
        .take()
        .and_then(|o| tokio::process::ChildStdout::from_std(o).ok())
    {
        pumps.push(tokio::spawn(pump(
            out,
            label.to_string(),
            log.clone(),
            state.clone(),
            inner.config.echo,
        )));
    }
    if let Some(err) = child
        .stderr
        .take()
        .and_then(|e| tokio::process::ChildStderr::from_std(e).ok())
    {
        pumps.push(tokio::spawn(pump(
            err,
            label.to_string(),
            log.clone(),
            state.clone(),
            inner.config.echo,
        )));
    }

    let mut failures = 0u32;
    let mut next_probe = Instant::now();
    let outcome = loop {
        match child.try_wait() {
            Ok(Some(status)) => break RunOutcome::Exited(status),
            Ok(None) => {}
            Err(e) => break RunOutcome::Failed(format!("waiting for {label} failed: {e}")),
        }
        if let Some(probe) = &spec.health
            && Instant::now() >= next_probe
        {
            next_probe = Instant::now() + probe.interval;
            let ok = probe_once(&inner.probe, port, probe).await;
            let was = state.lock().unwrap_or_else(|p| p.into_inner()).view.healthy;
            failures = if ok { 0 } else { failures + 1 };
            let now_healthy = ok || (was && failures < probe.unhealthy_after);
            if now_healthy != was {
                state.lock().unwrap_or_else(|p| p.into_inner()).view.healthy = now_healthy;
                supervisor.bump();
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = stopped(stop) => {
                terminate(&mut child, inner.config.grace).await;
                break RunOutcome::Stopped;
            }
        }
    };
    // The pipes close when the process (group) is gone; the last lines are in.
    for p in pumps {
        let _ = tokio::time::timeout(Duration::from_secs(1), p).await;
    }
    outcome
}

/// Resolves once the replica is told to stop (the guard is not held past it).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// SIGTERM to the group, then SIGKILL after `grace`; reaps the child.
async fn terminate(child: &mut Child, grace: Duration) {
    let pid = child.id();
    signal_group(pid, rustix::process::Signal::TERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            // Anything left in the group (a grandchild) goes too.
            signal_group(pid, rustix::process::Signal::KILL);
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    signal_group(pid, rustix::process::Signal::KILL);
    let _ = child.kill();
    let _ = child.wait();
}

async fn probe_once(
    client: &Client<HttpConnector, Empty<Bytes>>,
    port: u16,
    probe: &HealthProbe,
) -> bool {
    let Ok(uri) = format!("http://127.0.0.1:{port}{}", probe.path).parse::<hyper::Uri>() else {
        return false;
    };
    matches!(
        tokio::time::timeout(probe.timeout, client.get(uri)).await,
        Ok(Ok(response)) if response.status().is_success()
    )
}

async fn pump(
    stream: impl tokio::io::AsyncRead + Unpin,
    label: String,
    log: Arc<Mutex<Option<std::fs::File>>>,
    state: Arc<Mutex<ReplicaState>>,
    echo: bool,
) {
    let mut lines = tokio::io::BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let prefixed = format!("[{label}] {line}");
        if let Some(file) = log.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            let _ = writeln!(file, "{prefixed}");
        }
        if echo {
            eprintln!("{prefixed}");
        }
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        if s.log.len() == KEPT_LINES {
            s.log.pop_front();
        }
        s.log.push_back(prefixed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let mut d = BACKOFF_MIN;
        let mut seen = vec![d];
        for _ in 0..8 {
            d = next_backoff(d);
            seen.push(d);
        }
        assert_eq!(seen[1], Duration::from_secs(1));
        assert_eq!(seen[2], Duration::from_secs(2));
        assert_eq!(*seen.last().expect("some"), BACKOFF_MAX);
    }
}
