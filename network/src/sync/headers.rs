//! Header exchange: block locators, headers submitted to the chain, and low-work branches
//! held in memory until they carry enough work to be indexed.

use futures::FutureExt;
use libp2p::PeerId;
use quarry_chain::actor::Command as ChainCommand;
use quarry_chain::{
    BlockHash, BlockHeader, ChainError, ChainHandle, ChainReadHandle, ChainReader, HeaderPoint,
    StoreError, TipInfo, Work,
};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::error::NetworkError;
use crate::peers::Misbehaviour;
use crate::protocol::{SyncRequest, SyncResponse, MAX_HEADERS, MAX_LOCATOR_HASHES};
use crate::serve;
use crate::service::Client;

use super::{penalty_for, read_store, Syncer, Task};

/// Headers of a peer's branch held in memory, not indexed, while the branch has less work
/// than [`anti_dos_work`] (Bitcoin Core's headers presync; the headers are kept rather than
/// downloaded twice, within [`MAX_HELD_HEADERS_PER_PEER`]).
#[derive(Debug, Default)]
pub(super) struct HeldHeaders {
    pub(super) headers: Vec<BlockHeader>,
    /// Chain work up to the last held header, as its `bits` claim.
    pub(super) work: Work,
}

/// How far (in blocks of the tip's work) a branch may fall short of the tip and still have
/// its headers indexed (Bitcoin Core's anti-DoS work threshold: a day of Bitcoin's blocks).
/// Headers of a branch with less work are held in memory until it has enough, or dropped.
pub(super) const LOW_WORK_MARGIN_BLOCKS: u64 = 144;

/// Most headers held for one peer while its branch has too little work to index (4 MB).
pub(super) const MAX_HELD_HEADERS_PER_PEER: usize = 50_000;

/// Most headers held for all peers together (16 MB).
pub(super) const MAX_HELD_HEADERS: usize = 200_000;

/// The least chain work a branch must claim for its headers to be indexed (Bitcoin Core's
/// `GetAntiDoSWorkThreshold`): the tip's work less [`LOW_WORK_MARGIN_BLOCKS`] blocks like the
/// tip, and at least the network's minimum chain work. Below it, a branch is only a cost to
/// the node (an attacker's headers off an early block at the easiest target).
pub(super) fn anti_dos_work(tip: &TipInfo, minimum_chain_work: Work) -> Work {
    let margin = tip.header.work().saturating_mul(LOW_WORK_MARGIN_BLOCKS);
    tip.chain_work
        .saturating_sub(margin)
        .max(minimum_chain_work)
}

/// What a headers exchange with a peer produced.
#[derive(Debug)]
pub(super) struct HeadersOutcome {
    /// The last header received, if indexed.
    pub(super) last: Option<HeaderPoint>,
    /// Where to continue when the answer was full: the last header's hash.
    pub(super) next_start: Option<BlockHash>,
    /// The peer's headers still held (see [`HeldHeaders`]).
    pub(super) held: HeldHeaders,
    /// The block the peer's chain is known to hold: the last header, or, when the peer had
    /// nothing after the locator's first hash (the header we fetch toward), that header.
    pub(super) known: Option<HeaderPoint>,
}

#[derive(Debug)]
pub(super) enum HeadersFailure {
    Network(NetworkError),
    Misbehaved(Misbehaviour, String),
    Chain(String),
}

/// One headers exchange: locator, request, connectivity check, submission to the chain, and
/// the list of bodies then wanted.
pub(super) async fn exchange_headers<S>(
    client: Client,
    chain: ChainHandle,
    reader: ChainReadHandle<S>,
    peer: PeerId,
    start: Option<BlockHash>,
    mut held: HeldHeaders,
    minimum_chain_work: Work,
) -> Result<HeadersOutcome, HeadersFailure>
where
    S: ChainReader + Clone + Send + Sync + 'static,
{
    // Held headers continue from the last one.
    let start = held.headers.last().map(BlockHeader::block_hash).or(start);
    let chain_failure = |error: &dyn std::fmt::Display| HeadersFailure::Chain(error.to_string());
    let mut locator = read_store(&reader, serve::locator)
        .await
        .map_err(|error| chain_failure(&error))?;
    if let Some(start) = start {
        locator.insert(0, start);
        locator.truncate(MAX_LOCATOR_HASHES);
    }
    let response = client
        .request(peer, SyncRequest::Headers { locator })
        .await
        .map_err(HeadersFailure::Network)?;
    let SyncResponse::Headers(headers) = response else {
        return Err(HeadersFailure::Misbehaved(
            Misbehaviour::Unsolicited,
            "blocks sent in answer to a headers request".into(),
        ));
    };
    if headers.len() > MAX_HEADERS {
        return Err(HeadersFailure::Misbehaved(
            Misbehaviour::Oversized,
            format!("{} headers", headers.len()),
        ));
    }
    if let Some(broken) = headers
        .windows(2)
        .position(|pair| pair[1].prev_blockhash != pair[0].block_hash())
    {
        return Err(HeadersFailure::Misbehaved(
            Misbehaviour::Unsolicited,
            format!("header {} does not follow the one before it", broken + 1),
        ));
    }
    let received = headers.len();
    let last_hash = headers.last().map(BlockHeader::block_hash);
    let next_start = last_hash.filter(|_| received == MAX_HEADERS);
    let held_last = held.headers.last().map(BlockHeader::block_hash);
    // The peer has nothing after what we hold, or answers off another branch: what is held is
    // dropped, and a branch that still has too little work is not held again before the next
    // poll (a peer repeating itself cannot keep us asking).
    let may_hold =
        held.headers.is_empty() || headers.first().map(|first| first.prev_blockhash) == held_last;
    if !may_hold {
        debug!(%peer, held = held.headers.len(), "low-work headers dropped");
        held = HeldHeaders::default();
    }
    let parent_work = if !held.headers.is_empty() {
        Some(held.work)
    } else if let Some(first) = headers.first() {
        let parent = first.prev_blockhash;
        read_store(&reader, move |store| store.index_entry(&parent))
            .await
            .map_err(|error| chain_failure(&error))?
            .map(|entry| entry.chain_work)
    } else {
        None
    };
    // With an unknown parent the chain refuses the headers below, without penalty.
    if let Some(parent_work) = parent_work {
        let claimed = headers.iter().fold(parent_work, |work, header| {
            work.saturating_add(header.work())
        });
        if claimed < anti_dos_work(&reader.tip(), minimum_chain_work) {
            let more = received == MAX_HEADERS;
            held.headers.extend(headers);
            held.work = claimed;
            if !more || !may_hold || held.headers.len() > MAX_HELD_HEADERS_PER_PEER {
                debug!(%peer, headers = held.headers.len(), more, "a branch with too little work: headers dropped");
                held = HeldHeaders::default();
            }
            return Ok(HeadersOutcome {
                last: None,
                next_start: next_start.filter(|_| !held.headers.is_empty()),
                held,
                known: None,
            });
        }
    }
    let mut headers = headers;
    if !held.headers.is_empty() {
        headers.splice(0..0, std::mem::take(&mut held.headers));
    }
    submit_headers(&chain, &headers).await?;
    read_store(&reader, move |store| {
        let point = |hash: BlockHash| -> Result<Option<HeaderPoint>, StoreError> {
            Ok(store.index_entry(&hash)?.map(|entry| HeaderPoint {
                hash,
                height: entry.height,
                chain_work: entry.chain_work,
            }))
        };
        let last = last_hash.map(point).transpose()?.flatten();
        // An empty answer to a locator led by `start`: the peer's best chain ends there (or
        // at our own tip; a wrong guess is corrected when a block request comes back short).
        let known = match (last, start) {
            (Some(last), _) => Some(last),
            (None, Some(start)) => point(start)?,
            (None, None) => None,
        };
        Ok(HeadersOutcome {
            last,
            next_start,
            held: HeldHeaders::default(),
            known,
        })
    })
    .await
    .map_err(|error| chain_failure(&error))
}

/// Submits headers to the chain actor all at once, then checks every answer.
pub(super) async fn submit_headers(
    chain: &ChainHandle,
    headers: &[BlockHeader],
) -> Result<(), HeadersFailure> {
    let (sender, mut answers) = mpsc::unbounded_channel();
    for (index, header) in headers.iter().enumerate() {
        let sender = sender.clone();
        chain
            .send(ChainCommand::SubmitHeader(
                *header,
                Box::new(move |answer| {
                    let _ = sender.send((index, answer));
                }),
            ))
            .map_err(|error| HeadersFailure::Chain(error.to_string()))?;
    }
    drop(sender);
    let mut first_failure: Option<(usize, ChainError)> = None;
    while let Some((index, answer)) = answers.recv().await {
        if let Err(error) = answer {
            if first_failure
                .as_ref()
                .is_none_or(|(first, _)| index < *first)
            {
                first_failure = Some((index, error));
            }
        }
    }
    match first_failure {
        None => Ok(()),
        Some((index, error)) => match penalty_for(&error) {
            Some(what) => Err(HeadersFailure::Misbehaved(
                what,
                format!("header {index}: {error}"),
            )),
            None if matches!(error, ChainError::InvalidBlock { .. }) => {
                // Not provably the peer's fault (a clock difference); stop here without penalty.
                Err(HeadersFailure::Chain(format!("header {index}: {error}")))
            }
            None => Err(HeadersFailure::Chain(error.to_string())),
        },
    }
}

impl<S> Syncer<S>
where
    S: ChainReader + Clone + Send + Sync + 'static,
{
    pub(super) fn fetch_headers(&mut self, peer: PeerId, start: Option<BlockHash>) {
        let Some(state) = self.peers.get_mut(&peer) else {
            return;
        };
        if state.headers_in_flight {
            // The running exchange may predate what prompted this one: go again after it.
            state.headers_again = true;
            return;
        }
        state.headers_in_flight = true;
        let held = std::mem::take(&mut state.held);
        let start = start.or_else(|| {
            self.best_header
                .filter(|_| self.behind())
                .map(|best| best.hash)
        });
        let exchange = exchange_headers(
            self.client.clone(),
            self.chain.clone(),
            self.reader.clone(),
            peer,
            start,
            held,
            self.minimum_chain_work,
        );
        self.tasks.push(
            async move {
                Task::Headers {
                    peer,
                    outcome: exchange.await,
                }
            }
            .boxed(),
        );
    }

    pub(super) fn headers_done(
        &mut self,
        peer: PeerId,
        outcome: Result<HeadersOutcome, HeadersFailure>,
    ) {
        let again = self.peers.get_mut(&peer).is_some_and(|state| {
            state.headers_in_flight = false;
            std::mem::take(&mut state.headers_again)
        });
        let next = self.take_headers_outcome(peer, outcome);
        // A full answer continues from its last header; that exchange also serves a request
        // made meanwhile.
        if next.is_some() || again {
            self.fetch_headers(peer, next);
        }
    }

    /// Records what a headers exchange produced; returns where to continue if it was full.
    pub(super) fn take_headers_outcome(
        &mut self,
        peer: PeerId,
        outcome: Result<HeadersOutcome, HeadersFailure>,
    ) -> Option<BlockHash> {
        let mut outcome = match outcome {
            Ok(outcome) => outcome,
            Err(HeadersFailure::Misbehaved(what, why)) => {
                warn!(%peer, offence = %what, %why, "bad headers");
                let _ = self.client.penalize(peer, what);
                return None;
            }
            Err(HeadersFailure::Network(error)) => {
                debug!(%peer, %error, "headers request failed");
                return None;
            }
            Err(HeadersFailure::Chain(error)) => {
                debug!(%peer, %error, "headers not taken");
                return None;
            }
        };
        let held_elsewhere: usize = self
            .peers
            .iter()
            .filter(|(other, _)| **other != peer)
            .map(|(_, state)| state.held.headers.len())
            .sum();
        if held_elsewhere + outcome.held.headers.len() > MAX_HELD_HEADERS {
            debug!(%peer, "too many low-work headers held for all peers: this peer's dropped");
            outcome.held = HeldHeaders::default();
            outcome.next_start = None;
        }
        if let Some(state) = self.peers.get_mut(&peer) {
            if let Some(known) = outcome.known {
                state.knows(known);
            }
            state.held = std::mem::take(&mut outcome.held);
        }
        if let Some(last) = outcome.last {
            if self
                .best_header
                .is_none_or(|best| last.chain_work > best.chain_work)
            {
                self.best_header = Some(last);
            }
        }
        if outcome.known.is_some() {
            self.request_plan();
        }
        outcome.next_start
    }
}
