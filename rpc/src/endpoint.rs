//! Reaching a running quarryd: its address and credentials (from the command line, the
//! configuration file or the cookie, as bitcoin-cli finds bitcoind's), and calls over HTTP
//! whose replies are checked JSON-RPC, plain or typed.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context};
use base64::Engine;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::location::{default_ports, Resolved, RpcConfig};

/// The user name of cookie credentials.
pub const COOKIE_USER: &str = "__cookie__";
/// The cookie's file name in the network's data directory.
pub const COOKIE_FILE: &str = ".cookie";

/// Where a client reaches quarryd's RPC and how it authenticates, when the daemon's
/// configuration and cookie do not say: shared by quarry-cli and quarry-wallet.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct Connection {
    /// Where the daemon's RPC listens [default: 127.0.0.1:<network RPC port>].
    #[arg(long, value_name = "IP:PORT", env = "QUARRY_RPC_CONNECT")]
    pub rpc_connect: Option<SocketAddr>,
    /// RPC user (instead of the cookie).
    #[arg(
        long,
        value_name = "USER",
        requires = "rpc_password",
        env = "QUARRY_RPC_USER"
    )]
    pub rpc_user: Option<String>,
    /// RPC password (better in the environment than on the command line, where `ps` shows it).
    #[arg(
        long,
        value_name = "PASSWORD",
        requires = "rpc_user",
        env = "QUARRY_RPC_PASSWORD",
        hide_env_values = true
    )]
    pub rpc_password: Option<String>,
}

/// What to connect to and how to authenticate.
#[derive(Debug)]
pub struct Endpoint {
    /// The daemon's RPC address.
    pub address: SocketAddr,
    /// `user:password`.
    pub credentials: String,
}

impl Endpoint {
    /// Settles the endpoint from `connection`, then the daemon's configuration file and cookie
    /// for the network and data directory of `resolved`.
    pub fn resolve<F: AsRef<RpcConfig>>(
        resolved: &Resolved<F>,
        connection: &Connection,
    ) -> anyhow::Result<Self> {
        let Resolved {
            params,
            data_dir,
            file,
        } = resolved;
        let rpc = file.as_ref();
        let address = connection.rpc_connect.or(rpc.bind).unwrap_or_else(|| {
            SocketAddr::from(([127, 0, 0, 1], default_ports(params.name()).rpc))
        });
        let credentials = match (
            &connection.rpc_user,
            &connection.rpc_password,
            &rpc.user,
            &rpc.password,
        ) {
            (Some(user), Some(password), _, _) => format!("{user}:{password}"),
            (_, _, Some(user), Some(password)) => format!("{user}:{password}"),
            _ => {
                let cookie = data_dir.join(COOKIE_FILE);
                let text = std::fs::read_to_string(&cookie).with_context(|| {
                    format!(
                        "cannot read the RPC cookie {}: is quarryd running on the {} network with this --datadir? \
                         Otherwise pass --rpc-user and --rpc-password",
                        cookie.display(),
                        params.name()
                    )
                })?;
                let text = text.trim().to_owned();
                if !text.starts_with(&format!("{COOKIE_USER}:")) {
                    bail!("{} is not a quarryd cookie file", cookie.display());
                }
                text
            }
        };
        Ok(Self {
            address,
            credentials,
        })
    }

    /// Calls `method` with positional `params`; a JSON-RPC error becomes [`CallError::Rpc`].
    pub fn call(&self, method: &str, params: Value) -> Result<Value, CallError> {
        let body = json!({ "jsonrpc": "1.0", "id": "quarry", "method": method, "params": params });
        let (_, mut reply) = self.post(&body)?;
        match reply.get("error") {
            Some(error) if !error.is_null() => Err(CallError::Rpc {
                code: error.get("code").and_then(Value::as_i64).unwrap_or(-1),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            }),
            _ => Ok(reply
                .get_mut("result")
                .map(Value::take)
                .unwrap_or(Value::Null)),
        }
    }

    /// Calls `method` and reads its result as `T`: a result of another shape is
    /// [`CallError::Reply`], naming the method and what did not fit.
    pub fn call_as<T: DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
    ) -> Result<T, CallError> {
        let result = self.call(method, params)?;
        T::deserialize(&result).map_err(|error| {
            let text = result.to_string();
            let excerpt: String = text.chars().take(200).collect();
            CallError::Reply(format!("{method} answered {excerpt}: {error}"))
        })
    }

    /// Posts `body` and returns the HTTP status and the parsed reply.
    pub fn post(&self, body: &Value) -> Result<(u16, Value), CallError> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(3_600)))
            .build()
            .into();
        let authorization = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(&self.credentials)
        );
        let mut response = agent
            .post(&format!("http://{}/", self.address))
            .header("Authorization", &authorization)
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .map_err(|error| CallError::Connect(error.to_string()))?;
        let status = response.status().as_u16();
        if status == 401 {
            return Err(CallError::Unauthorized);
        }
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|error| CallError::Connect(error.to_string()))?;
        let reply = serde_json::from_str(&text).map_err(|_| {
            CallError::Reply(format!(
                "HTTP {status}: {}",
                text.chars().take(200).collect::<String>()
            ))
        })?;
        Ok((status, reply))
    }
}

/// Why a call got no JSON-RPC answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Nothing answers at the address.
    #[error("could not connect to the server: {0}")]
    Connect(String),
    /// The credentials were refused.
    #[error("incorrect rpcuser or rpcpassword (authorization failed)")]
    Unauthorized,
    /// The answer is not JSON-RPC.
    #[error("unexpected reply: {0}")]
    Reply(String),
    /// The daemon answered with an error.
    #[error("{message} (RPC error {code})")]
    Rpc {
        /// Bitcoin Core's error code.
        code: i64,
        /// The daemon's message.
        message: String,
    },
}
