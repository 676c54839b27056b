//! What crosses the wire: gossip topics and payloads, and the sync request-response protocol
//! with its length-prefixed, size-capped codec. Every name carries the network's genesis hash,
//! so nodes of different networks never exchange data.

use std::io;

use async_trait::async_trait;
use bincode::config::{Configuration, Fixint, Limit, LittleEndian};
use bincode::{Decode, Encode};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::gossipsub::IdentTopic;
use libp2p::StreamProtocol;
use quarry_chain::encode::MAX_BLOCK_BYTES;
use quarry_chain::{Block, BlockHash, BlockHeader};

/// Most hashes in a block locator.
pub const MAX_LOCATOR_HASHES: usize = 64;
/// Most headers in one response (as Bitcoin's `headers` message).
pub const MAX_HEADERS: usize = 2_000;
/// Most block bodies asked for in one request.
pub const MAX_BLOCKS_PER_REQUEST: usize = 128;
/// A responder stops adding blocks once a response reaches this many bytes.
pub const RESPONSE_SOFT_LIMIT: usize = 2 * 1024 * 1024;
/// Largest request frame read, in bytes.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Largest response frame read, in bytes: the soft limit plus one largest block, plus framing.
pub const MAX_RESPONSE_BYTES: usize = RESPONSE_SOFT_LIMIT + MAX_BLOCK_BYTES + 64 * 1024;
/// Largest transaction gossiped (the mempool's default standard size).
pub const MAX_TX_GOSSIP_BYTES: usize = 100_000;
/// Largest gossip message gossipsub reads: a largest block plus envelope and signature.
pub const MAX_GOSSIP_TRANSMIT_BYTES: usize = MAX_BLOCK_BYTES + 16 * 1024;

/// The consensus encoding's settings with the response-sized limit.
const WIRE: Configuration<LittleEndian, Fixint, Limit<MAX_RESPONSE_BYTES>> =
    quarry_chain::encode::canonical::<MAX_RESPONSE_BYTES>();

/// A gossip topic of one network.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TopicKind {
    /// New blocks.
    Blocks,
    /// New transactions.
    Transactions,
}

impl TopicKind {
    /// The topic on the network whose genesis block is `genesis`.
    pub fn topic(self, genesis: BlockHash) -> IdentTopic {
        let name = match self {
            Self::Blocks => "blocks",
            Self::Transactions => "transactions",
        };
        IdentTopic::new(format!("/quarry/{genesis}/{name}/1"))
    }

    /// Largest payload accepted on this topic.
    pub fn max_payload(self) -> usize {
        match self {
            Self::Blocks => MAX_BLOCK_BYTES,
            Self::Transactions => MAX_TX_GOSSIP_BYTES,
        }
    }
}

/// The sync protocol's name on the network whose genesis block is `genesis`.
pub fn sync_protocol(genesis: BlockHash) -> StreamProtocol {
    // Protocol names must be static or owned; an owned name per network is built once.
    StreamProtocol::try_from_owned(format!("/quarry/{genesis}/sync/1"))
        .expect("the protocol name starts with a slash")
}

/// The identify protocol version: peers of another network are disconnected.
pub fn identify_protocol(genesis: BlockHash) -> String {
    format!("/quarry/{genesis}/1.0.0")
}

/// A sync request.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub enum SyncRequest {
    /// Headers of the responder's best chain after the first locator hash it has on that chain
    /// (the genesis block if none), at most [`MAX_HEADERS`].
    Headers {
        /// Hashes from the requester's tip back towards genesis, densest near the tip.
        locator: Vec<BlockHash>,
    },
    /// The bodies of these blocks in this order, as many as fit the response; unknown ones end
    /// the list.
    Blocks(Vec<BlockHash>),
}

/// A sync response.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub enum SyncResponse {
    /// Consecutive headers, each the parent of the next.
    Headers(Vec<BlockHeader>),
    /// A prefix of the requested blocks.
    Blocks(Vec<Block>),
}

/// A message over one of the protocol's limits.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[error("{count} {what} in one message, over the limit of {max}")]
pub struct LimitExceeded {
    /// What was counted.
    pub what: &'static str,
    /// How many there were.
    pub count: usize,
    /// The limit.
    pub max: usize,
}

fn within(what: &'static str, count: usize, max: usize) -> Result<(), LimitExceeded> {
    if count > max {
        return Err(LimitExceeded { what, count, max });
    }
    Ok(())
}

impl SyncRequest {
    /// Checks the limits a well-behaved peer keeps.
    pub fn check(&self) -> Result<(), LimitExceeded> {
        match self {
            Self::Headers { locator } => {
                within("locator hashes", locator.len(), MAX_LOCATOR_HASHES)
            }
            Self::Blocks(hashes) => {
                within("requested blocks", hashes.len(), MAX_BLOCKS_PER_REQUEST)
            }
        }
    }
}

impl SyncResponse {
    /// Checks the limits a well-behaved peer keeps.
    pub fn check(&self) -> Result<(), LimitExceeded> {
        match self {
            Self::Headers(headers) => within("headers", headers.len(), MAX_HEADERS),
            Self::Blocks(blocks) => within("blocks", blocks.len(), MAX_BLOCKS_PER_REQUEST),
        }
    }
}

/// Encodes a message as a frame: a 4-byte little-endian length, then the bytes.
pub fn encode_frame<T: Encode>(message: &T) -> Vec<u8> {
    let payload = bincode::encode_to_vec(message, WIRE)
        .expect("encoding sync messages into memory cannot fail");
    let length = u32::try_from(payload.len()).expect("frames are far below 4 GiB");
    let mut frame = Vec::with_capacity(4 + payload.len());
    frame.extend_from_slice(&length.to_le_bytes());
    frame.extend_from_slice(&payload);
    frame
}

fn invalid(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason)
}

/// Reads one frame of at most `max` bytes and decodes it, refusing trailing bytes.
async fn read_frame<T, R>(io: &mut R, max: usize) -> io::Result<T>
where
    T: Decode<()>,
    R: AsyncRead + Unpin + Send,
{
    let mut length = [0u8; 4];
    io.read_exact(&mut length).await?;
    let length = u32::from_le_bytes(length) as usize;
    if length > max {
        return Err(invalid(format!(
            "frame of {length} bytes, over the {max}-byte limit"
        )));
    }
    let mut payload = vec![0u8; length];
    io.read_exact(&mut payload).await?;
    decode_payload(&payload)
}

/// Decodes a frame's payload.
pub fn decode_payload<T: Decode<()>>(payload: &[u8]) -> io::Result<T> {
    let (value, read) = bincode::decode_from_slice(payload, WIRE)
        .map_err(|error| invalid(format!("undecodable message: {error}")))?;
    if read != payload.len() {
        return Err(invalid(format!(
            "{} trailing bytes after the message",
            payload.len() - read
        )));
    }
    Ok(value)
}

/// A sync request as read off the wire. libp2p drops an inbound request its codec fails to
/// read without telling anyone, so a request that does not decode or breaks a limit is handed
/// up as [`WireRequest::Refused`] instead, for the sender to be scored.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum WireRequest {
    /// A request within the protocol's limits.
    Valid(SyncRequest),
    /// Why the bytes were refused.
    Refused(String),
}

/// The request-response codec of the sync protocol.
#[derive(Clone, Copy, Default, Debug)]
pub struct SyncCodec;

#[async_trait]
impl libp2p::request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = WireRequest;
    type Response = SyncResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<WireRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let read = read_frame::<SyncRequest, _>(io, MAX_REQUEST_BYTES)
            .await
            .and_then(|request| {
                request
                    .check()
                    .map_err(|error| invalid(error.to_string()))?;
                Ok(request)
            });
        match read {
            Ok(request) => Ok(WireRequest::Valid(request)),
            Err(error) if error.kind() == io::ErrorKind::InvalidData => {
                Ok(WireRequest::Refused(error.to_string()))
            }
            Err(error) => Err(error),
        }
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        let response: SyncResponse = read_frame(io, MAX_RESPONSE_BYTES).await?;
        response
            .check()
            .map_err(|error| invalid(error.to_string()))?;
        Ok(response)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: WireRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let WireRequest::Valid(request) = request else {
            return Err(invalid("a refused request is never sent".into()));
        };
        io.write_all(&encode_frame(&request)).await?;
        io.flush().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: SyncResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&encode_frame(&response)).await?;
        io.flush().await
    }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;
    use libp2p::request_response::Codec;
    use quarry_chain::testing::Harness;

    use super::*;

    fn protocol() -> StreamProtocol {
        sync_protocol(BlockHash::ZERO)
    }

    fn round_trip_response(response: SyncResponse) -> io::Result<SyncResponse> {
        let mut bytes = Vec::new();
        block_on(SyncCodec.write_response(&protocol(), &mut bytes, response))?;
        block_on(SyncCodec.read_response(&protocol(), &mut bytes.as_slice()))
    }

    #[test]
    fn blocks_and_headers_round_trip_with_consensus_bytes() {
        let mut harness = Harness::new();
        let blocks = harness.mine_empty(3);
        let headers: Vec<_> = blocks.iter().map(|block| block.header).collect();
        let response = SyncResponse::Blocks(blocks.clone());
        assert_eq!(round_trip_response(response.clone()).unwrap(), response);
        let response = SyncResponse::Headers(headers);
        assert_eq!(round_trip_response(response.clone()).unwrap(), response);
        // An embedded block is its consensus encoding: the frame ends with those bytes.
        let frame = encode_frame(&SyncResponse::Blocks(vec![blocks[0].clone()]));
        assert!(frame.ends_with(&quarry_chain::encode::encode(&blocks[0])));
    }

    #[test]
    fn requests_round_trip_and_limits_are_enforced() {
        let request = SyncRequest::Headers {
            locator: vec![BlockHash::ZERO; 10],
        };
        let mut bytes = Vec::new();
        let wire = WireRequest::Valid(request);
        block_on(SyncCodec.write_request(&protocol(), &mut bytes, wire.clone())).unwrap();
        let read = block_on(SyncCodec.read_request(&protocol(), &mut bytes.as_slice())).unwrap();
        assert_eq!(read, wire);

        // Broken limits and garbage are handed up to be scored, not dropped.
        let too_many = SyncRequest::Blocks(vec![BlockHash::ZERO; MAX_BLOCKS_PER_REQUEST + 1]);
        let bytes = encode_frame(&too_many);
        let read = block_on(SyncCodec.read_request(&protocol(), &mut bytes.as_slice())).unwrap();
        assert!(
            matches!(&read, WireRequest::Refused(reason) if reason.contains("over the limit of 128")),
            "{read:?}"
        );
        let huge = u32::MAX.to_le_bytes();
        let read = block_on(SyncCodec.read_request(&protocol(), &mut huge.as_slice())).unwrap();
        assert!(matches!(&read, WireRequest::Refused(reason) if reason.contains("over the")));
        let mut garbage = 8u32.to_le_bytes().to_vec();
        garbage.extend_from_slice(&[0xff; 8]);
        let read = block_on(SyncCodec.read_request(&protocol(), &mut garbage.as_slice())).unwrap();
        assert!(matches!(read, WireRequest::Refused(_)));
        // A stream cut short is the network's failure, not the peer's message.
        let cut = &bytes[..bytes.len() - 1];
        assert!(block_on(SyncCodec.read_request(&protocol(), &mut &cut[..])).is_err());
        let refused = WireRequest::Refused("no".into());
        assert!(block_on(SyncCodec.write_request(&protocol(), &mut Vec::new(), refused)).is_err());
    }

    #[test]
    fn oversized_garbage_and_truncated_frames_are_refused_before_allocating() {
        // A length prefix claiming 4 GiB is refused without reading further.
        let huge = u32::MAX.to_le_bytes();
        let error = block_on(SyncCodec.read_response(&protocol(), &mut huge.as_slice()))
            .expect_err("huge frame");
        assert!(error.to_string().contains("over the"), "{error}");
        // Garbage of a plausible length does not decode.
        let mut garbage = 8u32.to_le_bytes().to_vec();
        garbage.extend_from_slice(&[0xff; 8]);
        let error = block_on(SyncCodec.read_response(&protocol(), &mut garbage.as_slice()))
            .expect_err("garbage");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        // Trailing bytes are refused.
        let mut frame = encode_frame(&SyncResponse::Headers(Vec::new()));
        frame.push(0);
        frame[0] += 1;
        let error = block_on(SyncCodec.read_response(&protocol(), &mut frame.as_slice()))
            .expect_err("trailing byte");
        assert!(error.to_string().contains("trailing"), "{error}");
        // A frame cut short is an I/O error, not a panic.
        let frame = encode_frame(&SyncResponse::Headers(Vec::new()));
        let cut = &frame[..frame.len() - 1];
        assert!(block_on(SyncCodec.read_response(&protocol(), &mut &cut[..])).is_err());
    }

    #[test]
    fn names_carry_the_genesis_hash() {
        let a = Harness::new().genesis();
        let b = BlockHash::ZERO;
        assert_ne!(
            TopicKind::Blocks.topic(a).hash(),
            TopicKind::Blocks.topic(b).hash()
        );
        assert_ne!(
            TopicKind::Blocks.topic(a).hash(),
            TopicKind::Transactions.topic(a).hash()
        );
        assert!(sync_protocol(a).as_ref().contains(&a.to_string()));
        assert_ne!(identify_protocol(a), identify_protocol(b));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, ..Default::default() })]

        /// Whatever a peer sends as a sync frame, reading it never panics; an accepted message
        /// is re-encoded to exactly the frame it came in.
        #[test]
        fn arbitrary_frames_never_panic_and_accepted_ones_round_trip(
            payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2_048),
        ) {
            let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
            frame.extend_from_slice(&payload);
            if let WireRequest::Valid(request) =
                block_on(SyncCodec.read_request(&protocol(), &mut frame.as_slice())).unwrap()
            {
                proptest::prop_assert_eq!(encode_frame(&request), frame.clone());
            }
            if let Ok(response) = block_on(SyncCodec.read_response(&protocol(), &mut frame.as_slice())) {
                proptest::prop_assert_eq!(encode_frame(&response), frame);
            }
        }
    }
}
