//! Block download scheduling: plans from the fork point to the best header, a moving window
//! spread over the peers that can serve it, and stall detection.

use std::collections::HashSet;
use std::time::Duration;
use std::time::Instant;

use futures::FutureExt;
use libp2p::PeerId;
use quarry_chain::actor::Command as ChainCommand;
use quarry_chain::{BlockHash, ChainReader, DownloadPlan};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use crate::error::NetworkError;
use crate::peers::Misbehaviour;
use crate::protocol::{SyncRequest, SyncResponse, RESPONSE_SOFT_LIMIT};

use super::{Origin, Syncer, Task};

/// A block asked of a peer.
#[derive(Clone, Copy, Debug)]
pub(super) struct InFlight {
    pub(super) peer: PeerId,
    pub(super) height: u32,
    pub(super) since: Instant,
}

/// Most blocks fetched or waiting for the chain actor at once: bounds memory while the chain
/// validates.
pub(super) const MAX_BLOCKS_PENDING: usize = 2_048;

/// Most blocks a download plan lists: enough to keep every slot busy while the blocks in
/// flight (still without bodies in the chain) are listed too.
pub(super) const PLAN_LIMIT: usize = 2 * MAX_BLOCKS_PENDING;

/// How long a peer that failed a block request is passed over.
pub(super) const STALL_BACKOFF: Duration = Duration::from_secs(10);

/// How far past the lowest block still missing downloads may run (Bitcoin Core's
/// `BLOCK_DOWNLOAD_WINDOW`): a peer holding that block then blocks the window, and is found.
pub(super) const DOWNLOAD_WINDOW: u32 = 1_024;

/// How long the block at the window's start may stay with one peer while the window is blocked
/// before that peer counts as stalling; doubled after each stall up to the maximum, eased back
/// as blocks arrive (Bitcoin Core's `BLOCK_STALLING_TIMEOUT_DEFAULT` and `_MAX`).
pub(super) const STALL_TIMEOUT_MIN: Duration = Duration::from_secs(2);

pub(super) const STALL_TIMEOUT_MAX: Duration = Duration::from_secs(64);

impl<S> Syncer<S>
where
    S: ChainReader + Clone + Send + Sync + 'static,
{
    pub(super) fn blocks_done(
        &mut self,
        peer: PeerId,
        requested: Vec<(u32, BlockHash)>,
        response: Result<SyncResponse, NetworkError>,
    ) {
        // Blocks taken back from a staller meanwhile are another peer's now.
        let owned: HashSet<BlockHash> = requested
            .iter()
            .map(|(_, hash)| *hash)
            .filter(|hash| self.in_flight.get(hash).is_some_and(|f| f.peer == peer))
            .collect();
        for hash in &owned {
            self.in_flight.remove(hash);
        }
        let state = self.peers.get_mut(&peer);
        let blocks = match response {
            Ok(SyncResponse::Blocks(blocks)) => {
                if let Some(state) = state {
                    state.blocks_in_flight = state.blocks_in_flight.saturating_sub(owned.len());
                }
                if blocks.len() == requested.len() {
                    self.stall_timeout = self.stall_timeout.mul_f64(0.85).max(STALL_TIMEOUT_MIN);
                }
                blocks
            }
            Ok(SyncResponse::Headers(_)) => {
                let _ = self.client.penalize(peer, Misbehaviour::Unsolicited);
                Vec::new()
            }
            Err(error) => {
                debug!(%peer, %error, blocks = requested.len(), "block request failed; retrying elsewhere");
                if let Some(state) = state {
                    state.blocks_in_flight = state.blocks_in_flight.saturating_sub(owned.len());
                    state.stalled_until = Some(Instant::now() + STALL_BACKOFF);
                }
                Vec::new()
            }
        };
        let mut returned = 0;
        let mut bytes = 0;
        for (block, (_, hash)) in blocks.into_iter().zip(&requested) {
            if block.block_hash() != *hash {
                warn!(%peer, expected = %hash, "peer sent a block that was not asked for");
                let _ = self.client.penalize(peer, Misbehaviour::Unsolicited);
                break;
            }
            returned += 1;
            bytes += block.encoded_size();
            self.submit_block(Origin::Download { peer }, block);
        }
        // A short answer under the size limit: the peer does not hold the rest (its chain is
        // not the one we thought). It is asked again once it shows us headers.
        if returned < requested.len() && bytes < RESPONSE_SOFT_LIMIT {
            if let Some(state) = self.peers.get_mut(&peer) {
                debug!(%peer, missing = requested.len() - returned, "peer lacks blocks it was asked for");
                state.best_known = None;
                state.reach = 0;
            }
        }
        for missing in requested[returned..]
            .iter()
            .filter(|(_, hash)| owned.contains(hash))
        {
            self.wanted.insert(*missing);
        }
    }

    /// The highest block downloads may reach: [`DOWNLOAD_WINDOW`] past the lowest block still
    /// missing (wanted or in flight).
    pub(super) fn window_end(&self) -> u32 {
        let lowest_in_flight = self.in_flight.values().map(|flight| flight.height).min();
        let lowest_wanted = self.wanted.first().map(|(height, _)| *height);
        lowest_in_flight
            .into_iter()
            .chain(lowest_wanted)
            .min()
            .map_or(u32::MAX, |lowest| lowest.saturating_add(DOWNLOAD_WINDOW))
    }

    /// Bitcoin Core's stalling detection: when nothing more can be asked within the window and
    /// the block at its start has been with one peer longer than the stalling timeout while
    /// another peer could serve it, that peer's blocks are asked of others and it is
    /// disconnected (slowness is not misbehaviour: it is not banned).
    pub(super) fn check_stall(&mut self) {
        let Some(first) = self
            .in_flight
            .values()
            .min_by_key(|flight| flight.height)
            .copied()
        else {
            return;
        };
        let window_end = self.window_end();
        let window_blocked = self
            .wanted
            .first()
            .is_none_or(|(height, _)| *height > window_end);
        if !window_blocked || first.since.elapsed() < self.stall_timeout {
            return;
        }
        let now = Instant::now();
        let served_elsewhere = self.peers.iter().any(|(peer, state)| {
            *peer != first.peer && state.reach >= first.height && state.available(now)
        });
        if !served_elsewhere {
            return;
        }
        info!(peer = %first.peer, height = first.height, timeout = ?self.stall_timeout, "peer stalls the block download: its blocks are asked of others and it is disconnected");
        let reclaimed: Vec<(u32, BlockHash)> = self
            .in_flight
            .iter()
            .filter(|(_, flight)| flight.peer == first.peer)
            .map(|(hash, flight)| (flight.height, *hash))
            .collect();
        for (height, hash) in reclaimed {
            self.in_flight.remove(&hash);
            self.wanted.insert((height, hash));
        }
        if let Some(state) = self.peers.get_mut(&first.peer) {
            state.blocks_in_flight = 0;
            state.stalled_until = Some(now + STALL_BACKOFF);
        }
        let client = self.client.clone();
        tokio::spawn(async move {
            let _ = client.disconnect(first.peer).await;
        });
        self.stall_timeout = (self.stall_timeout * 2).min(STALL_TIMEOUT_MAX);
    }

    /// Whether the best header known has more work than the tip.
    pub(super) fn behind(&self) -> bool {
        let tip_work = self.reader.tip().chain_work;
        self.best_header
            .is_some_and(|best| best.chain_work > tip_work)
    }

    /// Asks the chain what to download next and from whom (see [`DownloadPlan`]); one plan
    /// at a time, another after it if asked for meanwhile.
    pub(super) fn request_plan(&mut self) {
        if self.planning {
            self.plan_again = true;
            return;
        }
        let (peers, known): (Vec<PeerId>, Vec<BlockHash>) = self
            .peers
            .iter()
            .filter_map(|(peer, state)| state.best_known.map(|known| (*peer, known.hash)))
            .unzip();
        let (sender, receiver) = oneshot::channel();
        let sent = self.chain.send(ChainCommand::DownloadPlan {
            peers: known,
            limit: PLAN_LIMIT,
            reply: Box::new(move |plan| {
                let _ = sender.send(plan);
            }),
        });
        if let Err(error) = sent {
            debug!(%error, "no download plan: the chain actor stopped");
            return;
        }
        self.planning = true;
        self.settled.clear();
        self.tasks.push(
            async move {
                Task::Planned {
                    peers,
                    plan: receiver.await.ok(),
                }
            }
            .boxed(),
        );
    }

    pub(super) fn plan_done(&mut self, peers: &[PeerId], plan: Option<DownloadPlan>) {
        self.planning = false;
        if let Some(plan) = plan {
            self.best_header = Some(plan.best_header);
            for state in self.peers.values_mut() {
                state.reach = 0;
            }
            for (peer, reach) in peers.iter().zip(plan.reach) {
                if let Some(state) = self.peers.get_mut(peer) {
                    state.reach = reach;
                }
            }
            self.wanted = plan
                .blocks
                .into_iter()
                .filter(|(_, hash)| {
                    !self.in_flight.contains_key(hash)
                        && !self.submitting.contains(hash)
                        && !self.settled.contains(hash)
                })
                .collect();
        }
        if std::mem::take(&mut self.plan_again) {
            self.request_plan();
        }
    }

    /// Hands queued block downloads to peers with room, round robin, lowest heights first.
    pub(super) fn schedule_downloads(&mut self) {
        let now = Instant::now();
        let window_end = self.window_end();
        loop {
            let mut progressed = false;
            let mut peers: Vec<PeerId> = self.peers.keys().copied().collect();
            peers.sort();
            for peer in peers {
                if self.wanted.is_empty()
                    || self.in_flight.len() + self.submitting.len() >= MAX_BLOCKS_PENDING
                {
                    return;
                }
                let Some(state) = self.peers.get(&peer) else {
                    continue;
                };
                let room = self
                    .max_in_flight_per_peer
                    .saturating_sub(state.blocks_in_flight);
                if !state.available(now) || room == 0 {
                    continue;
                }
                let batch: Vec<(u32, BlockHash)> = self
                    .wanted
                    .iter()
                    .take_while(|(height, _)| *height <= state.reach && *height <= window_end)
                    .take(room.min(self.blocks_per_request))
                    .copied()
                    .collect();
                if batch.is_empty() {
                    continue;
                }
                progressed = true;
                self.request_blocks(peer, batch);
            }
            if !progressed {
                return;
            }
        }
    }

    pub(super) fn request_blocks(&mut self, peer: PeerId, batch: Vec<(u32, BlockHash)>) {
        let since = Instant::now();
        for entry in &batch {
            self.wanted.remove(entry);
            let (height, hash) = *entry;
            self.in_flight.insert(
                hash,
                InFlight {
                    peer,
                    height,
                    since,
                },
            );
        }
        if let Some(state) = self.peers.get_mut(&peer) {
            state.blocks_in_flight += batch.len();
        }
        let client = self.client.clone();
        let hashes: Vec<BlockHash> = batch.iter().map(|(_, hash)| *hash).collect();
        self.tasks.push(
            async move {
                let response = client.request(peer, SyncRequest::Blocks(hashes)).await;
                Task::Blocks {
                    peer,
                    requested: batch,
                    response,
                }
            }
            .boxed(),
        );
    }
}
