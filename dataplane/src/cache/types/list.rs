//! List values. (Placeholder: the type's commands are being built; see `cache/cmd`.)

use super::{put_u32, Reader};

#[derive(Debug, Clone, Default)]
pub struct List {
    len: usize,
}

impl List {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes charged for the contents.
    pub fn cost(&self) -> usize {
        0
    }

    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }

    pub fn dump(&self, out: &mut Vec<u8>) {
        put_u32(out, 0);
    }

    pub fn load(r: &mut Reader) -> Option<List> {
        (r.u32()? == 0).then(List::default)
    }
}
