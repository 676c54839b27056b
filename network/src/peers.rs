//! Misbehaviour scores and bans. A peer's score grows with each offence and is forgotten when
//! it disconnects; reaching the threshold bans it for the configured time. Bans can also be set
//! and lifted by hand.

use std::collections::HashMap;
use std::fmt;

use libp2p::PeerId;
use serde::{Deserialize, Serialize};

/// Something a peer did wrong, with the score it costs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Misbehaviour {
    /// A header or block whose hash does not meet its target, or whose target is not allowed.
    InvalidProofOfWork,
    /// A block breaking a consensus rule.
    InvalidBlock,
    /// A transaction breaking a consensus rule.
    InvalidTransaction,
    /// Bytes that do not decode as the message they claim to be.
    Malformed,
    /// A message over its size limit.
    Oversized,
    /// Data that was not asked for, or headers that do not connect.
    Unsolicited,
    /// More requests than the per-second limit.
    RequestFlood,
}

impl Misbehaviour {
    /// The score it adds (a peer is banned at the threshold, 100 by default).
    pub fn penalty(self) -> u32 {
        match self {
            Self::InvalidProofOfWork | Self::InvalidBlock | Self::Malformed | Self::Oversized => {
                100
            }
            Self::Unsolicited => 20,
            Self::InvalidTransaction | Self::RequestFlood => 10,
        }
    }
}

impl fmt::Display for Misbehaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidProofOfWork => "invalid proof of work",
            Self::InvalidBlock => "invalid block",
            Self::InvalidTransaction => "invalid transaction",
            Self::Malformed => "malformed message",
            Self::Oversized => "oversized message",
            Self::Unsolicited => "unsolicited data",
            Self::RequestFlood => "too many requests",
        })
    }
}

/// Why a peer is banned.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum BanReason {
    /// Its score reached the threshold; the last offence is given.
    Misbehaviour(Misbehaviour),
    /// Set by the operator.
    Manual,
}

impl fmt::Display for BanReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Misbehaviour(what) => write!(f, "misbehaviour ({what})"),
            Self::Manual => f.write_str("manual"),
        }
    }
}

/// A ban in force.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Ban {
    /// The banned peer.
    pub peer: PeerId,
    /// Unix time (seconds) when the ban ends.
    pub until: u64,
    /// Why.
    pub reason: BanReason,
}

/// Scores of connected peers and the ban list.
#[derive(Debug)]
pub(crate) struct PeerBook {
    threshold: u32,
    ban_seconds: u64,
    scores: HashMap<PeerId, u32>,
    bans: HashMap<PeerId, Ban>,
}

impl PeerBook {
    pub(crate) fn new(threshold: u32, ban_seconds: u64) -> Self {
        Self {
            threshold: threshold.max(1),
            ban_seconds,
            scores: HashMap::new(),
            bans: HashMap::new(),
        }
    }

    /// Adds the offence's penalty to the peer's score; returns the ban if this offence reaches
    /// the threshold. `now` is Unix time in seconds.
    pub(crate) fn report(&mut self, peer: PeerId, what: Misbehaviour, now: u64) -> Option<Ban> {
        if self.bans.contains_key(&peer) {
            return None;
        }
        let score = self.scores.entry(peer).or_default();
        *score = score.saturating_add(what.penalty());
        if *score < self.threshold {
            return None;
        }
        self.scores.remove(&peer);
        Some(self.ban(
            peer,
            now.saturating_add(self.ban_seconds),
            BanReason::Misbehaviour(what),
        ))
    }

    /// Bans `peer` until `until` (Unix seconds), replacing any earlier ban.
    pub(crate) fn ban(&mut self, peer: PeerId, until: u64, reason: BanReason) -> Ban {
        let ban = Ban {
            peer,
            until,
            reason,
        };
        self.bans.insert(peer, ban);
        ban
    }

    /// Lifts the ban on `peer`; whether there was one.
    pub(crate) fn unban(&mut self, peer: &PeerId) -> bool {
        self.bans.remove(peer).is_some()
    }

    /// Lifts the bans that ended by `now`, returning their peers.
    pub(crate) fn expire(&mut self, now: u64) -> Vec<PeerId> {
        let ended: Vec<PeerId> = self
            .bans
            .values()
            .filter(|ban| ban.until <= now)
            .map(|ban| ban.peer)
            .collect();
        for peer in &ended {
            self.bans.remove(peer);
        }
        ended
    }

    pub(crate) fn is_banned(&self, peer: &PeerId) -> bool {
        self.bans.contains_key(peer)
    }

    /// Forgets the score of a peer that disconnected.
    pub(crate) fn forget(&mut self, peer: &PeerId) {
        self.scores.remove(peer);
    }

    pub(crate) fn score(&self, peer: &PeerId) -> u32 {
        self.scores.get(peer).copied().unwrap_or(0)
    }

    /// Bans in force, soonest ending first.
    pub(crate) fn bans(&self) -> Vec<Ban> {
        let mut bans: Vec<Ban> = self.bans.values().copied().collect();
        bans.sort_by_key(|ban| (ban.until, ban.peer));
        bans
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offences_accumulate_to_a_ban_that_expires() {
        let mut book = PeerBook::new(100, 60);
        let peer = PeerId::random();
        for _ in 0..4 {
            assert_eq!(book.report(peer, Misbehaviour::Unsolicited, 1_000), None);
        }
        assert_eq!(book.score(&peer), 80);
        let ban = book
            .report(peer, Misbehaviour::Unsolicited, 1_000)
            .expect("the fifth offence reaches 100");
        assert_eq!(ban.until, 1_060);
        assert_eq!(
            ban.reason,
            BanReason::Misbehaviour(Misbehaviour::Unsolicited)
        );
        assert!(book.is_banned(&peer));
        // Offences of a banned peer change nothing.
        assert_eq!(book.report(peer, Misbehaviour::InvalidBlock, 1_001), None);
        assert_eq!(book.expire(1_059), Vec::<PeerId>::new());
        assert_eq!(book.expire(1_060), vec![peer]);
        assert!(!book.is_banned(&peer));
        assert_eq!(book.score(&peer), 0, "a ban resets the score");
    }

    #[test]
    fn serious_offences_ban_at_once_and_scores_reset_on_disconnect() {
        let mut book = PeerBook::new(100, 60);
        let (honest, liar) = (PeerId::random(), PeerId::random());
        for what in [
            Misbehaviour::InvalidProofOfWork,
            Misbehaviour::InvalidBlock,
            Misbehaviour::Malformed,
            Misbehaviour::Oversized,
        ] {
            let peer = PeerId::random();
            assert!(book.report(peer, what, 0).is_some(), "{what} bans at once");
        }
        assert!(book
            .report(liar, Misbehaviour::InvalidTransaction, 0)
            .is_none());
        book.forget(&liar);
        assert_eq!(book.score(&liar), 0);
        assert!(!book.is_banned(&honest));
    }

    #[test]
    fn manual_bans_are_listed_and_lifted() {
        let mut book = PeerBook::new(100, 60);
        let (a, b) = (PeerId::random(), PeerId::random());
        book.ban(a, 500, BanReason::Manual);
        book.ban(b, 100, BanReason::Manual);
        let listed: Vec<PeerId> = book.bans().iter().map(|ban| ban.peer).collect();
        assert_eq!(listed, vec![b, a], "soonest ending first");
        assert!(book.unban(&a));
        assert!(!book.unban(&a));
        assert_eq!(book.bans().len(), 1);
    }
}
