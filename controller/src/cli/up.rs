//! `tugboat up`: the whole application on this machine. Reads a `platform: local`
//! document, starts tugboat's weighted router on `local.listen`, runs each workload's
//! slots as child processes, and keeps them reconciled while it watches the document,
//! until ctrl-c or SIGTERM; then it stops every child before it exits.
//!
//! Guarantees at this edge:
//! - Relative paths in the document (model stores, the state directory, the status
//!   file, binaries named with a `/`) are relative to the document's directory: the
//!   process works from there.
//! - Nothing starts unless the document is valid, every binary it names exists (the
//!   error says how to build a missing one), and the router's and the endpoint's
//!   addresses are free. An edit that does not validate keeps the last good document
//!   running; the view and the status say why (`DocumentInvalid`).
//! - Every child is stopped on exit, and none outlives the controller even when it is
//!   killed with SIGKILL (see [`crate::platform::local::supervisor`]).
//!
//! `__exec` is the shim the supervisor starts children through (hidden).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::analysis::{Providers, Runner};
use crate::document::Platform as PlatformSpec;
use crate::platform::local::router::{Router, RouterConfig};
use crate::platform::local::supervisor::{Launcher, Supervisor, SupervisorConfig};
use crate::platform::local::{Binaries, LocalConfig, LocalPlatform};
use crate::runtime::feed::first_document;
use crate::runtime::{self, LoopConfig, PassOutcome, Reconciler, ServeConfig, SideInputs};
use crate::source::{DocumentSource, WatchConfig, Watcher};
use crate::status::{AppStatus, Timestamp};

const EXAMPLES: &str = "\
Examples:
  # The whole stack from manifests/local.yaml, with a live view.
  tugboat up

  # Another document, plain logs instead of the view (children's lines prefixed).
  tugboat up -f manifests/local.yaml --no-ui

  # Then, in another terminal:
  curl -s -XPOST localhost:8080/api/predict -H 'content-type: application/json' -d @bench/predict.json
  curl -s localhost:8080/metrics
  tugboat status -f manifests/local.yaml

Workload binaries are looked up beside this executable (target/<profile>/), or in
--bin-dir; build them with `cargo build --profile local --no-default-features -p
tugboat-backend -p tugboat-inference` (./up does that and this together).";

/// Run the application on this machine: child processes behind tugboat's own router.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES, after_help = "See --help for examples.")]
pub struct Args {
    /// The document (platform: local).
    #[arg(short = 'f', long, default_value = "manifests/local.yaml")]
    pub file: PathBuf,

    /// Plain logs on standard error instead of the live view.
    #[arg(long)]
    pub no_ui: bool,

    /// Where the workload binaries are. Default: the directory of this executable.
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,

    /// Address of the controller's endpoint (/healthz, /readyz, /metrics, /status).
    #[arg(long, env = "TUGBOAT_HTTP_ADDR", default_value = "127.0.0.1:9090")]
    pub http_addr: std::net::SocketAddr,

    /// How often the document is read; an edit is seen within this time.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub poll: Duration,

    /// A full pass at least this often (heals drift, sees health changes).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub resync: Duration,

    /// How long a child gets between SIGTERM and SIGKILL.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub grace: Duration,

    /// Log filter, as in RUST_LOG.
    #[arg(long, env = "TUGBOAT_LOG", default_value = "info")]
    pub log: String,
}

/// The hidden `__exec` shim's arguments.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// The controller's pid; the shim refuses to start the program if it is gone.
    #[arg(long)]
    pub parent: u32,
    /// The program and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

/// The shim: parent-death signal, then `exec`. Returns only when that failed.
pub fn exec(args: ExecArgs) -> anyhow::Result<ExitCode> {
    let (program, rest) = args
        .command
        .split_first()
        .context("__exec needs a program")?;
    let why = crate::platform::local::supervisor::exec_with_parent_death_signal(
        args.parent,
        Path::new(program),
        rest,
    );
    bail!("{why}")
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let document = std::fs::canonicalize(&args.file).with_context(|| {
        format!(
            "no document at {} (tugboat up -f FILE; the default is manifests/local.yaml, from \
             the repository root)",
            args.file.display()
        )
    })?;
    let base_dir = document
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let exe = std::env::current_exe().context("finding this executable")?;
    let bin_dir = match &args.bin_dir {
        Some(d) => std::fs::canonicalize(d)
            .with_context(|| format!("--bin-dir {} does not exist", d.display()))?,
        None => exe.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    // Relative paths in the document are relative to its directory.
    std::env::set_current_dir(&base_dir)
        .with_context(|| format!("entering the document's directory {}", base_dir.display()))?;

    let uri = format!("file://{}", document.display());
    let source = DocumentSource::open(&uri, None)
        .await
        .with_context(|| format!("opening {uri}"))?;
    let mut watcher = Watcher::new(
        source,
        WatchConfig {
            poll: args.poll,
            resync: args.resync,
        },
    );
    // An invalid document at start is an error at once: nothing runs from it.
    let first = first_document(&mut watcher, true).await?;
    let PlatformSpec::Local(local) = &first.app.spec.platform else {
        bail!(
            "{} runs on AWS (spec.platform.aws); `tugboat up` runs `platform: local` documents \
             (see manifests/local.yaml); use `tugboat run --source {uri}`",
            document.display()
        );
    };
    let listen: std::net::SocketAddr = local.listen.parse().with_context(|| {
        format!(
            "{}: spec.platform.local.listen {:?} is not an address like 127.0.0.1:8080",
            document.display(),
            local.listen
        )
    })?;
    let state_dir = base_dir.join(local.state_dir.as_deref().unwrap_or(".tugboat"));
    let log_dir = state_dir.join("logs");
    std::fs::create_dir_all(&log_dir)
        .with_context(|| format!("creating the state directory {}", log_dir.display()))?;
    init_logging(&args.log, args.no_ui, &log_dir)?;

    let router = Router::bind(listen, RouterConfig::default()).await?;
    let http = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .with_context(|| {
            format!(
                "the controller's endpoint cannot listen on {} (in use? pass --http-addr)",
                args.http_addr
            )
        })?;
    let supervisor = Supervisor::new(
        Launcher::new(&exe),
        SupervisorConfig {
            log_dir: log_dir.clone(),
            echo: args.no_ui,
            grace: args.grace,
        },
    );
    let platform = Arc::new(LocalPlatform::new(
        LocalConfig {
            base_dir: base_dir.clone(),
            state_dir: state_dir.clone(),
            binaries: Binaries {
                dirs: vec![bin_dir],
                overrides: Default::default(),
            },
        },
        router.handle(),
        supervisor.clone(),
    ));
    platform.check_binaries(&first.app)?;

    let (stop_router, router_stopped) = tokio::sync::oneshot::channel::<()>();
    let router_task = tokio::spawn(router.serve(async {
        let _ = router_stopped.await;
    }));

    let view = View::new(
        document.display().to_string(),
        platform.clone(),
        listen,
        args.http_addr,
        &state_dir,
    );
    let on_pass = view.on_pass();
    let view_task = (!args.no_ui).then(|| tokio::spawn(view.clone().run()));
    if args.no_ui {
        eprintln!("{}", view.urls());
    }

    // `cloudwatch` templates read the router's counters: one template judges a canary
    // here and on AWS.
    let analysis = Runner::new(Providers::local(platform.router().stats().clone()));
    let reconciler = Reconciler::with_inputs(platform.clone(), SideInputs::local(&state_dir), None)
        .with_analysis(analysis);
    runtime::serve(
        ServeConfig {
            reconciler,
            watcher,
            first,
            http: Some(http),
            election: None,
            loop_config: LoopConfig {
                resync: args.resync,
                backoff_max: Duration::from_secs(10),
                on_pass: Some(on_pass),
                ..LoopConfig::default()
            },
        },
        runtime::shutdown_signal(),
    )
    .await;

    if let Some(task) = view_task {
        task.abort();
    }
    eprintln!(
        "stopping every child (SIGTERM, then SIGKILL after {:?})",
        args.grace
    );
    supervisor.shutdown().await;
    let _ = stop_router.send(());
    let _ = router_task.await;
    eprintln!("stopped; logs are in {}", log_dir.display());
    Ok(ExitCode::SUCCESS)
}

/// With the view, the controller's own logs go to `<stateDir>/logs/tugboat.log` (the
/// screen is the view's); with `--no-ui`, to standard error.
fn init_logging(filter: &str, no_ui: bool, log_dir: &Path) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    if no_ui {
        use std::io::IsTerminal as _;
        let _ = builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .try_init();
    } else {
        let path = log_dir.join("tugboat.log");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let _ = builder
            .with_ansi(false)
            .with_writer(Mutex::new(file))
            .try_init();
    }
    Ok(())
}

/// The live view: workloads, slots with pid and health, weights, phase, the last events.
#[derive(Debug, Clone)]
struct View {
    document: String,
    platform: Arc<LocalPlatform>,
    listen: std::net::SocketAddr,
    http: std::net::SocketAddr,
    state_dir: PathBuf,
    last: Arc<Mutex<Option<LastPass>>>,
}

/// When the last pass ended and the status it left (or why it failed).
type LastPass = (Timestamp, Result<AppStatus, String>);

impl View {
    fn new(
        document: String,
        platform: Arc<LocalPlatform>,
        listen: std::net::SocketAddr,
        http: std::net::SocketAddr,
        state_dir: &Path,
    ) -> Self {
        Self {
            document,
            platform,
            listen,
            http,
            state_dir: state_dir.to_path_buf(),
            last: Arc::new(Mutex::new(None)),
        }
    }

    fn on_pass(&self) -> runtime::OnPass {
        let last = self.last.clone();
        Arc::new(move |outcome: &PassOutcome, now| {
            let value = match outcome {
                Ok(report) => Ok(report.status.clone()),
                Err(e) => Err(crate::runtime::reconciler::error_chain(e)),
            };
            *last.lock().unwrap_or_else(|p| p.into_inner()) = Some((now, value));
        })
    }

    fn urls(&self) -> String {
        let l = self.listen;
        format!(
            "try:   curl -s -XPOST http://{l}/api/predict -H 'content-type: application/json' \
             -d '{{\"features\": [17.99,10.38,122.8,1001,0.1184,0.2776,0.3001,0.1471,0.2419,\
             0.07871,1.095,0.9053,8.589,153.4,0.006399,0.04904,0.05373,0.01587,0.03003,0.006193,\
             25.38,17.33,184.6,2019,0.1622,0.6656,0.7119,0.2654,0.4601,0.1189]}}'\n      \
             http://{l}/ml/health   router metrics http://{l}/metrics   controller \
             http://{}/status\n      logs and state in {}",
            self.http,
            self.state_dir.display()
        )
    }

    fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "tugboat up  {}  (ctrl-c stops everything)",
            self.document
        );
        let _ = writeln!(out, "{}", self.urls());
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let status = match &last {
            None => {
                let _ = writeln!(out, "\nwaiting for the first pass...");
                return out;
            }
            Some((_, Err(e))) => {
                let _ = writeln!(out, "\nthe last pass failed: {e}");
                return out;
            }
            Some((at, Ok(status))) => {
                let _ = writeln!(
                    out,
                    "\nrevision {}  last pass {at}",
                    status.document_revision.as_deref().unwrap_or("-")
                );
                status.clone()
            }
        };
        for c in status.conditions.iter().filter(|c| c.status) {
            let _ = writeln!(out, "!! {}: {}", c.kind, c.message);
        }
        let stats = self.platform.router().stats().clone();
        let now = std::time::Instant::now();
        for (name, w) in &status.workloads {
            let weights = self
                .platform
                .rule_weights(name)
                .map(|ws| {
                    ws.iter()
                        .map(|(g, w)| format!("{g}={w}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_else(|| "no rule".into());
            let _ = writeln!(out, "\n{name:<20} {:?}  {weights}", w.phase);
            if !w.message.is_empty() {
                let _ = writeln!(out, "  {}", w.message);
            }
            for c in w.conditions.iter().filter(|c| c.status) {
                let _ = writeln!(out, "  !! {}: {}", c.kind, c.message);
            }
            for service in self
                .platform
                .supervisor()
                .service_names()
                .into_iter()
                .filter(|s| s == name || s.starts_with(&format!("{name}-")))
            {
                let Some(v) = self.platform.supervisor().view(&service) else {
                    continue;
                };
                let group = self.platform.service_target_group(&service);
                let traffic = group
                    .as_ref()
                    .map(|g| {
                        let s = stats.window(g, Duration::from_secs(10), now);
                        format!(
                            "  {g}: {} req, {} 5xx in 10 s",
                            s.requests,
                            s.target_5xx + s.elb_5xx
                        )
                    })
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  {service:<26} {} of {} up{traffic}",
                    v.replicas.iter().filter(|r| r.healthy).count(),
                    v.desired
                );
                for r in &v.replicas {
                    let pid = r.pid.map_or("-".to_string(), |p| p.to_string());
                    let port = r.port.map_or("-".to_string(), |p| p.to_string());
                    let health = match (r.running, r.healthy) {
                        (true, true) => "healthy",
                        (true, false) => "starting",
                        _ => "down",
                    };
                    let _ = writeln!(
                        out,
                        "    #{} pid {pid:<7} port {port:<6} {health:<8} restarts {}",
                        r.index, r.restarts
                    );
                    if !r.healthy
                        && let Some(p) = &r.last_problem
                    {
                        for line in p.lines().take(6) {
                            let _ = writeln!(out, "      {line}");
                        }
                    }
                }
            }
        }
        let mut events: Vec<_> = status
            .workloads
            .iter()
            .flat_map(|(n, w)| w.events.iter().map(move |e| (e.at, n, e)))
            .collect();
        events.sort_by_key(|(at, _, _)| *at);
        let _ = writeln!(out, "\nlast events:");
        for (at, name, e) in events.iter().rev().take(8).rev() {
            let _ = writeln!(out, "  {at} {name} {}: {}", e.reason, e.message);
        }
        out
    }

    async fn run(self) {
        use std::io::IsTerminal as _;
        let tty = std::io::stdout().is_terminal();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let frame = self.render();
            // A terminal gets the frame redrawn in place; a pipe gets frames one after
            // another.
            let text = if tty {
                format!("\x1b[H\x1b[2J{frame}")
            } else {
                format!("{frame}\n")
            };
            if super::print(&text).is_err() {
                return;
            }
        }
    }
}
