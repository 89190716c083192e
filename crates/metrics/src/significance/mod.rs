//! sacrebleu 2.6.0's statistical tests, bit for bit: bootstrap confidence intervals
//! (`--confidence`), paired bootstrap resampling (`--paired-bs`) and paired approximate
//! randomization (`--paired-ar`), with its defaults (seed 12345, 1000 resamples, 10,000 trials).
//!
//! sacrebleu draws its resamples from `np.random.default_rng(seed)` (PCG64, not the legacy
//! `RandomState`); [`rng::NumpyRng`] reproduces that stream. Resampled statistics are summed as
//! float32 (sacrebleu converts them with `dtype='float32'`), scored with numpy's float32 promotion
//! rules, averaged with numpy's pairwise summation (paired tests) or Python's exact
//! `statistics.mean` (single-system confidence), and compared in the scores' own dtype: every
//! step sacrebleu takes, so means, intervals and p-values equal sacrebleu's to the last bit.

mod exact_mean;
mod float32_scores;
mod numpy_scalar;
pub mod rng;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::bleu::{Bleu, Smoothing};
use crate::chrf::Chrf;
use crate::{MetricsError, check_streams};
use numpy_scalar::Num;
use rng::NumpyRng;

/// sacrebleu's default seed (`SACREBLEU_SEED`).
pub const DEFAULT_SEED: u64 = 12345;
/// sacrebleu's default number of bootstrap resamples (`--paired-bs-n`, `--confidence-n`).
pub const DEFAULT_BOOTSTRAP_SAMPLES: usize = 1000;
/// sacrebleu's default number of approximate-randomization trials (`--paired-ar-n`).
pub const DEFAULT_AR_TRIALS: usize = 10_000;
/// The significance threshold sacrebleu marks p-values against (`*` when p < 0.05).
pub const SIGNIFICANCE_LEVEL: f64 = 0.05;

/// A corpus metric the tests resample.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    /// BLEU.
    Bleu(Bleu),
    /// chrF or chrF++.
    Chrf(Chrf),
}

impl Metric {
    /// sacrebleu's score name: `BLEU`, `chrF2`, `chrF2++`.
    pub fn name(&self) -> String {
        match self {
            Metric::Bleu(_) => "BLEU".into(),
            Metric::Chrf(c) => c.name(),
        }
    }

    /// The metric's own signature for `nrefs` references.
    pub fn signature(&self, nrefs: usize) -> String {
        match self {
            Metric::Bleu(b) => b.signature(nrefs),
            Metric::Chrf(c) => c.signature(nrefs),
        }
    }

    /// Per-segment sufficient statistics.
    pub fn corpus_stats(
        &self,
        hyps: &[String],
        refs: &[Vec<String>],
    ) -> Result<Vec<Vec<u64>>, MetricsError> {
        match self {
            Metric::Bleu(b) => b.corpus_stats(hyps, refs),
            Metric::Chrf(c) => c.corpus_stats(hyps, refs),
        }
    }

    /// The score of summed integer statistics (sacrebleu on Python ints).
    pub fn score(&self, sums: &[u64]) -> f64 {
        match self {
            Metric::Bleu(b) => b.score_from_stats(sums, 1).score,
            Metric::Chrf(c) => c.f_score(sums),
        }
    }

    /// The score of int64 statistics summed by numpy in an AR trial. Identical to [`Self::score`]
    /// except that add-k adds `k` into an int64 array, which truncates it.
    fn trial_score(&self, sums: &[u64]) -> f64 {
        match self {
            Metric::Bleu(b) => match b.smoothing {
                Smoothing::AddK(_) => {
                    let k = b.smoothing.value().unwrap_or(1.0).trunc();
                    let truncated = Bleu {
                        smoothing: Smoothing::AddK(Some(k)),
                        ..b.clone()
                    };
                    truncated.score_from_stats(sums, 1).score
                }
                _ => b.score_from_stats(sums, 1).score,
            },
            Metric::Chrf(c) => c.f_score(sums),
        }
    }

    /// The score of float32 resampled statistics.
    fn resampled_score(&self, sums: &[f32]) -> Num {
        match self {
            Metric::Bleu(b) => Num::Py(float32_scores::bleu(b, sums)),
            Metric::Chrf(c) => float32_scores::chrf(c, sums),
        }
    }
}

/// One system's result for one metric, as sacrebleu's `significance.Result`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    /// The actual corpus score.
    pub score: f64,
    /// p-value against the baseline (absent for the baseline itself).
    pub p_value: Option<f64>,
    /// Bootstrap estimate of the true mean (absent when no resampling gave one).
    pub mean: Option<f64>,
    /// Half-width of the 95% confidence interval around `mean`.
    pub ci: Option<f64>,
}

impl TestResult {
    /// Whether the difference to the baseline is significant at p < 0.05 (sacrebleu's `*`).
    pub fn significant(&self) -> bool {
        self.p_value.is_some_and(|p| p <= SIGNIFICANCE_LEVEL)
    }

    /// sacrebleu's table cell: `48.1 (48.2 ± 2.2) (p = 0.0010)*` at `width` decimals.
    pub fn cell(&self, width: usize) -> String {
        let mut s = format!("{:.width$}", self.score);
        if let (Some(m), Some(ci)) = (self.mean, self.ci) {
            s.push_str(&format!(" ({m:.width$} ± {ci:.width$})"));
        }
        if let Some(p) = self.p_value {
            s.push_str(&format!(" (p = {p:.4})"));
            if self.significant() {
                s.push('*');
            }
        }
        s
    }
}

/// Scores of resamples the way numpy holds them: float32 when every score is a numpy float32,
/// float64 otherwise (BLEU's scores are Python floats).
#[derive(Debug, Clone)]
struct Scores {
    values: Vec<f64>,
    float32: bool,
}

impl Scores {
    fn from_nums(nums: Vec<Num>) -> Scores {
        let float32 = nums.iter().all(|n| matches!(n, Num::F32(_)));
        Scores {
            values: nums.into_iter().map(Num::to_f64).collect(),
            float32,
        }
    }

    /// In the array's dtype.
    fn round(&self, v: f64) -> f64 {
        if self.float32 { f64::from(v as f32) } else { v }
    }

    /// `np.mean`: numpy's pairwise sum in the array's dtype, divided by the count.
    fn np_mean(&self) -> f64 {
        let n = self.values.len() as f64;
        if self.float32 {
            let v: Vec<f32> = self.values.iter().map(|&x| x as f32).collect();
            f64::from(pairwise_sum(&v) / n as f32)
        } else {
            pairwise_sum(&self.values) / n
        }
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.values.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    /// The 1/40 and 39/40 order statistics' half distance (`0.5 * (upper - lower)`).
    fn half_interval(&self, sorted: &[f64]) -> f64 {
        let n = sorted.len();
        let lower_idx = n / 40;
        let (lower, upper) = (sorted[lower_idx], sorted[n - lower_idx - 1]);
        self.round(0.5 * self.round(upper - lower))
    }

    /// `significance.estimate_ci`: numpy mean of the sorted scores and the 95% half-interval.
    fn np_estimate_ci(&self) -> (f64, f64) {
        let sorted = Scores {
            values: self.sorted(),
            float32: self.float32,
        };
        (sorted.np_mean(), self.half_interval(&sorted.values))
    }

    /// `Score.estimate_ci` (single-system `--confidence`): `statistics.mean`, exact, then
    /// converted to the scores' type.
    fn py_estimate_ci(&self) -> (f64, f64) {
        let sorted = self.sorted();
        let mean = exact_mean::exact_mean(&sorted).unwrap_or(0.0);
        (self.round(mean), self.half_interval(&sorted))
    }
}

/// numpy's pairwise summation (`pairwise_sum_@TYPE@`): blocks of up to 128 summed with eight
/// accumulators, halves split at multiples of eight.
fn pairwise_sum<T: Copy + Default + std::ops::Add<Output = T>>(a: &[T]) -> T {
    let n = a.len();
    if n < 8 {
        let mut res = T::default();
        for &v in a {
            res = res + v;
        }
        res
    } else if n <= 128 {
        let mut r = [a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]];
        let mut i = 8;
        while i < n - n % 8 {
            for j in 0..8 {
                r[j] = r[j] + a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &a[i..] {
            res = res + v;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// Per-segment statistics of several metrics side by side, as float32 rows.
struct StatsRows {
    width: usize,
    offsets: Vec<(usize, usize)>,
    data: Vec<f32>,
    /// The same rows as integers, each padded with zeros to [`padded_width`], when no resample of
    /// `n` rows can overflow a u32 column sum.
    ints: Option<Vec<u32>>,
}

/// The largest integer up to which every float32 partial sum of non-negative integers is exact:
/// below it numpy's float32 additions equal integer additions, in any order.
const F32_EXACT: u32 = 1 << 24;

/// Columns summed together in [`StatsRows::integer_sums`]: four SSE2 registers.
const LANES: usize = 16;

/// The integer rows' width: the statistics' width rounded up to whole blocks of [`LANES`].
fn padded_width(width: usize) -> usize {
    width.div_ceil(LANES) * LANES
}

impl StatsRows {
    fn new(per_metric: &[&[Vec<u64>]]) -> StatsRows {
        let n = per_metric[0].len();
        let mut offsets = Vec::with_capacity(per_metric.len());
        let mut width = 0;
        for m in per_metric {
            let w = m.first().map_or(0, Vec::len);
            offsets.push((width, width + w));
            width += w;
        }
        let mut data = Vec::with_capacity(n * width);
        let mut max = 0u64;
        for i in 0..n {
            for m in per_metric {
                max = m[i].iter().fold(max, |a, &v| a.max(v));
                // `np.array(stats, dtype='float32')`.
                data.extend(m[i].iter().map(|&v| v as f32));
            }
        }
        // A resample sums `n` rows, each column at most `max`.
        let fits = (n as u64)
            .checked_mul(max)
            .is_some_and(|bound| bound <= u64::from(u32::MAX));
        let ints = fits.then(|| {
            let stride = padded_width(width);
            let mut ints = Vec::with_capacity(n * stride);
            for i in 0..n {
                for m in per_metric {
                    ints.extend(m[i].iter().map(|&v| v as u32));
                }
                ints.resize((i + 1) * stride, 0);
            }
            ints
        });
        StatsRows {
            width,
            offsets,
            data,
            ints,
        }
    }

    /// `stats_np[idxs[s]].sum(0)` for each resample `s`. Summed as integers, which equals
    /// numpy's float32 sums whenever no column exceeds 2^24; a resample where one does is summed
    /// again the way numpy does it.
    fn resample_sums(&self, idxs: &[usize], n: usize) -> Vec<Vec<f32>> {
        idxs.par_chunks(n)
            .map(|rows| {
                self.ints
                    .as_deref()
                    .and_then(|ints| self.integer_sums(ints, rows))
                    .unwrap_or_else(|| self.float32_sums(rows))
            })
            .collect()
    }

    /// The rows' sums as float32 when every one is exact (at most 2^24), else None.
    fn integer_sums(&self, ints: &[u32], rows: &[usize]) -> Option<Vec<f32>> {
        let w = self.width;
        let stride = padded_width(w);
        let mut acc = vec![0u32; stride];
        // Column blocks outermost: a block's accumulators stay in registers over all the rows.
        for (b, block) in acc.chunks_exact_mut(LANES).enumerate() {
            let mut sums = [0u32; LANES];
            for &r in rows {
                let row = &ints[r * stride + b * LANES..][..LANES];
                for (s, &v) in sums.iter_mut().zip(row) {
                    *s += v;
                }
            }
            block.copy_from_slice(&sums);
        }
        acc.truncate(w);
        acc.iter()
            .all(|&v| v <= F32_EXACT)
            .then(|| acc.iter().map(|&v| v as f32).collect())
    }

    /// numpy's own way: the rows added one after another in float32.
    fn float32_sums(&self, rows: &[usize]) -> Vec<f32> {
        let w = self.width;
        let mut acc = vec![0f32; w];
        for &r in rows {
            for (a, &v) in acc.iter_mut().zip(&self.data[r * w..(r + 1) * w]) {
                *a += v;
            }
        }
        acc
    }
}

/// The resampling indices sacrebleu draws: `default_rng(seed).choice(n, (samples, n))`.
pub fn bootstrap_indices(seed: u64, n_samples: usize, n: usize) -> Vec<usize> {
    NumpyRng::new(seed).choice(n, n_samples * n)
}

fn resampled_scores(metrics: &[Metric], rows: &StatsRows, sums: &[Vec<f32>]) -> Vec<Scores> {
    metrics
        .iter()
        .zip(&rows.offsets)
        .map(|(m, &(a, b))| {
            Scores::from_nums(sums.iter().map(|s| m.resampled_score(&s[a..b])).collect())
        })
        .collect()
}

fn sum_stats(stats: &[Vec<u64>]) -> Vec<u64> {
    let mut acc = vec![0u64; stats.first().map_or(0, Vec::len)];
    for s in stats {
        for (a, b) in acc.iter_mut().zip(s) {
            *a += b;
        }
    }
    acc
}

/// For each metric, the index of the chrF++ metric whose pass also gives its statistics: a chrF
/// metric that is a chrF++ one without word n-grams shares that one's character n-gram work.
fn chrf_partners(metrics: &[Metric]) -> Vec<Option<usize>> {
    metrics
        .iter()
        .map(|m| match m {
            Metric::Chrf(c) if c.word_order == 0 => metrics.iter().position(|o| {
                matches!(o, Metric::Chrf(pp) if pp.word_order > 0
                    && Chrf { word_order: 0, ..pp.clone() } == *c)
            }),
            _ => None,
        })
        .collect()
}

/// Per-segment statistics of every metric (`out[m][segment]`), in one parallel pass over the
/// segments. The streams must have been checked.
fn metrics_stats(metrics: &[Metric], hyps: &[String], refs: &[Vec<String>]) -> Vec<Vec<Vec<u64>>> {
    let partners = chrf_partners(metrics);
    let per_segment: Vec<Vec<Vec<u64>>> = (0..hyps.len())
        .into_par_iter()
        .with_min_len(64)
        .map(|i| {
            let rs: Vec<&str> = refs.iter().map(|r| r[i].as_str()).collect();
            let mut out = vec![Vec::new(); metrics.len()];
            for (m, metric) in metrics.iter().enumerate() {
                if partners[m].is_some() {
                    continue;
                }
                out[m] = match metric {
                    Metric::Bleu(b) => b.segment_stats(&hyps[i], &rs),
                    Metric::Chrf(c) if partners.contains(&Some(m)) => {
                        let (chars_only, full) = c.segment_stats_pair(&hyps[i], &rs);
                        for (k, _) in partners.iter().enumerate().filter(|(_, p)| **p == Some(m)) {
                            out[k] = chars_only.clone();
                        }
                        full
                    }
                    Metric::Chrf(c) => c.segment_stats(&hyps[i], &rs),
                };
            }
            out
        })
        .collect();
    let mut out: Vec<Vec<Vec<u64>>> = vec![Vec::with_capacity(hyps.len()); metrics.len()];
    for seg in per_segment {
        for (o, s) in out.iter_mut().zip(seg) {
            o.push(s);
        }
    }
    out
}

/// The test to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TestKind {
    /// Paired bootstrap resampling (`--paired-bs`).
    Bootstrap,
    /// Paired approximate randomization (`--paired-ar`).
    ApproximateRandomization,
}

impl TestKind {
    /// sacrebleu's signature key and short name: `bs` or `ar`.
    pub fn key(self) -> &'static str {
        match self {
            TestKind::Bootstrap => "bs",
            TestKind::ApproximateRandomization => "ar",
        }
    }
}

/// How a paired test runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestConfig {
    /// The test.
    pub kind: TestKind,
    /// Resamples (bootstrap) or trials (AR).
    pub samples: usize,
    /// Bootstrap resamples for the AR test's confidence intervals (sacrebleu's
    /// `n_ar_confidence`; its CLI leaves them off).
    pub ar_confidence: Option<usize>,
    /// The seed (sacrebleu's `SACREBLEU_SEED`, default 12345). Must not be 0: sacrebleu then
    /// draws the paired resamples from OS entropy.
    pub seed: u64,
}

impl TestConfig {
    /// sacrebleu's defaults for `kind`.
    pub fn new(kind: TestKind) -> TestConfig {
        TestConfig {
            kind,
            samples: match kind {
                TestKind::Bootstrap => DEFAULT_BOOTSTRAP_SAMPLES,
                TestKind::ApproximateRandomization => DEFAULT_AR_TRIALS,
            },
            ar_confidence: None,
            seed: DEFAULT_SEED,
        }
    }

    /// Refuses what sacrebleu would not run deterministically or at all.
    pub fn check(&self) -> Result<(), MetricsError> {
        if self.seed == 0 {
            return Err(MetricsError::BadValue {
                field: "seed",
                value: "0".into(),
                expected: "a nonzero integer (sacrebleu draws paired tests from OS entropy for seed 0, which is not reproducible)",
            });
        }
        let bad_count = |field: &'static str, v: usize| {
            if v < 1 {
                Err(MetricsError::BadValue {
                    field,
                    value: v.to_string(),
                    expected: "at least 1",
                })
            } else {
                Ok(())
            }
        };
        bad_count("samples", self.samples)?;
        if let Some(n) = self.ar_confidence {
            bad_count("ar_confidence", n)?;
        }
        Ok(())
    }

    /// The bootstrap resamples behind confidence intervals, if any.
    fn confidence_samples(&self) -> Option<usize> {
        match self.kind {
            TestKind::Bootstrap => Some(self.samples),
            TestKind::ApproximateRandomization => self.ar_confidence,
        }
    }

    /// The signature with the test's fields, in sacrebleu's order
    /// (`nrefs|bs|ar|seed|<metric fields>|version`).
    pub fn signature(&self, metric_signature: &str) -> String {
        let mut extra = String::new();
        match self.kind {
            TestKind::Bootstrap => extra.push_str(&format!("bs:{}|", self.samples)),
            TestKind::ApproximateRandomization => {
                if let Some(n) = self.ar_confidence {
                    extra.push_str(&format!("bs:{n}|"));
                }
                extra.push_str(&format!("ar:{}|", self.samples));
            }
        }
        extra.push_str(&format!("seed:{}|", self.seed));
        insert_after_nrefs(metric_signature, &extra)
    }
}

fn insert_after_nrefs(signature: &str, extra: &str) -> String {
    match signature.split_once('|') {
        Some((nrefs, rest)) => format!("{nrefs}|{extra}{rest}"),
        None => format!("{signature}|{extra}"),
    }
}

/// The single-system bootstrap signature (`--confidence`): `nrefs|bs|seed|…`.
pub fn confidence_signature(metric_signature: &str, samples: usize, seed: u64) -> String {
    insert_after_nrefs(metric_signature, &format!("bs:{samples}|seed:{seed}|"))
}

/// One single-system confidence interval (sacrebleu `--confidence`, `corpus_score(n_bootstrap=…)`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Confidence {
    /// Bootstrap estimate of the true mean.
    pub mean: f64,
    /// Half-width of the 95% confidence interval.
    pub ci: f64,
}

/// Single-system bootstrap confidence intervals of each metric over one shared set of resamples,
/// as sacrebleu's `--confidence`. `stats[m]` holds metric `m`'s per-segment statistics.
pub fn confidence_intervals(
    metrics: &[Metric],
    stats: &[Vec<Vec<u64>>],
    samples: usize,
    seed: u64,
) -> Vec<Confidence> {
    let n = stats[0].len();
    let views: Vec<&[Vec<u64>]> = stats.iter().map(Vec::as_slice).collect();
    let rows = StatsRows::new(&views);
    let sums = rows.resample_sums(&bootstrap_indices(seed, samples, n), n);
    resampled_scores(metrics, &rows, &sums)
        .iter()
        .map(|s| {
            let (mean, ci) = s.py_estimate_ci();
            Confidence { mean, ci }
        })
        .collect()
}

/// The paired tests of several systems against a baseline on the same references, as sacrebleu's
/// `PairedTest`. Row 0 is the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairedReport {
    /// The test as run.
    pub config: TestConfig,
    /// Metric names (sacrebleu's: `BLEU`, `chrF2`, `chrF2++`).
    pub metrics: Vec<String>,
    /// Signatures with the test's fields, one per metric.
    pub signatures: Vec<String>,
    /// System names, the baseline first.
    pub systems: Vec<String>,
    /// `results[s][m]`: system `s`, metric `m`.
    pub results: Vec<Vec<TestResult>>,
}

/// Runs the paired test of `systems[1..]` against the baseline `systems[0]`.
pub fn paired_test(
    metrics: &[Metric],
    refs: &[Vec<String>],
    systems: &[(String, Vec<String>)],
    config: &TestConfig,
) -> Result<PairedReport, MetricsError> {
    config.check()?;
    if systems.len() < 2 {
        return Err(MetricsError::BadValue {
            field: "systems",
            value: systems.len().to_string(),
            expected: "a baseline and at least one system",
        });
    }
    for (_, hyps) in systems {
        check_streams(hyps, refs)?;
    }
    let stats: Vec<Vec<Vec<Vec<u64>>>> = systems
        .iter()
        .map(|(_, hyps)| metrics_stats(metrics, hyps, refs))
        .collect();
    let results = paired_test_on_stats(metrics, &stats, config);
    Ok(PairedReport {
        config: *config,
        metrics: metrics.iter().map(Metric::name).collect(),
        signatures: metrics
            .iter()
            .map(|m| config.signature(&m.signature(refs.len())))
            .collect(),
        systems: systems.iter().map(|(n, _)| n.clone()).collect(),
        results,
    })
}

/// [`paired_test`] on precomputed statistics: `stats[s][m]` are system `s`'s per-segment
/// statistics for metric `m`, system 0 the baseline; all systems have the same segments.
pub fn paired_test_on_stats(
    metrics: &[Metric],
    stats: &[Vec<Vec<Vec<u64>>>],
    config: &TestConfig,
) -> Vec<Vec<TestResult>> {
    let n = stats[0][0].len();
    let actual: Vec<Vec<f64>> = stats
        .iter()
        .map(|sys| {
            metrics
                .iter()
                .zip(sys)
                .map(|(m, s)| m.score(&sum_stats(s)))
                .collect()
        })
        .collect();
    let rows: Vec<StatsRows> = stats
        .iter()
        .map(|sys| StatsRows::new(&sys.iter().map(Vec::as_slice).collect::<Vec<_>>()))
        .collect();
    // Every system's test reseeds the generator, so all draw the same bootstrap indices, and so
    // does the baseline's confidence interval when it uses as many resamples.
    let confidence = config.confidence_samples().map(|samples| {
        let baseline_idxs = bootstrap_indices(config.seed, samples, n);
        // The bootstrap test's systems draw the baseline's indices; AR's draw them after the
        // trials' selection.
        let idxs = (config.kind == TestKind::ApproximateRandomization).then(|| {
            let mut rng = NumpyRng::new(config.seed);
            let _ = rng.bools(config.samples * n);
            rng.choice(n, samples * n)
        });
        (idxs, baseline_idxs)
    });
    let mut out = Vec::with_capacity(stats.len());
    let baseline_scores = confidence.as_ref().map(|(_, bl_idxs)| {
        resampled_scores(metrics, &rows[0], &rows[0].resample_sums(bl_idxs, n))
    });
    out.push(
        (0..metrics.len())
            .map(|m| {
                let ci = baseline_scores.as_ref().map(|s| s[m].np_estimate_ci());
                TestResult {
                    score: actual[0][m],
                    p_value: None,
                    mean: ci.map(|c| c.0),
                    ci: ci.map(|c| c.1),
                }
            })
            .collect(),
    );
    let ar_selection = (config.kind == TestKind::ApproximateRandomization)
        .then(|| NumpyRng::new(config.seed).bools(config.samples * n));
    for s in 1..stats.len() {
        let sys_scores = confidence.as_ref().map(|(idxs, bl_idxs)| {
            let idxs = idxs.as_ref().unwrap_or(bl_idxs);
            resampled_scores(metrics, &rows[s], &rows[s].resample_sums(idxs, n))
        });
        let mut row = Vec::with_capacity(metrics.len());
        for (m, metric) in metrics.iter().enumerate() {
            let diff = (actual[0][m] - actual[s][m]).abs();
            let ci = sys_scores.as_ref().map(|sc| sc[m].np_estimate_ci());
            let p_value = match &ar_selection {
                None => {
                    let bl = &baseline_scores.as_ref().expect("bootstrap resamples")[m];
                    let sys = &sys_scores.as_ref().expect("bootstrap resamples")[m];
                    bootstrap_p_value(bl, sys, diff)
                }
                Some(sel) => ar_p_value(metric, &stats[0][m], &stats[s][m], sel, diff),
            };
            row.push(TestResult {
                score: actual[s][m],
                p_value: Some(p_value),
                mean: ci.map(|c| c.0),
                ci: ci.map(|c| c.1),
            });
        }
        out.push(row);
    }
    out
}

/// `_compute_p_value`: `(#{stat > real} + 1) / (len + 1)`, the comparison in the array's dtype.
fn p_value_of(stats: &Scores, real_difference: f64) -> f64 {
    let threshold = stats.round(real_difference);
    let c = stats.values.iter().filter(|&&v| v > threshold).count();
    (c + 1) as f64 / (stats.values.len() + 1) as f64
}

/// The paired bootstrap p-value: resampled absolute differences, centred on their mean, against
/// the actual difference.
fn bootstrap_p_value(baseline: &Scores, system: &Scores, diff: f64) -> f64 {
    let float32 = baseline.float32 && system.float32;
    let round = |v: f64| if float32 { f64::from(v as f32) } else { v };
    let diffs = Scores {
        values: system
            .values
            .iter()
            .zip(&baseline.values)
            .map(|(&s, &b)| round(s - b).abs())
            .collect(),
        float32,
    };
    let mean = diffs.np_mean();
    let centred = Scores {
        values: diffs.values.iter().map(|&d| round(d - mean)).collect(),
        float32,
    };
    p_value_of(&centred, diff)
}

/// The approximate-randomization p-value: for each trial, segments swapped between the systems
/// where the selector is set; the absolute score differences of the two pseudo-systems against
/// the actual difference. Integer statistics, as numpy's boolean matrix products give them.
fn ar_p_value(
    metric: &Metric,
    baseline: &[Vec<u64>],
    system: &[Vec<u64>],
    selection: &[bool],
    diff: f64,
) -> f64 {
    let n = baseline.len();
    let bl_total = sum_stats(baseline);
    let sys_total = sum_stats(system);
    let width = bl_total.len();
    let delta: Vec<i64> = baseline
        .iter()
        .zip(system)
        .flat_map(|(b, s)| b.iter().zip(s).map(|(&b, &s)| b as i64 - s as i64))
        .collect();
    let diffs: Vec<f64> = selection
        .par_chunks(n)
        .map(|sel| {
            // shuf_a = pos @ bl + neg @ sys = sys_total + pos @ (bl - sys).
            let mut a: Vec<i64> = sys_total.iter().map(|&v| v as i64).collect();
            for (i, _) in sel.iter().enumerate().filter(|(_, s)| **s) {
                for (acc, d) in a.iter_mut().zip(&delta[i * width..(i + 1) * width]) {
                    *acc += d;
                }
            }
            let a: Vec<u64> = a.iter().map(|&v| v as u64).collect();
            let b: Vec<u64> = (0..width)
                .map(|j| bl_total[j] + sys_total[j] - a[j])
                .collect();
            (metric.trial_score(&a) - metric.trial_score(&b)).abs()
        })
        .collect();
    p_value_of(
        &Scores {
            values: diffs,
            float32: false,
        },
        diff,
    )
}
