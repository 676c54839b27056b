//! The client side of quarryd's JSON-RPC, for quarry-cli, the wallet and the testnet tool
//! (like Zebra's `zebra-node-services` client): it finds a node as the daemon itself settles
//! its files, calls it, and reads the replies into the typed shapes the server writes. It
//! builds without the node, so its users need neither libp2p nor RocksDB.

pub mod cli;
pub mod endpoint;
pub mod launch;
pub mod location;
pub mod plain_json;
#[cfg(feature = "test-utils")]
pub mod testing;
pub mod types;

pub use endpoint::{CallError, Connection, Endpoint, COOKIE_FILE, COOKIE_USER};
pub use location::{default_base_dir, default_ports, Location, Resolved};
