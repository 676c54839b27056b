//! Gossiped transactions validated against the mempool before the network forwards them.

use std::sync::{Arc, Mutex};

use quarry_chain::clock::unix_now;

use quarry_chain::{ChainParams, ChainReadHandle};
use quarry_mempool::{Mempool, MempoolError};
use quarry_network::{Client, Misbehaviour, NetworkEvent, Validation};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::{lock, tip_context, Store};

/// Validates gossiped transactions against the mempool and reports the verdict, so that only
/// valid ones are forwarded and senders of invalid ones are penalised.
pub(super) async fn validate_transactions(
    mut events: mpsc::Receiver<NetworkEvent>,
    client: Client,
    params: ChainParams,
    reader: ChainReadHandle<Store>,
    mempool: Arc<Mutex<Mempool>>,
) {
    while let Some(event) = events.recv().await {
        let NetworkEvent::Transaction {
            message_id,
            source,
            transaction,
        } = event
        else {
            continue;
        };
        let mempool = Arc::clone(&mempool);
        let reader = reader.clone();
        let params = params.clone();
        let verdict = tokio::task::spawn_blocking(move || {
            let tip = tip_context(&params, &reader.tip());
            let txid = transaction.txid();
            match lock(&mempool).accept(*transaction, reader.store(), &tip, unix_now()) {
                Ok(_) => Validation::Accept,
                Err(error @ (MempoolError::Invalid(_) | MempoolError::Coinbase)) => {
                    warn!(%txid, peer = %source, %error, "invalid gossiped transaction");
                    Validation::Reject(Misbehaviour::InvalidTransaction)
                }
                Err(error) => {
                    debug!(%txid, %error, "gossiped transaction not taken");
                    Validation::Ignore
                }
            }
        })
        .await
        .unwrap_or(Validation::Ignore);
        if client.validate(message_id, source, verdict).is_err() {
            break;
        }
    }
}
