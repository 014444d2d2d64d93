//! The chain client's transaction journal, kept in the node's store: a transaction is
//! recorded (synced) before it is broadcast and forgotten once mined, so a node restarted in
//! between finds it and broadcasts it again.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use farthing_chain::{SentTx, TxJournal};
use farthing_store::{PendingTx, Store, StoreError, TxKind, Write};

/// [`TxJournal`] over the node's [`Store`]; records are keyed by nonce.
pub(crate) struct StoreJournal(pub(crate) Arc<dyn Store>);

impl TxJournal for StoreJournal {
    fn record(&self, tx: &SentTx) -> Result<(), String> {
        let submitted_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let record = PendingTx {
            key: tx.nonce,
            channel: None,
            kind: kind_of(tx.what),
            tx_hash: tx.tx_hash.0,
            nonce: tx.nonce,
            submitted_at,
            raw: tx.raw.to_vec(),
        };
        self.0
            .commit(&[Write::PendingTx(record)])
            .map_err(|e: StoreError| e.to_string())
    }

    fn forget(&self, nonce: u64, tx_hash: alloy::primitives::B256) -> Result<(), String> {
        // Only if the record under this nonce is still that transaction (another one may have
        // taken the nonce since).
        let current = self.0.pending_txs().map_err(|e| e.to_string())?;
        if current
            .iter()
            .any(|p| p.key == nonce && p.tx_hash == tx_hash.0)
        {
            self.0
                .commit(&[Write::RemovePendingTx(nonce)])
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// The stored kind of an operation the chain client names.
fn kind_of(what: &str) -> TxKind {
    match what {
        "top-up" | "approve" => TxKind::TopUp,
        "withdraw" => TxKind::Withdraw,
        "cooperative close" => TxKind::CooperativeClose,
        "close" => TxKind::Close,
        "update proof" => TxKind::UpdateProof,
        "settle" => TxKind::Settle,
        "claim" => TxKind::Claim,
        _ => TxKind::Open,
    }
}

/// The operation name of a stored kind (for logs and errors after a restart).
pub(crate) fn name_of(kind: TxKind) -> &'static str {
    match kind {
        TxKind::Open => "open",
        TxKind::TopUp => "top-up",
        TxKind::Withdraw => "withdraw",
        TxKind::CooperativeClose => "cooperative close",
        TxKind::Close => "close",
        TxKind::UpdateProof => "update proof",
        TxKind::Settle => "settle",
        TxKind::Claim => "claim",
    }
}

/// The journaled transaction as the chain client sends it.
pub(crate) fn sent_tx(p: &PendingTx) -> SentTx {
    SentTx {
        tx_hash: p.tx_hash.into(),
        nonce: p.nonce,
        what: name_of(p.kind),
        raw: p.raw.clone().into(),
    }
}
