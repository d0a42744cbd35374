//! SPDY/3 header blocks: a count of name/value pairs, each length-prefixed, compressed by
//! one zlib stream per direction that is preset with the SPDY dictionary and flushed (not
//! finished) after every block, so a block can only be read after all the ones before it.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::dictionary::DICTIONARY;

/// Decompressed header blocks larger than this are refused (a zlib bomb guard).
const MAX_BLOCK: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("header block compression failed: {0}")]
    Compress(String),
    #[error("header block decompression failed: {0}")]
    Decompress(String),
    #[error("header block is larger than {MAX_BLOCK} bytes")]
    TooLarge,
    #[error("header block is truncated")]
    Truncated,
    #[error("header {0:?} is not valid UTF-8")]
    NotUtf8(String),
}

/// Headers of one stream. Names are kept in lower case, as SPDY/3 requires on the wire;
/// a value holding several values separates them with NUL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    /// Adds `name: value`, joining it with NUL onto an existing value of the same name
    /// (SPDY forbids repeated names).
    pub fn insert(&mut self, name: &str, value: &str) {
        let name = name.to_ascii_lowercase();
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => {
                v.push('\0');
                v.push_str(value);
            }
            None => self.0.push((name, value.to_string())),
        }
    }

    /// The first value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split('\0').next().unwrap_or_default())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&(self.0.len() as u32).to_be_bytes());
        for (name, value) in &self.0 {
            for part in [name, value] {
                out.extend_from_slice(&(part.len() as u32).to_be_bytes());
                out.extend_from_slice(part.as_bytes());
            }
        }
        out
    }

    fn decode(raw: &[u8]) -> Result<Self, HeaderError> {
        let mut cursor = raw;
        let count = take_u32(&mut cursor)?;
        let mut headers = Headers::new();
        for _ in 0..count {
            let name = take_string(&mut cursor)?;
            let value = take_string(&mut cursor)?;
            headers.insert(&name, &value);
        }
        Ok(headers)
    }
}

fn take_u32(cursor: &mut &[u8]) -> Result<u32, HeaderError> {
    let (head, rest) = cursor
        .split_first_chunk::<4>()
        .ok_or(HeaderError::Truncated)?;
    *cursor = rest;
    Ok(u32::from_be_bytes(*head))
}

fn take_string(cursor: &mut &[u8]) -> Result<String, HeaderError> {
    let len = take_u32(cursor)? as usize;
    if cursor.len() < len {
        return Err(HeaderError::Truncated);
    }
    let (bytes, rest) = cursor.split_at(len);
    *cursor = rest;
    String::from_utf8(bytes.to_vec())
        .map_err(|e| HeaderError::NotUtf8(String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// Compresses the header blocks one side sends.
pub struct HeaderCompressor {
    zlib: Compress,
    dictionary_set: bool,
}

impl Default for HeaderCompressor {
    fn default() -> Self {
        Self::new()
    }
}

impl HeaderCompressor {
    pub fn new() -> Self {
        HeaderCompressor {
            zlib: Compress::new(Compression::best(), true),
            dictionary_set: false,
        }
    }

    pub fn compress(&mut self, headers: &Headers) -> Result<Vec<u8>, HeaderError> {
        if !self.dictionary_set {
            self.zlib
                .set_dictionary(&DICTIONARY)
                .map_err(|e| HeaderError::Compress(e.to_string()))?;
            self.dictionary_set = true;
        }
        let input = headers.encode();
        let mut out = Vec::with_capacity(input.len() + 64);
        let mut consumed = 0;
        loop {
            out.reserve(256);
            let before_in = self.zlib.total_in();
            self.zlib
                .compress_vec(&input[consumed..], &mut out, FlushCompress::Sync)
                .map_err(|e| HeaderError::Compress(e.to_string()))?;
            consumed += (self.zlib.total_in() - before_in) as usize;
            // A sync flush is complete once all input is in and zlib left spare room.
            if consumed == input.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

/// Decompresses the header blocks the peer sends.
pub struct HeaderDecompressor {
    zlib: Decompress,
}

impl Default for HeaderDecompressor {
    fn default() -> Self {
        Self::new()
    }
}

impl HeaderDecompressor {
    pub fn new() -> Self {
        HeaderDecompressor {
            zlib: Decompress::new(true),
        }
    }

    pub fn decompress(&mut self, block: &[u8]) -> Result<Headers, HeaderError> {
        let mut out = Vec::with_capacity(block.len() * 4 + 64);
        let mut consumed = 0;
        loop {
            if out.len() == out.capacity() {
                if out.len() >= MAX_BLOCK {
                    return Err(HeaderError::TooLarge);
                }
                out.reserve(out.len().max(256));
            }
            let before_in = self.zlib.total_in();
            let before_out = out.len();
            let result =
                self.zlib
                    .decompress_vec(&block[consumed..], &mut out, FlushDecompress::Sync);
            consumed += (self.zlib.total_in() - before_in) as usize;
            match result {
                Ok(Status::StreamEnd) => break,
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.zlib
                        .set_dictionary(&DICTIONARY)
                        .map_err(|e| HeaderError::Decompress(e.to_string()))?;
                    continue;
                }
                Err(e) => return Err(HeaderError::Decompress(e.to_string())),
            }
            let spare = out.len() < out.capacity();
            if consumed == block.len() && spare {
                break; // all input taken and zlib had room left: the block is complete
            }
            if spare && out.len() == before_out && self.zlib.total_in() == before_in {
                return Err(HeaderError::Decompress("no progress".into()));
            }
        }
        Headers::decode(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        let mut h = Headers::new();
        for (n, v) in pairs {
            h.insert(n, v);
        }
        h
    }

    #[test]
    fn blocks_round_trip_through_one_shared_zlib_stream() {
        let mut tx = HeaderCompressor::new();
        let mut rx = HeaderDecompressor::new();
        let first = headers(&[("streamType", "error"), ("port", "8080")]);
        let second = headers(&[("streamtype", "data"), ("requestid", "0")]);
        let a = tx.compress(&first).expect("compress");
        let b = tx.compress(&second).expect("compress");
        assert_eq!(rx.decompress(&a).expect("first"), first);
        assert_eq!(rx.decompress(&b).expect("second"), second);
        assert_eq!(
            rx.decompress(&tx.compress(&Headers::new()).expect("empty"))
                .expect("d"),
            Headers::new()
        );
    }

    #[test]
    fn the_zlib_header_names_the_spdy_dictionary() {
        let block = HeaderCompressor::new()
            .compress(&headers(&[("a", "b")]))
            .expect("compress");
        assert_eq!(block[1] & 0x20, 0x20, "FDICT flag set");
        assert_eq!(block[2..6], [0xe3, 0xc6, 0xa7, 0xc2]);
    }

    #[test]
    fn names_are_lower_cased_and_repeats_joined_with_nul() {
        let h = headers(&[
            ("X-Stream-Protocol-Version", "v4"),
            ("x-stream-protocol-version", "v3"),
        ]);
        assert_eq!(
            h.iter().collect::<Vec<_>>(),
            [("x-stream-protocol-version", "v4\0v3")]
        );
        assert_eq!(h.get("X-STREAM-protocol-version"), Some("v4"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut rx = HeaderDecompressor::new();
        assert!(rx.decompress(&[0x78, 0xf9, 1, 2, 3, 4, 5, 6, 7]).is_err());
        assert!(Headers::decode(&[0, 0, 0, 5, 0, 0]).is_err());
    }
}
