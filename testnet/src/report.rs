//! The attack report: a terminal summary, and a folder with the JSON data, a markdown summary
//! and the SVG plots of [`crate::plot`].

use std::fmt::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::analysis::{exact, nakamoto, wilson_interval, AttackModel};
use crate::attack::{measured_share, successes, AttackSettings, Trial};
use crate::engine::EngineKind;
use quarry_chain::PowMode;

/// The results for one number of confirmations.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Confirmations.
    pub z: u32,
    /// Trials run.
    pub trials: u64,
    /// Payments reversed after delivery.
    pub reversed: u64,
    /// Measured success rate.
    pub rate: f64,
    /// Its 95% Wilson interval.
    pub interval: (f64, f64),
    /// Nakamoto's estimate.
    pub nakamoto: f64,
    /// The exact probability of the model run (pre-mine and give-up bound included).
    pub exact: f64,
    /// The exact probability without the give-up bound.
    pub exact_unbounded: f64,
    /// Whether the exact value lies outside the interval.
    pub exact_outside_interval: bool,
    /// Mean depth of the reorganisations that reversed a payment.
    pub mean_reorg_depth: f64,
    /// Trials where the attacker published a heavier branch and the payment still stood (a
    /// block in flight when the honest miner paused): the whitepaper's race says reversed.
    pub published_but_stood: u64,
}

/// Everything a run produced.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The settings.
    pub settings: AttackSettings,
    /// The attacker's share of blocks mined during the races, as measured.
    pub measured_share: Option<f64>,
    /// One row per number of confirmations.
    pub rows: Vec<Row>,
    /// Every trial.
    pub trials: Vec<Trial>,
    /// The model, in words.
    pub model: String,
    /// Wall-clock seconds the run took (all testnets together).
    pub wall_seconds: Option<f64>,
    /// Attack testnets (or engine threads) that ran side by side.
    pub testnets: u32,
    /// Real nodes or the virtual-time engine.
    pub engine: EngineKind,
    /// The engine's seed.
    pub seed: Option<u64>,
    /// Each real-node testnet's network and its simulated miners' seeds.
    pub testnet_seeds: Vec<TestnetSeeds>,
    /// The image the real nodes ran, when they ran in Docker containers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// Where real nodes ran, for a report: "real nodes", or "real nodes in Docker containers (IMAGE)".
pub fn real_nodes(image: Option<&str>) -> String {
    match image {
        Some(image) => format!("real nodes in Docker containers ({image})"),
        None => "real nodes".to_owned(),
    }
}

/// What a real-node testnet of a run drew its blocks from: its network (the genesis, which the
/// start time and instance fix) and each node's simulated-miner seed.
#[derive(Clone, Debug, Serialize)]
pub struct TestnetSeeds {
    /// Which testnet of the run.
    pub instance: u32,
    /// Its genesis block.
    pub genesis: String,
    /// Each node's name and miner seed.
    pub miners: Vec<(String, u64)>,
}

/// The model statement printed with every report.
pub fn model_text(settings: &AttackSettings) -> String {
    format!(
        "The attacker forks from the tip before paying; the block holding the payment is the first \
         confirmation; the merchant delivers at z confirmations; the attacker {} pre-mine a block \
         before paying; it publishes its branch once it has strictly more work than the honest chain \
         after delivery (on real nodes a tie does not reorganise a node that saw the honest block \
         first) and gives up {} blocks behind. {} {}",
        if settings.premined { "does" } else { "does not" },
        settings.give_up_behind,
        if settings.retarget {
            "Difficulty retargeting (ASERT) stays on: the branches' blocks may differ in work, so \
             more work is not always more blocks (the analytic model counts blocks)."
                .to_owned()
        } else if settings.speedup > 1 {
            format!(
                "Retargeting is off: every block has the same work, as the analytic model \
                 assumes; blocks came {}× faster than the spacing.",
                settings.speedup
            )
        } else {
            "Retargeting is off: every block has the same work, as the analytic model assumes."
                .to_owned()
        },
        match settings.pow {
            PowMode::Real => "Proof of work is real hashing, each miner capped to its share \
                              (shares are approximate: CPU contention, caps).",
            PowMode::Simulated => "Proof of work is simulated: each miner finds blocks as a \
                                   Poisson process at its share of the hash rate (exact shares).",
        }
    )
}

/// Builds the report from the trials.
pub fn build(settings: AttackSettings, trials: Vec<Trial>) -> Report {
    let mut zs: Vec<u32> = trials.iter().map(|trial| trial.z).collect();
    zs.sort_unstable();
    zs.dedup();
    let rows = zs
        .into_iter()
        .map(|z| {
            let these: Vec<Trial> = trials
                .iter()
                .filter(|trial| trial.z == z)
                .cloned()
                .collect();
            let reversed = successes(&these);
            let count = these.len() as u64;
            let interval = wilson_interval(reversed, count);
            let model = AttackModel {
                q: settings.q,
                z,
                premined: settings.premined,
                give_up_behind: Some(settings.give_up_behind),
            };
            let exact_value = exact(model);
            let depths: Vec<u32> = these
                .iter()
                .filter(|t| t.reversed)
                .map(|t| t.reorg_depth)
                .collect();
            Row {
                z,
                trials: count,
                reversed,
                rate: reversed as f64 / count.max(1) as f64,
                interval,
                nakamoto: nakamoto(settings.q, z),
                exact: exact_value,
                exact_unbounded: exact(AttackModel {
                    give_up_behind: None,
                    ..model
                }),
                exact_outside_interval: exact_value < interval.0 || exact_value > interval.1,
                published_but_stood: these.iter().filter(|t| t.published && !t.reversed).count()
                    as u64,
                mean_reorg_depth: if depths.is_empty() {
                    0.0
                } else {
                    f64::from(depths.iter().sum::<u32>()) / depths.len() as f64
                },
            }
        })
        .collect();
    Report {
        measured_share: measured_share(&trials),
        model: model_text(&settings),
        settings,
        rows,
        trials,
        wall_seconds: None,
        testnets: 1,
        engine: EngineKind::Nodes,
        seed: None,
        testnet_seeds: Vec::new(),
        image: None,
    }
}

/// How a summary is laid out.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Style {
    /// Columns aligned with spaces, for a terminal.
    Terminal,
    /// A markdown table, for `report.md`.
    Markdown,
}

/// `rows` under `headers` as aligned columns (numbers to the right) or as a markdown table.
pub fn table(headers: &[&str], rows: &[Vec<String>], style: Style) -> String {
    let mut text = String::new();
    match style {
        Style::Markdown => {
            let _ = writeln!(text, "| {} |", headers.join(" | "));
            let _ = writeln!(text, "|{}", "---|".repeat(headers.len()));
            for row in rows {
                let _ = writeln!(text, "| {} |", row.join(" | "));
            }
        }
        Style::Terminal => {
            let width = |column: usize| {
                rows.iter()
                    .map(|row| row[column].chars().count())
                    .chain([headers[column].chars().count()])
                    .max()
                    .unwrap_or(0)
            };
            let widths: Vec<usize> = (0..headers.len()).map(width).collect();
            let line = |cells: Vec<&str>| {
                let padded: Vec<String> = cells
                    .iter()
                    .zip(&widths)
                    .map(|(cell, width)| format!("{cell:>width$}"))
                    .collect();
                padded.join("  ")
            };
            let _ = writeln!(text, "{}", line(headers.to_vec()));
            let rule: Vec<String> = widths.iter().map(|width| "-".repeat(*width)).collect();
            let _ = writeln!(text, "{}", line(rule.iter().map(String::as_str).collect()));
            for row in rows {
                let _ = writeln!(text, "{}", line(row.iter().map(String::as_str).collect()));
            }
        }
    }
    text
}

/// `text` broken into lines of at most `width` characters, at spaces.
pub fn wrap(text: &str, width: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_owned()),
        }
    }
    lines.join("\n")
}

/// What each column of the summary means, one line each.
const LEGEND: &[&str] = &[
    "rate: the share of trials in which the merchant's payment was reversed, with its 95% Wilson interval",
    "exact (this model): the probability of a reversal under the rules below, give-up bound included",
    "exact, no give-up: the same attacker never giving up (Grunspan and Pérez-Marco's closed form)",
    "Nakamoto: the whitepaper's Poisson approximation of the same race",
    "mean reorg depth: blocks the merchant's node disconnected in the reversed trials",
    "measured share: the attacker's blocks among both branches' during the races; the stopping \
     rule (publish when ahead, give up when behind) and a pre-mined block bias it, and with real \
     hashing so do CPU contention and the caps",
];

/// A measured rate, its 95% interval and the model's value as table cells, the model flagged
/// (⚠) when outside the interval.
pub fn rate_cells(rate: f64, interval: (f64, f64), model: f64, outside: bool) -> [String; 3] {
    let flag = if outside { " ⚠" } else { "" };
    [
        format!("{rate:.3}"),
        format!("[{:.3}, {:.3}]", interval.0, interval.1),
        format!("{model:.4}{flag}"),
    ]
}

/// The summary: measured share and pace, the table per z, what the columns mean and the model.
pub fn summary(report: &Report, style: Style) -> String {
    let mut text = String::new();
    let share = report
        .measured_share
        .map_or_else(|| "-".into(), |share| format!("{share:.3}"));
    let _ = writeln!(
        text,
        "attacker share asked {:.3}, measured {share} (blocks of both branches during the races)",
        report.settings.q
    );
    let seconds = report
        .wall_seconds
        .unwrap_or_else(|| report.trials.iter().map(|trial| trial.seconds).sum());
    if seconds > 0.0 {
        let place = match report.engine {
            EngineKind::Nodes => format!(
                "{} testnet(s) of {}",
                report.testnets,
                real_nodes(report.image.as_deref())
            ),
            EngineKind::Sim => format!(
                "the virtual-time engine ({} thread(s), seed {})",
                report.testnets,
                report.seed.unwrap_or_default()
            ),
        };
        let _ = writeln!(
            text,
            "{} trials in {:.1} s on {place}: {:.1} trials per minute",
            report.trials.len(),
            seconds,
            report.trials.len() as f64 * 60.0 / seconds
        );
    }
    let headers = [
        "z",
        "trials",
        "reversed",
        "rate",
        "95% interval",
        "exact (this model)",
        "exact, no give-up",
        "Nakamoto",
        "mean reorg depth",
    ];
    let rows: Vec<Vec<String>> = report
        .rows
        .iter()
        .map(|row| {
            let [rate, interval, exact] = rate_cells(
                row.rate,
                row.interval,
                row.exact,
                row.exact_outside_interval,
            );
            vec![
                row.z.to_string(),
                row.trials.to_string(),
                row.reversed.to_string(),
                rate,
                interval,
                exact,
                format!("{:.4}", row.exact_unbounded),
                format!("{:.4}", row.nakamoto),
                format!("{:.1}", row.mean_reorg_depth),
            ]
        })
        .collect();
    let _ = write!(text, "\n{}", table(&headers, &rows, style));
    let stood: u64 = report.rows.iter().map(|row| row.published_but_stood).sum();
    if stood > 0 {
        let _ = writeln!(
            text,
            "\n{stood} trial(s) published a heavier branch yet the payment stood (a block in flight when the honest miner paused)."
        );
    }
    if report.rows.iter().any(|row| row.exact_outside_interval) {
        let note = "⚠ the exact value for this model lies outside the measured 95% interval for \
                    the flagged rows (reported as measured, not adjusted).";
        let _ = writeln!(text, "\n{}", wrap(note, 96));
    }
    let bullet = if style == Style::Markdown { "- " } else { "  " };
    let _ = writeln!(text);
    for line in LEGEND {
        for (i, part) in wrap(line, 94).lines().enumerate() {
            let _ = writeln!(text, "{}{part}", if i == 0 { bullet } else { "  " });
        }
    }
    let _ = writeln!(text, "\n{}", wrap(&format!("Model: {}", report.model), 96));
    text
}

/// Writes `report.json`, `report.md`, `block-tree.svg` and `success-rate.svg` into `dir`.
pub fn write(report: &Report, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(report)?,
    )?;
    let shown = report
        .trials
        .iter()
        .find(|trial| trial.reversed)
        .or(report.trials.first());
    let mut markdown = format!(
        "# Double-spend attack {}\n\n{}\n",
        match report.engine {
            EngineKind::Nodes => format!("on {}", real_nodes(report.image.as_deref())),
            EngineKind::Sim => "in the virtual-time engine".to_owned(),
        },
        summary(report, Style::Markdown)
    );
    if let Some(trial) = shown {
        std::fs::write(
            dir.join("block-tree.svg"),
            crate::plot::block_tree_svg(trial, &report.settings),
        )?;
        markdown.push_str(
            "\n![block tree of one trial](block-tree.svg)\n\n## Timeline of that trial\n\n",
        );
        for event in &trial.timeline {
            let unit = match report.engine {
                EngineKind::Nodes => "s",
                EngineKind::Sim => "s (virtual)",
            };
            let _ = writeln!(markdown, "- {:>7.2} {unit}  {}", event.at, event.what);
        }
    }
    std::fs::write(
        dir.join("success-rate.svg"),
        crate::plot::rate_plot_svg(report),
    )?;
    markdown.push_str("\n![success rate against confirmations](success-rate.svg)\n");
    std::fs::write(dir.join("report.md"), markdown)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::tests::trial;

    #[test]
    fn rows_count_per_confirmation_and_flag_an_exact_value_outside_the_interval() {
        let settings = AttackSettings {
            q: 0.3,
            premined: false,
            give_up_behind: 6,
            pow: quarry_chain::PowMode::Real,
            retarget: true,
            speedup: 1,
        };
        let mut trials: Vec<Trial> = (0..20).map(|i| trial(1, i < 5)).collect();
        // 20 of 20 reversed at z = 2 cannot be squared with an exact value near 0.23.
        trials.extend((0..20).map(|_| trial(2, true)));
        let report = build(settings, trials);
        assert_eq!(report.rows.len(), 2);
        let (first, second) = (&report.rows[0], &report.rows[1]);
        assert_eq!((first.z, first.trials, first.reversed), (1, 20, 5));
        assert!((first.rate - 0.25).abs() < 1e-12);
        assert!(!first.exact_outside_interval);
        assert!(second.exact_outside_interval);
        assert_eq!(second.mean_reorg_depth, 3.0);
        let text = summary(&report, Style::Terminal);
        assert!(
            text.contains("⚠") && text.contains("not adjusted"),
            "{text}"
        );
        assert!(
            !text.contains('|'),
            "no markdown pipes on a terminal:\n{text}"
        );
        assert!(
            text.lines().all(|line| line.chars().count() <= 110),
            "{text}"
        );
        let header = text
            .lines()
            .find(|line| line.contains("trials  reversed"))
            .unwrap();
        let rule = text.lines().find(|line| line.starts_with('-')).unwrap();
        assert_eq!(
            header.chars().count(),
            rule.chars().count(),
            "columns line up"
        );
        assert!(text.contains("Nakamoto: the whitepaper's Poisson approximation"));
        let markdown = summary(&report, Style::Markdown);
        assert!(markdown.contains("| z | trials | reversed |"), "{markdown}");
        assert!(
            text.contains(
                "40 trials in 240.0 s on 1 testnet(s) of real nodes: 10.0 trials per minute"
            ),
            "{text}"
        );
        let dir = tempfile::tempdir().unwrap();
        write(&report, dir.path()).unwrap();
        for file in [
            "report.json",
            "report.md",
            "block-tree.svg",
            "success-rate.svg",
        ] {
            assert!(dir.path().join(file).exists(), "{file}");
        }
        let svg = std::fs::read_to_string(dir.path().join("block-tree.svg")).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("payment reversed"));
    }
}
