//! `quarry-wallet`: create or restore a wallet, hand out addresses, and see and move coins
//! through a running quarryd. See `quarry-wallet --help`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use quarry_chain::FeeRate;
use quarry_chain::{Address, Amount, Txid};
use quarry_rpc::{Connection, Endpoint, Location, Resolved};
use quarry_wallet::{Seed, Spend, Status, Wallet, WalletError};
use serde_json::json;
use zeroize::Zeroizing;

/// The environment variable a passphrase may come from (for scripts; prefer the prompt).
const PASSPHRASE_VARIABLE: &str = "QUARRY_WALLET_PASSPHRASE";

/// quarry-wallet: keys and coins of a Quarry wallet. The seed is kept encrypted in the wallet
/// file; balances and history come from quarryd's address index. Amounts are in coins with up
/// to 8 decimals.
#[derive(Debug, Parser)]
#[command(name = "quarry-wallet", version)]
struct Args {
    /// The node's network, data directory and configuration file.
    #[command(flatten)]
    location: Location,
    /// How to reach the node's RPC.
    #[command(flatten)]
    connection: Connection,
    /// The wallet file [default: <network data directory>/wallet.json].
    #[arg(long, value_name = "FILE", global = true)]
    wallet: Option<PathBuf>,
    /// Read the passphrase from the first line of this file instead of prompting (or set
    /// QUARRY_WALLET_PASSPHRASE).
    #[arg(long, value_name = "FILE", global = true)]
    passphrase_file: Option<PathBuf>,
    /// Print `balance`, `utxos` and `history` as JSON (amounts in coins, as quarryd's RPC).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Creates a wallet with a new random seed and shows its 24 words once: write them down.
    Create,
    /// Restores a wallet from its 24 words or 64 hex digits (prompted if not given).
    Restore {
        /// The seed: 24 words (in any case, numbered or not) or 64 hex digits; prompted for
        /// when absent, which keeps them out of the shell history.
        #[arg(value_name = "WORDS|HEX", conflicts_with = "seed")]
        words: Vec<String>,
        /// The seed as one argument (quoted words or hex).
        #[arg(long, value_name = "WORDS|HEX")]
        seed: Option<String>,
    },
    /// Addresses: `new` hands out a fresh one, `list` shows those handed out.
    Address {
        #[command(subcommand)]
        action: AddressAction,
    },
    /// Confirmed, unconfirmed and immature balance.
    Balance,
    /// Confirmed unspent outputs.
    Utxos,
    /// Pays AMOUNT coins to ADDRESS, showing the fee before signing.
    Send {
        /// The recipient.
        address: String,
        /// Coins, e.g. 1.5 or 0.00010000, or `all` for every spendable coin (less the fee).
        amount: String,
        /// Take the fee out of the amount: the recipient gets the amount less the fee.
        #[arg(long)]
        subtract_fee: bool,
        /// Fee rate in sats per byte.
        #[arg(long, default_value_t = 2)]
        fee_rate: u64,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Transactions with their confirmations and status (confirmed, unconfirmed, conflicted,
    /// replaced, dropped).
    History,
    /// Replaces an unconfirmed transaction of this wallet by one paying a higher fee, taken
    /// from its change (the node must accept replacements).
    BumpFee {
        /// The transaction.
        txid: String,
        /// The new fee rate in sats per byte (at least the old rate plus 1).
        #[arg(long)]
        fee_rate: Option<u64>,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AddressAction {
    /// Hands out a fresh address.
    New,
    /// Lists the addresses handed out.
    List,
}

fn passphrase(args: &Args, prompt: &str) -> anyhow::Result<Zeroizing<String>> {
    if let Some(path) = &args.passphrase_file {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the passphrase file {}", path.display()))?,
        );
        return Ok(Zeroizing::new(
            text.lines().next().unwrap_or_default().to_owned(),
        ));
    }
    if let Ok(value) = std::env::var(PASSPHRASE_VARIABLE) {
        return Ok(Zeroizing::new(value));
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("no passphrase: run in a terminal, or pass --passphrase-file or set {PASSPHRASE_VARIABLE}");
    }
    Ok(Zeroizing::new(
        rpassword::prompt_password(prompt).context("cannot read the passphrase")?,
    ))
}

fn new_passphrase(args: &Args) -> anyhow::Result<Zeroizing<String>> {
    let first = passphrase(args, "New wallet passphrase: ")?;
    if args.passphrase_file.is_none() && std::env::var(PASSPHRASE_VARIABLE).is_err() {
        let again = passphrase(args, "Repeat the passphrase: ")?;
        if *again != *first {
            return Err(WalletError::Passphrase("the two passphrases differ".into()).into());
        }
    }
    Ok(first)
}

fn confirm(question: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("cannot ask for confirmation without a terminal: pass --yes");
    }
    print!("{question} [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

fn signed(net_sats: i64) -> String {
    let amount = Amount::from_sat(net_sats.unsigned_abs());
    if net_sats < 0 {
        format!("-{amount}")
    } else {
        format!("+{amount}")
    }
}

fn fee_rate(sats_per_byte: u64) -> FeeRate {
    FeeRate::from_sat_per_kb(sats_per_byte.saturating_mul(1_000))
}

fn run(args: Args) -> anyhow::Result<()> {
    let resolved: Resolved = args.location.resolve()?;
    let params = resolved.params.clone();
    let path = args
        .wallet
        .clone()
        .unwrap_or_else(|| resolved.data_dir.join("wallet.json"));
    let node = || Endpoint::resolve(&resolved, &args.connection);
    match &args.command {
        Command::Create | Command::Restore { .. } => {
            let (seed, fresh) = match &args.command {
                Command::Restore {
                    seed: Some(text), ..
                } => (Seed::parse(text)?, false),
                Command::Restore { words, seed: None } if !words.is_empty() => {
                    (Seed::parse(&words.join(" "))?, false)
                }
                Command::Restore { seed: None, .. } => {
                    let text = Zeroizing::new(
                        rpassword::prompt_password("Seed words or hex: ")
                            .context("cannot read the seed")?,
                    );
                    (Seed::parse(&text)?, false)
                }
                _ => (Seed::generate(), true),
            };
            if path.exists() {
                return Err(WalletError::WalletExists { path }.into());
            }
            let passphrase = new_passphrase(&args)?;
            let wallet = Wallet::create(
                path.clone(),
                params.clone(),
                node().ok(),
                &seed,
                &passphrase,
            )?;
            println!("Wallet written to {}", path.display());
            if fresh {
                println!(
                    "\nWrite down these 24 words: they restore the wallet if the file is lost."
                );
                println!(
                    "Anyone who has them can spend its coins.\n\n{}\n",
                    *seed.numbered_words()
                );
            }
            println!(
                "First address: {}",
                wallet.file.issued_addresses(&params)[0]
            );
        }
        Command::Address { action } => {
            let mut wallet = Wallet::open(path, params.clone(), node().ok())?;
            match action {
                AddressAction::New => {
                    match wallet.skip_used_keys() {
                        Ok(0) => {}
                        Ok(skipped) => eprintln!(
                            "note: {skipped} more addresses of this seed are already in use on the chain (a restored wallet); skipped them"
                        ),
                        Err(error) => eprintln!(
                            "warning: cannot ask the node which addresses are in use ({error}); the new address may have been handed out by another copy of this wallet"
                        ),
                    }
                    let key = match wallet.file.issue() {
                        Some(key) => key,
                        None => {
                            let seed = wallet.file.unlock(&passphrase(
                                &args,
                                "Passphrase (to derive more keys): ",
                            )?)?;
                            wallet.file.extend_pool(&seed);
                            wallet.file.issue().expect("the pool was just extended")
                        }
                    };
                    wallet.save()?;
                    println!("{}", Address::new(key, &params));
                }
                AddressAction::List => {
                    for (index, address) in wallet.file.issued_addresses(&params).iter().enumerate()
                    {
                        println!("{index:>4}  {address}");
                    }
                }
            }
        }
        Command::Balance => {
            let wallet = Wallet::open(path, params, Some(node()?))?;
            let balance = wallet.balance()?;
            let total =
                Amount::checked_sum([balance.confirmed, balance.unconfirmed, balance.immature])
                    .unwrap_or(Amount::MAX_MONEY);
            if args.json {
                print_json(&json!({
                    "confirmed": coins(balance.confirmed),
                    "unconfirmed": coins(balance.unconfirmed),
                    "immature": coins(balance.immature),
                    "total": coins(total),
                }));
                return Ok(());
            }
            println!("confirmed    {:>20}", balance.confirmed.to_string());
            println!("unconfirmed  {:>20}", balance.unconfirmed.to_string());
            println!("immature     {:>20}", balance.immature.to_string());
            println!("total        {:>20}", total.to_string());
        }
        Command::Utxos => {
            let wallet = Wallet::open(path, params.clone(), Some(node()?))?;
            let wallet_coins = wallet.coins()?;
            if args.json {
                let listed: Vec<_> = wallet_coins
                    .iter()
                    .map(|coin| {
                        json!({
                            "txid": coin.outpoint.txid.to_string(),
                            "vout": coin.outpoint.vout,
                            "amount": coins(coin.output.value),
                            "address": Address::new(coin.output.pubkey, &params).to_string(),
                            "height": coin.height,
                            "confirmations": coin.confirmations,
                            "coinbase": coin.coinbase,
                            "mature": coin.mature,
                        })
                    })
                    .collect();
                print_json(&json!(listed));
                return Ok(());
            }
            let coins = wallet_coins;
            println!(
                "{:<70}  {:>18}  {:>6}  {:<9}  address",
                "outpoint", "amount", "conf", "state"
            );
            for coin in coins {
                let state = match (coin.coinbase, coin.mature) {
                    (true, false) => "immature",
                    (true, true) => "coinbase",
                    _ => "",
                };
                println!(
                    "{:<70}  {:>18}  {:>6}  {:<9}  {}",
                    coin.outpoint.to_string(),
                    coin.output.value.to_string(),
                    coin.confirmations,
                    state,
                    Address::new(coin.output.pubkey, &params)
                );
            }
        }
        Command::Send {
            address,
            amount,
            subtract_fee,
            fee_rate: rate,
            yes,
        } => {
            let to = Address::parse(address, &params)?;
            let spend = match (amount.as_str(), subtract_fee) {
                ("all", _) => Spend::All,
                (text, false) => Spend::Amount(text.parse().map_err(WalletError::from)?),
                (text, true) => Spend::FeeIncluded(text.parse().map_err(WalletError::from)?),
            };
            let mut wallet = Wallet::open(path, params, Some(node()?))?;
            let payment = wallet.plan(&to, spend, fee_rate(*rate))?;
            let amount = payment.amount;
            println!("pay       {amount} coins to {to}");
            println!(
                "fee       {} coins ({} bytes at {rate} sat/byte)",
                payment.fee, payment.size
            );
            match payment.change {
                Some((change, _)) => println!("change    {change} coins back to this wallet"),
                None => println!("change    none (the remainder is part of the fee)"),
            }
            println!("inputs    {} coin(s)", payment.coins.len());
            if let Some(warning) = quarry_wallet::payment::fee_warning(amount, payment.fee, *rate) {
                println!("warning   {warning}");
            }
            if !yes && !confirm("Sign and send?")? {
                return Err(WalletError::Cancelled.into());
            }
            let seed = wallet.file.unlock(&passphrase(&args, "Passphrase: ")?)?;
            let txid = wallet.send(&payment, &seed)?;
            println!("{txid}");
        }
        Command::History => {
            let mut wallet = Wallet::open(path, params, Some(node()?))?;
            let history = wallet.history()?;
            if args.json {
                let listed: Vec<_> = history
                    .iter()
                    .map(|entry| {
                        let (confirmations, replaced_by) = match entry.status {
                            Status::Confirmed(n) => (n, None),
                            Status::Replaced(by) => (0, Some(by.to_string())),
                            _ => (0, None),
                        };
                        json!({
                            "txid": entry.txid.to_string(),
                            "amount": entry.net_sats as f64 / Amount::SATS_PER_COIN as f64,
                            "confirmations": confirmations,
                            "height": entry.block.map(|block| block.height),
                            "time": entry.block.map(|block| block.time),
                            "status": status_name(entry.status),
                            "replaced_by": replaced_by,
                        })
                    })
                    .collect();
                print_json(&json!(listed));
                return Ok(());
            }
            println!(
                "{:<64}  {:>20}  {:>6}  {:>7}  {:<16}  status",
                "txid", "amount", "conf", "height", "date (UTC)"
            );
            for entry in history {
                let confirmations = match entry.status {
                    Status::Confirmed(n) => n.to_string(),
                    _ => "0".into(),
                };
                let (height, date) = match entry.block {
                    Some(block) => (block.height.to_string(), utc_minute(block.time)),
                    None => ("-".into(), "-".into()),
                };
                println!(
                    "{}  {:>20}  {:>6}  {height:>7}  {date:<16}  {}",
                    entry.txid,
                    signed(entry.net_sats),
                    confirmations,
                    entry.status
                );
            }
        }
        Command::BumpFee {
            txid,
            fee_rate: rate,
            yes,
        } => {
            let txid: Txid = txid
                .parse()
                .map_err(|_| anyhow::anyhow!("'{txid}' is not a transaction id (64 hex digits)"))?;
            let mut wallet = Wallet::open(path, params, Some(node()?))?;
            if !yes && !confirm(&format!("Replace {txid} with a higher fee?"))? {
                return Err(WalletError::Cancelled.into());
            }
            let seed = wallet.file.unlock(&passphrase(&args, "Passphrase: ")?)?;
            let (new_txid, old_fee, new_fee) =
                wallet.bump_fee(txid, fee_rate(rate.unwrap_or(0)), &seed)?;
            println!("fee {old_fee} -> {new_fee} coins");
            println!("{new_txid}");
        }
    }
    Ok(())
}

/// An amount in coins as a JSON number, as quarryd's RPC writes it.
fn coins(amount: Amount) -> serde_json::Value {
    quarry_rpc::types::coins::serialize(&amount, serde_json::value::Serializer)
        .expect("an amount serialises")
}

/// `seconds` since the Unix epoch as `YYYY-MM-DD HH:MM` in UTC (Howard Hinnant's
/// days-to-civil algorithm: no time zone database needed for UTC).
fn utc_minute(seconds: u32) -> String {
    let days = i64::from(seconds / 86_400);
    let minute_of_day = seconds % 86_400 / 60;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        minute_of_day / 60,
        minute_of_day % 60
    )
}

/// A status as one word, for scripts.
fn status_name(status: Status) -> &'static str {
    match status {
        Status::Confirmed(_) => "confirmed",
        Status::Unconfirmed => "unconfirmed",
        Status::Replaced(_) => "replaced",
        Status::Conflicted => "conflicted",
        Status::Dropped => "dropped",
    }
}

fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("JSON values serialize")
    );
}

fn main() -> ExitCode {
    quarry_rpc::cli::exit_quietly_on_closed_pipe();
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", quarry_rpc::cli::describe(&error));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::utc_minute;

    #[test]
    fn dates_are_utc_calendar_minutes() {
        assert_eq!(utc_minute(0), "1970-01-01 00:00");
        assert_eq!(utc_minute(951_782_400), "2000-02-29 00:00");
        assert_eq!(utc_minute(1_796_083_199), "2026-11-30 23:59");
        assert_eq!(utc_minute(u32::MAX), "2106-02-07 06:28");
    }
}
