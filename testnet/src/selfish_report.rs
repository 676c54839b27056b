//! The selfish-mining report: one row per attacker share with the measured revenue and γ beside
//! Eyal and Sirer's closed form, the revenue before and after retargeting, and the plot of
//! revenue share against α.

use std::fmt::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::engine::selfish::{Retarget, SelfishResult, RETARGET_BLOCKS};
use crate::engine::EngineKind;
use crate::report::{table, wrap, Style};

/// A selfish-mining run over several attacker shares.
#[derive(Clone, Debug, Serialize)]
pub struct SelfishReport {
    /// One result per attacker share, in the order asked.
    pub results: Vec<SelfishResult>,
    /// Wall-clock seconds the run took.
    pub wall_seconds: f64,
    /// The run's seed (each share's run draws from [`crate::engine::trial_seed`] of it).
    pub seed: u64,
}

impl SelfishReport {
    /// Whether any closed-form value lies outside its measured interval.
    pub fn any_outside(&self) -> bool {
        self.results.iter().any(outside)
    }
}

fn outside(result: &SelfishResult) -> bool {
    let (low, high) = result.revenue_share.interval;
    result.closed_form < low || result.closed_form > high
}

const LEGEND: &[&str] = &[
    "α measured: the attacker's share of all blocks mined (orphaned ones included)",
    "γ measured: of the races after a tie that an honest block decided, the share decided on the \
     attacker's block, with its Wilson interval",
    "revenue share: the attacker's share of the main chain (Eyal and Sirer's relative revenue), \
     with a 95% batch-means interval (20 consecutive batches of the chain)",
    "closed form: Eyal and Sirer's revenue for the measured α and γ; ⚠ when outside the interval",
    "pays above: the threshold α = (1-γ)/(3-2γ) beyond which selfish mining beats honest mining",
    "per interval: the attacker's main-chain blocks per planned block interval (honest mining earns \
     α per interval once the difficulty matches the hash rate)",
];

/// The results as a table, the retargeting windows and the legend.
pub fn summary(report: &SelfishReport, style: Style) -> String {
    let headers = [
        "α",
        "α measured",
        "γ measured",
        "revenue share",
        "95% interval",
        "closed form",
        "pays above",
        "orphaned honest",
        "orphaned attacker",
        "per interval",
    ];
    let rows: Vec<Vec<String>> = report
        .results
        .iter()
        .map(|result| {
            let gamma = result.gamma_measured.map_or_else(
                || "- (no race)".to_owned(),
                |gamma| {
                    format!(
                        "{:.3} [{:.3}, {:.3}]",
                        gamma.value, gamma.interval.0, gamma.interval.1
                    )
                },
            );
            let share = result.revenue_share;
            let rate = result.revenue_per_interval;
            vec![
                format!("{:.3}", result.settings.alpha),
                format!("{:.3}", result.alpha_measured),
                gamma,
                format!("{:.4}", share.value),
                format!("[{:.4}, {:.4}]", share.interval.0, share.interval.1),
                format!(
                    "{:.4}{}",
                    result.closed_form,
                    if outside(result) { " ⚠" } else { "" }
                ),
                format!("{:.3}", result.threshold),
                result.honest_orphaned.to_string(),
                result.attacker_orphaned.to_string(),
                rate.map_or_else(
                    || "- (too short)".to_owned(),
                    |rate| {
                        format!(
                            "{:.3} [{:.3}, {:.3}]",
                            rate.value, rate.interval.0, rate.interval.1
                        )
                    },
                ),
            ]
        })
        .collect();
    let mut text = String::new();
    if let Some(first) = report.results.first() {
        let settings = first.settings;
        let place = match settings.engine {
            EngineKind::Sim => format!("in the virtual-time engine (seed {})", report.seed),
            EngineKind::Nodes => "on real nodes".to_owned(),
        };
        let _ = writeln!(
            text,
            "selfish mining {place}: {} main-chain blocks per share, {} honest nodes ({} hear \
             the attacker first, γ asked {:.2}), retargeting {}; {:.1} s",
            settings.blocks,
            first.honest_nodes,
            first.near_nodes,
            settings.gamma,
            match settings.retarget {
                Retarget::Off => "off".to_owned(),
                Retarget::Asert => format!("ASERT (half-life {RETARGET_BLOCKS} intervals)"),
                Retarget::Epoch => format!("every {RETARGET_BLOCKS} blocks (Bitcoin's rule)"),
            },
            report.wall_seconds
        );
    }
    let _ = write!(text, "\n{}", table(&headers, &rows, style));
    let windows: Vec<Vec<String>> = report
        .results
        .iter()
        .flat_map(|result| {
            result.windows.iter().map(|window| {
                vec![
                    format!("{:.3}", result.settings.alpha),
                    window.label.clone(),
                    format!("{}-{}", window.heights.0, window.heights.1),
                    format!("{:.3}", window.blocks_per_interval),
                    format!("{:.3}", window.attacker_per_interval),
                    format!("{:.3}", result.settings.alpha),
                ]
            })
        })
        .collect();
    if !windows.is_empty() {
        let _ = writeln!(
            text,
            "\nrevenue per unit time, before and after the difficulty follows the orphaned blocks:"
        );
        let headers = [
            "α",
            "stretch",
            "heights",
            "blocks per interval",
            "attacker's per interval",
            "honest mining",
        ];
        let _ = write!(text, "{}", table(&headers, &windows, style));
    }
    if report.any_outside() {
        let _ = writeln!(
            text,
            "\n{}",
            wrap(
                "⚠ the closed form lies outside the measured 95% interval for the flagged rows \
                 (reported as measured, not adjusted).",
                96
            )
        );
    }
    let bullet = if style == Style::Markdown { "- " } else { "  " };
    let _ = writeln!(text);
    for line in LEGEND {
        for (i, part) in wrap(line, 94).lines().enumerate() {
            let _ = writeln!(text, "{}{part}", if i == 0 { bullet } else { "  " });
        }
    }
    text
}

/// Writes `report.json`, `report.md` and `revenue.svg` into `dir`.
pub fn write(report: &SelfishReport, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(report)?,
    )?;
    std::fs::write(
        dir.join("revenue.svg"),
        crate::plot::revenue_plot_svg(report),
    )?;
    std::fs::write(
        dir.join("report.md"),
        format!(
            "# Selfish mining\n\n{}\n![revenue share against attacker share](revenue.svg)\n",
            summary(report, Style::Markdown)
        ),
    )?;
    Ok(())
}
