//! Wire protocols. Each protocol lives in its own folder with pure codecs; the shard's
//! connection code drives them.

pub mod kafka;
pub mod resp;
