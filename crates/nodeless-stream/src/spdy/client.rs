//! A minimal SPDY client, driven step by step: tests (and debugging tools) use it to talk
//! to the server the way client-go does, without another implementation to trust.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::frame::{Frame, FrameCodec, FrameError};
use super::headers::Headers;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Frame(#[from] FrameError),
}

pub struct SpdyClient<IO> {
    io: IO,
    codec: FrameCodec,
    buf: BytesMut,
    next_id: u32,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> SpdyClient<IO> {
    pub fn new(io: IO) -> Self {
        SpdyClient {
            io,
            codec: FrameCodec::new(),
            buf: BytesMut::new(),
            next_id: 1,
        }
    }

    /// Opens a stream with these headers (as client-go's CreateStream); returns its id.
    pub async fn open(&mut self, headers: &[(&str, &str)]) -> Result<u32, ClientError> {
        let mut h = Headers::new();
        for (name, value) in headers {
            h.insert(name, value);
        }
        let id = self.next_id;
        self.next_id += 2;
        self.send(Frame::SynStream {
            stream_id: id,
            associated_id: 0,
            priority: 0,
            flags: 0,
            headers: h,
        })
        .await?;
        Ok(id)
    }

    pub async fn data(
        &mut self,
        stream_id: u32,
        data: &[u8],
        fin: bool,
    ) -> Result<(), ClientError> {
        let data = Bytes::copy_from_slice(data);
        self.send(Frame::Data {
            stream_id,
            fin,
            data,
        })
        .await
    }

    pub async fn send(&mut self, frame: Frame) -> Result<(), ClientError> {
        let mut out = BytesMut::new();
        self.codec.encode(&frame, &mut out)?;
        self.io.write_all(&out).await?;
        self.io.flush().await?;
        Ok(())
    }

    /// The next frame from the server, or `None` at end of connection.
    pub async fn read_frame(&mut self) -> Result<Option<Frame>, ClientError> {
        loop {
            if let Some(frame) = self.codec.decode(&mut self.buf)? {
                return Ok(Some(frame));
            }
            if self.io.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }
}
