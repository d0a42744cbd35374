//! `nodeless runtime`: the operator CLI for one host's instance engine, in the spirit of
//! crictl. It drives the same engine code path the host agent uses, directly on the state
//! directory (no daemon): instances keep running under their shims between invocations.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use nodeless_engine::image::ImageService;
use nodeless_engine::instance::{
    state, ContainerState, Engine, ExecIo, InstancePhase, InstanceSpec, InstanceStatus,
    LocalEngine, PortMapping, Protocol, PullPolicy, RestartPolicy, RuntimeKind,
};
use nodeless_engine::sandbox::logs::{LogOptions, LogStreamKind};
use tokio::io::AsyncWriteExt;

#[derive(Args, Debug)]
pub struct RuntimeArgs {
    /// Engine state directory (images, instances, logs).
    #[arg(long, env = "NODELESS_ENGINE_ROOT")]
    pub root: Option<PathBuf>,
    #[command(flatten)]
    pub registry: crate::engine_opts::RegistryArgs,
    #[command(subcommand)]
    pub command: RuntimeCommand,
}

#[derive(Subcommand, Debug)]
pub enum RuntimeCommand {
    /// Pull an image.
    Pull { image: String },
    /// List images.
    Images,
    /// Release the warm network pool's spare namespaces and their addresses (before
    /// removing an engine root, or to reclaim addresses); instances are not touched.
    Prune,
    /// Remove an image.
    Rmi { image: String },
    /// Run a container in a new instance.
    Run(Box<RunArgs>),
    /// List instances (running ones; -a for all).
    Ps {
        #[arg(short, long)]
        all: bool,
    },
    /// Print an instance's container output.
    Logs {
        #[arg(short, long)]
        follow: bool,
        #[arg(short, long)]
        timestamps: bool,
        /// The run before the last restart.
        #[arg(short, long)]
        previous: bool,
        name: String,
    },
    /// Run a command in a running instance's container.
    Exec {
        #[arg(short, long)]
        interactive: bool,
        #[arg(short, long)]
        tty: bool,
        name: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Stop an instance: SIGTERM, then SIGKILL after the grace period.
    Stop {
        /// Grace period in seconds.
        #[arg(short = 't', long = "time", default_value_t = 10)]
        time: u64,
        name: String,
    },
    /// Remove an instance (-f stops it first).
    Rm {
        #[arg(short, long)]
        force: bool,
        name: String,
    },
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[arg(long)]
    pub name: Option<String>,
    /// Start and print the instance id instead of streaming output.
    #[arg(short, long)]
    pub detach: bool,
    /// Remove the instance when it exits.
    #[arg(long)]
    pub rm: bool,
    #[arg(long, default_value = "runc")]
    pub runtime: String,
    /// CPU limit in cores, e.g. 0.5.
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Memory limit, e.g. 64m, 1g, 512Mi.
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(short, long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    #[arg(short, long = "publish", value_name = "HOSTPORT:PORT")]
    pub publish: Vec<String>,
    /// Always, OnFailure or Never.
    #[arg(long, default_value = "Never")]
    pub restart: String,
    pub image: String,
    /// Replaces the image's cmd (`busybox echo hi`, or after `--`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

fn default_root() -> PathBuf {
    if rustix::process::geteuid().is_root() {
        PathBuf::from("/var/lib/nodeless/engine")
    } else {
        let base = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("."));
        base.join("nodeless/engine")
    }
}

struct Ctx {
    images: ImageService,
    engine: LocalEngine,
}

fn open(args: &RuntimeArgs) -> anyhow::Result<Ctx> {
    let root = args.root.clone().unwrap_or_else(default_root);
    let host = crate::engine_opts::open_engine(&root, &args.registry, false)?;
    Ok(Ctx {
        images: host.images,
        engine: host.engine,
    })
}

/// The CLI's network: no background filler, which an exit would cut off and leave a
/// half-made spare; `run` tops the pool up itself and waits for it (`refill_pool`).
fn host_network(root: &std::path::Path) -> anyhow::Result<nodeless_engine::network::Network> {
    crate::engine_opts::host_network(root, false)
}

/// Runs `nodeless runtime ...`; returns the process exit code.
pub async fn run(args: RuntimeArgs) -> anyhow::Result<i32> {
    let root = args.root.clone().unwrap_or_else(default_root);
    let ctx = open(&args)?;
    match args.command {
        RuntimeCommand::Pull { image } => {
            let img = ctx
                .images
                .ensure(&image, nodeless_engine::image::PullPolicy::Always, None)
                .await?;
            println!("{} {}", img.reference, img.digest);
            Ok(0)
        }
        RuntimeCommand::Images => {
            let mut out = Table::new(&["IMAGE", "DIGEST", "SIZE"]);
            for img in ctx.images.list()? {
                out.row(vec![
                    img.reference,
                    short_digest(&img.digest),
                    human_size(img.size),
                ]);
            }
            out.print();
            Ok(0)
        }
        RuntimeCommand::Prune => {
            host_network(&root)?.drain_warm_pool().await?;
            Ok(0)
        }
        RuntimeCommand::Rmi { image } => {
            ctx.images.remove(&image)?;
            println!("{image}");
            Ok(0)
        }
        RuntimeCommand::Run(run) => run_instance(&ctx, &root, *run).await,
        RuntimeCommand::Ps { all } => ps(&ctx, all).await,
        RuntimeCommand::Logs {
            follow,
            timestamps,
            previous,
            name,
        } => {
            let st = find(&ctx.engine, &name).await?;
            let opts = LogOptions {
                follow,
                timestamps,
                previous,
                ..Default::default()
            };
            stream_logs(&ctx.engine, &st.id, &st.containers[0].status.name, opts).await?;
            Ok(0)
        }
        RuntimeCommand::Exec {
            interactive,
            tty,
            name,
            command,
        } => exec(&ctx, &name, interactive, tty, command).await,
        RuntimeCommand::Stop { time, name } => {
            let st = find(&ctx.engine, &name).await?;
            ctx.engine.stop(&st.id, Duration::from_secs(time)).await?;
            println!("{name}");
            Ok(0)
        }
        RuntimeCommand::Rm { force, name } => {
            let st = find(&ctx.engine, &name).await?;
            if !force && !st.phase.is_finished() {
                bail!(
                    "instance {name} is {:?}: stop it first or use rm -f",
                    st.phase
                );
            }
            ctx.engine.remove(&st.id).await?;
            println!("{name}");
            Ok(0)
        }
    }
}

async fn find(engine: &LocalEngine, name: &str) -> anyhow::Result<InstanceStatus> {
    engine
        .list()
        .await?
        .into_iter()
        .find(|s| s.name == name || s.id == name)
        .ok_or_else(|| anyhow!("no instance named {name}"))
}

fn spec_from(run: &RunArgs, id: &str, name: &str) -> anyhow::Result<InstanceSpec> {
    let mut spec = InstanceSpec::single(id, name, &run.image);
    spec.runtime = run.runtime.parse::<RuntimeKind>()?;
    spec.restart_policy = run
        .restart
        .parse::<RestartPolicy>()
        .map_err(|e| anyhow!(e))?;
    if let Some(cpus) = run.cpus {
        if !(cpus > 0.0 && cpus < 1e6) {
            bail!("--cpus must be a positive number of cores");
        }
        spec.cpu_millis = (cpus * 1000.0).round() as u64;
    }
    if let Some(mem) = &run.memory {
        spec.memory_bytes = parse_size(mem)?;
    }
    let c = &mut spec.containers[0];
    c.pull_policy = PullPolicy::IfNotPresent;
    for kv in &run.env {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| anyhow!("--env {kv}: expected K=V"))?;
        c.env.push((k.to_string(), v.to_string()));
    }
    if !run.command.is_empty() {
        c.args = Some(run.command.clone());
    }
    for p in &run.publish {
        let (host, ctr) = p
            .split_once(':')
            .ok_or_else(|| anyhow!("--publish {p}: expected HOSTPORT:PORT"))?;
        let (ctr, protocol) = match ctr.split_once('/') {
            None => (ctr, Protocol::Tcp),
            Some((port, "tcp")) => (port, Protocol::Tcp),
            Some((port, "udp")) => (port, Protocol::Udp),
            Some(_) => bail!("--publish {p}: protocol must be tcp or udp"),
        };
        spec.port_mappings.push(PortMapping {
            host_port: host
                .parse()
                .with_context(|| format!("--publish {p}: bad host port"))?,
            container_port: ctr
                .parse()
                .with_context(|| format!("--publish {p}: bad container port"))?,
            protocol,
            host_ip: None,
        });
    }
    Ok(spec)
}

/// `64m`, `1g`, `512Mi`, `1.5G` or plain bytes.
pub fn parse_size(s: &str) -> anyhow::Result<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().with_context(|| format!("bad size {s:?}"))?;
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "ki" | "kib" => 1 << 10,
        "m" | "mb" | "mi" | "mib" => 1 << 20,
        "g" | "gb" | "gi" | "gib" => 1 << 30,
        "t" | "tb" | "ti" | "tib" => 1 << 40,
        _ => bail!("bad size unit in {s:?} (use k, m, g or Ki, Mi, Gi)"),
    };
    Ok((n * mult as f64) as u64)
}

async fn run_instance(ctx: &Ctx, root: &std::path::Path, run: RunArgs) -> anyhow::Result<i32> {
    let id = state::new_id();
    let name = run
        .name
        .clone()
        .unwrap_or_else(|| format!("nl-{}", &id[..8]));
    let taken: HashSet<String> = ctx
        .engine
        .list()
        .await?
        .into_iter()
        .map(|s| s.name)
        .collect();
    if taken.contains(&name) {
        bail!("the name {name} is in use");
    }
    let spec = spec_from(&run, &id, &name)?;
    let container = spec.containers[0].name.clone();
    ctx.engine.create(spec).await?;
    let refill = tokio::spawn(refill_pool(root.to_path_buf()));
    let code = follow(ctx, &id, &container, &run).await;
    match refill.await {
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot refill the warm network pool"),
        Err(e) => tracing::warn!(error = %e, "cannot refill the warm network pool"),
        Ok(Ok(())) => {}
    }
    code
}

/// Replaces the spare network namespace the instance took (or could not take), so that the
/// next `run` finds one ready: while the instance starts and runs, and awaited before we
/// exit, as an exit would leave a half-made spare behind.
async fn refill_pool(root: PathBuf) -> anyhow::Result<()> {
    host_network(&root)?.fill_warm_pool().await?;
    Ok(())
}

/// Prints the id (`-d`), or streams output until the exit (and removes the instance, `--rm`).
async fn follow(ctx: &Ctx, id: &str, container: &str, run: &RunArgs) -> anyhow::Result<i32> {
    if run.detach {
        println!("{id}");
        return Ok(0);
    }
    let t0 = std::time::Instant::now();
    let code = attach(&ctx.engine, id, container).await;
    tracing::debug!(instance = %id, elapsed = ?t0.elapsed(), "container exited");
    if run.rm {
        ctx.engine.remove(id).await?;
        tracing::debug!(instance = %id, elapsed = ?t0.elapsed(), "instance removed");
    }
    code
}

/// Streams the container's output until it exits; Ctrl-C stops the instance.
async fn attach(engine: &LocalEngine, id: &str, container: &str) -> anyhow::Result<i32> {
    let st = wait_started(engine, id).await?;
    if let Some(t) = st.containers[0].status.state.termination() {
        if t.reason == "StartError" {
            eprintln!(
                "error: container {container} could not start: {}",
                t.message.clone().unwrap_or_default()
            );
            return Ok(t.exit_code);
        }
    }
    let opts = LogOptions {
        follow: true,
        ..Default::default()
    };
    tokio::select! {
        r = stream_logs(engine, id, container, opts) => r?,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("stopping {id}");
            engine.stop(id, Duration::from_secs(10)).await?;
        }
    }
    let st = wait_exited(engine, id).await?;
    Ok(match &st.containers[0].status.state {
        ContainerState::Terminated(t) => t.exit_code,
        _ => 0,
    })
}

async fn wait_started(engine: &LocalEngine, id: &str) -> anyhow::Result<InstanceStatus> {
    loop {
        let st = engine.status(id).await?;
        let c = &st.containers[0].status;
        if !matches!(c.state, ContainerState::Waiting { .. })
            || c.restart_count > 0
            || st.phase.is_finished()
        {
            return Ok(st);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn wait_exited(engine: &LocalEngine, id: &str) -> anyhow::Result<InstanceStatus> {
    loop {
        let st = engine.status(id).await?;
        if st.phase.is_finished() || st.containers[0].status.state.termination().is_some() {
            return Ok(st);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn stream_logs(
    engine: &LocalEngine,
    id: &str,
    container: &str,
    opts: LogOptions,
) -> anyhow::Result<()> {
    let timestamps = opts.timestamps;
    let mut stream = engine.logs(id, container, opts).await?;
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    let copy = async {
        while let Some(line) = stream.next().await {
            let text = line.text(timestamps);
            match line.stream {
                LogStreamKind::Stdout => stdout.write_all(&text).await?,
                LogStreamKind::Stderr => stderr.write_all(&text).await?,
            }
        }
        stdout.flush().await?;
        stderr.flush().await
    };
    match copy.await {
        // `logs -f | head` closing the pipe is how a reader says it has seen enough.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

async fn ps(ctx: &Ctx, all: bool) -> anyhow::Result<i32> {
    if all {
        // Listing everything is the moment to also settle what a crash left behind.
        ctx.engine.recover().await?;
    }
    let mut out = Table::new(&["NAME", "IMAGE", "STATUS", "IP", "CREATED"]);
    for st in ctx.engine.list().await? {
        if !all && st.phase.is_finished() {
            continue;
        }
        let image = st
            .containers
            .first()
            .map(|c| c.image.clone())
            .unwrap_or_default();
        let ip = st.ip.map(|ip| ip.to_string()).unwrap_or_else(|| "-".into());
        out.row(vec![
            st.name.clone(),
            image,
            status_text(&st),
            ip,
            ago(st.created_at),
        ]);
    }
    out.print();
    Ok(0)
}

fn status_text(st: &InstanceStatus) -> String {
    let c = st.containers.first().map(|c| &c.status.state);
    match (st.phase, c) {
        (InstancePhase::Creating, _) => "Creating".into(),
        (InstancePhase::Initializing, _) => "Initializing".into(),
        (InstancePhase::Stopping, _) => "Stopping".into(),
        (_, Some(ContainerState::Running { started_at, .. })) => {
            format!("Up {}", since(*started_at))
        }
        (_, Some(ContainerState::Terminated(t))) => {
            format!("Exited ({}) {} ago", t.exit_code, since(t.finished_at))
        }
        (_, Some(ContainerState::Waiting { reason, .. })) => reason.clone(),
        (phase, None) => format!("{phase:?}"),
    }
}

fn since(t: chrono::DateTime<chrono::Utc>) -> String {
    let secs = (chrono::Utc::now() - t).num_seconds().max(0);
    match secs {
        0..=59 => format!("{secs} seconds"),
        60..=3599 => format!("{} minutes", secs / 60),
        3600..=86399 => format!("{} hours", secs / 3600),
        _ => format!("{} days", secs / 86400),
    }
}

fn ago(t: chrono::DateTime<chrono::Utc>) -> String {
    format!("{} ago", since(t))
}

async fn exec(
    ctx: &Ctx,
    name: &str,
    interactive: bool,
    tty: bool,
    command: Vec<String>,
) -> anyhow::Result<i32> {
    let st = find(&ctx.engine, name).await?;
    let container = st.containers[0].status.name.clone();
    let _raw = if tty { RawTerminal::enter() } else { None };
    let resize = if tty { Some(resize_events()) } else { None };
    let io = ExecIo {
        stdin: if interactive {
            Some(Box::new(tokio::io::stdin()))
        } else {
            None
        },
        stdout: Box::new(tokio::io::stdout()),
        stderr: if tty {
            None
        } else {
            Some(Box::new(tokio::io::stderr()))
        },
        tty,
        resize,
    };
    Ok(ctx.engine.exec(&st.id, &container, command, io).await?)
}

/// The terminal's size now and after every SIGWINCH.
fn resize_events() -> tokio::sync::mpsc::Receiver<(u16, u16)> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        let size = || {
            rustix::termios::tcgetwinsize(std::io::stdin())
                .ok()
                .map(|w| (w.ws_col, w.ws_row))
        };
        if let Some(s) = size() {
            let _ = tx.send(s).await;
        }
        let Ok(mut winch) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return;
        };
        while winch.recv().await.is_some() {
            if let Some(s) = size() {
                if tx.send(s).await.is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// Puts the local terminal in raw mode for `exec -t`, restoring it on drop.
struct RawTerminal {
    saved: rustix::termios::Termios,
}

impl RawTerminal {
    fn enter() -> Option<Self> {
        let stdin = std::io::stdin();
        let saved = rustix::termios::tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw).ok()?;
        Some(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}

fn short_digest(d: &str) -> String {
    d.strip_prefix("sha256:")
        .unwrap_or(d)
        .chars()
        .take(12)
        .collect()
}

fn human_size(n: u64) -> String {
    match n {
        0..=1023 => format!("{n}B"),
        1024..=1048575 => format!("{:.1}kB", n as f64 / 1024.0),
        1048576..=1073741823 => format!("{:.1}MB", n as f64 / 1048576.0),
        _ => format!("{:.2}GB", n as f64 / 1073741824.0),
    }
}

/// A left-aligned text table.
struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(header: &[&str]) -> Self {
        Table {
            rows: vec![header.iter().map(|s| s.to_string()).collect()],
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn print(&self) {
        let cols = self.rows[0].len();
        let widths: Vec<usize> = (0..cols)
            .map(|i| {
                self.rows
                    .iter()
                    .map(|r| r.get(i).map_or(0, |c| c.len()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = std::io::stdout().lock();
        for r in &self.rows {
            let line: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i + 1 == cols {
                        c.clone()
                    } else {
                        format!("{c:<w$}", w = widths[i])
                    }
                })
                .collect();
            let _ = writeln!(out, "{}", line.join("   ").trim_end());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_accept_docker_and_kubernetes_units() {
        assert_eq!(parse_size("64m").expect("size"), 64 << 20);
        assert_eq!(parse_size("512Mi").expect("size"), 512 << 20);
        assert_eq!(parse_size("1.5g").expect("size"), 3 << 29);
        assert_eq!(parse_size("4096").expect("size"), 4096);
        assert!(parse_size("12q").is_err());
    }

    #[test]
    fn run_flags_become_an_instance_spec() {
        let run = RunArgs {
            name: Some("web".into()),
            detach: true,
            rm: false,
            runtime: "runsc".into(),
            cpus: Some(0.5),
            memory: Some("64m".into()),
            env: vec!["A=1".into()],
            publish: vec!["8080:80".into()],
            restart: "OnFailure".into(),
            image: "busybox".into(),
            command: vec!["sleep".into(), "1".into()],
        };
        let spec = spec_from(&run, "abc", "web").expect("spec");
        assert_eq!(
            (spec.cpu_millis, spec.memory_bytes, spec.runtime),
            (500, 64 << 20, RuntimeKind::Runsc)
        );
        assert_eq!(
            spec.containers[0].args.as_deref(),
            Some(&["sleep".to_string(), "1".to_string()][..])
        );
        assert_eq!(spec.port_mappings[0].host_port, 8080);
        assert_eq!(spec.restart_policy, RestartPolicy::OnFailure);
    }
}
