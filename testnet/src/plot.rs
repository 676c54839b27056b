//! The report's pictures, as SVG a teacher can put on a slide: the block tree of one trial
//! (blocks labelled by height, the payment, delivery, the conflicting spend and publication
//! marked) and a success-rate plot (measured points with their 95% intervals beside the
//! analytic curves). Every label sits in its own slot so no line crosses it; a test lays the
//! SVG out with `usvg` and checks that.

use std::fmt::Write;

use crate::analysis::{exact, nakamoto, AttackModel};
use crate::attack::{AttackSettings, Trial};
use crate::engine::selfish::closed_form;
use crate::report::Report;
use crate::selfish_report::SelfishReport;
use crate::zero_conf::{Timing, ZeroConfirmationReport};

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// "pre-mined" or "not pre-mined", as titles name the variant.
fn variant(settings: &AttackSettings) -> &'static str {
    if settings.premined {
        "pre-mined block"
    } else {
        "no pre-mined block"
    }
}

/// Horizontal distance between blocks, and a block's size.
const STEP: usize = 90;
const BOX_WIDTH: usize = 64;
const BOX_HEIGHT: usize = 26;
/// Left margin for the row names; the fork block starts here.
const MARGIN: usize = 90;
/// Tops of the honest row, the fork point and the attacker's row.
const HONEST_Y: usize = 100;
const FORK_Y: usize = 150;
const ATTACKER_Y: usize = 200;

/// A block's box with its height inside.
fn block(svg: &mut String, x: usize, y: usize, fill: &str, height: u64) {
    let _ = writeln!(
        svg,
        r#"<rect x="{x}" y="{y}" width="{BOX_WIDTH}" height="{BOX_HEIGHT}" fill="{fill}" stroke="black"/><text x="{}" y="{}" text-anchor="middle">#{height}</text>"#,
        x + BOX_WIDTH / 2,
        y + 17
    );
}

/// A label centred over (or under) the block in column `x`.
fn mark(svg: &mut String, x: usize, y: usize, text: &str) {
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{y}" text-anchor="middle" font-weight="bold">{}</text>"#,
        x + BOX_WIDTH / 2,
        escape(text)
    );
}

/// An SVG of one trial's block tree: the fork point in the middle, the honest branch above,
/// the attacker's below, every block labelled by height; green is the chain the merchant's
/// node ended on, red the abandoned branch.
pub fn block_tree_svg(trial: &Trial, settings: &AttackSettings) -> String {
    let columns = trial
        .honest_branch
        .len()
        .max(trial.attacker_branch.len())
        .max(1);
    let width = (MARGIN + STEP * (columns + 1)).max(660);
    let height = 340;
    let outcome = if trial.reversed {
        format!(
            "payment reversed ({}-block reorganisation)",
            trial.reorg_depth
        )
    } else {
        "payment stands".to_owned()
    };
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="DejaVu Sans Mono, monospace" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="22" font-size="14">One trial: z = {}, attacker share {:.2}, {}</text>
<text x="10" y="42" font-size="12">{outcome}</text>
<text x="10" y="{}">honest</text>
<text x="10" y="{}">attacker</text>
"##,
        trial.z,
        settings.q,
        variant(settings),
        HONEST_Y + 17,
        ATTACKER_Y + 17,
    );
    block(&mut svg, MARGIN, FORK_Y, "#ddd", trial.fork_height);
    let payment_index = trial
        .honest_branch
        .iter()
        .position(|hash| trial.payment_block.as_deref() == Some(hash.as_str()));
    let delivery_index = payment_index
        .map(|index| index + trial.z.max(1) as usize - 1)
        .filter(|_| trial.delivered);
    let conflicting_index = trial
        .attacker_branch
        .iter()
        .position(|hash| trial.conflicting_block.as_deref() == Some(hash.as_str()));
    let honest_won = !trial.reversed;
    let rows = [
        (&trial.honest_branch, HONEST_Y, honest_won),
        (&trial.attacker_branch, ATTACKER_Y, !honest_won),
    ];
    for (branch, y, won) in rows {
        let fill = if won { "#9ad19a" } else { "#f2a7a7" };
        let mut previous = (MARGIN + BOX_WIDTH, FORK_Y + BOX_HEIGHT / 2);
        for (i, _) in branch.iter().enumerate() {
            let x = MARGIN + STEP * (i + 1);
            let _ = writeln!(
                svg,
                r#"<line x1="{}" y1="{}" x2="{x}" y2="{}" stroke="black"/>"#,
                previous.0,
                previous.1,
                y + BOX_HEIGHT / 2
            );
            block(&mut svg, x, y, fill, trial.fork_height + 1 + i as u64);
            previous = (x + BOX_WIDTH, y + BOX_HEIGHT / 2);
        }
    }
    // Marks above the honest row and below the attacker's, one line each, so none collide.
    let column = |index: usize| MARGIN + STEP * (index + 1);
    if let Some(index) = payment_index {
        mark(&mut svg, column(index), HONEST_Y - 8, "payment");
    }
    if let Some(index) = delivery_index.filter(|&index| index < trial.honest_branch.len()) {
        mark(&mut svg, column(index), HONEST_Y - 24, "delivered");
    }
    if let Some(index) = conflicting_index {
        mark(
            &mut svg,
            column(index),
            ATTACKER_Y + BOX_HEIGHT + 16,
            "conflicting",
        );
    }
    if trial.published && !trial.attacker_branch.is_empty() {
        mark(
            &mut svg,
            column(trial.attacker_branch.len() - 1),
            ATTACKER_Y + BOX_HEIGHT + 32,
            "published",
        );
    }
    let legend = [
        "#N: block height. green: the chain the merchant's node ended on; red: abandoned;",
        "grey: the last block both branches share. payment: the block holding the payment;",
        "delivered: its z-th confirmation, when the goods went out; conflicting: the block",
        "holding the attacker's spend of the same coin; published: the attacker releases.",
    ];
    for (i, line) in legend.iter().enumerate() {
        let _ = writeln!(
            svg,
            r#"<text x="10" y="{}">{}</text>"#,
            height - 64 + 16 * i,
            escape(line)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// A tick on the x axis at `x` (the axis at height `bottom`) with its label under it.
fn x_tick(svg: &mut String, x: f64, bottom: f64, label: &str) {
    let _ = writeln!(
        svg,
        r##"<line x1="{x}" y1="{bottom}" x2="{x}" y2="{}" stroke="black"/><text x="{x}" y="{}" text-anchor="middle">{label}</text>"##,
        bottom + 5.0,
        bottom + 20.0
    );
}

/// The plotting area of a chart whose y axis runs from 0 to 1, and what is drawn around it.
#[derive(Clone, Copy)]
struct Frame {
    left: f64,
    top: f64,
    width: f64,
    height: f64,
}

impl Frame {
    /// The area of the rate and revenue plots.
    const STANDARD: Self = Self {
        left: 90.0,
        top: 60.0,
        width: 530.0,
        height: 260.0,
    };

    fn y(self, value: f64) -> f64 {
        self.top + self.height * (1.0 - value.clamp(0.0, 1.0))
    }

    fn bottom(self) -> f64 {
        self.top + self.height
    }

    /// Grid lines labelled 0, 0.25, ..., 1, and the two axes.
    fn draw_axes(self, svg: &mut String) {
        let (left, right, top, bottom) =
            (self.left, self.left + self.width, self.top, self.bottom());
        for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
            let _ = writeln!(
                svg,
                r##"<line x1="{left}" y1="{0}" x2="{right}" y2="{0}" stroke="#e5e5e5"/><text x="{1}" y="{2}" text-anchor="end">{tick:.2}</text>"##,
                self.y(tick),
                left - 8.0,
                self.y(tick) + 4.0
            );
        }
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="black"/><line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="black"/>"##
        );
    }

    /// The x axis's title under its ticks, the y axis's along it.
    fn draw_titles(self, svg: &mut String, x_title: &str, y_title: &str) {
        let _ = writeln!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="middle">{}</text>
<text transform="translate(24,{}) rotate(-90)" text-anchor="middle">{}</text>"##,
            self.left + self.width / 2.0,
            self.bottom() + 40.0,
            escape(x_title),
            self.top + self.height / 2.0,
            escape(y_title)
        );
    }

    /// A measured value at `x`: a red dot on a red bar spanning its 95% interval.
    fn draw_measured(self, svg: &mut String, x: f64, value: f64, interval: (f64, f64)) {
        let _ = writeln!(
            svg,
            r##"<line x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="#d62728" stroke-width="2"/><circle cx="{x}" cy="{}" r="5" fill="#d62728"/>"##,
            self.y(interval.0),
            self.y(interval.1),
            self.y(value)
        );
    }

    /// A legend under the x axis's title: a coloured bar and a label per entry, in `columns`
    /// columns.
    fn draw_legend(self, svg: &mut String, entries: &[(&str, &str)], columns: usize) {
        let column_width = self.width / columns.max(1) as f64;
        for (i, (colour, label)) in entries.iter().enumerate() {
            let (column, row) = (i % columns.max(1), i / columns.max(1));
            let x = self.left + column_width * column as f64;
            let y = self.bottom() + 66.0 + 18.0 * row as f64;
            let _ = writeln!(
                svg,
                r#"<rect x="{x}" y="{}" width="14" height="4" fill="{colour}"/><text x="{}" y="{y}">{}</text>"#,
                y - 6.0,
                x + 22.0,
                escape(label)
            );
        }
    }
}

/// A probability as a function of z.
type Curve<'a> = &'a dyn Fn(u32) -> f64;

/// An SVG of the success rate against z: measured points with 95% intervals, and the exact
/// and Nakamoto values at every z between the first and last measured; ticks only where
/// there are measurements.
pub fn rate_plot_svg(report: &Report) -> String {
    let (width, height) = (660.0, 440.0);
    let frame = Frame::STANDARD;
    let (left, plot_width) = (frame.left, frame.width);
    let zs: Vec<u32> = report.rows.iter().map(|row| row.z).collect();
    let first = zs.iter().copied().min().unwrap_or(0);
    let last = zs.iter().copied().max().unwrap_or(0);
    let span = f64::from(last - first) + 1.0;
    let x = |z: u32| left + plot_width * (f64::from(z - first) + 0.5) / span;
    let y = |p: f64| frame.y(p);
    let settings = report.settings;
    let bottom = frame.bottom();
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="DejaVu Sans, sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{left}" y="22" font-size="15">Double-spend success rate, attacker share q = {:.2}</text>
<text x="{left}" y="42">{}, {} trials, attacker gives up {} blocks behind</text>
"##,
        settings.q,
        variant(&settings),
        report.trials.len(),
        settings.give_up_behind,
    );
    frame.draw_axes(&mut svg);
    for &z in &zs {
        x_tick(&mut svg, x(z), bottom, &z.to_string());
    }
    frame.draw_titles(
        &mut svg,
        "confirmations z",
        "probability of a successful double spend",
    );
    let model = |z| AttackModel {
        q: settings.q,
        z,
        premined: settings.premined,
        give_up_behind: Some(settings.give_up_behind),
    };
    let curves: [(Curve, &str, &str); 2] = [
        (&|z| exact(model(z)), "#1f77b4", r#"stroke-width="2""#),
        (
            &|z| nakamoto(settings.q, z),
            "#777",
            r#"stroke-dasharray="6,4""#,
        ),
    ];
    for (value, colour, style) in curves {
        let points: Vec<String> = (first..=last)
            .map(|z| format!("{:.1},{:.1}", x(z), y(value(z))))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{colour}" {style}/>"#,
            points.join(" ")
        );
        for point in &points {
            let (cx, cy) = point.split_once(',').unwrap_or_default();
            let _ = writeln!(
                svg,
                r#"<circle cx="{cx}" cy="{cy}" r="2.5" fill="{colour}"/>"#
            );
        }
    }
    for row in &report.rows {
        frame.draw_measured(&mut svg, x(row.z), row.rate, row.interval);
    }
    frame.draw_legend(
        &mut svg,
        &[
            ("#d62728", "measured, with its 95% interval"),
            ("#1f77b4", "exact for this model"),
            ("#777", "Nakamoto's approximation"),
        ],
        1,
    );
    svg.push_str("</svg>\n");
    svg
}

/// An SVG of selfish mining's revenue share against the attacker's share α: each measured
/// point with its 95% interval over Eyal and Sirer's curves for γ = 0, 0.5 and 1, and the fair
/// share (honest mining) as a diagonal.
pub fn revenue_plot_svg(report: &SelfishReport) -> String {
    let (width, height) = (660.0, 460.0);
    let frame = Frame::STANDARD;
    let left = frame.left;
    let x = |alpha: f64| left + frame.width * (alpha / 0.5).clamp(0.0, 1.0);
    let y = |share: f64| frame.y(share);
    let bottom = frame.bottom();
    let subtitle = report.results.first().map_or_else(String::new, |first| {
        format!(
            "{} main-chain blocks per point, γ asked {:.2}, engine seed {}",
            first.settings.blocks, first.settings.gamma, report.seed
        )
    });
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="DejaVu Sans, sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{left}" y="22" font-size="15">Selfish mining: the attacker's share of the main chain</text>
<text x="{left}" y="42">{subtitle}</text>
"##
    );
    frame.draw_axes(&mut svg);
    for tick in [0.0, 0.1, 0.2, 0.3, 0.4, 0.5] {
        x_tick(&mut svg, x(tick), bottom, &format!("{tick:.1}"));
    }
    frame.draw_titles(
        &mut svg,
        "attacker's share of the hash rate α",
        "attacker's share of the main chain",
    );
    let curves: [(f64, &str, &str); 3] = [
        (0.0, "#1f77b4", r#"stroke-width="2""#),
        (0.5, "#2ca02c", r#"stroke-width="2""#),
        (1.0, "#9467bd", r#"stroke-width="2""#),
    ];
    let alphas: Vec<f64> = (0..=49).map(|step| f64::from(step) / 100.0).collect();
    for (gamma, colour, style) in curves {
        let points: Vec<String> = alphas
            .iter()
            .map(|&alpha| format!("{:.1},{:.1}", x(alpha), y(closed_form(alpha, gamma))))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{colour}" {style}/>"#,
            points.join(" ")
        );
    }
    let _ = writeln!(
        svg,
        r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#777" stroke-dasharray="6,4"/>"##,
        x(0.0),
        y(0.0),
        x(0.5),
        y(0.5)
    );
    for result in &report.results {
        let share = result.revenue_share;
        frame.draw_measured(
            &mut svg,
            x(result.settings.alpha),
            share.value,
            share.interval,
        );
    }
    frame.draw_legend(
        &mut svg,
        &[
            ("#d62728", "measured, with its 95% interval"),
            ("#1f77b4", "Eyal and Sirer, γ = 0"),
            ("#2ca02c", "Eyal and Sirer, γ = 0.5"),
            ("#9467bd", "Eyal and Sirer, γ = 1"),
            ("#777", "honest mining (revenue = α)"),
        ],
        2,
    );
    svg.push_str("</svg>\n");
    svg
}

/// An SVG of a zero-confirmation experiment: every trial's outcome (reversed at the top,
/// stands or refused at the bottom) against its timing, under the model's probability of a
/// reversal at each timing.
pub fn outcomes_svg(report: &ZeroConfirmationReport) -> String {
    let (width, height) = (660.0, 420.0);
    let (left, top, plot_width, plot_height) = (90.0, 70.0, 530.0, 220.0);
    let timing = report.timing;
    let (low, high) = match timing {
        Timing::Race { spread_ms, .. } => (-(spread_ms.max(1) as f64), spread_ms.max(1) as f64),
        Timing::Finney { max_hold_ms, .. } => {
            let longest = report
                .trial_list
                .iter()
                .map(|trial| trial.actual_ms)
                .fold(max_hold_ms.max(1) as f64, f64::max);
            (0.0, longest)
        }
    };
    let x = |value: f64| left + plot_width * (value - low) / (high - low);
    let y = |p: f64| top + plot_height * (1.0 - p);
    let bottom = top + plot_height;
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="DejaVu Sans, sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{left}" y="22" font-size="15">{} {}: {} of {} payments reversed</text>
<text x="{left}" y="42">rate {:.2}, 95% interval [{:.2}, {:.2}]; model {:.2}</text>
<line x1="{left}" y1="{bottom}" x2="{}" y2="{bottom}" stroke="black"/><line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="black"/>
<text x="{}" y="{}" text-anchor="end">reversed</text><text x="{}" y="{}" text-anchor="end">stands</text>
<text x="{}" y="{}" text-anchor="middle">{}</text>
<text transform="translate(22,{}) rotate(-90)" text-anchor="middle">outcome; model: P(reversed)</text>
"##,
        report.attack.title(),
        match report.engine {
            crate::engine::EngineKind::Nodes => "on real nodes",
            crate::engine::EngineKind::Sim => "in the engine",
        },
        report.reversed,
        report.trials,
        report.rate,
        report.interval.0,
        report.interval.1,
        report.model,
        left + plot_width,
        left - 8.0,
        y(1.0) + 4.0,
        left - 8.0,
        y(0.0) + 4.0,
        left + plot_width / 2.0,
        bottom + 40.0,
        escape(timing.axis()),
        top + plot_height / 2.0,
    );
    for tick in [low, (low + high) / 2.0, high] {
        x_tick(&mut svg, x(tick), bottom, &format!("{tick:.0}"));
    }
    let curve: Vec<String> = (0..=200)
        .map(|i| {
            let value = low + (high - low) * f64::from(i) / 200.0;
            format!("{:.1},{:.1}", x(value), y(timing.success_at(value)))
        })
        .collect();
    let _ = writeln!(
        svg,
        r##"<polyline points="{}" fill="none" stroke="#1f77b4" stroke-width="2"/>"##,
        curve.join(" ")
    );
    for (i, trial) in report.trial_list.iter().enumerate() {
        // A little spread, inwards, so that trials with close timings stay visible.
        let jitter = f64::from((i % 5) as u8) * 2.0;
        let cy = if trial.reversed {
            y(1.0) + jitter
        } else {
            y(0.0) - jitter
        };
        let (fill, stroke) = match (trial.reversed, trial.merchant_accepted) {
            (true, _) => ("#d62728", "#d62728"),
            (false, true) => ("#2ca02c", "#2ca02c"),
            (false, false) => ("white", "#555"),
        };
        let _ = writeln!(
            svg,
            r#"<circle cx="{:.1}" cy="{cy:.1}" r="4" fill="{fill}" stroke="{stroke}"/>"#,
            x(trial.actual_ms.clamp(low, high))
        );
    }
    let entries = [
        (
            "#d62728",
            "reversed: the merchant took the payment, the conflicting spend won",
        ),
        ("#2ca02c", "stands: the payment was confirmed"),
        (
            "#555",
            "refused (open circle): the merchant's node heard the conflicting spend first",
        ),
        (
            "#1f77b4",
            "model: the probability of a reversal at that timing",
        ),
    ];
    let frame = Frame {
        left,
        top,
        width: plot_width,
        height: plot_height,
    };
    frame.draw_legend(&mut svg, &entries, 1);
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use usvg::tiny_skia_path::{PathSegment, Point};
    use usvg::{Node, Rect};

    /// Every text box of `node`'s subtree, and every straight segment its paths draw.
    fn collect(node: &Node, texts: &mut Vec<Rect>, segments: &mut Vec<(Point, Point)>) {
        match node {
            Node::Group(group) => {
                for child in group.children() {
                    collect(child, texts, segments);
                }
            }
            Node::Text(text) => texts.push(text.abs_bounding_box()),
            Node::Path(path) => {
                let transform = path.abs_transform();
                let (mut start, mut current) = (Point::zero(), Point::zero());
                for segment in path.data().segments() {
                    let end = match segment {
                        PathSegment::MoveTo(point) => {
                            (start, current) = (point, point);
                            continue;
                        }
                        PathSegment::LineTo(point)
                        | PathSegment::QuadTo(_, point)
                        | PathSegment::CubicTo(_, _, point) => point,
                        PathSegment::Close => start,
                    };
                    let (mut a, mut b) = (current, end);
                    transform.map_point(&mut a);
                    transform.map_point(&mut b);
                    segments.push((a, b));
                    current = end;
                }
            }
            Node::Image(_) => {}
        }
    }

    /// Whether the segment a–b passes through the inside of `rect` (Liang–Barsky clipping).
    fn crosses(a: Point, b: Point, rect: Rect) -> bool {
        let (dx, dy) = (b.x - a.x, b.y - a.y);
        let (mut enter, mut exit) = (0.0f32, 1.0f32);
        for (p, q) in [
            (-dx, a.x - rect.left()),
            (dx, rect.right() - a.x),
            (-dy, a.y - rect.top()),
            (dy, rect.bottom() - a.y),
        ] {
            if p == 0.0 {
                if q < 0.0 {
                    return false;
                }
            } else if p < 0.0 {
                enter = enter.max(q / p);
            } else {
                exit = exit.min(q / p);
            }
        }
        enter < exit
    }

    /// Lays `svg` out with the system's fonts and checks what a reader would notice: every
    /// text drawn, inside the canvas, overlapping no other text and crossed by no line.
    pub(crate) fn assert_readable(svg: &str) {
        let mut options = usvg::Options::default();
        options.fontdb_mut().load_system_fonts();
        assert!(
            !options.fontdb.is_empty(),
            "no fonts to lay the SVG out with: install fonts-dejavu-core"
        );
        let tree = usvg::Tree::from_str(svg, &options).expect("the SVG parses");
        let (mut texts, mut segments) = (Vec::new(), Vec::new());
        for child in tree.root().children() {
            collect(child, &mut texts, &mut segments);
        }
        assert_eq!(
            texts.len(),
            svg.matches("<text").count(),
            "every text laid out"
        );
        let size = tree.size();
        for rect in &texts {
            assert!(
                rect.left() >= 0.0
                    && rect.top() >= 0.0
                    && rect.right() <= size.width()
                    && rect.bottom() <= size.height(),
                "text at {rect:?} leaves the {}×{} canvas",
                size.width(),
                size.height()
            );
        }
        for (i, a) in texts.iter().enumerate() {
            for b in &texts[i + 1..] {
                assert!(a.intersect(b).is_none(), "texts {a:?} and {b:?} overlap");
            }
        }
        for rect in &texts {
            // A hair inside the box: a line may touch a label's edge, not run through it.
            let inner = Rect::from_ltrb(
                rect.left() + 1.0,
                rect.top() + 1.0,
                rect.right() - 1.0,
                rect.bottom() - 1.0,
            )
            .unwrap();
            for &(a, b) in &segments {
                assert!(
                    !crosses(a, b, inner),
                    "a line {a:?}–{b:?} crosses text at {rect:?}"
                );
            }
        }
    }

    pub(crate) fn trial(z: u32, reversed: bool) -> Trial {
        let honest: Vec<String> = (0..z + 1).map(|i| format!("{i:02x}").repeat(32)).collect();
        let attacker: Vec<String> = (0..if reversed { z + 2 } else { 1 })
            .map(|i| format!("{:02x}", 0x80 + i).repeat(32))
            .collect();
        Trial {
            z,
            delivered: true,
            published: reversed,
            reversed,
            reorg_depth: if reversed { z + 1 } else { 0 },
            fork_height: 10,
            payment_block: honest.first().cloned(),
            conflicting_block: attacker.first().cloned(),
            honest_branch: honest,
            attacker_branch: attacker,
            payment: "cc".repeat(32),
            conflicting: "dd".repeat(32),
            merchant_wallet_at_delivery: Some("confirmed".into()),
            merchant_wallet_at_end: Some(if reversed { "conflicted" } else { "confirmed" }.into()),
            seconds: 6.0,
            timeline: Vec::new(),
        }
    }

    const SETTINGS: AttackSettings = AttackSettings {
        q: 0.3,
        premined: true,
        give_up_behind: 6,
        pow: quarry_chain::PowMode::Real,
        retarget: true,
        speedup: 1,
    };

    #[test]
    fn block_trees_are_labelled_by_height_with_every_event_marked_and_readable() {
        for (z, reversed) in [(1, false), (1, true), (3, true), (6, false)] {
            let svg = block_tree_svg(&trial(z, reversed), &SETTINGS);
            assert_readable(&svg);
            assert!(svg.contains(">#10<") && svg.contains(">#11<"), "{svg}");
            assert!(svg.contains(">payment<") && svg.contains(">delivered<"));
            assert!(svg.contains(">conflicting<"));
            assert_eq!(svg.contains(">published<"), reversed);
            assert!(svg.contains("pre-mined block"));
            assert!(!svg.contains("0000"), "no hash prefixes");
        }
    }

    #[test]
    fn the_revenue_plot_is_readable() {
        use crate::engine::selfish::{run, Retarget, SelfishSettings};
        let results = [0.2, 0.4]
            .into_iter()
            .map(|alpha| {
                run(SelfishSettings {
                    alpha,
                    gamma: 0.5,
                    blocks: 300,
                    spacing: 600,
                    retarget: Retarget::Off,
                    seed: 1,
                    engine: crate::engine::EngineKind::Sim,
                })
                .unwrap()
            })
            .collect();
        let report = SelfishReport {
            results,
            wall_seconds: 1.0,
            seed: 1,
        };
        let svg = revenue_plot_svg(&report);
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains("γ = 0.5") && svg.contains("attacker's share of the hash rate α"));
        assert_readable(&svg);
    }

    #[test]
    fn zero_confirmation_outcomes_are_plotted_against_their_timing_readably() {
        use crate::zero_conf::{build, tests::trial};
        let race = Timing::Race {
            latency_ms: 200,
            spread_ms: 400,
        };
        let trials = (0..30)
            .map(|i| {
                let offset = f64::from(i) * 26.0 - 390.0;
                trial(offset, offset.abs() < 200.0, offset > -200.0)
            })
            .collect();
        let svg = outcomes_svg(&build(race, 1, (trials, None)));
        assert_readable(&svg);
        assert!(
            svg.contains("Race attack on real nodes: 15 of 30 payments reversed"),
            "{svg}"
        );
        assert!(svg.contains(">-400<") && svg.contains(">400<"));
        let finney = Timing::Finney {
            max_hold_ms: 4000,
            spacing: 2,
        };
        let trials = (0..10)
            .map(|i| trial(f64::from(i) * 450.0, i < 4, true))
            .collect();
        let svg = outcomes_svg(&build(finney, 1, (trials, None)));
        assert_readable(&svg);
        assert!(svg.contains("attacker's block held secret (ms)"));
    }

    #[test]
    fn the_rate_plot_has_axis_titles_ticks_at_the_measured_z_and_a_titled_variant() {
        let trials: Vec<Trial> = [1, 2, 4]
            .into_iter()
            .flat_map(|z| (0..10).map(move |i| trial(z, i < 3)))
            .collect();
        let report = crate::report::build(SETTINGS, trials);
        let svg = rate_plot_svg(&report);
        assert_readable(&svg);
        assert!(svg.contains("confirmations z"));
        assert!(svg.contains("probability of a successful double spend"));
        assert!(svg.contains("pre-mined block, 30 trials, attacker gives up 6 blocks behind"));
        let ticks: Vec<&str> = svg
            .lines()
            .filter(|line| line.starts_with("<line") && line.contains(r#"text-anchor="middle">"#))
            .filter_map(|line| line.rsplit_once("\">")?.1.strip_suffix("</text>"))
            .collect();
        assert_eq!(ticks, ["1", "2", "4"], "{svg}");
    }
}
