//! A call's parameters, given by position or by name as Bitcoin Core takes them, with typed
//! accessors whose errors name the parameter and use Bitcoin Core's codes.

use std::str::FromStr;

use quarry_chain::{Address, BlockHash, ChainParams, Txid};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{ErrorCode, RpcError};
use super::methods::MethodInfo;

/// The parameters of one call, in the method's positional order.
#[derive(Debug)]
pub struct Params {
    method: &'static MethodInfo,
    values: Vec<Value>,
}

/// The JSON type name Bitcoin Core uses in type errors.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl Params {
    /// Matches `raw` (an array, an object of named parameters, or absent) to `method`'s
    /// parameters.
    pub fn new(method: &'static MethodInfo, raw: Option<Value>) -> Result<Self, RpcError> {
        let usage = || format!("Usage: {}", method.usage());
        let values = match raw {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(values)) => {
                if values.len() > method.params.len() {
                    return Err(RpcError::new(
                        ErrorCode::MiscError,
                        format!(
                            "{} takes at most {} parameters, {} given. {}",
                            method.name,
                            method.params.len(),
                            values.len(),
                            usage()
                        ),
                    ));
                }
                values
            }
            Some(Value::Object(named)) => {
                let mut values = vec![Value::Null; method.params.len()];
                for (name, value) in named {
                    let position = method
                        .params
                        .iter()
                        .position(|param| param.name == name)
                        .ok_or_else(|| {
                            RpcError::new(
                                ErrorCode::InvalidParameter,
                                format!("Unknown named parameter {name}. {}", usage()),
                            )
                        })?;
                    values[position] = value;
                }
                values
            }
            Some(other) => {
                return Err(RpcError::new(
                    ErrorCode::InvalidRequest,
                    format!(
                        "Params must be an array or object, not {}",
                        type_name(&other)
                    ),
                ))
            }
        };
        let params = Self { method, values };
        for (position, param) in method.params.iter().enumerate() {
            if param.required && params.raw(position).is_none() {
                return Err(RpcError::new(
                    ErrorCode::MiscError,
                    format!("Missing required parameter '{}'. {}", param.name, usage()),
                ));
            }
        }
        Ok(params)
    }

    fn name(&self, position: usize) -> &'static str {
        self.method.params[position].name
    }

    /// The value at `position`, if given and not null.
    pub fn raw(&self, position: usize) -> Option<&Value> {
        self.values.get(position).filter(|value| !value.is_null())
    }

    /// The value at `position` as a `T`, if given.
    pub fn optional<T: DeserializeOwned>(&self, position: usize) -> Result<Option<T>, RpcError> {
        self.raw(position)
            .map(|value| {
                serde_json::from_value(value.clone()).map_err(|error| {
                    RpcError::new(
                        ErrorCode::TypeError,
                        format!(
                            "JSON value of type {} for parameter '{}' is not of the expected type: {error}",
                            type_name(value),
                            self.name(position)
                        ),
                    )
                })
            })
            .transpose()
    }

    /// The value at `position` as a `T` (checked present when the call was parsed).
    pub fn required<T: DeserializeOwned>(&self, position: usize) -> Result<T, RpcError> {
        self.optional(position)?.ok_or_else(|| {
            RpcError::new(
                ErrorCode::MiscError,
                format!("Missing required parameter '{}'", self.name(position)),
            )
        })
    }

    /// The value at `position` as a `T`, or `default`.
    pub fn or<T: DeserializeOwned>(&self, position: usize, default: T) -> Result<T, RpcError> {
        Ok(self.optional(position)?.unwrap_or(default))
    }

    /// A 64-digit hex hash at `position`.
    pub fn hash<H: FromStr>(&self, position: usize) -> Result<H, RpcError> {
        let text: String = self.required(position)?;
        parse_hash(self.name(position), &text)
    }

    /// A block hash at `position`.
    pub fn block_hash(&self, position: usize) -> Result<BlockHash, RpcError> {
        self.hash(position)
    }

    /// A transaction id at `position`.
    pub fn txid(&self, position: usize) -> Result<Txid, RpcError> {
        self.hash(position)
    }

    /// Hex bytes at `position`.
    pub fn hex(&self, position: usize) -> Result<Vec<u8>, RpcError> {
        let text: String = self.required(position)?;
        hex::decode(text.trim()).map_err(|error| {
            RpcError::new(
                ErrorCode::DeserializationError,
                format!("{} is not valid hex: {error}", self.name(position)),
            )
        })
    }

    /// One address, or an array of them, or `{"addresses": [...]}` at `position`.
    pub fn addresses(
        &self,
        position: usize,
        chain: &ChainParams,
    ) -> Result<Vec<Address>, RpcError> {
        let texts: Vec<String> = match self.raw(position) {
            Some(Value::String(one)) => vec![one.clone()],
            Some(Value::Object(object)) => match object.get("addresses") {
                Some(list) => serde_json::from_value(list.clone()).map_err(|_| {
                    RpcError::new(
                        ErrorCode::TypeError,
                        "addresses must be an array of strings",
                    )
                })?,
                None => {
                    return Err(RpcError::new(
                        ErrorCode::InvalidParameter,
                        "expected {\"addresses\": [...]}",
                    ))
                }
            },
            _ => self.required(position)?,
        };
        texts
            .iter()
            .map(|text| parse_address(text, chain))
            .collect()
    }
}

/// Parses a hash given as 64 hex digits, with Bitcoin Core's messages.
pub fn parse_hash<H: FromStr>(name: &str, text: &str) -> Result<H, RpcError> {
    if text.len() != 64 {
        return Err(RpcError::new(
            ErrorCode::InvalidParameter,
            format!(
                "{name} must be of length 64 (not {}, for '{}')",
                text.len(),
                text.chars().take(80).collect::<String>()
            ),
        ));
    }
    text.parse().map_err(|_| {
        RpcError::new(
            ErrorCode::InvalidParameter,
            format!("{name} must be hexadecimal string (not '{text}')"),
        )
    })
}

/// Parses an address of this network.
pub fn parse_address(text: &str, chain: &ChainParams) -> Result<Address, RpcError> {
    Address::parse(text, chain).map_err(|error| {
        RpcError::new(
            ErrorCode::InvalidAddressOrKey,
            format!("Invalid address: {error}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::METHODS;
    use serde_json::json;

    fn method(name: &str) -> &'static MethodInfo {
        METHODS.iter().find(|method| method.name == name).unwrap()
    }

    #[test]
    fn positional_and_named_parameters_land_in_the_same_places() {
        let getblock = method("getblock");
        let positional = Params::new(getblock, Some(json!(["ab", 2]))).unwrap();
        let named =
            Params::new(getblock, Some(json!({"verbosity": 2, "blockhash": "ab"}))).unwrap();
        for params in [positional, named] {
            assert_eq!(params.required::<String>(0).unwrap(), "ab");
            assert_eq!(params.or::<u8>(1, 1).unwrap(), 2);
        }
        let defaulted = Params::new(getblock, Some(json!(["ab"]))).unwrap();
        assert_eq!(defaulted.or::<u8>(1, 1).unwrap(), 1);
    }

    #[test]
    fn parameter_mistakes_get_bitcoin_core_codes() {
        let getblockhash = method("getblockhash");
        let code = |raw| Params::new(getblockhash, raw).unwrap_err().code;
        assert_eq!(code(None), ErrorCode::MiscError);
        assert_eq!(code(Some(json!([1, 2]))), ErrorCode::MiscError);
        assert_eq!(
            code(Some(json!({"heigth": 1}))),
            ErrorCode::InvalidParameter
        );
        assert_eq!(code(Some(json!("1"))), ErrorCode::InvalidRequest);
        let params = Params::new(getblockhash, Some(json!(["one"]))).unwrap();
        let error = params.required::<i64>(0).unwrap_err();
        assert_eq!(error.code, ErrorCode::TypeError);
        assert!(error.message.contains("'height'"), "{}", error.message);
    }

    #[test]
    fn hashes_are_64_hex_digits() {
        assert!(parse_hash::<BlockHash>("h", &"ab".repeat(32)).is_ok());
        let short = parse_hash::<BlockHash>("blockhash", "abc").unwrap_err();
        assert_eq!(
            short.message,
            "blockhash must be of length 64 (not 3, for 'abc')"
        );
        let bad = parse_hash::<Txid>("txid", &"zz".repeat(32)).unwrap_err();
        assert_eq!(bad.code, ErrorCode::InvalidParameter);
    }
}
