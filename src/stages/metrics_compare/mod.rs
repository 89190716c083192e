//! `metrics.compare`: sacrebleu's paired significance tests (bootstrap resampling or approximate
//! randomization, bit-exact with sacrebleu 2.6.0) of several runs' generations against a baseline
//! run, per direction, for BLEU, chrF and chrF++.

use std::collections::BTreeMap;

use alinea_metrics::{MetricsError, ScoreConfig};
use alinea_metrics::significance::{
    self, DEFAULT_SEED, PairedReport, TestConfig, TestKind, TestResult,
};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::stages::metrics_score::input::{self, ReadCounts, Segment};
use alinea_engine::{
    DType, InputSlot, Optional, OutputSlot, Outputs, ParamError, PathSlot, Stage, StageCtx,
    StageError, Stats, TablesSlot, col,
};

/// Parameters of `metrics.compare`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Test set name written in the `test_set` column.
    pub test_set: String,
    /// The stage whose generations are the baseline (default: the first `generations` input).
    pub baseline: String,
    /// `bs` (paired bootstrap resampling, sacrebleu `--paired-bs`) or `ar` (approximate
    /// randomization, `--paired-ar`).
    pub test: String,
    /// Resamples (bs) or trials (ar); sacrebleu's defaults 1000 / 10,000 when absent.
    pub samples: Option<usize>,
    /// The resampling seed (sacrebleu's `SACREBLEU_SEED`), nonzero.
    pub seed: u64,
    /// BLEU / chrF options, the keys of `metrics.score`.
    #[serde(flatten)]
    pub score: ScoreConfig,
    /// Hypothesis column (default: `hypothesis`, else `hyp`).
    pub hyp_column: String,
    /// Reference column (default: `ref`, else `reference`, else `output` minus its leading space).
    pub ref_column: String,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            test_set: "test".into(),
            baseline: String::new(),
            test: "bs".into(),
            samples: None,
            seed: DEFAULT_SEED,
            score: ScoreConfig::default(),
            hyp_column: String::new(),
            ref_column: String::new(),
        }
    }
}

impl Params {
    fn test_config(&self) -> Result<TestConfig, ParamError> {
        let kind = match self.test.as_str() {
            "bs" => TestKind::Bootstrap,
            "ar" => TestKind::ApproximateRandomization,
            other => {
                return Err(ParamError::new(
                    "test",
                    format!("unknown `{other}` (allowed: bs, ar)"),
                ));
            }
        };
        let mut config = TestConfig {
            seed: self.seed,
            ..TestConfig::new(kind)
        };
        if let Some(n) = self.samples {
            config.samples = n;
        }
        config.check().map_err(|e| match e {
            MetricsError::BadValue { field, .. } => {
                ParamError::new(field, e.to_string())
            }
            e => ParamError::new("test", e.to_string()),
        })?;
        Ok(config)
    }

    /// The column choices of `metrics.score`, to read the tables the same way.
    fn reader(&self) -> crate::stages::metrics_score::Params {
        crate::stages::metrics_score::Params {
            hyp_column: self.hyp_column.clone(),
            ref_column: self.ref_column.clone(),
            ..Default::default()
        }
    }
}

const GENERATIONS: TablesSlot = TablesSlot::new(
    "generations",
    "the generations tables of the runs to compare (two or more: [\"gen_mt\", \"gen_align\"] or \"gen[*]\"), with the columns metrics.score reads; every run must cover the baseline's directions and segments (matched by pair_id, else by order) with the same references",
);
const SPM_MODEL: PathSlot<Optional> = PathSlot::new(
    "spm_model",
    "the SentencePiece model of `tokenize = \"flores200\"` / `\"flores101\"` (spBLEU), as for metrics.score",
)
.optional();

/// The stage kind.
pub struct MetricsCompare;

/// A run's segments per direction, in order of first appearance.
pub(crate) type Directions = Vec<(String, Vec<Segment>)>;

/// One run's segments per direction, in order of first appearance.
pub(crate) fn by_direction(segs: Vec<Segment>) -> Directions {
    let mut out: Vec<(String, Vec<Segment>)> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for s in segs {
        let i = *index.entry(s.direction.clone()).or_insert_with(|| {
            out.push((s.direction.clone(), Vec::new()));
            out.len() - 1
        });
        out[i].1.push(s);
    }
    out
}

/// At most this many pair_ids are named in an alignment error.
const NAMED_IDS: usize = 5;

fn id_list(ids: &[u64]) -> String {
    let mut s = ids
        .iter()
        .take(NAMED_IDS)
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() > NAMED_IDS {
        s.push_str(&format!(" and {} more", ids.len() - NAMED_IDS));
    }
    s
}

/// The pair_ids of a direction's segments, or None when some segment has none; an error for a
/// pair_id given twice.
fn pair_ids(segs: &[Segment], bad: &dyn Fn(String) -> StageError, whose: &str) -> Result<Option<BTreeMap<u64, usize>>, StageError> {
    let mut ids = BTreeMap::new();
    for (i, s) in segs.iter().enumerate() {
        let Some(id) = s.pair_id else {
            return Ok(None);
        };
        if let Some(first) = ids.insert(id, i) {
            return Err(bad(format!(
                "{whose} has pair_id {id} twice (rows {} and {})",
                segs[first].row, s.row
            )));
        }
    }
    Ok(Some(ids))
}

/// A system's hypotheses in the order of the baseline's segments: matched by `pair_id` when both
/// tables have one, by position otherwise, and checked to have the baseline's references.
pub(crate) fn aligned_hyps(
    run: &str,
    baseline: &str,
    direction: &str,
    base: &[Segment],
    sys: Option<&Vec<Segment>>,
) -> Result<Vec<String>, StageError> {
    let bad = |message: String| StageError::Input {
        slot: GENERATIONS.name().into(),
        message: format!("run `{run}`, direction {direction}: {message}"),
    };
    let Some(sys) = sys else {
        return Err(bad(format!("missing, but the baseline `{baseline}` has it")));
    };
    let base_ids = pair_ids(base, &bad, &format!("the baseline `{baseline}`"))?;
    let sys_ids = pair_ids(sys, &bad, "it")?;
    let order: Vec<usize> = match (&base_ids, &sys_ids) {
        (Some(b), Some(s)) => {
            let missing: Vec<u64> = b.keys().filter(|id| !s.contains_key(id)).copied().collect();
            let extra: Vec<u64> = s.keys().filter(|id| !b.contains_key(id)).copied().collect();
            if !missing.is_empty() || !extra.is_empty() {
                let mut parts = Vec::new();
                if !missing.is_empty() {
                    parts.push(format!("lacks pair_id {} of the baseline `{baseline}`", id_list(&missing)));
                }
                if !extra.is_empty() {
                    parts.push(format!("has pair_id {} that the baseline `{baseline}` lacks", id_list(&extra)));
                }
                return Err(bad(parts.join("; ")));
            }
            base.iter()
                .map(|seg| s[&seg.pair_id.expect("every baseline segment has a pair_id")])
                .collect()
        }
        (None, None) => {
            if sys.len() != base.len() {
                return Err(bad(format!(
                    "{} segments, the baseline `{baseline}` has {} (neither has pair_ids to match them by)",
                    sys.len(),
                    base.len()
                )));
            }
            (0..base.len()).collect()
        }
        (b, _) => {
            let (with, without) = if b.is_some() { (baseline, run) } else { (run, baseline) };
            return Err(bad(format!(
                "`{with}` has pair_ids but `{without}` does not: the segments cannot be matched"
            )));
        }
    };
    order
        .into_iter()
        .zip(base)
        .map(|(i, b)| {
            let s = &sys[i];
            if b.reference != s.reference {
                return Err(bad(format!(
                    "segment {} (row {}) has another reference than the baseline's (row {}): the runs are not aligned",
                    s.pair_id.map_or(format!("{i}"), |id| format!("with pair_id {id}")),
                    s.row,
                    b.row
                )));
            }
            Ok(s.hyp.clone())
        })
        .collect()
}

/// One row of the output per (direction, system, metric).
struct Row {
    direction: String,
    system: String,
    metric: String,
    result: TestResult,
    baseline_score: f64,
    signature: String,
}

fn rows_of(direction: &str, report: &PairedReport) -> Vec<Row> {
    let mut rows = Vec::new();
    for (s, system) in report.systems.iter().enumerate().skip(1) {
        for (m, metric) in report.metrics.iter().enumerate() {
            rows.push(Row {
                direction: direction.to_string(),
                system: system.clone(),
                metric: metric.clone(),
                result: report.results[s][m],
                baseline_score: report.results[0][m].score,
                signature: report.signatures[m].clone(),
            });
        }
    }
    rows
}

impl Stage for MetricsCompare {
    const KIND: &'static str = "metrics.compare";
    const PLACEMENT: alinea_engine::Placement = alinea_engine::Placement::Local;
    const SUMMARY: &'static str = "paired bootstrap / approximate randomization significance tests of runs against a baseline, per direction (sacrebleu-exact)";
    const DOC: &'static str = "\
Compares the generations of two or more runs direction by direction with sacrebleu 2.6.0's paired tests, bit-exact:
paired bootstrap resampling (`test = \"bs\"`, 1000 resamples, with each system's bootstrap mean and 95% confidence
interval) or approximate randomization (`test = \"ar\"`, 10,000 trials), seed 12345, for BLEU, chrF and chrF++ under
the scoring options of `metrics.score`. The baseline is the `baseline` stage's table (default: the first input); a
difference is significant when p <= 0.05 (sacrebleu's `*`). `tokenize = \"flores200\"` / `\"flores101\"` (spBLEU) take
the SentencePiece model as the `spm_model` input, as in `metrics.score`. Every run must have the baseline's directions
and segments with the same references: matched by `pair_id` when the tables have one (a run lacking or adding
pair_ids is refused, naming them), by order otherwise. The `report` stage marks significant differences when given this table as
`comparisons`.";
    type Params = Params;
    const INPUTS: &'static [InputSlot] = &[GENERATIONS.slot(), SPM_MODEL.slot()];
    const OUTPUTS: &'static [OutputSlot] = &[OutputSlot::table(
        "comparisons",
        &[
            col("test_set", DType::Str),
            col("direction", DType::Str),
            col("baseline", DType::Str),
            col("system", DType::Str),
            col("metric", DType::Str),
            col("test", DType::Str),
            col("samples", DType::U64),
            col("baseline_score", DType::F64),
            col("score", DType::F64),
            col("delta", DType::F64),
            col("p_value", DType::F64),
            col("mean", DType::F64),
            col("ci", DType::F64),
            col("significant", DType::Bool),
            col("signature", DType::Str),
        ],
        "one row per direction, system and metric (BLEU, chrF2, chrF2++): the test against the baseline; mean and ci are the bootstrap estimate (null for ar)",
    )];

    fn validate(p: &Params) -> Result<(), ParamError> {
        p.score
            .validate()
            .map_err(|(field, message)| ParamError::new(field, message))?;
        p.test_config()?;
        if p.test_set.is_empty() {
            return Err(ParamError::new("test_set", "must not be empty"));
        }
        Ok(())
    }

    fn run(p: &Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let config = p
            .test_config()
            .map_err(|e| StageError::Param {
                field: e.field.clone(),
                message: e.message.clone(),
            })?;
        let spm_model = input::spm_model(ctx, SPM_MODEL)?;
        let opts = p.score.options(spm_model).map_err(|e| match e {
            MetricsError::TokenizerModel(m) => StageError::Input {
                slot: SPM_MODEL.name().into(),
                message: m,
            },
            e => StageError::domain("", e),
        })?;
        let metrics = opts.metrics();
        let tables = ctx.tables(GENERATIONS)?;
        if tables.len() < 2 {
            return Err(StageError::Input {
                slot: GENERATIONS.name().into(),
                message: format!(
                    "{} table(s) given: compare a baseline with at least one more run",
                    tables.len()
                ),
            });
        }
        let base_index = if p.baseline.is_empty() {
            0
        } else {
            tables
                .iter()
                .position(|(n, _)| *n == p.baseline)
                .ok_or_else(|| StageError::Param {
                    field: "baseline".into(),
                    message: format!(
                        "no generations input is named `{}` (inputs: {})",
                        p.baseline,
                        tables.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                })?
        };
        let reader = p.reader();
        let mut stats = Stats::default();
        let mut runs: Vec<(String, Directions)> = Vec::new();
        for (name, df) in &tables {
            stats.rows_in += df.height() as u64;
            let segs = input::segments(df, &reader, None, &mut ReadCounts::default())?;
            runs.push((name.clone(), by_direction(segs)));
        }
        // The baseline first, the others in input order.
        let baseline = runs.remove(base_index);
        let mut rows = Vec::new();
        for (direction, base_segs) in &baseline.1 {
            let mut systems = vec![(
                baseline.0.clone(),
                base_segs.iter().map(|s| s.hyp.clone()).collect::<Vec<_>>(),
            )];
            for (run, dirs) in &runs {
                let sys = dirs.iter().find(|(d, _)| d == direction).map(|(_, s)| s);
                let hyps = aligned_hyps(run, &baseline.0, direction, base_segs, sys)?;
                systems.push((run.clone(), hyps));
            }
            let refs = vec![base_segs.iter().map(|s| s.reference.clone()).collect()];
            let report = significance::paired_test(&metrics, &refs, &systems, &config)
                .map_err(|e| StageError::domain("", e))?;
            rows.extend(rows_of(direction, &report));
        }
        stats.count("directions", baseline.1.len() as u64);
        stats.count(
            "significant",
            rows.iter().filter(|r| r.result.significant()).count() as u64,
        );
        let df = frame(p, &config, &baseline.0, &rows)?;
        stats.rows_out = df.height() as u64;
        Ok(Outputs::table("comparisons", df, stats))
    }
}


fn frame(p: &Params, config: &TestConfig, baseline: &str, rows: &[Row]) -> PolarsResult<DataFrame> {
    macro_rules! col {
        ($name:literal, $f:expr) => {
            Column::new($name.into(), rows.iter().map($f).collect::<Vec<_>>())
        };
    }
    DataFrame::new_infer_height(vec![
        col!("test_set", |_: &Row| p.test_set.clone()),
        col!("direction", |r: &Row| r.direction.clone()),
        col!("baseline", |_: &Row| baseline.to_string()),
        col!("system", |r: &Row| r.system.clone()),
        col!("metric", |r: &Row| r.metric.clone()),
        col!("test", |_: &Row| config.kind.key().to_string()),
        col!("samples", |_: &Row| config.samples as u64),
        col!("baseline_score", |r: &Row| r.baseline_score),
        col!("score", |r: &Row| r.result.score),
        col!("delta", |r: &Row| r.result.score - r.baseline_score),
        col!("p_value", |r: &Row| r.result.p_value),
        col!("mean", |r: &Row| r.result.mean),
        col!("ci", |r: &Row| r.result.ci),
        col!("significant", |r: &Row| r.result.significant()),
        col!("signature", |r: &Row| r.signature.clone()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real Flores-200 devtest lines as one direction's segments, pair_ids from `first`.
    fn segments(hyp_of: impl Fn(&str) -> String, first: u64) -> Vec<Segment> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/datasets/flores200/flores200_dataset/devtest/zho_Hans.devtest");
        let text = std::fs::read_to_string(path).expect("flores devtest");
        text.lines()
            .take(20)
            .enumerate()
            .map(|(i, l)| Segment {
                row: i as u64,
                pair_id: Some(first + i as u64),
                direction: "en-zh".into(),
                src_lang: "en".into(),
                tgt_lang: "zh".into(),
                src: None,
                reference: l.to_string(),
                hyp: hyp_of(l),
            })
            .collect()
    }

    #[test]
    fn systems_are_lined_up_by_pair_id() {
        let base = segments(|l| l.chars().skip(1).collect(), 0);
        // The other run's rows in reverse order: its hypotheses come back in the baseline's order.
        let mut sys = segments(|l| l.chars().rev().collect(), 0);
        sys.reverse();
        for (i, s) in sys.iter_mut().enumerate() {
            s.row = i as u64;
        }
        let hyps = aligned_hyps("gen_b", "gen_a", "en-zh", &base, Some(&sys)).unwrap();
        for (h, b) in hyps.iter().zip(&base) {
            assert_eq!(*h, b.reference.chars().rev().collect::<String>());
        }
        // Pair ids shifted by three: three missing, three extra, all named.
        let shifted = segments(|l| l.to_string(), 3);
        let err = aligned_hyps("gen_b", "gen_a", "en-zh", &base, Some(&shifted))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("lacks pair_id 0, 1, 2 of the baseline `gen_a`")
                && err.contains("has pair_id 20, 21, 22 that the baseline `gen_a` lacks"),
            "{err}"
        );
        // Same pair_ids but another reference: not the same segments.
        let mut other = segments(|l| l.to_string(), 0);
        other[4].reference.push('。');
        let err = aligned_hyps("gen_b", "gen_a", "en-zh", &base, Some(&other))
            .unwrap_err()
            .to_string();
        assert!(err.contains("segment with pair_id 4 (row 4) has another reference"), "{err}");
    }
}
