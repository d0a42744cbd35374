//! SPDY/3 frames and their wire format (draft 3, section 2.2).
//!
//! Control frames: `1 | version(15) | type(16) | flags(8) | length(24) | payload`;
//! data frames: `0 | stream-id(31) | flags(8) | length(24) | payload`.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::headers::{HeaderCompressor, HeaderDecompressor, HeaderError, Headers};

pub const VERSION: u16 = 3;
pub const FLAG_FIN: u8 = 0x01;
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;

const TYPE_SYN_STREAM: u16 = 1;
const TYPE_SYN_REPLY: u16 = 2;
const TYPE_RST_STREAM: u16 = 3;
const TYPE_SETTINGS: u16 = 4;
const TYPE_PING: u16 = 6;
const TYPE_GOAWAY: u16 = 7;
const TYPE_HEADERS: u16 = 8;
const TYPE_WINDOW_UPDATE: u16 = 9;

/// RST_STREAM status codes used here.
pub const RST_PROTOCOL_ERROR: u32 = 1;
pub const RST_INVALID_STREAM: u32 = 2;
pub const RST_REFUSED_STREAM: u32 = 3;
pub const RST_CANCEL: u32 = 5;

/// The largest payload a frame can carry (24-bit length).
pub const MAX_PAYLOAD: usize = (1 << 24) - 1;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("unsupported SPDY version {0}")]
    UnsupportedVersion(u16),
    #[error("invalid {kind} frame: {why}")]
    Invalid {
        kind: &'static str,
        why: &'static str,
    },
    #[error(transparent)]
    Headers(#[from] HeaderError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub flags: u8,
    pub id: u32,
    pub value: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        associated_id: u32,
        priority: u8,
        flags: u8,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings {
        flags: u8,
        entries: Vec<Setting>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        fin: bool,
        data: Bytes,
    },
    /// A control frame of a type this side ignores (e.g. CREDENTIAL), already skipped.
    Unknown {
        kind: u16,
    },
}

/// Reads and writes frames of one connection; owns the two header zlib streams.
#[derive(Default)]
pub struct FrameCodec {
    compressor: HeaderCompressor,
    decompressor: HeaderDecompressor,
}

fn invalid(kind: &'static str, why: &'static str) -> FrameError {
    FrameError::Invalid { kind, why }
}

impl FrameCodec {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one frame off the front of `buf`, or `None` when it holds no whole frame yet.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([0, buf[5], buf[6], buf[7]]) as usize;
        if buf.len() < 8 + len {
            buf.reserve(8 + len - buf.len());
            return Ok(None);
        }
        let head = buf.split_to(8);
        let payload = buf.split_to(len).freeze();
        let flags = head[4];
        if head[0] & 0x80 == 0 {
            let stream_id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            return Ok(Some(Frame::Data {
                stream_id,
                fin: flags & FLAG_FIN != 0,
                data: payload,
            }));
        }
        let version = u16::from_be_bytes([head[0] & 0x7f, head[1]]);
        if version != VERSION {
            return Err(FrameError::UnsupportedVersion(version));
        }
        let kind = u16::from_be_bytes([head[2], head[3]]);
        self.decode_control(kind, flags, payload).map(Some)
    }

    fn decode_control(&mut self, kind: u16, flags: u8, mut p: Bytes) -> Result<Frame, FrameError> {
        let fin = flags & FLAG_FIN != 0;
        let need = |p: &Bytes, n: usize, name: &'static str| {
            if p.len() < n {
                Err(invalid(name, "payload too short"))
            } else {
                Ok(())
            }
        };
        Ok(match kind {
            TYPE_SYN_STREAM => {
                need(&p, 10, "SYN_STREAM")?;
                let stream_id = p.get_u32() & 0x7fff_ffff;
                let associated_id = p.get_u32() & 0x7fff_ffff;
                let priority = p.get_u8() >> 5;
                p.advance(1); // credential slot
                let headers = self.decompressor.decompress(&p)?;
                Frame::SynStream {
                    stream_id,
                    associated_id,
                    priority,
                    flags,
                    headers,
                }
            }
            TYPE_SYN_REPLY | TYPE_HEADERS => {
                need(&p, 4, "SYN_REPLY")?;
                let stream_id = p.get_u32() & 0x7fff_ffff;
                let headers = self.decompressor.decompress(&p)?;
                if kind == TYPE_SYN_REPLY {
                    Frame::SynReply {
                        stream_id,
                        fin,
                        headers,
                    }
                } else {
                    Frame::Headers {
                        stream_id,
                        fin,
                        headers,
                    }
                }
            }
            TYPE_RST_STREAM => {
                need(&p, 8, "RST_STREAM")?;
                Frame::RstStream {
                    stream_id: p.get_u32() & 0x7fff_ffff,
                    status: p.get_u32(),
                }
            }
            TYPE_SETTINGS => {
                need(&p, 4, "SETTINGS")?;
                let count = p.get_u32() as usize;
                if p.len() < count.saturating_mul(8) {
                    return Err(invalid("SETTINGS", "fewer entries than announced"));
                }
                let entries = (0..count)
                    .map(|_| {
                        let flag_id = p.get_u32();
                        Setting {
                            flags: (flag_id >> 24) as u8,
                            id: flag_id & 0x00ff_ffff,
                            value: p.get_u32(),
                        }
                    })
                    .collect();
                Frame::Settings { flags, entries }
            }
            TYPE_PING => {
                need(&p, 4, "PING")?;
                Frame::Ping { id: p.get_u32() }
            }
            TYPE_GOAWAY => {
                need(&p, 8, "GOAWAY")?;
                Frame::GoAway {
                    last_good_stream_id: p.get_u32() & 0x7fff_ffff,
                    status: p.get_u32(),
                }
            }
            TYPE_WINDOW_UPDATE => {
                need(&p, 8, "WINDOW_UPDATE")?;
                Frame::WindowUpdate {
                    stream_id: p.get_u32() & 0x7fff_ffff,
                    delta: p.get_u32() & 0x7fff_ffff,
                }
            }
            kind => Frame::Unknown { kind },
        })
    }

    /// Appends the wire form of `frame` to `out`.
    pub fn encode(&mut self, frame: &Frame, out: &mut BytesMut) -> Result<(), FrameError> {
        match frame {
            Frame::Data {
                stream_id,
                fin,
                data,
            } => {
                if data.len() > MAX_PAYLOAD {
                    return Err(invalid("DATA", "payload over 16 MiB"));
                }
                out.put_u32(stream_id & 0x7fff_ffff);
                put_flags_len(out, if *fin { FLAG_FIN } else { 0 }, data.len());
                out.extend_from_slice(data);
            }
            Frame::SynStream {
                stream_id,
                associated_id,
                priority,
                flags,
                headers,
            } => {
                let block = self.compressor.compress(headers)?;
                control(out, TYPE_SYN_STREAM, *flags, 10 + block.len());
                out.put_u32(*stream_id);
                out.put_u32(*associated_id);
                out.put_u8(priority << 5);
                out.put_u8(0);
                out.extend_from_slice(&block);
            }
            Frame::SynReply {
                stream_id,
                fin,
                headers,
            }
            | Frame::Headers {
                stream_id,
                fin,
                headers,
            } => {
                let kind = match frame {
                    Frame::SynReply { .. } => TYPE_SYN_REPLY,
                    _ => TYPE_HEADERS,
                };
                let block = self.compressor.compress(headers)?;
                control(out, kind, if *fin { FLAG_FIN } else { 0 }, 4 + block.len());
                out.put_u32(*stream_id);
                out.extend_from_slice(&block);
            }
            Frame::RstStream { stream_id, status } => {
                control(out, TYPE_RST_STREAM, 0, 8);
                out.put_u32(*stream_id);
                out.put_u32(*status);
            }
            Frame::Settings { flags, entries } => {
                control(out, TYPE_SETTINGS, *flags, 4 + entries.len() * 8);
                out.put_u32(entries.len() as u32);
                for e in entries {
                    out.put_u32((u32::from(e.flags) << 24) | (e.id & 0x00ff_ffff));
                    out.put_u32(e.value);
                }
            }
            Frame::Ping { id } => {
                control(out, TYPE_PING, 0, 4);
                out.put_u32(*id);
            }
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => {
                control(out, TYPE_GOAWAY, 0, 8);
                out.put_u32(*last_good_stream_id);
                out.put_u32(*status);
            }
            Frame::WindowUpdate { stream_id, delta } => {
                control(out, TYPE_WINDOW_UPDATE, 0, 8);
                out.put_u32(*stream_id);
                out.put_u32(*delta);
            }
            Frame::Unknown { .. } => return Err(invalid("unknown", "cannot be sent")),
        }
        Ok(())
    }
}

fn control(out: &mut BytesMut, kind: u16, flags: u8, len: usize) {
    out.put_u16(0x8000 | VERSION);
    out.put_u16(kind);
    put_flags_len(out, flags, len);
}

fn put_flags_len(out: &mut BytesMut, flags: u8, len: usize) {
    out.put_u32((u32::from(flags) << 24) | (len as u32 & 0x00ff_ffff));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    fn encode(frame: &Frame) -> Vec<u8> {
        let mut out = BytesMut::new();
        FrameCodec::new().encode(frame, &mut out).expect("encode");
        out.to_vec()
    }

    fn decode_all(bytes: &[u8]) -> Vec<Frame> {
        let mut codec = FrameCodec::new();
        let mut buf = BytesMut::from(bytes);
        let mut frames = Vec::new();
        while let Some(f) = codec.decode(&mut buf).expect("decode") {
            frames.push(f);
        }
        assert!(buf.is_empty(), "left over: {buf:?}");
        frames
    }

    #[test]
    fn fixed_size_frames_encode_to_golden_bytes() {
        let cases = [
            (Frame::Ping { id: 1 }, "800300060000000400000001"),
            (
                Frame::Data {
                    stream_id: 5,
                    fin: true,
                    data: Bytes::from_static(b"hi"),
                },
                "00000005010000026869",
            ),
            (
                Frame::RstStream {
                    stream_id: 3,
                    status: RST_CANCEL,
                },
                "80030003000000080000000300000005",
            ),
            (
                Frame::GoAway {
                    last_good_stream_id: 7,
                    status: 0,
                },
                "80030007000000080000000700000000",
            ),
            (
                Frame::WindowUpdate {
                    stream_id: 1,
                    delta: 65536,
                },
                "80030009000000080000000100010000",
            ),
            (
                Frame::Settings {
                    flags: 0,
                    entries: vec![Setting {
                        flags: 1,
                        id: 7,
                        value: 65536,
                    }],
                },
                "800300040000000c000000010100000700010000",
            ),
        ];
        for (frame, golden) in cases {
            assert_eq!(encode(&frame), hex(golden), "{frame:?}");
            assert_eq!(decode_all(&hex(golden)), [frame]);
        }
    }

    #[test]
    fn syn_streams_from_another_zlib_decode_in_order() {
        // Two SYN_STREAMs as a client sends them, compressed by a different zlib
        // implementation with the SPDY dictionary and a sync flush after each block.
        let wire = [
            "80030001000000280000000100000000000078f9e3c6a7c202a62346703a2b294a4dcc851625aca9a08006000000ffff",
            "80030001000000280000000300000000000002651c0c2960624ec90797d1ec15ba40e71525820b52862400000000ffff",
        ]
        .concat();
        let frames = decode_all(&hex(&wire));
        let Frame::SynStream {
            stream_id: 1,
            headers,
            ..
        } = &frames[0]
        else {
            panic!("{frames:?}")
        };
        assert_eq!(headers.get("streamType"), Some("error"));
        let Frame::SynStream {
            stream_id: 3,
            headers,
            ..
        } = &frames[1]
        else {
            panic!("{frames:?}")
        };
        assert_eq!(headers.get("streamtype"), Some("stdout"));
        assert_eq!(headers.get("x-extra"), Some("a"));
    }

    #[test]
    fn header_frames_round_trip_and_partial_input_waits() {
        let mut headers = Headers::new();
        headers.insert("streamType", "stdin");
        let frame = Frame::SynStream {
            stream_id: 1,
            associated_id: 0,
            priority: 0,
            flags: 0,
            headers,
        };
        let reply = Frame::SynReply {
            stream_id: 1,
            fin: false,
            headers: Headers::new(),
        };
        let mut tx = FrameCodec::new();
        let mut wire = BytesMut::new();
        tx.encode(&frame, &mut wire).expect("encode");
        tx.encode(&reply, &mut wire).expect("encode");
        let mut rx = FrameCodec::new();
        let mut partial = BytesMut::from(&wire[..wire.len() - 1]);
        assert_eq!(rx.decode(&mut partial).expect("first"), Some(frame));
        assert_eq!(rx.decode(&mut partial).expect("incomplete"), None);
        partial.extend_from_slice(&wire[wire.len() - 1..]);
        assert_eq!(rx.decode(&mut partial).expect("second"), Some(reply));
    }

    #[test]
    fn bad_versions_and_short_payloads_are_errors() {
        let mut codec = FrameCodec::new();
        let mut v2 = BytesMut::from(&hex("800200060000000400000001")[..]);
        assert!(matches!(
            codec.decode(&mut v2),
            Err(FrameError::UnsupportedVersion(2))
        ));
        let mut short = BytesMut::from(&hex("8003000600000002abcd")[..]);
        assert!(codec.decode(&mut short).is_err());
    }
}
