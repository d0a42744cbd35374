//! Container logs in the CRI format the kubelet writes and `kubectl logs` expects:
//! `2024-01-01T00:00:00.000000000Z stdout F line`, one file per container run
//! (`<restart>.log`, so `--previous` reads the run before), rotated by size into
//! `<restart>.log.1`, `.2`, ... (higher is older).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncBufReadExt;

/// Longer lines are split into partial (`P`) records, as the kubelet does.
pub const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStreamKind {
    Stdout,
    Stderr,
}

impl LogStreamKind {
    fn as_str(self) -> &'static str {
        match self {
            LogStreamKind::Stdout => "stdout",
            LogStreamKind::Stderr => "stderr",
        }
    }
}

/// One parsed log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub time: DateTime<Utc>,
    pub stream: LogStreamKind,
    /// A piece of a longer line; the next record continues it.
    pub partial: bool,
    pub content: Vec<u8>,
}

impl LogLine {
    /// The record as the user sees it: content plus the newline a full line ended with.
    pub fn text(&self, timestamps: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.content.len() + 40);
        if timestamps {
            out.extend_from_slice(
                self.time
                    .to_rfc3339_opts(SecondsFormat::Nanos, true)
                    .as_bytes(),
            );
            out.push(b' ');
        }
        out.extend_from_slice(&self.content);
        if !self.partial {
            out.push(b'\n');
        }
        out
    }
}

/// Formats one record (without the trailing newline of the file format).
pub fn format_record(
    time: DateTime<Utc>,
    stream: LogStreamKind,
    partial: bool,
    content: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 48);
    out.extend_from_slice(time.to_rfc3339_opts(SecondsFormat::Nanos, true).as_bytes());
    out.push(b' ');
    out.extend_from_slice(stream.as_str().as_bytes());
    out.extend_from_slice(if partial { b" P " } else { b" F " });
    out.extend_from_slice(content);
    out.push(b'\n');
    out
}

/// Parses one record; `None` for anything that is not one.
pub fn parse_record(line: &[u8]) -> Option<LogLine> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let mut parts = line.splitn(4, |b| *b == b' ');
    let time = DateTime::parse_from_rfc3339(std::str::from_utf8(parts.next()?).ok()?)
        .ok()?
        .with_timezone(&Utc);
    let stream = match parts.next()? {
        b"stdout" => LogStreamKind::Stdout,
        b"stderr" => LogStreamKind::Stderr,
        _ => return None,
    };
    let partial = match parts.next()? {
        b"P" => true,
        b"F" => false,
        _ => return None,
    };
    Some(LogLine {
        time,
        stream,
        partial,
        content: parts.next().unwrap_or_default().to_vec(),
    })
}

/// The log file of run number `restart` of a container.
pub fn run_log_path(dir: &Path, restart: u32) -> PathBuf {
    dir.join(format!("{restart}.log"))
}

/// Appends records to one run's log file, rotating by size.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    max_files: u32,
}

impl LogWriter {
    pub fn open(path: &Path, max_bytes: u64, max_files: u32) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            size,
            max_bytes: max_bytes.max(1024),
            max_files: max_files.max(1),
        })
    }

    /// Writes `content` (one line without its newline, or a partial piece) as records.
    pub fn write(
        &mut self,
        stream: LogStreamKind,
        partial: bool,
        content: &[u8],
    ) -> std::io::Result<()> {
        let chunks: Vec<&[u8]> = if content.is_empty() {
            vec![content]
        } else {
            content.chunks(MAX_LINE).collect()
        };
        let last = chunks.len() - 1;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let record = format_record(Utc::now(), stream, partial || i < last, chunk);
            if self.size > 0 && self.size + record.len() as u64 > self.max_bytes {
                self.rotate()?;
            }
            self.file.write_all(&record)?;
            self.size += record.len() as u64;
        }
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        // Shift `.k` to `.k+1`, dropping what falls past max_files (the live file counts as one).
        let keep = self.max_files.saturating_sub(1);
        if keep == 0 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let _ = std::fs::remove_file(rotated(&self.path, keep));
        for k in (1..keep).rev() {
            let _ = std::fs::rename(rotated(&self.path, k), rotated(&self.path, k + 1));
        }
        std::fs::rename(&self.path, rotated(&self.path, 1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn rotated(path: &Path, k: u32) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(format!(".{k}"));
    PathBuf::from(s)
}

/// Splits a byte stream into lines for a [`LogWriter`]; used by the shim per pipe.
#[derive(Debug, Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
}

impl LineSplitter {
    /// Feeds bytes; returns complete lines and over-long pieces as `(partial, content)`.
    pub fn push(&mut self, data: &[u8]) -> Vec<(bool, Vec<u8>)> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
            line.pop();
            out.push((false, line));
        }
        while self.buf.len() >= MAX_LINE {
            out.push((true, self.buf.drain(..MAX_LINE).collect()));
        }
        out
    }

    /// What is left at end of stream, written as a full line.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        if self.buf.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.buf))
        }
    }
}

/// The files of one run, oldest first.
pub fn run_files(dir: &Path, restart: u32) -> Vec<PathBuf> {
    let live = run_log_path(dir, restart);
    let mut files: Vec<PathBuf> = (1..1000)
        .map(|k| rotated(&live, k))
        .take_while(|p| p.exists())
        .collect();
    files.reverse();
    files.push(live);
    files
}

/// How to read logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail_lines: Option<usize>,
    pub since: Option<DateTime<Utc>>,
    pub limit_bytes: Option<u64>,
}

/// Reads the records of one run; with `follow`, keeps reading the live file until
/// `finished()` says the run is over and nothing more arrives.
pub async fn read_run(
    dir: PathBuf,
    restart: u32,
    opts: LogOptions,
    finished: impl Fn() -> bool + Send + 'static,
    tx: tokio::sync::mpsc::Sender<LogLine>,
) -> std::io::Result<()> {
    let files = run_files(&dir, restart);
    let mut backlog = Vec::new();
    let (last, earlier) = files
        .split_last()
        .expect("run_files always lists the live file");
    for file in earlier {
        read_whole(file, &mut backlog).await?;
    }
    let live = last.clone();
    let mut offset = read_whole(&live, &mut backlog).await?;
    if let Some(since) = opts.since {
        backlog.retain(|l| l.time >= since);
    }
    if let Some(n) = opts.tail_lines {
        let skip = backlog.len().saturating_sub(n);
        backlog.drain(..skip);
    }
    let mut budget = opts.limit_bytes.unwrap_or(u64::MAX);
    for line in backlog {
        budget = budget.saturating_sub(line.content.len() as u64 + 1);
        if tx.send(line).await.is_err() || budget == 0 {
            return Ok(());
        }
    }
    if !opts.follow {
        return Ok(());
    }
    // Poll quickly while output flows or just stopped, slower when the container is quiet.
    // Quickly at first too: `run` follows until the exit of containers that often live for
    // milliseconds, and each poll is a stat, a read and a status file.
    const FIRST_POLL: Duration = Duration::from_millis(1);
    let mut idle = FIRST_POLL;
    loop {
        let done = finished();
        let mut fresh = Vec::new();
        let len = tokio::fs::metadata(&live)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        if len < offset {
            offset = 0; // rotated underneath us: the live file started over
        }
        offset = read_from(&live, offset, &mut fresh).await?;
        let got = !fresh.is_empty();
        for line in fresh {
            if tx.send(line).await.is_err() {
                return Ok(());
            }
        }
        if done && !got {
            return Ok(());
        }
        if got {
            idle = FIRST_POLL;
        } else {
            tokio::time::sleep(idle).await;
            idle = (idle * 2).min(Duration::from_millis(100));
        }
    }
}

async fn read_whole(path: &Path, out: &mut Vec<LogLine>) -> std::io::Result<u64> {
    read_from(path, 0, out).await
}

/// Reads complete records from `offset`; returns the offset after the last complete one.
async fn read_from(path: &Path, offset: u64, out: &mut Vec<LogLine>) -> std::io::Result<u64> {
    use tokio::io::AsyncSeekExt;
    let mut file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(offset),
        Err(e) => return Err(e),
    };
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    let mut reader = tokio::io::BufReader::new(file);
    let mut pos = offset;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).await?;
        if n == 0 || line.last() != Some(&b'\n') {
            return Ok(pos); // a record still being written is read next time
        }
        pos += n as u64;
        if let Some(rec) = parse_record(&line) {
            out.push(rec);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_in_cri_format() {
        let t = DateTime::parse_from_rfc3339("2024-01-01T00:00:00.5Z")
            .expect("time")
            .with_timezone(&Utc);
        let rec = format_record(t, LogStreamKind::Stdout, false, b"hello world");
        assert_eq!(
            rec,
            b"2024-01-01T00:00:00.500000000Z stdout F hello world\n"
        );
        let parsed = parse_record(&rec).expect("parses");
        assert_eq!(
            (parsed.stream, parsed.partial, parsed.content.as_slice()),
            (LogStreamKind::Stdout, false, &b"hello world"[..])
        );
    }

    #[test]
    fn splitter_emits_lines_and_cuts_overlong_ones_as_partial() {
        let mut s = LineSplitter::default();
        assert_eq!(s.push(b"a\nb"), vec![(false, b"a".to_vec())]);
        assert_eq!(s.push(b"c\n"), vec![(false, b"bc".to_vec())]);
        let long = vec![b'x'; MAX_LINE + 3];
        let out = s.push(&long);
        assert_eq!(out.len(), 1);
        assert!(out[0].0);
        assert_eq!(s.finish(), Some(b"xxx".to_vec()));
    }

    #[test]
    fn writer_rotates_by_size_and_keeps_max_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = run_log_path(dir.path(), 0);
        let mut w = LogWriter::open(&path, 1024, 3).expect("open");
        for i in 0..100 {
            w.write(LogStreamKind::Stderr, false, format!("line {i}").as_bytes())
                .expect("write");
        }
        let files = run_files(dir.path(), 0);
        assert_eq!(files.len(), 3, "{files:?}");
        assert!(files
            .iter()
            .all(|f| std::fs::metadata(f).expect("stat").len() <= 1024));
        let last = std::fs::read(&path).expect("read");
        assert!(String::from_utf8_lossy(&last).contains("stderr F line 99"));
    }

    #[tokio::test]
    async fn reading_a_run_with_tail_returns_the_last_lines_across_rotations() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut w = LogWriter::open(&run_log_path(dir.path(), 1), 512, 5).expect("open");
        for i in 0..40 {
            w.write(LogStreamKind::Stdout, false, format!("n{i}").as_bytes())
                .expect("write");
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel(100);
        let opts = LogOptions {
            tail_lines: Some(3),
            ..Default::default()
        };
        read_run(dir.path().to_path_buf(), 1, opts, || true, tx)
            .await
            .expect("read");
        let mut got = Vec::new();
        while let Some(l) = rx.recv().await {
            got.push(String::from_utf8(l.content).expect("utf8"));
        }
        assert_eq!(got, ["n37", "n38", "n39"]);
    }
}
