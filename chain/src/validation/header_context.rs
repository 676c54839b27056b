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
