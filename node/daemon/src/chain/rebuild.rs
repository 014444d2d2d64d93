//! The reorg rebuild (durability rule 8). The block under the cursor is not the chain's any
//! more (a reorg deeper than the confirmations): events the node applied may no longer exist,
//! and the idempotent folding of absolute values cannot take a vanished deposit back. So the
//! watcher applies the events of the last [`REORG_RESCAN_BLOCKS`] again (channels opened on the
//! new branch), then takes every live channel's on-chain half from the contract itself as of
//! the confirmed head, merges it with the off-chain half the table holds
//! ([`farthing_core::merge_rebuilt`]), and moves the cursor there: nothing is counted twice,
//! nothing that vanished stays counted, no proof is lost.

use std::collections::BTreeMap;

use alloy::providers::DynProvider;
use farthing_chain::events::EventSource;
use farthing_core::{ChainState, ChangeKind, Channel, ChannelId, merge_rebuilt};
use farthing_store::{Cursor, Write};
use futures::StreamExt as _;

use crate::chain::watcher::{ChannelChange, Progress, SyncError, Watcher};

/// How far below the cursor a rebuild looks for events again (channels opened on the new
/// branch); deeper reorgs still get every known channel's state from the contract.
const REORG_RESCAN_BLOCKS: u64 = 256;

/// Channels read back from the contract at once.
const READS_IN_FLIGHT: usize = 16;

impl Watcher {
    /// Rebuild the table's on-chain halves at the `confirmed` head (see the module docs).
    pub(crate) async fn rebuild_after_reorg(
        &self,
        source: &EventSource<&DynProvider>,
        cursor: Cursor,
        confirmed: u64,
        head: u64,
    ) -> Result<Progress, SyncError> {
        tracing::warn!(
            block = cursor.block,
            confirmed,
            "a block the node applied was reorganised away: rebuilding its channels from the contract"
        );
        let (block_hash, block_time) = self.block(confirmed).await?;
        let from = cursor
            .block
            .saturating_sub(REORG_RESCAN_BLOCKS)
            .max(self.chain.deployment.deployment_block);
        let events = source
            .events(from, confirmed)
            .await
            .map_err(|e| self.chain_error(&e))?;
        let known = self.table.lock().snapshot();
        let mut rebuilt = known.clone();
        for observed in &events {
            self.fold(&mut rebuilt, &|_| None, observed);
        }
        // A settled channel cannot change any more: only the others are read back.
        let live: Vec<ChannelId> = rebuilt
            .values()
            .filter(|c| c.on_chain.state != ChainState::Settled)
            .map(|c| c.id)
            .collect();
        let read: Vec<_> = futures::stream::iter(live)
            .map(|id| async move { (id, source.channel_at(id, confirmed).await) })
            .buffer_unordered(READS_IN_FLIGHT)
            .collect()
            .await;
        let mut authoritative = BTreeMap::new();
        for (id, found) in read {
            match found.map_err(|e| self.chain_error(&e))? {
                // The same id, other parties: this is not the chain the node followed (a devnet
                // restarted with the contracts at the same addresses, say). Nothing changes.
                Some(found)
                    if known
                        .get(&id)
                        .is_some_and(|c| !c.participants_match(found.a, found.b, found.token)) =>
                {
                    return Err(SyncError::Chain(format!(
                        "channel {id} on this chain joins {} and {} (token {}), not the parties the node recorded: this is not the chain the node followed; nothing was changed (point the node at its chain, or start it on a new data dir)",
                        found.a, found.b, found.token
                    )));
                }
                Some(found) => {
                    authoritative.insert(id, found.on_chain);
                }
                None => tracing::error!(
                    channel = id,
                    "the channel no longer exists on-chain (its open was in a reorganised block); its record is kept as it was"
                ),
            }
        }
        let mut changes = Vec::new();
        let durable = {
            let mut table = self.table.lock();
            let mut writes: Vec<Channel> = Vec::new();
            for (id, channel) in rebuilt {
                // Payments may have moved the off-chain half meanwhile: the table's is kept.
                let current = table.channel(id);
                let merged = merge_rebuilt(channel, current, authoritative.remove(&id), block_time);
                if current != Some(&merged) {
                    changes.push(ChannelChange {
                        kind: ChangeKind::Rebuilt,
                        channel: merged.clone(),
                    });
                    writes.push(merged);
                }
            }
            let cursor = Write::Cursor(Cursor {
                block: confirmed,
                block_hash: block_hash.0,
            });
            table.commit_all(writes, vec![cursor])
        };
        durable.await?;
        // The reorg may have taken the node's own transactions away with their nonces.
        self.chain.client.resync_nonce().await;
        self.synced(head, confirmed);
        self.announce(changes);
        Ok(Progress {
            synced: confirmed,
            caught_up: true,
        })
    }
}
