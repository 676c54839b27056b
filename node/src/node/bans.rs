//! The ban list kept across restarts: read at start (a damaged file keeps its good
//! entries), written after every change.

use std::path::Path;

use quarry_chain::clock::unix_now;

use quarry_network::{Ban, Client};
use tracing::warn;

use super::NodeError;

/// The ban list, kept across restarts.
pub(super) const BANLIST_FILE: &str = "banlist.json";

/// Reapplies the bans saved in `path` that have not expired.
pub(super) fn restore_bans(client: &Client, path: &Path) -> Result<(), NodeError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(NodeError::File {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    // A damaged ban list is not worth refusing to start over: the good entries are kept, and
    // peers behind the bad ones get banned again if they misbehave again.
    let (bans, problems) = parse_bans(&bytes);
    for problem in problems {
        warn!(path = %path.display(), "ban list: {problem}");
    }
    let now = unix_now();
    for ban in bans.iter().filter(|ban| ban.until > now) {
        client.restore_ban(*ban)?;
    }
    Ok(())
}

/// The bans in a ban list file's `bytes`, and what was wrong with the entries left out.
pub(super) fn parse_bans(bytes: &[u8]) -> (Vec<Ban>, Vec<String>) {
    let text = String::from_utf8_lossy(bytes);
    let entries: Vec<serde_json::Value> = match serde_json::from_str(&text) {
        Ok(entries) => entries,
        Err(error) => {
            return (
                Vec::new(),
                vec![format!("not a JSON list ({error}); ignored")],
            )
        }
    };
    let mut problems = Vec::new();
    let bans = entries
        .into_iter()
        .enumerate()
        .filter_map(|(index, entry)| match serde_json::from_value(entry) {
            Ok(ban) => Some(ban),
            Err(error) => {
                problems.push(format!("entry {} skipped: {error}", index + 1));
                None
            }
        })
        .collect();
    (bans, problems)
}

pub(super) fn write_bans(path: &Path, bans: &[Ban]) -> Result<(), NodeError> {
    let file_error = |source| NodeError::File {
        path: path.to_path_buf(),
        source,
    };
    let text = serde_json::to_string_pretty(bans).expect("bans serialize");
    let temporary = path.with_extension("json.new");
    std::fs::write(&temporary, text).map_err(file_error)?;
    std::fs::rename(&temporary, path).map_err(file_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_ban_list_keeps_its_good_entries() {
        let peer = quarry_network::PeerId::random();
        let good = format!(r#"{{"peer":"{peer}","until":4000000000,"reason":"Manual"}}"#);
        let mut bytes =
            format!(r#"[{good}, {{"peer":"not a peer","until":1,"reason":"Manual"}}, {{"peer":""#)
                .into_bytes();
        // Invalid UTF-8 inside the third entry.
        bytes.extend_from_slice(&[0xff, 0xfe]);
        bytes.extend_from_slice(br#"","until":1,"reason":"Manual"}]"#);
        let (bans, problems) = parse_bans(&bytes);
        assert_eq!(bans.len(), 1);
        assert_eq!(bans[0].peer, peer);
        assert_eq!(
            bans[0].address, None,
            "lists written before addresses were kept load"
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("entry 2 skipped"), "{problems:?}");

        let (bans, problems) = parse_bans(b"\xff\xfe not json");
        assert!(bans.is_empty());
        assert!(problems[0].contains("not a JSON list"), "{problems:?}");
    }
}
