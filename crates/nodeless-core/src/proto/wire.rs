//! The protobuf wire format: a reader over one message's bytes, yielding tagged values.
//!
//! Only what Kubernetes messages use: varints (no zigzag: Kubernetes has no `sint` fields),
//! 64- and 32-bit fixed values, and length-delimited values. Every read is bounds-checked, so a
//! truncated or hostile body is an error and never a panic.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    #[error("unexpected end of data")]
    Truncated,
    #[error("varint longer than 10 bytes")]
    VarintTooLong,
    #[error("unsupported wire type {0}")]
    UnsupportedWireType(u8),
    #[error("field number 0 is invalid")]
    ZeroFieldNumber,
}

/// A field's value as it was on the wire; interpreting it is the schema's job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

impl Value<'_> {
    /// The wire type's name, for error messages.
    pub fn wire_name(&self) -> &'static str {
        match self {
            Value::Varint(_) => "varint",
            Value::Fixed64(_) => "fixed64",
            Value::Fixed32(_) => "fixed32",
            Value::Bytes(_) => "length-delimited",
        }
    }
}

/// Reads the fields of one message in order.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// The next field as (field number, value), or `None` at the end of the message.
    pub fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>, WireError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        // Field numbers are at most 2^29-1; anything larger is truncated like a corrupt key.
        let tag = u32::try_from(key >> 3).unwrap_or(u32::MAX);
        if tag == 0 {
            return Err(WireError::ZeroFieldNumber);
        }
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => Value::Fixed64(u64::from_le_bytes(self.array::<8>()?)),
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| WireError::Truncated)?;
                Value::Bytes(self.take(len)?)
            }
            5 => Value::Fixed32(u32::from_le_bytes(self.array::<4>()?)),
            // 3 and 4 are proto2 groups, which Kubernetes never uses.
            other => return Err(WireError::UnsupportedWireType(other as u8)),
        };
        Ok(Some((tag, value)))
    }

    /// One varint, as in a packed repeated field.
    pub fn varint(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for i in 0..10 {
            let (&byte, rest) = self.buf.split_first().ok_or(WireError::Truncated)?;
            self.buf = rest;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WireError::VarintTooLong)
    }

    /// One little-endian fixed-width value, as in a packed repeated `double`.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], WireError> {
        if len > self.buf.len() {
            return Err(WireError::Truncated);
        }
        let (head, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_every_wire_type_are_read_in_order() {
        // 1: varint 300, 2: "hi", 3: fixed64 1, 4: fixed32 2
        let buf = [
            0x08, 0xac, 0x02, 0x12, 2, b'h', b'i', 0x19, 1, 0, 0, 0, 0, 0, 0, 0, 0x25, 2, 0, 0, 0,
        ];
        let mut r = Reader::new(&buf);
        assert_eq!(r.next_field(), Ok(Some((1, Value::Varint(300)))));
        assert_eq!(r.next_field(), Ok(Some((2, Value::Bytes(b"hi")))));
        assert_eq!(r.next_field(), Ok(Some((3, Value::Fixed64(1)))));
        assert_eq!(r.next_field(), Ok(Some((4, Value::Fixed32(2)))));
        assert_eq!(r.next_field(), Ok(None));
    }

    #[test]
    fn negative_int32_arrives_as_ten_byte_varint() {
        let buf = [
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        let mut r = Reader::new(&buf);
        assert_eq!(r.next_field(), Ok(Some((1, Value::Varint(u64::MAX)))));
    }

    #[test]
    fn length_past_the_end_is_truncated() {
        let mut r = Reader::new(&[0x12, 5, b'a']);
        assert_eq!(r.next_field(), Err(WireError::Truncated));
    }

    #[test]
    fn overlong_varint_and_groups_are_rejected() {
        let mut r = Reader::new(&[
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ]);
        assert_eq!(r.next_field(), Err(WireError::VarintTooLong));
        let mut r = Reader::new(&[0x0b]);
        assert_eq!(r.next_field(), Err(WireError::UnsupportedWireType(3)));
        let mut r = Reader::new(&[0x00, 0x00]);
        assert_eq!(r.next_field(), Err(WireError::ZeroFieldNumber));
    }
}
