//! Processes started inside a running container (`runc exec`), with stdin and optional TTY.
//!
//! Without a TTY the runtime hands our pipes to the process as its stdio. With a TTY the
//! runtime creates a terminal inside the container and relays it to a terminal of ours.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use oci_spec::runtime::Spec;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::runtime::RuntimeBinary;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("cannot read the container's config: {0}")]
    Config(String),
    #[error("cannot start {binary} exec: {source}")]
    Spawn {
        binary: String,
        #[source]
        source: std::io::Error,
    },
    #[error("terminal: {0}")]
    Console(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Where the exec'd process's I/O goes.
pub struct ExecStreams {
    pub stdin: Option<Box<dyn AsyncRead + Send + Unpin>>,
    pub stdout: Box<dyn AsyncWrite + Send + Unpin>,
    pub stderr: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    pub tty: bool,
    pub resize: Option<tokio::sync::mpsc::Receiver<(u16, u16)>>,
}

/// The exec'd process: the container's own process settings (user, env, cwd, capabilities)
/// with `args` and the terminal flag replaced.
pub fn exec_process(
    bundle: &Path,
    args: Vec<String>,
    tty: bool,
) -> Result<oci_spec::runtime::Process, ExecError> {
    let spec =
        Spec::load(bundle.join("config.json")).map_err(|e| ExecError::Config(e.to_string()))?;
    let mut process = spec
        .process()
        .clone()
        .ok_or_else(|| ExecError::Config("no process in config.json".into()))?;
    process.set_args(Some(args));
    process.set_terminal(Some(tty));
    Ok(process)
}

/// Runs `args` in container `id`; returns its exit code.
pub async fn exec(
    bin: &RuntimeBinary,
    id: &str,
    bundle: &Path,
    args: Vec<String>,
    io: ExecStreams,
) -> Result<i32, ExecError> {
    let process = exec_process(bundle, args, io.tty)?;
    let nonce: u64 = rand::random();
    let process_path = bundle.join(format!("exec-{nonce:016x}.json"));
    std::fs::write(
        &process_path,
        serde_json::to_vec(&process).map_err(|e| ExecError::Config(e.to_string()))?,
    )?;
    let _cleanup = RemoveOnDrop(vec![process_path.clone()]);
    let mut cmd = bin.command();
    cmd.arg("exec").arg("--process").arg(&process_path);
    if io.tty {
        cmd.arg("--tty").arg(id);
        return exec_tty(bin, cmd, io).await;
    }
    cmd.arg(id);
    exec_pipes(bin, cmd, io).await
}

struct RemoveOnDrop(Vec<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

async fn exec_pipes(
    bin: &RuntimeBinary,
    cmd: std::process::Command,
    io: ExecStreams,
) -> Result<i32, ExecError> {
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.stdin(if io.stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| ExecError::Spawn {
        binary: bin.binary_name(),
        source,
    })?;
    let stdin_task = match (io.stdin, child.stdin.take()) {
        (Some(mut from), Some(mut to)) => Some(tokio::spawn(async move {
            let _ = tokio::io::copy(&mut from, &mut to).await;
            let _ = to.shutdown().await; // EOF for the process
        })),
        _ => None,
    };
    let mut out = child
        .stdout
        .take()
        .ok_or_else(|| ExecError::Console("no stdout pipe".into()))?;
    let mut err = child
        .stderr
        .take()
        .ok_or_else(|| ExecError::Console("no stderr pipe".into()))?;
    let mut stdout = io.stdout;
    match io.stderr {
        Some(mut stderr) => {
            let (a, b) = tokio::join!(
                tokio::io::copy(&mut out, &mut stdout),
                tokio::io::copy(&mut err, &mut stderr)
            );
            a?;
            b?;
            stderr.flush().await?;
        }
        None => {
            // Without a separate stderr sink both go to stdout; read them in turn as they come.
            let mut merged = Vec::new();
            let (a, b) = tokio::join!(
                tokio::io::copy(&mut out, &mut stdout),
                err.read_to_end(&mut merged)
            );
            a?;
            b?;
            stdout.write_all(&merged).await?;
        }
    }
    stdout.flush().await?;
    let status = child.wait().await?;
    if let Some(t) = stdin_task {
        t.abort();
    }
    Ok(status.code().unwrap_or(255))
}

/// With a TTY, runc itself allocates the terminal inside the container and relays it to its
/// own stdio when that is a terminal too. So we give runc the slave end of a pseudo-terminal
/// of ours and talk to the master: runc copies the window size from its stdin on SIGWINCH,
/// and its exit code is the process's. No console socket, no subreaper needed.
async fn exec_tty(
    bin: &RuntimeBinary,
    cmd: std::process::Command,
    io: ExecStreams,
) -> Result<i32, ExecError> {
    use rustix::pty::OpenptFlags;
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .map_err(console)?;
    rustix::pty::grantpt(&master).map_err(console)?;
    rustix::pty::unlockpt(&master).map_err(console)?;
    let name = rustix::pty::ptsname(&master, Vec::new()).map_err(console)?;
    let slave = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(rustix::fs::OFlags::NOCTTY.bits() as i32)
            .open(std::ffi::OsStr::from_bytes(name.as_bytes()))?
    };
    let mut resize = io.resize;
    // The first size must be there before runc starts: it sizes the container's terminal from it.
    if let Some(rx) = resize.as_mut() {
        if let Ok((cols, rows)) = rx.try_recv() {
            set_size(&master, cols, rows);
        }
    }
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave));
    let mut child = cmd.spawn().map_err(|source| ExecError::Spawn {
        binary: bin.binary_name(),
        source,
    })?;
    drop(cmd); // our copies of the slave: the master reads EIO once runc closes its copies
    let runc_pid = child
        .id()
        .and_then(|p| rustix::process::Pid::from_raw(p as i32));
    let mut reader = tokio::fs::File::from_std(std::fs::File::from(master.try_clone()?));
    let writer = tokio::fs::File::from_std(std::fs::File::from(master.try_clone()?));
    let resize_task = resize.map(|mut rx| {
        let master = master.try_clone();
        tokio::spawn(async move {
            let Ok(master) = master else { return };
            while let Some((cols, rows)) = rx.recv().await {
                set_size(&master, cols, rows);
                if let Some(pid) = runc_pid {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::WINCH);
                }
            }
        })
    });
    let stdin_task = io.stdin.map(|mut from| {
        let mut writer = writer;
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut from, &mut writer).await;
        })
    });
    let mut stdout = io.stdout;
    let _ = tokio::io::copy(&mut reader, &mut stdout).await;
    let _ = stdout.flush().await;
    let status = child.wait().await?;
    for t in [stdin_task, resize_task].into_iter().flatten() {
        t.abort();
    }
    Ok(status.code().unwrap_or(255))
}

fn console(e: rustix::io::Errno) -> ExecError {
    ExecError::Console(e.to_string())
}

/// Sizes the terminal whose master side is `master`; the kernel tells its foreground
/// process group with SIGWINCH.
pub(crate) fn set_size(master: impl std::os::fd::AsFd, cols: u16, rows: u16) {
    let ws = rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let _ = rustix::termios::tcsetwinsize(master, ws);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_process_keeps_the_containers_user_and_env_but_replaces_args() {
        let dir = tempfile::tempdir().expect("tmp");
        let spec = crate::sandbox::bundle::build_spec(&crate::sandbox::bundle::BundleSpec {
            rootfs: "/r".into(),
            args: vec!["sleep".into(), "1".into()],
            env: vec!["A=1".into()],
            user: crate::sandbox::user::ResolvedUser {
                uid: 5,
                gid: 6,
                additional_gids: vec![],
            },
            ..Default::default()
        })
        .expect("spec");
        crate::sandbox::bundle::write_bundle(dir.path(), &spec).expect("write");
        let p = exec_process(dir.path(), vec!["sh".into()], true).expect("process");
        assert_eq!(p.args().as_deref(), Some(&["sh".to_string()][..]));
        assert_eq!(p.terminal(), Some(true));
        assert_eq!(p.user().uid(), 5);
        assert_eq!(p.env().as_deref(), Some(&["A=1".to_string()][..]));
    }
}
