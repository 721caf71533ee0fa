//! RESP2/RESP3: request parsing, reply writing, the command table and the error texts.
//!
//! Codecs here are pure functions over bytes. Protocol errors map to their RESP text in
//! exactly one place, [`WireError::message`]; every other error reply is in [`errors`].

pub mod args;
pub mod command;
pub mod errors;
pub mod parse;
pub mod write;

pub use args::Args;

/// A request that cannot be parsed. The connection gets `-ERR Protocol error: ...` and is
/// closed, as Redis does; other connections are not affected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("invalid multibulk length")]
    MultibulkLength,
    #[error("invalid bulk length")]
    BulkLength,
    #[error("expected '$', got '{}'", char::from(*.0))]
    ExpectedDollar(u8),
    #[error("expected CRLF after bulk")]
    MissingCrlf,
    #[error("too big inline request")]
    BigInline,
    #[error("too big mbulk count string")]
    BigCount,
    #[error("too big bulk count string")]
    BigBulkCount,
    #[error("unbalanced quotes in request")]
    UnbalancedQuotes,
    #[error("unauthenticated multibulk length")]
    UnauthenticatedMultibulkLength,
    #[error("unauthenticated bulk length")]
    UnauthenticatedBulkLength,
}

impl WireError {
    /// The error line sent to the client before the connection is closed.
    pub fn message(&self) -> String {
        format!("ERR Protocol error: {self}")
    }
}
