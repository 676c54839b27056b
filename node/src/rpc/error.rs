//! JSON-RPC errors with Bitcoin Core's codes (`src/rpc/protocol.h`), so clients written for
//! bitcoind recognise them.

use std::fmt;

use serde_json::{json, Value};

/// Bitcoin Core's error codes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The request is not a valid JSON-RPC request object.
    InvalidRequest,
    /// No such method.
    MethodNotFound,
    /// The parameters do not fit the method.
    InvalidParams,
    /// The server failed.
    InternalError,
    /// The body is not JSON.
    ParseError,
    /// Any other failure (also: wrong number of parameters).
    MiscError,
    /// A parameter has the wrong JSON type.
    TypeError,
    /// A block, transaction or address that does not exist or does not parse.
    InvalidAddressOrKey,
    /// A parameter has a value that cannot be used.
    InvalidParameter,
    /// A store read failed.
    DatabaseError,
    /// Bytes that do not decode.
    DeserializationError,
    /// A transaction or block was refused while being checked.
    VerifyError,
    /// A transaction was refused by policy or consensus.
    VerifyRejected,
    /// The transaction is already in a block.
    VerifyAlreadyInChain,
    /// No peer is connected.
    ClientNotConnected,
    /// The node is already in the added-nodes list.
    NodeAlreadyAdded,
    /// The node is not in the added-nodes list.
    NodeNotAdded,
    /// The node to disconnect is not connected.
    NodeNotConnected,
    /// The peer address or id does not parse.
    InvalidIpOrSubnet,
}

impl ErrorCode {
    /// The numeric code.
    pub fn code(self) -> i32 {
        match self {
            Self::InvalidRequest => -32600,
            Self::MethodNotFound => -32601,
            Self::InvalidParams => -32602,
            Self::InternalError => -32603,
            Self::ParseError => -32700,
            Self::MiscError => -1,
            Self::TypeError => -3,
            Self::InvalidAddressOrKey => -5,
            Self::InvalidParameter => -8,
            Self::ClientNotConnected => -9,
            Self::DatabaseError => -20,
            Self::DeserializationError => -22,
            Self::NodeAlreadyAdded => -23,
            Self::NodeNotAdded => -24,
            Self::VerifyError => -25,
            Self::VerifyRejected => -26,
            Self::VerifyAlreadyInChain => -27,
            Self::NodeNotConnected => -29,
            Self::InvalidIpOrSubnet => -30,
        }
    }
}

/// An error answered to a JSON-RPC call.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RpcError {
    /// Its code.
    pub code: ErrorCode,
    /// A message for people.
    pub message: String,
}

impl RpcError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The `error` object of a response.
    pub fn to_json(&self) -> Value {
        json!({ "code": self.code.code(), "message": self.message })
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.message, self.code.code())
    }
}

impl std::error::Error for RpcError {}

impl From<quarry_chain::StoreError> for RpcError {
    fn from(error: quarry_chain::StoreError) -> Self {
        Self::new(ErrorCode::DatabaseError, error.to_string())
    }
}

impl From<quarry_chain::ChainError> for RpcError {
    fn from(error: quarry_chain::ChainError) -> Self {
        Self::new(ErrorCode::VerifyError, error.to_string())
    }
}

impl From<quarry_network::NetworkError> for RpcError {
    fn from(error: quarry_network::NetworkError) -> Self {
        Self::new(ErrorCode::MiscError, error.to_string())
    }
}
