//! Quarry's local testnets and attack scenarios: the analytic side lives here, the processes
//! in the `quarry-testnet` binary.

pub mod analysis;
