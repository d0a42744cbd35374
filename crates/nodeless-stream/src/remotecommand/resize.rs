//! Terminal size changes: a stream of JSON objects `{"Width":80,"Height":24}`, back to back.

use serde::Deserialize;

#[derive(Deserialize)]
struct TerminalSize {
    #[serde(rename = "Width", default)]
    width: u16,
    #[serde(rename = "Height", default)]
    height: u16,
}

/// Collects bytes and yields each complete size as (columns, rows).
#[derive(Default)]
pub struct ResizeDecoder {
    buf: Vec<u8>,
}

/// A client that sends more than this without one complete object is cut off.
const MAX_PENDING: usize = 4096;

impl ResizeDecoder {
    /// Feeds bytes; returns the sizes completed by them, or `Err` on malformed input.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<(u16, u16)>, serde_json::Error> {
        self.buf.extend_from_slice(data);
        let mut sizes = Vec::new();
        let mut iter = serde_json::Deserializer::from_slice(&self.buf).into_iter::<TerminalSize>();
        let consumed = loop {
            match iter.next() {
                Some(Ok(size)) => sizes.push((size.width, size.height)),
                Some(Err(e)) if e.is_eof() => break iter.byte_offset(),
                Some(Err(e)) => return Err(e),
                None => break iter.byte_offset(),
            }
        };
        self.buf.drain(..consumed);
        if self.buf.len() > MAX_PENDING {
            self.buf.clear();
        }
        Ok(sizes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_split_across_chunks_are_decoded_once_complete() {
        let mut d = ResizeDecoder::default();
        assert_eq!(
            d.push(br#"{"Width":80,"Height":24}{"Wid"#).expect("ok"),
            [(80, 24)]
        );
        assert_eq!(d.push(br#"th":120,"Height":40}"#).expect("ok"), [(120, 40)]);
        assert!(d.push(b"]").is_err());
    }
}
