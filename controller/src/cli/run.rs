//! `tugboat run`: the controller. Watches the document source, and reconciles the
//! application on AWS until SIGTERM or ctrl-c (finishing the pass under way).
//!
//! Only the edge lives here: arguments, logging, and the one match on the platform that
//! builds what [`crate::runtime::serve`] runs. The loop, the feed and the endpoint are in
//! [`crate::runtime`].

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

#[cfg(feature = "aws")]
use crate::budget::Budgets;
use crate::document::Platform as PlatformSpec;
#[cfg(feature = "aws")]
use crate::platform::Platform;
#[cfg(feature = "aws")]
use crate::platform::aws::{AwsClients, AwsPlatform};
use crate::runtime::DesiredDocument;
#[cfg(feature = "aws")]
use crate::runtime::executor::action_name;
use crate::runtime::feed::first_document;
#[cfg(feature = "aws")]
use crate::runtime::reconciler::error_chain;
#[cfg(feature = "aws")]
use crate::runtime::{self, LoopConfig, Reconciler, ServeConfig, SideInputs};
use crate::source::{DocumentSource, WatchConfig, Watcher};
#[cfg(feature = "aws")]
use crate::status::Timestamp;

const EXAMPLES: &str = "\
Examples:
  # The controller, reading its document from S3 (logs: JSON on stderr unless it is a
  # terminal; --log-format text|json to choose).
  tugboat run --source s3://acme-tugboat/prediction-app/prod.yaml

  # One pass, then exit (CI, smoke tests); prints the pass summary as JSON.
  tugboat run --source file://manifests/dev.yaml --once

Exit codes (--once): 0 the pass ran and every action succeeded; 1 otherwise.";

/// Run the controller.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES, after_help = "See --help for examples.")]
pub struct Args {
    /// Where the desired document lives: s3://BUCKET/KEY, ssm:/PARAMETER or file://PATH.
    /// A prefix (s3://BUCKET/PREFIX/ or ssm:/PATH/, ending in `/`) runs every document
    /// under it as its own application.
    #[arg(long, value_name = "URI")]
    pub source: String,

    /// How often the source is read; a change is seen within this time.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub poll: Duration,

    /// A full pass at least this often, even when nothing changed (heals drift).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub resync: Duration,

    /// Run a single pass and exit.
    #[arg(long)]
    pub once: bool,

    /// Region of the source bucket or parameter. Default: the region chain.
    #[arg(long)]
    pub region: Option<String>,

    /// Address of the controller's HTTP endpoint (/healthz, /readyz, /metrics, /status).
    /// Not served with --once.
    #[arg(long, env = "TUGBOAT_HTTP_ADDR", default_value = "127.0.0.1:9090")]
    pub http_addr: std::net::SocketAddr,

    /// Log filter, as in RUST_LOG (e.g. `info`, `tugboat=debug`).
    #[arg(long, env = "TUGBOAT_LOG", default_value = "info")]
    pub log: String,

    /// Log lines as `text` (for people) or `json` (one object per line, with the pass,
    /// application, workload and rollout of every line of a pass). Default: text on a
    /// terminal, JSON otherwise.
    #[arg(long, env = "TUGBOAT_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    #[command(flatten)]
    pub election: ElectionArgs,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// Text when stderr is a terminal, JSON otherwise (a container's log driver).
    pub fn for_stderr() -> Self {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            LogFormat::Text
        } else {
            LogFormat::Json
        }
    }
}

/// The controller's log subscriber writing to `writer`: the binary's (stderr) and the
/// tests' (a buffer) are the same. JSON lines carry every span of the line (`spans`:
/// the pass's `pass`, `app`, `revision`; an action's `workload`, `rollout`, `action`).
pub fn log_subscriber<W>(
    format: LogFormat,
    filter: &str,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Json => Box::new(
            builder
                .json()
                .with_current_span(true)
                .with_span_list(true)
                .finish(),
        ),
        LogFormat::Text => {
            use std::io::IsTerminal;
            Box::new(builder.with_ansi(std::io::stderr().is_terminal()).finish())
        }
    }
}

/// Leader election between replicas (client-go's lease durations).
#[derive(Debug, Clone, clap::Args)]
pub struct ElectionArgs {
    /// Run as one of several replicas: only the holder of the lease acts; the others
    /// wait and take over when it stops renewing.
    #[arg(long, env = "TUGBOAT_LEADER_ELECTION")]
    pub leader_election: bool,

    /// Where the lease lives: s3://BUCKET/KEY (file://PATH for replicas on one machine).
    /// Default beside an S3 source: `<source key>.lease`.
    #[arg(long, value_name = "URI", env = "TUGBOAT_LEASE")]
    pub lease: Option<String>,

    /// How long followers wait, after the lease last changed, before taking it over.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub lease_duration: Duration,

    /// How long the leader keeps acting without a successful renewal (shorter than the
    /// lease duration).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub renew_deadline: Duration,

    /// How often every replica reads the lease and the leader renews it.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub retry_period: Duration,

    /// This replica's name in the lease. Default: `<hostname>-<pid>-<random>`.
    #[arg(long, env = "TUGBOAT_HOLDER_ID")]
    pub holder_id: Option<String>,
}

impl ElectionArgs {
    /// The lease location: `--lease`, else `<key>.lease` beside an S3 source.
    pub fn lease_uri(&self, source: &str) -> anyhow::Result<String> {
        if let Some(lease) = &self.lease {
            return Ok(lease.clone());
        }
        match source.strip_prefix("s3://") {
            Some(rest) => Ok(format!(
                "s3://{}{}",
                rest.trim_end_matches('/'),
                if rest.ends_with('/') {
                    "/.tugboat.lease"
                } else {
                    ".lease"
                }
            )),
            None => anyhow::bail!(
                "--leader-election needs --lease s3://BUCKET/KEY when the source ({source}) is not on S3"
            ),
        }
    }

    /// The elector, when `--leader-election` is on.
    pub fn elector(
        &self,
        source: &str,
        s3: Option<crate::aws::S3Client>,
    ) -> anyhow::Result<Option<crate::runtime::elector::Elector>> {
        use crate::runtime::elector::{ElectionConfig, Elector, LeaseStore};
        if !self.leader_election {
            return Ok(None);
        }
        let uri = self.lease_uri(source)?;
        let store = LeaseStore::open(&uri, s3)?;
        let config = ElectionConfig {
            identity: self
                .holder_id
                .clone()
                .unwrap_or_else(ElectionConfig::default_identity),
            durations: crate::lease::Durations {
                lease: self.lease_duration,
                renew_deadline: self.renew_deadline,
                retry_period: self.retry_period,
            },
        };
        tracing::info!(lease = %uri, identity = %config.identity, "leader election on");
        Ok(Some(Elector::new(store, config)?))
    }
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging(&args.log, args.log_format);
    if let Some(set) = crate::source::DocumentSet::parse(&args.source) {
        return run_fleet(args, set).await;
    }
    let source = DocumentSource::open(&args.source, args.region.as_deref())
        .await
        .with_context(|| format!("opening the document source {}", args.source))?;
    let mut watcher = Watcher::new(
        source,
        WatchConfig {
            poll: args.poll,
            resync: args.resync,
        },
    );
    let first = first_document(&mut watcher, args.once).await?;
    // The one match on the platform: everything after it is the same runtime.
    match &first.app.spec.platform {
        PlatformSpec::Aws(aws) => {
            let region = aws.region.clone();
            run_aws(args, watcher, first, &region).await
        }
        // The local platform's processes and router live in `tugboat up`; `run` on a
        // local document is `up --no-ui` on its file.
        PlatformSpec::Local(_) => {
            let Some(path) = args.source.strip_prefix("file://") else {
                anyhow::bail!(
                    "the document at {} runs on the local platform, which reads its document \
                     from a file: `tugboat up -f FILE` (or `tugboat run --source file://FILE`)",
                    args.source
                );
            };
            if args.once {
                anyhow::bail!(
                    "--once is not available on the local platform: its slots are child \
                     processes that end with the controller; use `tugboat up -f {path}`"
                );
            }
            super::up::run(super::up::Args {
                file: path.into(),
                no_ui: true,
                bin_dir: None,
                http_addr: args.http_addr,
                poll: args.poll,
                resync: args.resync,
                grace: Duration::from_secs(5),
                log: args.log,
            })
            .await
        }
    }
}

/// A `platform: aws` document in a build without AWS: refused before anything runs.
#[cfg(not(feature = "aws"))]
async fn run_aws(args: Args, _: Watcher, _: DesiredDocument, _: &str) -> anyhow::Result<ExitCode> {
    anyhow::bail!(
        "the document at {} runs on AWS (spec.platform.aws), and {}",
        args.source,
        crate::aws::NOT_BUILT
    )
}

/// The controller of a `platform: aws` document, until SIGTERM or ctrl-c.
#[cfg(feature = "aws")]
async fn run_aws(
    args: Args,
    watcher: Watcher,
    first: DesiredDocument,
    region: &str,
) -> anyhow::Result<ExitCode> {
    let config = crate::aws::sdk_config(Some(region)).await;
    let election = if args.once {
        None
    } else {
        args.election
            .elector(&args.source, Some(crate::aws::s3(&config)))?
    };
    let reconciler = aws_reconciler(&config, Budgets::process_wide());
    if args.once {
        return once(reconciler, &first).await;
    }
    let listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .with_context(|| format!("binding the HTTP endpoint on {}", args.http_addr))?;
    tracing::info!(http_addr = %listener.local_addr()?, "serving /healthz, /readyz, /metrics and /status");
    runtime::serve(
        ServeConfig {
            reconciler,
            watcher,
            first,
            http: Some(listener),
            election,
            loop_config: LoopConfig {
                resync: args.resync,
                ..LoopConfig::default()
            },
        },
        runtime::shutdown_signal(),
    )
    .await;
    Ok(ExitCode::SUCCESS)
}

/// The reconciler of one AWS application: clients from `config`, overrides and models
/// from SSM and S3, ALB metrics from CloudWatch, secrets from SSM, and every call drawn
/// from `budgets`.
#[cfg(feature = "aws")]
fn aws_reconciler(
    config: &aws_config::SdkConfig,
    budgets: std::sync::Arc<Budgets>,
) -> Reconciler<AwsPlatform> {
    let clients = AwsClients::from_sdk_config(config);
    let s3 = clients.s3.clone();
    let inputs = SideInputs::aws(&clients, budgets.clone());
    let analysis = crate::analysis::Runner::new(crate::analysis::Providers::aws(
        clients.ssm.clone(),
        crate::aws::cloudwatch(config),
    ));
    let notifier = crate::runtime::notify::Notifier::spawn(
        std::sync::Arc::new(crate::analysis::SsmSecrets::new(clients.ssm.clone())),
        Default::default(),
    );
    Reconciler::with_inputs(AwsPlatform::new(clients, budgets), inputs, Some(s3))
        .with_analysis(analysis)
        .with_notifier(notifier)
}

/// A prefix source in a build without AWS (prefixes are S3 or SSM).
#[cfg(not(feature = "aws"))]
async fn run_fleet(args: Args, _: crate::source::DocumentSet) -> anyhow::Result<ExitCode> {
    anyhow::bail!("{}: {}", args.source, crate::aws::NOT_BUILT)
}

/// A prefix source: every document under it is its own application, with one set of
/// token buckets for the account ([`crate::runtime::fleet`]).
#[cfg(feature = "aws")]
async fn run_fleet(args: Args, set: crate::source::DocumentSet) -> anyhow::Result<ExitCode> {
    use crate::runtime::fleet::{self, Fleet, FleetConfig, MakeReconciler};
    if args.once {
        anyhow::bail!(
            "--once runs one document; {} is a prefix: name one document under it",
            args.source
        );
    }
    let sdk = crate::aws::sdk_config(args.region.as_deref()).await;
    let reading = sdk.clone();
    let make: MakeReconciler<AwsPlatform> = std::sync::Arc::new(move |doc, budgets| {
        let PlatformSpec::Aws(aws) = &doc.app.spec.platform else {
            return Err("this document runs on the local platform: use `tugboat up -f FILE`; a prefix source runs AWS applications only".to_string());
        };
        let config = sdk
            .to_builder()
            .region(aws_config::Region::new(aws.region.clone()))
            .build();
        Ok(aws_reconciler(&config, budgets))
    });
    let config = FleetConfig {
        set,
        sdk: reading.clone(),
        watch: WatchConfig {
            poll: args.poll,
            resync: args.resync,
        },
        loop_config: LoopConfig {
            resync: args.resync,
            ..LoopConfig::default()
        },
        budgets: Budgets::process_wide(),
        make,
    };
    let election = args
        .election
        .elector(&args.source, Some(crate::aws::s3(&reading)))?;
    let fleet_report = Fleet::default();
    let listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .with_context(|| format!("binding the HTTP endpoint on {}", args.http_addr))?;
    tracing::info!(http_addr = %listener.local_addr()?, source = %args.source, "serving /healthz, /readyz, /metrics and /status for every application under the prefix");
    let router = fleet::app(
        fleet_report.clone(),
        election.as_ref().map(|e| e.subscribe()),
    );
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    match election {
        None => fleet::serve(config, fleet_report, runtime::shutdown_signal()).await,
        Some(elector) => {
            let (config, report) = (&config, &fleet_report);
            elector
                .run(
                    |term| fleet::serve(config.clone(), report.clone(), term.stopping()),
                    runtime::shutdown_signal(),
                )
                .await
        }
    }
    server.abort();
    Ok(ExitCode::SUCCESS)
}

/// `--once`: one pass, its summary as JSON on stdout.
#[cfg(feature = "aws")]
async fn once<P: Platform>(
    mut reconciler: Reconciler<P>,
    first: &DesiredDocument,
) -> anyhow::Result<ExitCode> {
    let report = reconciler
        .pass(first, Timestamp::now())
        .await
        .context("the pass failed")?;
    let failures: Vec<_> = report
        .execution
        .failures
        .iter()
        .map(|(w, f)| serde_json::json!({"workload": w, "error": error_chain(&f.error)}))
        .collect();
    let summary = serde_json::json!({
        "pass": report.pass,
        "revision": report.revision,
        "actions": report.execution.applied.iter().map(|(a, o)| serde_json::json!({
            "workload": a.action.workload(),
            "action": action_name(&a.action),
            "why": a.why,
            "outcome": o,
        })).collect::<Vec<_>>(),
        "failures": failures,
        "unobserved": report.unobserved,
        "calls": report.calls,
        "statusWritten": report.status_written,
        "statusError": report.status_error,
    });
    super::println(&serde_json::to_string_pretty(&summary)?)?;
    let clean = report.execution.failures.is_empty() && report.unobserved.is_empty();
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn init_logging(filter: &str, format: Option<LogFormat>) {
    let format = format.unwrap_or_else(LogFormat::for_stderr);
    // A second init (tests calling run twice) is harmless; keep the first subscriber.
    let _ =
        tracing::subscriber::set_global_default(log_subscriber(format, filter, std::io::stderr));
}

#[cfg(all(test, not(feature = "aws")))]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn args(source: &str) -> Args {
        Cli::try_parse_from(["tugboat", "--source", source])
            .expect("valid arguments")
            .args
    }

    /// A build without AWS reads an AWS document, then refuses it before anything runs,
    /// saying how to get a build that can; AWS sources are refused where they are opened.
    /// (Through the steps of [`run`] but its logging setup, which is process-wide.)
    #[tokio::test]
    async fn an_aws_document_in_a_build_without_aws_says_how_to_get_one() {
        let prod = format!(
            "file://{}/../manifests/prod.yaml",
            env!("CARGO_MANIFEST_DIR")
        );
        let source = DocumentSource::open(&prod, None).await.expect("a file");
        let mut watcher = Watcher::new(source, WatchConfig::default());
        let first = first_document(&mut watcher, true).await.expect("valid");
        assert!(matches!(first.app.spec.platform, PlatformSpec::Aws(_)));
        let err = run_aws(args(&prod), watcher, first, "ap-south-1")
            .await
            .expect_err("no AWS in this build");
        let message = format!("{err:#}");
        assert!(message.contains("spec.platform.aws"), "{message}");
        assert!(message.contains("`aws` cargo feature"), "{message}");

        for uri in ["s3://bucket/prod.yaml", "ssm:/tugboat/prod"] {
            let err = DocumentSource::open(uri, None)
                .await
                .expect_err("no AWS in this build");
            let message = err.to_string();
            assert!(message.contains(uri), "{message}");
            assert!(message.contains("`aws` cargo feature"), "{message}");
        }
        let prefix = "s3://bucket/apps/";
        let set = crate::source::DocumentSet::parse(prefix).expect("a prefix");
        let message = format!(
            "{:#}",
            run_fleet(args(prefix), set).await.expect_err("no AWS")
        );
        assert!(message.contains(prefix), "{message}");
        assert!(message.contains("`aws` cargo feature"), "{message}");
    }
}
