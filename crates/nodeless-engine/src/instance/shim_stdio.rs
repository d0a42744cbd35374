//! A container's stdin and terminal, held by the shim so that `attach` can reach them.
//!
//! The engine and the shim meet at files in the container's bundle directory:
//! - `attach.stdin`, a FIFO. Each attach session opens it for writing; its bytes go to the
//!   container's stdin (a pipe of the shim's, or the terminal). A session ends when its writer
//!   closes. With `stdin_once` the container then reads EOF and no later session is taken:
//!   the shim closes the FIFO, so opening it for writing fails.
//! - `attach.resize`, a FIFO of `"<cols> <rows>\n"` lines that size the terminal (the kernel
//!   sends the foreground process SIGWINCH).
//! - `console.sock`, where the runtime hands over the terminal's master side
//!   (`--console-socket`), for a container with `tty`.
//!
//! Output is not here: it goes to the log files as always (a terminal's as stdout), and
//! attach follows them. Each run of the container gets fresh plumbing, as each run is a new
//! container to the runtime: after a restart the stdin is open again.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a container's stdio needs beyond output, as the shim's config says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShimStdio {
    #[serde(default)]
    pub stdin: bool,
    #[serde(default)]
    pub stdin_once: bool,
    #[serde(default)]
    pub tty: bool,
}

pub fn stdin_fifo(bundle: &Path) -> PathBuf {
    bundle.join("attach.stdin")
}

pub fn resize_fifo(bundle: &Path) -> PathBuf {
    bundle.join("attach.resize")
}

/// Where the runtime connects to hand over a terminal. A socket's path is limited to 108
/// bytes, so a deep bundle directory gets one in the temporary directory instead.
fn console_socket(bundle: &Path) -> PathBuf {
    let path = bundle.join("console.sock");
    if path.as_os_str().len() < 100 {
        return path;
    }
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "nodeless-console-{}-{}.sock",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// How often the copying threads look whether their run is over.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// One run's stdin and terminal. Made before the runtime starts, [`RunStdio::started`]
/// once it has, and [`RunStdio::finish`]ed after the container exits.
pub(super) struct RunStdio {
    cfg: ShimStdio,
    bundle: PathBuf,
    /// The container's end of its stdin pipe, until handed to the runtime.
    container_stdin: Option<OwnedFd>,
    /// Our end of it, until the copying thread takes it.
    stdin_writer: Option<OwnedFd>,
    console: Option<(UnixListener, PathBuf)>,
    over: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl RunStdio {
    pub(super) fn prepare(cfg: ShimStdio, bundle: &Path) -> io::Result<RunStdio> {
        let mut run = RunStdio {
            cfg,
            bundle: bundle.to_path_buf(),
            container_stdin: None,
            stdin_writer: None,
            console: None,
            over: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
        };
        if cfg.stdin && !cfg.tty {
            let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
            run.container_stdin = Some(r);
            run.stdin_writer = Some(w);
        }
        if cfg.tty {
            let path = console_socket(bundle);
            let _ = std::fs::remove_file(&path);
            run.console = Some((UnixListener::bind(&path)?, path));
        }
        Ok(run)
    }

    /// The container's stdin for the runtime command: the pipe, or nothing (a terminal's
    /// is the terminal; without `stdin`, /dev/null).
    pub(super) fn take_container_stdin(&mut self) -> Option<OwnedFd> {
        self.container_stdin.take()
    }

    pub(super) fn console_socket(&self) -> Option<&Path> {
        self.console.as_ref().map(|(_, p)| p.as_path())
    }

    /// The runtime has started the container: take the terminal it handed over (its output
    /// goes to `output`, which returns the reader thread's "done" signal) and start copying
    /// attach sessions' input in.
    pub(super) fn started(
        &mut self,
        output: impl FnOnce(OwnedFd) -> std::sync::mpsc::Receiver<()>,
    ) -> Result<Option<std::sync::mpsc::Receiver<()>>, String> {
        let mut master = None;
        if let Some((listener, path)) = self.console.take() {
            let received = receive_terminal(&listener);
            let _ = std::fs::remove_file(&path);
            master = Some(received.map_err(|e| format!("no terminal from the runtime: {e}"))?);
        }
        let mut output_done = None;
        let input = match &master {
            Some(m) => {
                let m = m.try_clone().map_err(|e| e.to_string())?;
                output_done = Some(output(m.try_clone().map_err(|e| e.to_string())?));
                if self.cfg.stdin {
                    Some(m)
                } else {
                    None
                }
            }
            None => self.stdin_writer.take(),
        };
        if let Some(input) = input {
            let fifo = stdin_fifo(&self.bundle);
            make_fifo(&fifo).map_err(|e| format!("cannot make {}: {e}", fifo.display()))?;
            let (over, once) = (self.over.clone(), self.cfg.stdin_once);
            self.threads.push(std::thread::spawn(move || {
                copy_sessions(&fifo, File::from(input), once, &over)
            }));
        }
        if let Some(m) = master {
            let fifo = resize_fifo(&self.bundle);
            make_fifo(&fifo).map_err(|e| format!("cannot make {}: {e}", fifo.display()))?;
            let over = self.over.clone();
            self.threads
                .push(std::thread::spawn(move || apply_sizes(&fifo, m, &over)));
        }
        Ok(output_done)
    }

    /// The container has exited: no more input is taken for this run.
    pub(super) fn finish(self) {
        drop(self)
    }
}

/// Whichever way the run ends (a failed start included), its threads stop with it.
impl Drop for RunStdio {
    fn drop(&mut self) {
        self.over.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Some((_, path)) = self.console.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn make_fifo(path: &Path) -> io::Result<()> {
    let _ = std::fs::remove_file(path);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )?;
    Ok(())
}

/// Receives the terminal's master side that the runtime sent over the console socket; the
/// runtime has returned by now, so its connection is waiting.
fn receive_terminal(listener: &UnixListener) -> io::Result<OwnedFd> {
    use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    use std::mem::MaybeUninit;
    listener.set_nonblocking(true)?;
    let (conn, _) = listener.accept()?;
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut name = [0u8; 4096];
    recvmsg(
        &conn,
        &mut [io::IoSliceMut::new(&mut name)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = message {
            if let Some(fd) = fds.next() {
                return Ok(fd);
            }
        }
    }
    Err(io::Error::other("the runtime sent no file descriptor"))
}

/// What a poll of a FIFO's read end found.
enum Ready {
    Data,
    /// Its last writer closed: a session ended.
    Hangup,
    Timeout,
}

fn wait_readable(fifo: &File) -> io::Result<Ready> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(fifo, PollFlags::IN)];
    let timeout = Timespec::try_from(POLL_INTERVAL).unwrap_or_default();
    match poll(&mut fds, Some(&timeout)) {
        Ok(0) => Ok(Ready::Timeout),
        Ok(_) if fds[0].revents().contains(PollFlags::IN) => Ok(Ready::Data),
        Ok(_) => Ok(Ready::Hangup),
        Err(rustix::io::Errno::INTR) => Ok(Ready::Timeout),
        Err(e) => Err(e.into()),
    }
}

/// Opens a FIFO for reading without waiting for a writer. Until a writer has come and
/// gone, Linux reports no hangup on it, so a poll waits for the first session.
fn open_reader(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_flags(rustix::fs::OFlags::NONBLOCK))
        .open(path)
}

fn libc_flags(flags: rustix::fs::OFlags) -> i32 {
    flags.bits() as i32
}

/// Copies each attach session's bytes into the container until the run is over, or, with
/// `once`, until the first session ends. Dropping `into` then closes the container's stdin.
fn copy_sessions(fifo: &Path, mut into: File, once: bool, over: &AtomicBool) {
    let Ok(mut reader) = open_reader(fifo) else {
        return;
    };
    let mut buf = vec![0u8; 32 * 1024];
    while !over.load(Ordering::SeqCst) {
        match wait_readable(&reader) {
            Ok(Ready::Timeout) => continue,
            Ok(Ready::Data) => match reader.read(&mut buf) {
                Ok(0) => {}
                Ok(n) => {
                    if into.write_all(&buf[..n]).is_err() {
                        break; // the container closed its stdin, or exited
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            },
            Ok(Ready::Hangup) => {
                if once {
                    break;
                }
                // Reopened, the FIFO waits for the next session instead of reporting this
                // hangup again.
                match open_reader(fifo) {
                    Ok(r) => reader = r,
                    Err(_) => break,
                }
            }
            Err(_) => break,
        }
    }
    // Nobody may open it for writing now: the engine tells a late session it is closed.
    let _ = std::fs::remove_file(fifo);
}

/// Applies terminal sizes written to the resize FIFO until the run is over.
fn apply_sizes(fifo: &Path, master: OwnedFd, over: &AtomicBool) {
    // Read and write: a writer of our own keeps the FIFO from ever reporting a hangup.
    let Ok(mut reader) = open_both(fifo) else {
        return;
    };
    let mut pending = Vec::new();
    let mut buf = [0u8; 256];
    while !over.load(Ordering::SeqCst) {
        match wait_readable(&reader) {
            Ok(Ready::Data) => match reader.read(&mut buf) {
                Ok(n) => pending.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            },
            Ok(_) => continue,
            Err(_) => break,
        }
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if let Some((cols, rows)) = parse_size(&line) {
                crate::sandbox::exec::set_size(&master, cols, rows);
            }
        }
    }
    let _ = std::fs::remove_file(fifo);
}

fn open_both(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc_flags(rustix::fs::OFlags::NONBLOCK))
        .open(path)
}

/// `"<cols> <rows>\n"`, as the engine writes it.
pub fn size_line(cols: u16, rows: u16) -> String {
    format!("{cols} {rows}\n")
}

fn parse_size(line: &[u8]) -> Option<(u16, u16)> {
    let text = std::str::from_utf8(line).ok()?;
    let mut parts = text.split_whitespace();
    let cols = parts.next()?.parse().ok()?;
    let rows = parts.next()?.parse().ok()?;
    Some((cols, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_lines_round_trip_and_junk_is_ignored() {
        assert_eq!(parse_size(size_line(120, 40).as_bytes()), Some((120, 40)));
        assert_eq!(parse_size(b"120\n"), None);
        assert_eq!(parse_size(b"wide tall\n"), None);
    }

    #[test]
    fn a_deep_bundle_gets_its_console_socket_elsewhere() {
        let short = Path::new("/tmp/b");
        assert_eq!(console_socket(short), short.join("console.sock"));
        let deep = PathBuf::from(format!("/tmp/{}", "d".repeat(120)));
        let path = console_socket(&deep);
        assert!(path.as_os_str().len() < 108, "{}", path.display());
    }

    /// Sessions come and go; each one's bytes arrive in order; with `once` the first
    /// session's end closes the container's stdin and the FIFO.
    #[test]
    fn sessions_are_copied_in_and_once_closes_after_the_first() {
        for once in [false, true] {
            let dir = tempfile::tempdir().expect("tmp");
            let mut run = RunStdio::prepare(
                ShimStdio {
                    stdin: true,
                    stdin_once: once,
                    tty: false,
                },
                dir.path(),
            )
            .expect("prepare");
            let container = File::from(run.take_container_stdin().expect("a pipe"));
            run.started(|_| unreachable!("no terminal"))
                .expect("started");
            let fifo = stdin_fifo(dir.path());
            write_session(&fifo, b"one\n");
            let reader = std::thread::spawn(move || {
                let mut got = Vec::new();
                let mut container = container;
                let _ = container.read_to_end(&mut got);
                got
            });
            if once {
                let got = reader.join().expect("reader");
                assert_eq!(got, b"one\n", "EOF after the first session");
                std::thread::sleep(Duration::from_millis(50));
                assert!(!fifo.exists(), "a later session finds no FIFO");
                run.finish();
            } else {
                std::thread::sleep(Duration::from_millis(300));
                write_session(&fifo, b"two\n");
                std::thread::sleep(Duration::from_millis(300));
                run.finish(); // drops our end: the container reads EOF
                let got = reader.join().expect("reader");
                assert_eq!(got, b"one\ntwo\n");
            }
        }
    }

    fn write_session(fifo: &Path, bytes: &[u8]) {
        use std::os::unix::fs::OpenOptionsExt;
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        let mut w = loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc_flags(rustix::fs::OFlags::NONBLOCK))
                .open(fifo)
            {
                Ok(w) => break w,
                Err(e) if std::time::Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("open {}: {e}", fifo.display()),
            }
        };
        w.write_all(bytes).expect("write");
    }
}
