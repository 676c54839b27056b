//! The analytic probabilities of the double-spend attack, for comparison with what real nodes
//! do: Nakamoto's section 11 estimate (a Poisson approximation), the exact negative-binomial
//! result (Rosenfeld 2014; Grunspan and Pérez-Marco 2017) for the model actually run — with or
//! without a block pre-mined before paying, a tie not being enough (a node keeps the branch it
//! saw first), and an attacker who gives up when too far behind — and the Wilson score interval
//! of a measured success rate.

/// The attack model a trial runs.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct AttackModel {
    /// The attacker's share of the hash rate, in `[0, 1)`.
    pub q: f64,
    /// Confirmations the merchant waits for (the block holding the payment is the first).
    pub z: u32,
    /// Whether the attacker mined one secret block before paying (Rosenfeld's setup).
    pub premined: bool,
    /// The attacker gives up when the honest chain is this many blocks ahead of its branch
    /// (`None`: never).
    pub give_up_behind: Option<u32>,
}

/// Nakamoto's estimate (Bitcoin whitepaper, section 11): the attacker's progress while the
/// honest chain finds `z` blocks is taken as Poisson with mean `z q / p`, and catching up
/// from `k` behind has probability `(q/p)^k`.
pub fn nakamoto(q: f64, z: u32) -> f64 {
    let p = 1.0 - q;
    if q >= p {
        return 1.0;
    }
    let lambda = f64::from(z) * q / p;
    let mut poisson = (-lambda).exp();
    let mut sum = 1.0;
    for k in 0..=z {
        if k > 0 {
            poisson *= lambda / f64::from(k);
        }
        sum -= poisson * (1.0 - (q / p).powi((z - k) as i32));
    }
    sum.max(0.0)
}

/// Probability that a walk gaining a block with probability `q` (losing one with `p`) ever
/// gets `up` blocks higher, when it stops once it has lost `down` blocks (`None`: never stops).
fn gambler(q: f64, up: u32, down: Option<u32>) -> f64 {
    let p = 1.0 - q;
    if up == 0 {
        return 1.0;
    }
    match down {
        None if q >= p => 1.0,
        None => (q / p).powi(up as i32),
        Some(0) => 0.0,
        Some(down) if (q - p).abs() < 1e-12 => f64::from(down) / f64::from(down + up),
        Some(down) => {
            // Ruin probabilities with the ratio r = p/q: reach +up before -down from 0.
            let r = p / q;
            (1.0 - r.powi(down as i32)) / (1.0 - r.powi((down + up) as i32))
        }
    }
}

/// The exact success probability of the attack as run: while the honest chain mines the `z`
/// confirmations (the payment's block first), the attacker mines `m` blocks on its secret
/// branch, negative-binomially distributed; it then needs a strictly longer branch, i.e. to
/// gain `z - m + 1` blocks (one fewer with a pre-mined block), giving up when
/// `give_up_behind` blocks behind.
pub fn exact(model: AttackModel) -> f64 {
    let AttackModel {
        q,
        z,
        premined,
        give_up_behind,
    } = model;
    let p = 1.0 - q;
    if q <= 0.0 {
        return 0.0;
    }
    if z == 0 {
        // Nothing to wait for: delivered at once; the attacker needs a longer branch than the
        // payment's (it has one if it pre-mined).
        return if premined {
            1.0
        } else {
            gambler(q, 1, give_up_behind)
        };
    }
    let head_start = i64::from(premined);
    // P(m) = C(m + z - 1, m) p^z q^m, summed while the attacker still needs to gain blocks;
    // everything beyond is an attacker already ahead when the merchant delivers.
    let mut probability = 0.0;
    let mut covered = 0.0;
    let mut term = p.powi(z as i32); // m = 0
    let mut m: u32 = 0;
    loop {
        // Lead of the attacker when the merchant delivers: m (+1 if pre-mined) - z.
        let lead = i64::from(m) + head_start - i64::from(z);
        if lead > 0 {
            break;
        }
        let needed = u32::try_from(1 - lead).unwrap_or(u32::MAX);
        // Already beyond the give-up bound: the attacker has abandoned.
        let behind = u32::try_from(-lead).unwrap_or(u32::MAX);
        let win = match give_up_behind {
            Some(bound) if behind >= bound => 0.0,
            Some(bound) => gambler(q, needed, Some(bound - behind)),
            None => gambler(q, needed, None),
        };
        probability += term * win;
        covered += term;
        // Next term of the negative binomial.
        term *= q * f64::from(m + z) / f64::from(m + 1);
        m += 1;
    }
    (probability + (1.0 - covered)).clamp(0.0, 1.0)
}

/// The Wilson score interval of `successes` in `trials` at 95% confidence.
pub fn wilson_interval(successes: u64, trials: u64) -> (f64, f64) {
    wilson_interval_at(successes, trials, Z_95)
}

/// The two-sided 95% normal quantile.
const Z_95: f64 = 1.959_963_984_540_054;

/// The Wilson score interval of `successes` in `trials` at the confidence whose two-sided
/// normal quantile is `z` (1.96: 95%, 3.29: 99.9%).
pub fn wilson_interval_at(successes: u64, trials: u64, z: f64) -> (f64, f64) {
    if trials == 0 {
        return (0.0, 1.0);
    }
    let n = trials as f64;
    let phat = successes as f64 / n;
    let denominator = 1.0 + z * z / n;
    let centre = (phat + z * z / (2.0 * n)) / denominator;
    let half = z * ((phat * (1.0 - phat) + z * z / (4.0 * n)) / n).sqrt() / denominator;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The 95% interval of the difference `p1 - p2` of two measured rates (Newcombe's hybrid
/// score interval, from the two Wilson intervals): two measurements agree when it holds 0.
pub fn difference_interval(first: (u64, u64), second: (u64, u64)) -> (f64, f64) {
    difference_interval_at(first, second, Z_95)
}

/// [`difference_interval`] at the confidence whose two-sided normal quantile is `z`.
pub fn difference_interval_at(first: (u64, u64), second: (u64, u64), z: f64) -> (f64, f64) {
    let rate = |(successes, trials): (u64, u64)| successes as f64 / trials.max(1) as f64;
    let (p1, p2) = (rate(first), rate(second));
    let ((l1, u1), (l2, u2)) = (
        wilson_interval_at(first.0, first.1, z),
        wilson_interval_at(second.0, second.1, z),
    );
    let d = p1 - p2;
    (
        d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt(),
        d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt(),
    )
}

/// About how many trials a run needs for its 95% interval to exclude `other` when the true
/// success probability is `truth`, 80% of the time: the normal approximation
/// n = ((z_0.975 √(p0(1-p0)) + z_0.8 √(p1(1-p1))) / (p1 - p0))², rounded up. `None` when
/// the two are equal (no number of trials separates them).
pub fn trials_to_separate(truth: f64, other: f64) -> Option<u64> {
    let gap = (truth - other).abs();
    if gap < 1e-12 {
        return None;
    }
    let (z_alpha, z_power) = (1.959_963_984_540_054, 0.841_621_233_572_914_3);
    let spread = |p: f64| (p * (1.0 - p)).sqrt();
    let n = ((z_alpha * spread(other) + z_power * spread(truth)) / gap).powi(2);
    Some(n.ceil() as u64)
}

/// Whether the 95% interval of `successes` in `trials` excludes `value`.
pub fn separates(successes: u64, trials: u64, value: f64) -> bool {
    let (low, high) = wilson_interval(successes, trials);
    value < low || value > high
}

/// The regularised incomplete beta function `I_x(a, b)` (continued fraction, Numerical
/// Recipes' `betacf`), for Grunspan and Pérez-Marco's closed form.
fn incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(x, a, b) / a
    } else {
        1.0 - front * beta_fraction(1.0 - x, b, a) / b
    }
}

fn beta_fraction(x: f64, a: f64, b: f64) -> f64 {
    let tiny = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    d = if d.abs() < tiny { tiny } else { d };
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=300 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        for aa in [
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ] {
            d = 1.0 + aa * d;
            d = if d.abs() < tiny { tiny } else { d };
            c = 1.0 + aa / c;
            c = if c.abs() < tiny { tiny } else { c };
            d = 1.0 / d;
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// `ln Γ(x)` by Lanczos' approximation.
fn ln_gamma(x: f64) -> f64 {
    const COEFFICIENTS: [f64; 6] = [
        76.180_091_729_471_46,
        -86.505_320_329_416_77,
        24.014_098_240_830_91,
        -1.231_739_572_450_155,
        0.120_865_097_386_617_9e-2,
        -0.539_523_938_495_3e-5,
    ];
    let tmp = x + 5.5 - (x + 0.5) * (x + 5.5).ln();
    let mut series = 1.000_000_000_190_015;
    for (i, coefficient) in COEFFICIENTS.iter().enumerate() {
        series += coefficient / (x + 1.0 + i as f64);
    }
    -tmp + (2.506_628_274_631_000_5 * series / x).ln()
}

/// Grunspan and Pérez-Marco's closed form of the exact probability with a pre-mined block and
/// no give-up bound: `I_{4pq}(z, 1/2)`.
pub fn grunspan_perez_marco(q: f64, z: u32) -> f64 {
    let p = 1.0 - q;
    if q >= p {
        return 1.0;
    }
    incomplete_beta(4.0 * p * q, f64::from(z), 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    #[test]
    fn nakamotos_table_is_reproduced() {
        // Bitcoin whitepaper, section 11.
        for (q, z, expected) in [
            (0.1, 0, 1.0),
            (0.1, 1, 0.204_587_3),
            (0.1, 2, 0.050_977_9),
            (0.1, 5, 0.000_913_7),
            (0.1, 10, 0.000_001_2),
            (0.3, 5, 0.177_352_3),
            (0.3, 10, 0.041_660_5),
        ] {
            assert!(
                close(nakamoto(q, z), expected, 5e-8),
                "q={q} z={z}: {}",
                nakamoto(q, z)
            );
        }
    }

    fn model(q: f64, z: u32, premined: bool, give_up_behind: Option<u32>) -> AttackModel {
        AttackModel {
            q,
            z,
            premined,
            give_up_behind,
        }
    }

    #[test]
    fn small_cases_match_hand_derivations() {
        let q: f64 = 0.1;
        let p = 1.0 - q;
        // Rosenfeld: with a pre-mined block, z = 1 gives 2q.
        assert!(close(exact(model(q, 1, true, None)), 2.0 * q, 1e-12));
        // Without it the attacker must get strictly ahead: q²/p + 2q².
        assert!(close(
            exact(model(q, 1, false, None)),
            q * q / p + 2.0 * q * q,
            1e-12
        ));
        assert_eq!(exact(model(0.0, 3, false, None)), 0.0);
        assert_eq!(exact(model(0.6, 3, false, None)), 1.0);
        // Giving up can only lower the chance, and a generous bound changes little.
        let unbounded = exact(model(0.3, 2, false, None));
        let bounded = exact(model(0.3, 2, false, Some(6)));
        let generous = exact(model(0.3, 2, false, Some(40)));
        assert!(bounded < unbounded && close(generous, unbounded, 1e-9));
    }

    #[test]
    fn the_closed_form_equals_the_negative_binomial_sum() {
        for q in [0.05, 0.1, 0.2, 0.3, 0.4, 0.45] {
            for z in 1..=12 {
                let sum = exact(model(q, z, true, None));
                let closed = grunspan_perez_marco(q, z);
                assert!(close(sum, closed, 1e-9), "q={q} z={z}: {sum} vs {closed}");
            }
        }
    }

    #[test]
    fn the_exact_model_agrees_with_a_simulation_of_it() {
        // A seeded simulation of the same race, block by block.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut uniform = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for (q, z, premined, bound) in [
            (0.3, 2, false, Some(8)),
            (0.25, 1, true, Some(6)),
            (0.4, 3, false, Some(10)),
        ] {
            let trials = 100_000;
            let mut wins = 0u64;
            for _ in 0..trials {
                let (mut honest, mut attacker) = (0i64, i64::from(premined));
                while honest < i64::from(z) {
                    if uniform() < q {
                        attacker += 1
                    } else {
                        honest += 1
                    }
                }
                loop {
                    if attacker > honest {
                        wins += 1;
                        break;
                    }
                    if honest - attacker >= i64::from(bound.unwrap()) {
                        break;
                    }
                    if uniform() < q {
                        attacker += 1
                    } else {
                        honest += 1
                    }
                }
            }
            let measured = wins as f64 / f64::from(trials);
            let expected = exact(model(q, z, premined, bound));
            let (low, high) = wilson_interval(wins, u64::from(trials as u32));
            assert!(
                low - 0.002 <= expected && expected <= high + 0.002,
                "q={q} z={z}: {measured} vs {expected}"
            );
        }
    }

    #[test]
    fn the_difference_interval_matches_newcombes_worked_example() {
        // Newcombe (1998), example (a): 56/70 against 48/80, method 10: [0.0524, 0.3339].
        let (low, high) = difference_interval((56, 70), (48, 80));
        assert!(
            close(low, 0.0524, 1e-4) && close(high, 0.3339, 1e-4),
            "{low} {high}"
        );
        let (low, high) = difference_interval((30, 100), (30, 100));
        assert!(low < 0.0 && high > 0.0);
    }

    #[test]
    fn wilson_intervals_behave() {
        let (low, high) = wilson_interval(50, 100);
        assert!(close(low, 0.403_8, 1e-3) && close(high, 0.596_2, 1e-3));
        let (low, high) = wilson_interval(0, 20);
        assert_eq!(low, 0.0);
        assert!(close(high, 0.161_1, 1e-3));
        assert_eq!(wilson_interval(0, 0), (0.0, 1.0));
    }

    #[test]
    fn the_planner_needs_about_1700_trials_to_tell_nakamoto_from_exact_at_q_0_3_z_6() {
        let model = AttackModel {
            q: 0.3,
            z: 6,
            premined: true,
            give_up_behind: None,
        };
        let (truth, other) = (exact(model), nakamoto(0.3, 6));
        let n = trials_to_separate(truth, other).unwrap();
        // The estimate: about 1,800 (95% interval, 80% power).
        assert!(
            (1_400..=2_000).contains(&n),
            "{n} for {truth} against {other}"
        );
        assert_eq!(trials_to_separate(0.5, 0.5), None);
        // 0 of 100 excludes 0.2; 20 of 100 does not.
        assert!(separates(0, 100, 0.2));
        assert!(!separates(20, 100, 0.2));
    }
}
