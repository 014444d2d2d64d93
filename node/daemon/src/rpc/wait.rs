//! `farthing_waitChannel`: a long poll, so bounded. An id the chain says this node will never
//! apply is answered at once; a wait lasts at most [`MAX_WAIT`]; at most [`MAX_WAITING`] calls
//! wait at once, and past them a call answers at once with what is still missing.

use std::time::Duration;

use farthing_core::ChannelId;
use farthing_rpc::{ApiError, ChannelView};

use super::RpcHandler;
use crate::net::NotReady;

/// The longest a `farthing_waitChannel` call waits, whatever `timeout_secs` asks.
pub(super) const MAX_WAIT: Duration = Duration::from_secs(120);

/// How many `farthing_waitChannel` calls may wait at once; each holds an HTTP request slot.
pub(super) const MAX_WAITING: usize = 16;

/// What a call waits when it asks for no timeout.
const DEFAULT_WAIT: Duration = Duration::from_secs(60);

impl RpcHandler {
    pub(super) async fn wait_channel_uncounted(
        &self,
        channel_id: ChannelId,
        timeout_secs: Option<u64>,
    ) -> Result<ChannelView, ApiError> {
        // Not applied here and, says the chain, never will be (on no chain, not this node's,
        // or in another token): the caller's mistake, answered without waiting.
        if self.node.channel(channel_id).is_err() && self.node.is_surely_not_ours(channel_id).await
        {
            return Err(ApiError::UnknownChannel { id: channel_id });
        }
        let patience = timeout_secs
            .map_or(DEFAULT_WAIT, Duration::from_secs)
            .min(MAX_WAIT);
        // Past the node's waiting calls, say at once what is missing (or answer the channel
        // if it is ready).
        let permit = std::sync::Arc::clone(&self.waits).try_acquire_owned().ok();
        let patience = if permit.is_some() {
            patience
        } else {
            Duration::ZERO
        };
        let waited = self.node.wait_ready(channel_id, patience).await;
        drop(permit);
        match waited {
            Ok(channel) => Ok(self.view(&channel)),
            Err(NotReady::NotOpen(state)) => Err(ApiError::WrongState {
                id: channel_id,
                state: state.into(),
                call: "waitChannel",
            }),
            // Not a channel of this node at all: the caller's mistake.
            Err(NotReady::NotHere) if !self.node.is_ours_on_chain(channel_id).await => {
                Err(ApiError::UnknownChannel { id: channel_id })
            }
            Err(missing) => Err(self.not_ready(channel_id, missing)),
        }
    }
}
