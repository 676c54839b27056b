//! Rules that need the block's place in the chain: its height and its ancestors' headers.

use crate::block::Block;
use crate::error::BlockError;
use crate::pow::CompactTarget;

/// How many ancestors' timestamps the median time past is taken over.
pub const MEDIAN_TIME_SPAN: usize = 11;

/// The header's `bits` equal what the retarget rule requires at this height.
pub fn check_difficulty(
    height: u32,
    actual: CompactTarget,
    expected: CompactTarget,
) -> Result<(), BlockError> {
    if actual != expected {
        return Err(BlockError::WrongDifficulty {
            height,
            actual,
            expected,
        });
    }
    Ok(())
}

/// The block's time is strictly after the median of its last 11 ancestors' times.
pub fn check_time_after_median(time: u32, median_time_past: u32) -> Result<(), BlockError> {
    if time <= median_time_past {
        return Err(BlockError::TimeTooOld {
            time,
            median: median_time_past,
        });
    }
    Ok(())
}

/// How far before its parent the first block of a retarget period may be dated (BIP54).
pub const MAX_TIME_WARP: u32 = 7_200;

/// BIP54: under per-period retargeting, the first block of a period (`height` a multiple of
/// `interval`) is not dated more than [`MAX_TIME_WARP`] seconds before its parent, so that a
/// period's measured timespan cannot be stretched by dating its last block far ahead and the
/// next period's first far back (the time-warp attack).
pub fn check_time_warp(
    height: u32,
    interval: u32,
    time: u32,
    parent_time: u32,
) -> Result<(), BlockError> {
    let opens_period = height > 0 && interval > 0 && height.is_multiple_of(interval);
    if opens_period && u64::from(time) + u64::from(MAX_TIME_WARP) < u64::from(parent_time) {
        return Err(BlockError::TimeWarp {
            time,
            parent: parent_time,
        });
    }
    Ok(())
}

/// The block's time is at most `max_drift` seconds ahead of the local clock `now`.
pub fn check_time_not_too_new(time: u32, now: u64, max_drift: u32) -> Result<(), BlockError> {
    if u64::from(time) > now.saturating_add(u64::from(max_drift)) {
        return Err(BlockError::TimeTooNew {
            time,
            now,
            max_drift,
        });
    }
    Ok(())
}

/// The coinbase commits to the block's height (so coinbase txids never repeat).
pub fn check_coinbase_height(block: &Block, height: u32) -> Result<(), BlockError> {
    let found = block
        .transactions
        .first()
        .and_then(|tx| tx.coinbase_height());
    if found != Some(height) {
        return Err(BlockError::BadCoinbaseHeight { height, found });
    }
    Ok(())
}

/// The median of up to [`MEDIAN_TIME_SPAN`] timestamps (the upper median for an even count,
/// as Bitcoin Core's `GetMedianTimePast`).
pub fn median_time(mut times: Vec<u32>) -> u32 {
    times.sort_unstable();
    times.get(times.len() / 2).copied().unwrap_or(0)
}
