//! Real nodes against the virtual-time engine: the same double-spend grid run on both, each
//! rate with its 95% interval beside the exact value, and whether the two rates agree (the 95%
//! interval of their difference holds 0).

use std::fmt::Write;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::analysis::difference_interval;
use crate::engine::EngineKind;
use crate::experiment::{double_spend, AttackRun};
use crate::report::{rate_cells, table, Row, Style};

/// One grid point, measured on both engines.
#[derive(Clone, Debug, Serialize)]
pub struct CheckRow {
    /// The attacker's share.
    pub q: f64,
    /// On real nodes.
    pub nodes: Row,
    /// In the engine.
    pub sim: Row,
    /// The 95% interval of nodes' rate minus the engine's.
    pub difference: (f64, f64),
    /// Whether the difference's interval holds 0.
    pub agree: bool,
}

/// Runs `run` (its engine and trial count ignored) at every share of `shares` on real nodes
/// with `node_trials` trials per point and in the engine with `sim_trials`, reports in
/// `run.report/q-Q/{nodes,sim}`.
pub fn check(
    run: &AttackRun,
    shares: &[f64],
    node_trials: u32,
    sim_trials: u32,
) -> Result<Vec<CheckRow>> {
    let mut rows = Vec::new();
    for &q in shares {
        let point = run.report.join(format!("q-{q}"));
        let on = |engine: EngineKind, trials: u32, dir: &Path| -> Result<Vec<Row>> {
            let mut settings = run.settings;
            settings.q = q;
            eprintln!(
                "q = {q}: {trials} trials per z on {}",
                match engine {
                    EngineKind::Nodes => "real nodes",
                    EngineKind::Sim => "the engine",
                }
            );
            let report = double_spend(&AttackRun {
                settings,
                trials,
                engine,
                report: dir.to_owned(),
                parallel: match engine {
                    EngineKind::Nodes => run.parallel,
                    EngineKind::Sim => {
                        std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
                    }
                },
                ..run.clone()
            })?;
            Ok(report.rows)
        };
        let nodes = on(EngineKind::Nodes, node_trials, &point.join("nodes"))?;
        let sim = on(EngineKind::Sim, sim_trials, &point.join("sim"))?;
        for (nodes, sim) in nodes.into_iter().zip(sim) {
            let difference =
                difference_interval((nodes.reversed, nodes.trials), (sim.reversed, sim.trials));
            rows.push(CheckRow {
                q,
                agree: difference.0 <= 0.0 && 0.0 <= difference.1,
                difference,
                nodes,
                sim,
            });
        }
    }
    std::fs::write(
        run.report.join("check.json"),
        serde_json::to_string_pretty(&rows)?,
    )?;
    Ok(rows)
}

/// The grid as a table, and a line on whether every point agreed.
pub fn summary(rows: &[CheckRow], style: Style) -> String {
    let headers = [
        "q",
        "z",
        "nodes: trials",
        "rate",
        "95% interval",
        "engine: trials",
        "rate",
        "95% interval",
        "exact",
        "difference (95%)",
        "agree",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let [nodes_rate, nodes_interval, exact] = rate_cells(
                row.nodes.rate,
                row.nodes.interval,
                row.nodes.exact,
                row.nodes.exact_outside_interval || row.sim.exact_outside_interval,
            );
            let [sim_rate, sim_interval, _] =
                rate_cells(row.sim.rate, row.sim.interval, row.sim.exact, false);
            vec![
                format!("{:.2}", row.q),
                row.nodes.z.to_string(),
                row.nodes.trials.to_string(),
                nodes_rate,
                nodes_interval,
                row.sim.trials.to_string(),
                sim_rate,
                sim_interval,
                exact,
                format!("[{:+.3}, {:+.3}]", row.difference.0, row.difference.1),
                if row.agree { "yes" } else { "NO ⚠" }.to_owned(),
            ]
        })
        .collect();
    let mut text = table(&headers, &cells, style);
    let disagreeing = rows.iter().filter(|row| !row.agree).count();
    let _ = writeln!(
        text,
        "\n{}",
        if disagreeing == 0 {
            format!(
                "real nodes and the engine agree at all {} points (the 95% interval of the \
                 difference of their rates holds 0)",
                rows.len()
            )
        } else {
            format!(
                "⚠ real nodes and the engine disagree at {disagreeing} of {} points (reported \
                 as measured; at 95% about one point in twenty disagrees by chance)",
                rows.len()
            )
        }
    );
    text
}
