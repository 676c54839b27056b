//! `quarry-cli`: calls a running `quarryd` over JSON-RPC, finding its cookie the way
//! bitcoin-cli finds bitcoind's, and prints the result.

use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Parser;
use serde_json::{json, Map, Value};

use crate::endpoint::{CallError, Connection, Endpoint};
use crate::location::{Location, Resolved};

/// Calls a method of a running quarryd and prints the result as JSON (strings as they are).
/// `quarry-cli help` lists the methods; `quarry-cli help METHOD` describes one.
#[derive(Debug, Parser)]
#[command(name = "quarry-cli", version)]
pub struct Args {
    /// The daemon's network, data directory and configuration file (for its cookie and port).
    #[command(flatten)]
    pub location: Location,
    /// How to reach the daemon's RPC.
    #[command(flatten)]
    pub connection: Connection,
    /// Wait up to this many seconds for the daemon to answer (it may be starting).
    #[arg(long, value_name = "SECONDS")]
    pub rpc_wait: Option<u64>,
    /// Pass arguments by name: `name=value`.
    #[arg(long)]
    pub named: bool,
    /// The method.
    pub method: String,
    /// Its arguments: JSON values (numbers, true/false, arrays, objects) or plain strings.
    pub args: Vec<String>,
}

/// An argument as JSON: numbers, booleans, null, arrays and objects are parsed; anything else
/// (hashes, addresses, hex) is a string. Long digit strings stay strings, so a hash made only
/// of digits is not read as a number.
pub fn argument(text: &str) -> Value {
    let looks_json = matches!(text, "true" | "false" | "null")
        || text.starts_with(['[', '{', '"'])
        || (text.len() < 20 && text.parse::<f64>().is_ok());
    if looks_json {
        if let Ok(value) = serde_json::from_str(text) {
            return value;
        }
    }
    Value::String(text.to_owned())
}

/// The request body for `method` with `args` (positional, or `name=value` when `named`).
pub fn request(method: &str, args: &[String], named: bool) -> anyhow::Result<Value> {
    let params = if named {
        let mut object = Map::new();
        for arg in args {
            let Some((name, value)) = arg.split_once('=') else {
                bail!("with --named, arguments are name=value, not '{arg}'");
            };
            object.insert(name.to_owned(), argument(value));
        }
        Value::Object(object)
    } else {
        args.iter().map(|arg| argument(arg)).collect()
    };
    Ok(json!({ "jsonrpc": "1.0", "id": "quarry-cli", "method": method, "params": params }))
}

/// An error and its causes on one line, for a person: `context: cause: cause`, leaving out a
/// cause whose text the line already holds (many errors print their source in their own
/// message, and `{:#}` would then say it twice).
pub fn describe(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Lets a closed pipe end the process quietly, as Unix tools do (`quarry-cli … | head`): Rust
/// ignores SIGPIPE, so a write to a closed pipe would fail and `println!` panic instead. For
/// command-line tools only: they talk to sockets through the standard library, which never
/// raises SIGPIPE on them.
pub fn exit_quietly_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: sets the default disposition of one signal, at start-up, before any thread runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Runs quarry-cli; returns the process exit code.
pub fn run(args: Args) -> u8 {
    let endpoint = match args
        .location
        .resolve()
        .and_then(|resolved: Resolved| Endpoint::resolve(&resolved, &args.connection))
    {
        Ok(endpoint) => endpoint,
        Err(error) => {
            eprintln!("error: {}", describe(&error));
            return 1;
        }
    };
    let body = match request(&args.method, &args.args, args.named) {
        Ok(body) => body,
        Err(error) => {
            eprintln!("error: {}", describe(&error));
            return 1;
        }
    };
    let deadline = Instant::now() + Duration::from_secs(args.rpc_wait.unwrap_or(0));
    let reply = loop {
        match endpoint.post(&body) {
            Err(CallError::Connect(_)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(CallError::Connect(error)) => {
                eprintln!(
                    "error: could not connect to the server {} ({error})\n\n\
                     Make sure quarryd is running and that you are connecting to the correct RPC port \
                     (--rpc-connect, --network).",
                    endpoint.address
                );
                return 1;
            }
            Err(error) => {
                eprintln!("error: {error}");
                return 1;
            }
            Ok((_, reply)) => break reply,
        }
    };
    match (reply.get("error"), reply.get("result")) {
        (Some(error), _) if !error.is_null() => {
            let code = error.get("code").and_then(Value::as_i64).unwrap_or(-1);
            let message = error.get("message").and_then(Value::as_str).unwrap_or("");
            eprintln!("error code: {code}\nerror message:\n{message}");
            u8::try_from(code.unsigned_abs().min(255))
                .unwrap_or(1)
                .max(1)
        }
        (_, Some(Value::String(text))) => {
            println!("{text}");
            0
        }
        (_, Some(Value::Null)) | (_, None) => 0,
        (_, Some(result)) => {
            println!("{}", crate::plain_json::to_pretty_text(result));
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_json_where_they_look_like_it_and_strings_otherwise() {
        assert_eq!(argument("12"), json!(12));
        assert_eq!(argument("true"), json!(true));
        assert_eq!(argument("[1,\"a\"]"), json!([1, "a"]));
        assert_eq!(argument("{\"addresses\":[]}"), json!({"addresses": []}));
        assert_eq!(argument("qrt1pabc"), json!("qrt1pabc"));
        let digits = "1".repeat(64);
        assert_eq!(argument(&digits), json!(digits));
        assert_eq!(argument("00ff"), json!("00ff"));
        assert_eq!(argument("[broken"), json!("[broken"));
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        #[derive(Debug, thiserror::Error)]
        #[error("\"21000001\" is not an amount of coins: more than 21,000,000 coins")]
        struct Cause;
        #[derive(Debug, thiserror::Error)]
        #[error("invalid amount: {0}")]
        struct Wrapper(#[from] Cause);
        let error = anyhow::Error::new(Wrapper(Cause));
        assert_eq!(
            describe(&error),
            "invalid amount: \"21000001\" is not an amount of coins: more than 21,000,000 coins"
        );
        let error = anyhow::Error::new(Cause).context("cannot send");
        assert_eq!(
            describe(&error),
            "cannot send: \"21000001\" is not an amount of coins: more than 21,000,000 coins"
        );
    }

    #[test]
    fn named_arguments_make_an_object() {
        let body = request(
            "getblock",
            &["blockhash=00ab".into(), "verbosity=2".into()],
            true,
        )
        .unwrap();
        assert_eq!(body["params"], json!({"blockhash": "00ab", "verbosity": 2}));
        assert!(request("getblock", &["nope".into()], true).is_err());
        let body = request("getblockhash", &["7".into()], false).unwrap();
        assert_eq!(body["params"], json!([7]));
        assert_eq!(body["method"], json!("getblockhash"));
    }
}
