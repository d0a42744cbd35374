//! `attach`'s way in: a running container's stdin and terminal size, through the FIFOs its
//! shim keeps in the bundle directory (`shim_stdio`). Output is the container's log, which
//! the caller follows.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::net::unix::pipe;

use super::shim_stdio::{resize_fifo, size_line, stdin_fifo};

/// How long to wait for the shim to take input: it reopens the FIFO between sessions and
/// makes it anew for each run of the container.
const OPEN_WAIT: Duration = Duration::from_secs(2);

/// One attach session's input side, opened by [`super::Engine::attach`].
pub struct Attachment {
    stdin: Option<pipe::Sender>,
    resize: Option<pipe::Sender>,
    /// The container runs on a terminal: its output is one stream.
    pub tty: bool,
}

impl Attachment {
    pub(super) async fn open(bundle: &Path, stdin: bool, tty: bool) -> io::Result<Attachment> {
        let stdin = match stdin {
            true => Some(open_sender(&stdin_fifo(bundle)).await?),
            false => None,
        };
        let resize = match tty {
            true => open_sender(&resize_fifo(bundle)).await.ok(),
            false => None,
        };
        Ok(Attachment { stdin, resize, tty })
    }

    /// One that takes no input, for engines without containers of their own (fakes).
    pub fn without_input(tty: bool) -> Attachment {
        Attachment {
            stdin: None,
            resize: None,
            tty,
        }
    }

    /// Copies `input` into the container and applies `resize` until both end. The end of
    /// the input ends the session: a container created with `stdinOnce` then reads EOF.
    pub async fn run(
        self,
        input: Option<Box<dyn AsyncRead + Send + Unpin>>,
        resize: Option<tokio::sync::mpsc::Receiver<(u16, u16)>>,
    ) {
        let sizes = async {
            if let (Some(mut rx), Some(mut fifo)) = (resize, self.resize) {
                while let Some((cols, rows)) = rx.recv().await {
                    if fifo
                        .write_all(size_line(cols, rows).as_bytes())
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        };
        let copy = async {
            if let (Some(mut from), Some(mut fifo)) = (input, self.stdin) {
                let _ = tokio::io::copy(&mut from, &mut fifo).await;
                // Dropping the sender closes the FIFO: the shim sees the session end.
            }
        };
        tokio::join!(sizes, copy);
    }
}

/// Input asked of a container created without `stdin`.
pub(crate) fn no_stdin(container: &str) -> super::EngineError {
    super::EngineError::Invalid(format!(
        "container {container} was not created with stdin: true, so it takes no input; set \
         stdin: true in its spec, or attach without -i"
    ))
}

async fn open_sender(path: &Path) -> io::Result<pipe::Sender> {
    let deadline = Instant::now() + OPEN_WAIT;
    loop {
        match pipe::OpenOptions::new().open_sender(path) {
            Ok(s) => return Ok(s),
            // ENXIO: no reader (yet, or any more); NotFound: not made (yet, or any more).
            Err(e)
                if (e.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error())
                    || e.kind() == io::ErrorKind::NotFound)
                    && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // Still no reader: report it as the FIFO being gone, which it is for input.
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error()) => {
                return Err(io::Error::new(io::ErrorKind::NotFound, e))
            }
            Err(e) => return Err(e),
        }
    }
}
