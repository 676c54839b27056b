//! Misbehaviour scores and bans. A host's score (its IP address, or the peer itself on an
//! exempt address) grows with each offence and outlives disconnects, so reconnecting, or
//! coming back under a fresh peer identity, wipes nothing; reaching the threshold bans the peer
//! and its address for the configured time. Bans can also be set and lifted by hand.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use libp2p::PeerId;
use serde::{Deserialize, Serialize};

use crate::guard::Host;

/// Hosts whose scores are remembered; past this, the one whose last offence is oldest is
/// forgotten first.
const MAX_SCORED_HOSTS: usize = 4_096;

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
    /// Its IP address, banned with it (none for exempt addresses and bans set by hand).
    #[serde(default)]
    pub address: Option<IpAddr>,
    /// Unix time (seconds) when the ban began (0 for bans saved before it was recorded).
    #[serde(default)]
    pub created: u64,
    /// Unix time (seconds) when the ban ends.
    pub until: u64,
    /// Why.
    pub reason: BanReason,
}

/// Scores of hosts and the ban list.
#[derive(Debug)]
pub(crate) struct PeerBook {
    threshold: u32,
    ban_seconds: u64,
    /// Score and Unix time of the last offence, by host.
    scores: HashMap<Host, (u32, u64)>,
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

    /// Adds the offence's penalty to the score of `peer`'s host; returns the ban if this
    /// offence reaches the threshold. `now` is Unix time in seconds.
    pub(crate) fn report(
        &mut self,
        peer: PeerId,
        host: Host,
        what: Misbehaviour,
        now: u64,
    ) -> Option<Ban> {
        if self.bans.contains_key(&peer) {
            return None;
        }
        if !self.scores.contains_key(&host) && self.scores.len() >= MAX_SCORED_HOSTS {
            let oldest = self
                .scores
                .iter()
                .min_by_key(|(_, (_, last))| *last)
                .map(|(host, _)| *host);
            if let Some(oldest) = oldest {
                self.scores.remove(&oldest);
            }
        }
        let (score, last) = self.scores.entry(host).or_default();
        *score = score.saturating_add(what.penalty());
        *last = now;
        if *score < self.threshold {
            return None;
        }
        self.scores.remove(&host);
        let address = match host {
            Host::Ip(ip) => Some(ip),
            Host::Peer(_) => None,
        };
        Some(self.ban(Ban {
            peer,
            address,
            created: now,
            until: now.saturating_add(self.ban_seconds),
            reason: BanReason::Misbehaviour(what),
        }))
    }

    /// Puts `ban` in force, replacing any earlier ban of its peer.
    pub(crate) fn ban(&mut self, ban: Ban) -> Ban {
        self.bans.insert(ban.peer, ban);
        ban
    }

    /// Lifts the ban on `peer`, returning it.
    pub(crate) fn unban(&mut self, peer: &PeerId) -> Option<Ban> {
        self.bans.remove(peer)
    }

    /// Lifts the bans that ended by `now`, returning them.
    pub(crate) fn expire(&mut self, now: u64) -> Vec<Ban> {
        let ended: Vec<Ban> = self
            .bans
            .values()
            .filter(|ban| ban.until <= now)
            .copied()
            .collect();
        for ban in &ended {
            self.bans.remove(&ban.peer);
        }
        ended
    }

    pub(crate) fn is_banned(&self, peer: &PeerId) -> bool {
        self.bans.contains_key(peer)
    }

    /// Whether another ban in force still covers `address`.
    pub(crate) fn is_address_banned(&self, address: &IpAddr) -> bool {
        self.bans.values().any(|ban| ban.address == Some(*address))
    }

    pub(crate) fn score(&self, host: &Host) -> u32 {
        self.scores.get(host).map_or(0, |(score, _)| *score)
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

    fn ip(last: u8) -> Host {
        Host::Ip(IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn offences_accumulate_to_a_ban_of_the_peer_and_its_address_that_expires() {
        let mut book = PeerBook::new(100, 60);
        let peer = PeerId::random();
        for _ in 0..4 {
            assert_eq!(
                book.report(peer, ip(1), Misbehaviour::Unsolicited, 1_000),
                None
            );
        }
        assert_eq!(book.score(&ip(1)), 80);
        let ban = book
            .report(peer, ip(1), Misbehaviour::Unsolicited, 1_000)
            .expect("the fifth offence reaches 100");
        assert_eq!(ban.until, 1_060);
        assert_eq!(ban.address, Some(IpAddr::from([10, 0, 0, 1])));
        assert_eq!(
            ban.reason,
            BanReason::Misbehaviour(Misbehaviour::Unsolicited)
        );
        assert!(book.is_banned(&peer));
        assert!(book.is_address_banned(&IpAddr::from([10, 0, 0, 1])));
        // Offences of a banned peer change nothing.
        assert_eq!(
            book.report(peer, ip(1), Misbehaviour::InvalidBlock, 1_001),
            None
        );
        assert!(book.expire(1_059).is_empty());
        assert_eq!(book.expire(1_060), vec![ban]);
        assert!(!book.is_banned(&peer));
        assert!(!book.is_address_banned(&IpAddr::from([10, 0, 0, 1])));
        assert_eq!(book.score(&ip(1)), 0, "a ban resets the score");
    }

    #[test]
    fn scores_follow_the_host_across_identities_and_exempt_peers_alone() {
        let mut book = PeerBook::new(100, 60);
        for what in [
            Misbehaviour::InvalidProofOfWork,
            Misbehaviour::InvalidBlock,
            Misbehaviour::Malformed,
            Misbehaviour::Oversized,
        ] {
            let peer = PeerId::random();
            let ban = book.report(peer, Host::Peer(peer), what, 0);
            assert!(ban.is_some(), "{what} bans at once");
            assert_eq!(
                ban.unwrap().address,
                None,
                "an exempt peer's address is not banned"
            );
        }
        // Fresh identities from one address share its score.
        for _ in 0..9 {
            assert!(book
                .report(PeerId::random(), ip(2), Misbehaviour::InvalidTransaction, 0)
                .is_none());
        }
        assert_eq!(book.score(&ip(2)), 90);
        assert!(book
            .report(PeerId::random(), ip(2), Misbehaviour::InvalidTransaction, 0)
            .is_some());
        assert_eq!(book.score(&ip(3)), 0);
    }

    #[test]
    fn scores_are_bounded_oldest_offence_forgotten_first() {
        let mut book = PeerBook::new(1_000, 60);
        let peer = PeerId::random();
        for n in 0..=MAX_SCORED_HOSTS as u64 {
            book.report(
                peer,
                Host::Peer(PeerId::random()),
                Misbehaviour::RequestFlood,
                n,
            );
        }
        assert_eq!(book.scores.len(), MAX_SCORED_HOSTS);
        assert!(
            book.scores.values().all(|(_, last)| *last > 0),
            "the oldest went"
        );
    }

    #[test]
    fn manual_bans_are_listed_and_lifted() {
        let mut book = PeerBook::new(100, 60);
        let (a, b) = (PeerId::random(), PeerId::random());
        let manual = |peer, until| Ban {
            peer,
            address: None,
            created: 0,
            until,
            reason: BanReason::Manual,
        };
        book.ban(manual(a, 500));
        book.ban(manual(b, 100));
        let listed: Vec<PeerId> = book.bans().iter().map(|ban| ban.peer).collect();
        assert_eq!(listed, vec![b, a], "soonest ending first");
        assert!(book.unban(&a).is_some());
        assert!(book.unban(&a).is_none());
        assert_eq!(book.bans().len(), 1);
    }
}
