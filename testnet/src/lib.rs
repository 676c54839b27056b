//! Quarry's local testnets and attack scenarios: the analytic side lives here, the processes
//! in the `quarry-testnet` binary.

pub mod analysis;
pub mod attack;
pub mod cluster;
pub mod commands;
pub mod delay;
pub mod docker;
pub mod engine;
pub mod engine_check;
pub mod experiment;
pub mod export;
pub mod image;
pub mod params;
pub mod plot;
pub mod reconverge;
pub mod report;
pub mod scenario;
pub mod selfcheck;
pub mod selfish_nodes;
pub mod selfish_report;
pub mod status;
pub mod zero_conf;
