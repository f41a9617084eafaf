//! Where responses to the host go.

/// A sink for stream items (`0x00 COBS(frame) 0x00`) to the host link.
pub trait LinkOutput {
    /// Free bytes: the core writes nothing that does not fit.
    fn room(&self) -> usize;
    /// Appends one whole stream item (at most `room()` bytes).
    fn write(&mut self, item: &[u8]);
}

/// A [`LinkOutput`] over a caller's buffer.
pub struct SliceOutput<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> SliceOutput<'a> {
    /// An empty output over `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// What was written.
    pub fn written(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

impl LinkOutput for SliceOutput<'_> {
    fn room(&self) -> usize {
        self.buf.len().saturating_sub(self.len)
    }

    fn write(&mut self, item: &[u8]) {
        let end = self.len.saturating_add(item.len());
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(item);
            self.len = end;
        }
    }
}
