//! Nonce-search kernels for double SHA-256 over an 80-byte header.
//!
//! The first 64 header bytes never change while nonces are tried, so their SHA-256 state (the
//! midstate) is computed once; each nonce then costs two compressions: the last 16 header
//! bytes with padding, and the 32-byte first digest with padding. One SHA-256 stream is
//! latency-bound (every round waits for the previous one), so the fast kernel runs four
//! independent nonces interleaved through the SHA-NI instructions, letting the CPU overlap them.

use std::ops::{ControlFlow, Range};

use quarry_chain::{BlockHash, BlockHeader, Target};
use sha2::digest::generic_array::GenericArray;

/// SHA-256 initial state.
const IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// The nonce space of one header: every `u32`.
pub const NONCE_SPACE: u64 = 1 << 32;

/// A header prepared for nonce search: the midstate of its first 64 bytes, the second block
/// with everything but the nonce filled in, and its target.
#[derive(Clone, Copy, Debug)]
pub struct HeaderWork {
    midstate: [u32; 8],
    second_block: [u8; 64],
    target: Target,
    /// The target's most significant 32 bits: a hash above them misses, without a full compare.
    target_top: u32,
}

impl HeaderWork {
    /// Prepares `header`; `None` if its `bits` do not decode to a target.
    pub fn new(header: &BlockHeader) -> Option<Self> {
        let target = header.bits.to_target()?;
        let bytes = header.to_bytes();
        let mut midstate = IV;
        sha2::compress256(&mut midstate, &[*GenericArray::from_slice(&bytes[..64])]);
        let mut second_block = [0u8; 64];
        second_block[..16].copy_from_slice(&bytes[64..]);
        second_block[16] = 0x80;
        second_block[56..].copy_from_slice(&(80u64 * 8).to_be_bytes());
        let target_bytes: [u8; 32] = target.to_u256().to_be_bytes();
        let [a, b, c, d, ..] = target_bytes;
        Some(Self {
            midstate,
            second_block,
            target,
            target_top: u32::from_be_bytes([a, b, c, d]),
        })
    }

    fn second_block(&self, nonce: u32) -> [u8; 64] {
        let mut block = self.second_block;
        block[12..16].copy_from_slice(&nonce.to_le_bytes());
        block
    }

    /// Whether the final SHA-256 state `digest` is a hash meeting the target.
    fn is_hit(&self, digest: &[u32; 8]) -> bool {
        // The hash is read as a little-endian number: its top 32 bits are the last word.
        if digest[7].swap_bytes() > self.target_top {
            return false;
        }
        self.target.is_met_by(hash_of(digest))
    }
}

fn hash_of(digest: &[u32; 8]) -> BlockHash {
    let mut bytes = [0u8; 32];
    for (chunk, word) in bytes.chunks_exact_mut(4).zip(digest) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    BlockHash::from_byte_array(bytes)
}

/// The padded block holding a 32-byte first digest, for the second SHA-256.
fn digest_block(first: &[u32; 8]) -> [u8; 64] {
    let mut block = [0u8; 64];
    for (chunk, word) in block[..32].chunks_exact_mut(4).zip(first) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    block[32] = 0x80;
    block[56..].copy_from_slice(&(32u64 * 8).to_be_bytes());
    block
}

/// A nonce-search kernel.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kernel {
    /// One nonce at a time through `sha2::compress256` (which itself uses SHA-NI when present).
    Compress256,
    /// Four nonces interleaved through the x86 SHA-NI instructions.
    ShaNiX4,
}

impl Kernel {
    /// Every kernel this CPU can run, fastest first.
    pub fn available() -> Vec<Kernel> {
        let mut kernels = Vec::new();
        if shani::supported() {
            kernels.push(Kernel::ShaNiX4);
        }
        kernels.push(Kernel::Compress256);
        kernels
    }

    /// The fastest kernel this CPU can run.
    pub fn best() -> Kernel {
        Self::available()[0]
    }

    /// A short name for tables and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Compress256 => "compress256",
            Self::ShaNiX4 => "sha-ni-x4",
        }
    }

    /// Calls `on_hit` with every nonce of `nonces` (within `0..2^32`) whose header hash meets
    /// the target, in increasing order, until it breaks.
    pub fn for_each_hit(
        self,
        work: &HeaderWork,
        nonces: Range<u64>,
        mut on_hit: impl FnMut(u32) -> ControlFlow<()>,
    ) {
        let nonces = nonces.start.min(NONCE_SPACE)..nonces.end.min(NONCE_SPACE);
        match self {
            Self::Compress256 => {
                for nonce in nonces {
                    let nonce = nonce as u32;
                    if work.is_hit(&compress256_double(work, nonce)) && on_hit(nonce).is_break() {
                        return;
                    }
                }
            }
            Self::ShaNiX4 => shani::for_each_hit(work, nonces, &mut on_hit),
        }
    }

    /// The first nonce of `nonces` whose header hash meets the target.
    pub fn first_hit(self, work: &HeaderWork, nonces: Range<u64>) -> Option<u32> {
        let mut found = None;
        self.for_each_hit(work, nonces, |nonce| {
            found = Some(nonce);
            ControlFlow::Break(())
        });
        found
    }
}

/// Both compressions of one nonce through `sha2::compress256`.
fn compress256_double(work: &HeaderWork, nonce: u32) -> [u32; 8] {
    let mut first = work.midstate;
    sha2::compress256(
        &mut first,
        &[*GenericArray::from_slice(&work.second_block(nonce))],
    );
    let mut second = IV;
    sha2::compress256(
        &mut second,
        &[*GenericArray::from_slice(&digest_block(&first))],
    );
    second
}

#[cfg(target_arch = "x86_64")]
mod shani {
    //! Four SHA-256 streams interleaved through SHA-NI (`sha256rnds2`, `sha256msg1/2`).

    use std::arch::x86_64::*;
    use std::ops::{ControlFlow, Range};

    use super::{HeaderWork, IV};

    const LANES: usize = 4;

    /// SHA-256 round constants.
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];

    pub(super) fn supported() -> bool {
        std::is_x86_feature_detected!("sha")
            && std::is_x86_feature_detected!("sse2")
            && std::is_x86_feature_detected!("ssse3")
            && std::is_x86_feature_detected!("sse4.1")
    }

    pub(super) fn for_each_hit(
        work: &HeaderWork,
        nonces: Range<u64>,
        on_hit: &mut impl FnMut(u32) -> ControlFlow<()>,
    ) {
        assert!(
            supported(),
            "the sha-ni-x4 kernel needs the SHA-NI instructions"
        );
        // SAFETY: `supported()` checked that the CPU has every feature `scan` enables.
        unsafe { scan(work, nonces, on_hit) }
    }

    /// The SHA-256 state `[a..h]` as the `(abef, cdgh)` register pair the rounds work on.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    fn load_state(state: &[u32; 8]) -> (__m128i, __m128i) {
        let dcba = _mm_set_epi32(
            state[3] as i32,
            state[2] as i32,
            state[1] as i32,
            state[0] as i32,
        );
        let efgh = _mm_set_epi32(
            state[7] as i32,
            state[6] as i32,
            state[5] as i32,
            state[4] as i32,
        );
        let cdab = _mm_shuffle_epi32(dcba, 0xB1);
        let efgh = _mm_shuffle_epi32(efgh, 0x1B);
        (
            _mm_alignr_epi8(cdab, efgh, 8),
            _mm_blend_epi16(efgh, cdab, 0xF0),
        )
    }

    /// The `(abef, cdgh)` pair back as `(abcd, efgh)` vectors, word `a` (or `e`) in lane 0:
    /// exactly the message words of a block holding the digest.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    fn unload_state(abef: __m128i, cdgh: __m128i) -> (__m128i, __m128i) {
        let feba = _mm_shuffle_epi32(abef, 0x1B);
        let dchg = _mm_shuffle_epi32(cdgh, 0xB1);
        (
            _mm_blend_epi16(feba, dchg, 0xF0),
            _mm_alignr_epi8(dchg, feba, 8),
        )
    }

    /// 64 rounds on every lane, interleaved, adding the starting state back at the end
    /// (the per-lane steps are those of the `sha2` crate's single-stream SHA-NI code).
    macro_rules! compress_lanes {
        ($abef:ident, $cdgh:ident, $w:ident) => {{
            let (abef_save, cdgh_save) = ($abef, $cdgh);
            for round in 0..16 {
                // SAFETY: K holds 64 u32; `round * 4 + 3 < 64`.
                let k = unsafe { _mm_loadu_si128(K.as_ptr().add(round * 4).cast::<__m128i>()) };
                for lane in 0..LANES {
                    let words = &mut $w[lane];
                    let message = if round < 4 {
                        words[round]
                    } else {
                        let t1 = _mm_sha256msg1_epu32(words[round % 4], words[(round + 1) % 4]);
                        let t2 = _mm_alignr_epi8(words[(round + 3) % 4], words[(round + 2) % 4], 4);
                        let scheduled =
                            _mm_sha256msg2_epu32(_mm_add_epi32(t1, t2), words[(round + 3) % 4]);
                        words[round % 4] = scheduled;
                        scheduled
                    };
                    let t = _mm_add_epi32(message, k);
                    $cdgh[lane] = _mm_sha256rnds2_epu32($cdgh[lane], $abef[lane], t);
                    $abef[lane] =
                        _mm_sha256rnds2_epu32($abef[lane], $cdgh[lane], _mm_shuffle_epi32(t, 0x0E));
                }
            }
            for lane in 0..LANES {
                $abef[lane] = _mm_add_epi32($abef[lane], abef_save[lane]);
                $cdgh[lane] = _mm_add_epi32($cdgh[lane], cdgh_save[lane]);
            }
        }};
    }

    /// Scans `nonces` [`LANES`] at a time, everything kept in registers: the nonce goes
    /// straight into the last message word of the first block, and the first digest becomes
    /// the second block's message words without a trip through memory.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    fn scan(
        work: &HeaderWork,
        nonces: Range<u64>,
        on_hit: &mut impl FnMut(u32) -> ControlFlow<()>,
    ) {
        let (mid_abef, mid_cdgh) = load_state(&work.midstate);
        let (iv_abef, iv_cdgh) = load_state(&IV);
        let word = |index: usize| {
            let bytes = &work.second_block[index * 4..index * 4 + 4];
            u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as i32
        };
        let header_words = _mm_set_epi32(0, word(2), word(1), word(0));
        let first_padding = [
            _mm_set_epi32(0, 0, 0, 0x8000_0000_u32 as i32),
            _mm_setzero_si128(),
            _mm_set_epi32(80 * 8, 0, 0, 0),
        ];
        let second_padding = [
            _mm_set_epi32(0, 0, 0, 0x8000_0000_u32 as i32),
            _mm_set_epi32(32 * 8, 0, 0, 0),
        ];
        let mut start = nonces.start;
        while start < nonces.end {
            let batch: [u32; LANES] = std::array::from_fn(|lane| (start + lane as u64) as u32);
            let mut abef = [mid_abef; LANES];
            let mut cdgh = [mid_cdgh; LANES];
            let mut w: [[__m128i; 4]; LANES] = std::array::from_fn(|lane| {
                // The nonce's little-endian bytes, read as a big-endian message word.
                let nonce_word = batch[lane].swap_bytes() as i32;
                [
                    _mm_insert_epi32(header_words, nonce_word, 3),
                    first_padding[0],
                    first_padding[1],
                    first_padding[2],
                ]
            });
            compress_lanes!(abef, cdgh, w);
            for lane in 0..LANES {
                let (abcd, efgh) = unload_state(abef[lane], cdgh[lane]);
                w[lane] = [abcd, efgh, second_padding[0], second_padding[1]];
            }
            let mut abef = [iv_abef; LANES];
            let mut cdgh = [iv_cdgh; LANES];
            compress_lanes!(abef, cdgh, w);
            let lanes = (nonces.end - start).min(LANES as u64) as usize;
            for lane in 0..lanes {
                let (abcd, efgh) = unload_state(abef[lane], cdgh[lane]);
                // Word h decides most hashes: only candidates get the exact comparison.
                let h = _mm_extract_epi32(efgh, 3) as u32;
                if h.swap_bytes() > work.target_top {
                    continue;
                }
                let mut digest = [0u32; 8];
                // SAFETY: `digest` is 8 u32 = two 16-byte vectors; unaligned stores.
                unsafe {
                    let out = digest.as_mut_ptr().cast::<__m128i>();
                    _mm_storeu_si128(out, abcd);
                    _mm_storeu_si128(out.add(1), efgh);
                }
                if work.is_hit(&digest) && on_hit(batch[lane]).is_break() {
                    return;
                }
            }
            start += LANES as u64;
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod shani {
    use std::ops::{ControlFlow, Range};

    use super::HeaderWork;

    pub(super) fn supported() -> bool {
        false
    }

    pub(super) fn for_each_hit(
        _: &HeaderWork,
        _: Range<u64>,
        _: &mut impl FnMut(u32) -> ControlFlow<()>,
    ) {
        unreachable!("Kernel::available never offers sha-ni-x4 off x86_64")
    }
}
