//! The node's JSON-RPC interface, compatible with Bitcoin Core's clients.

pub mod error;
pub mod gauges;
pub mod methods;
pub mod params;
pub mod render;
pub mod server;

pub use error::{ErrorCode, RpcError};
pub use methods::{RpcContext, METHODS};
pub use server::{serve_metrics, serve_rpc, Cookie, Credentials};
