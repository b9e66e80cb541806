//! What every open stream offers its reader: the next message, or the end.
//! The one read loop (`run::connection`) is written against this, so the
//! feed, a chat answer, echo replies and WebSocket texts are read alike.

use std::future::Future;

use super::error::ClientError;

/// An open stream of messages of one kind.
pub trait MessageStream: Send {
    type Message: Send;

    /// The next message; `Ok(None)` when the server ended the stream.
    fn next_message(
        &mut self,
    ) -> impl Future<Output = Result<Option<Self::Message>, ClientError>> + Send;

    /// Closes politely where the wire has a way (a WebSocket close frame);
    /// otherwise dropping the stream closes it.
    fn close(self) -> impl Future<Output = ()> + Send
    where
        Self: Sized,
    {
        async {}
    }
}
