//! `metrics.score`: sacrebleu-exact BLEU / chrF / chrF++ per direction, bring-your-own COMET, and the mFTI
//! failure analysis (off-target, source copy, oscillation, length) of a generations table.

pub mod input;

use std::collections::BTreeMap;

use alinea_metrics::{
    CometCommand, FailureConfig, LidModel, MetricsError, ScoreConfig, ScoreOptions, SpmModel,
    analyze_failures, run_comet, score_corpus, sentence_scores,
};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::support::lang::{Language, Registry};
use alinea_engine::{
    BlobSlot, DType, InputSlot, Optional, OutputSlot, Outputs, ParamError, PathSlot, Stage,
    StageCtx, StageError, Stats, TableSlot, col,
};
use input::{ReadCounts, Segment};

/// Parameters of `metrics.score`: the scoring options of `alinea_metrics::ScoreConfig` (same keys,
/// flattened) and the table's columns.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Test set name written in the `test_set` column (`flores200`, `opus100`, `ntrex128`, …).
    pub test_set: String,
    /// BLEU / chrF options (`tokenize`, `lowercase`, `chrf_lowercase`, `smoothing`, `smooth_value`,
    /// `bleu_max_ngram_order`, `bleu_effective_order`, `chrf_char_order`, `chrf_beta`,
    /// `chrf_whitespace`, `chrf_eps_smoothing`).
    #[serde(flatten)]
    pub score: ScoreConfig,
    /// A local COMET command with `{src}`, `{hyp}`, `{ref}` placeholders; absent = no COMET (null, never made up).
    pub comet: Option<String>,
    /// Hypothesis column (default: `hypothesis`, else `hyp`).
    pub hyp_column: String,
    /// Reference column (default: `ref`, else `reference`, else `output` minus its leading space).
    pub ref_column: String,
    /// Source column (default: `src` when present; else the `pairs` input; else the MTInstruct prompt).
    pub src_column: String,
    /// Languages beyond the built-in registry (names for the prompt, Flores codes for the identifier).
    pub extra_languages: Vec<Language>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            test_set: "test".into(),
            score: ScoreConfig::default(),
            comet: None,
            hyp_column: String::new(),
            ref_column: String::new(),
            src_column: String::new(),
            extra_languages: Vec::new(),
        }
    }
}

impl Params {
    /// The scoring options, with the SentencePiece model when the tokenizer needs one.
    fn options(&self, spm_model: Option<SpmModel>) -> Result<ScoreOptions, MetricsError> {
        self.score.options(spm_model)
    }
}

const GENERATIONS: TableSlot<Optional> = TableSlot::new(
    "generations",
    "a generations table (instruction-table columns + `hypothesis`), or any table with columns direction (or src_lang + tgt_lang), ref (or reference, or output), hyp (or hypothesis), src; give this or `generations_file`",
)
.optional();
const GENERATIONS_FILE: PathSlot<Optional> = PathSlot::new(
    "generations_file",
    "the same as a .parquet or .jsonl file (e.g. outputs generated elsewhere)",
)
.optional();
const LID: BlobSlot<Optional> = BlobSlot::new(
    "lid",
    "the `model` blob of a lid.train stage (enables off_target_rate)",
)
.optional();
const PAIRS: TableSlot<Optional> = TableSlot::new(
    "pairs",
    "a pairs table to look sources up by pair_id when the table has no `src` column",
)
.optional();
const SPM_MODEL: PathSlot<Optional> = PathSlot::new(
    "spm_model",
    "the SentencePiece model of `tokenize = \"flores200\"` (spBLEU), e.g. flores200_sacrebleu_tokenizer_spm.model (a local copy)",
)
.optional();

/// The stage kind.
pub struct MetricsScore;

fn metrics_err(e: MetricsError) -> StageError {
    StageError::domain("", e)
}

/// The non-English side of a direction (the language a paper table lists it under).
fn lang_of(src: &str, tgt: &str) -> String {
    if src == "en" || src == "eng_Latn" {
        tgt.to_string()
    } else {
        src.to_string()
    }
}

/// Scores of one direction.
struct DirectionResult {
    direction: String,
    src_lang: String,
    tgt_lang: String,
    segments: Vec<Segment>,
    report: alinea_metrics::ScoreReport,
    sentences: Vec<alinea_metrics::SentenceScores>,
    failures: alinea_metrics::FailureReport,
    has_sources: bool,
    /// The trivial baseline: the sources themselves scored as the hypotheses (None without known sources).
    copy: Option<alinea_metrics::ScoreReport>,
}

#[allow(clippy::too_many_arguments)]
fn score_direction(
    opts: &ScoreOptions,
    registry: &Registry,
    lid: Option<&LidModel>,
    comet: Option<&CometCommand>,
    ctx: &StageCtx,
    segs: Vec<Segment>,
    stats: &mut Stats,
) -> Result<DirectionResult, StageError> {
    let first = &segs[0];
    let (direction, src_lang, tgt_lang) = (
        first.direction.clone(),
        first.src_lang.clone(),
        first.tgt_lang.clone(),
    );
    let hyps: Vec<String> = segs.iter().map(|s| s.hyp.clone()).collect();
    let refs: Vec<String> = segs.iter().map(|s| s.reference.clone()).collect();
    let has_sources = segs.iter().all(|s| s.src.is_some());
    let srcs: Vec<String> = segs
        .iter()
        .map(|s| s.src.clone().unwrap_or_default())
        .collect();
    let streams = [refs];
    let mut report = score_corpus(&hyps, &streams, opts).map_err(metrics_err)?;
    let sentences = sentence_scores(&hyps, &streams, opts).map_err(metrics_err)?;
    let copy = has_sources
        .then(|| score_corpus(&srcs, &streams, opts))
        .transpose()
        .map_err(metrics_err)?;
    // The identifier's labels are Flores codes; the table's are the registry's ISO codes.
    let target = registry
        .get(&tgt_lang)
        .map_or_else(|| tgt_lang.clone(), |l| l.flores.clone());
    let failures = analyze_failures(
        &srcs,
        &hyps,
        &streams[0],
        &target,
        lid,
        &FailureConfig::for_target(&target),
    )
    .map_err(metrics_err)?;
    if lid.is_some() && failures.off_target_rate.is_none() {
        stats.count("target_unknown_to_lid", segs.len() as u64);
    }
    if let Some(cmd) = comet {
        if has_sources {
            let dir = ctx.work_dir()?.join("comet").join(&direction);
            std::fs::create_dir_all(&dir).map_err(StageError::io(&dir))?;
            let write = |name: &str, lines: &[String]| -> Result<std::path::PathBuf, StageError> {
                let path = dir.join(name);
                let mut text = lines.join("\n");
                text.push('\n');
                std::fs::write(&path, text).map_err(StageError::io(&path))?;
                Ok(path)
            };
            let (s, h, r) = (
                write("src.txt", &srcs)?,
                write("hyp.txt", &hyps)?,
                write("ref.txt", &streams[0])?,
            );
            report.comet = run_comet(Some(cmd), &s, &h, &r).map_err(metrics_err)?;
            if report.comet.is_none() {
                stats.count("comet_program_not_found", 1);
            }
        } else {
            stats.count("comet_skipped_without_source", 1);
        }
    }
    Ok(DirectionResult {
        direction,
        src_lang,
        tgt_lang,
        segments: segs,
        report,
        sentences,
        failures,
        has_sources,
        copy,
    })
}

impl Stage for MetricsScore {
    const KIND: &'static str = "metrics.score";
    const SUMMARY: &'static str = "BLEU / chrF / chrF++ (sacrebleu-exact), COMET (bring-your-own) and failure analysis per direction";
    const DOC: &'static str = "\
Scores model outputs per direction exactly as sacrebleu 2.6.0 does (corpus BLEU, chrF, chrF++ and their sentence-level
values), runs a local COMET command when one is given (absent otherwise: null, never estimated), and the mFTI failure
analysis: off-target rate (with the `lid` identifier), source copies, oscillatory hallucinations, length ratio and
over/under-translation.

Columns read: hyp = `hyp_column` or `hypothesis`/`hyp`; ref = `ref_column` or `ref`/`reference`/`output` (an `output`
column loses its leading space, as in the MTInstruct template); src = `src_column` or `src`, else the `pairs` input by
(pair_id, src_lang), else parsed from an MTInstruct prompt in `instruction`; pair_id when present. Hypotheses and
references are compared as sacrebleu compares lines read from files (trailing whitespace removed, Python rstrip).
Directions are scored in order of first appearance; language codes map to Flores codes through the registry for
the identifier. Without a known source for every segment of a direction, source_copy_rate, COMET and the copy
baseline are null. The copy baseline (`copy_bleu`, `copy_chrfpp`) scores the sources as if they were the
hypotheses: what a model that translates nothing gets, the floor a report compares against.";
    type Params = Params;
    const INPUTS: &'static [InputSlot] = &[
        GENERATIONS.slot(),
        GENERATIONS_FILE.slot(),
        LID.slot(),
        PAIRS.slot(),
        SPM_MODEL.slot(),
    ];
    const OUTPUTS: &'static [OutputSlot] = &[
        OutputSlot::table(
            "scores",
            &[
                col("test_set", DType::Str),
                col("direction", DType::Str),
                col("src_lang", DType::Str),
                col("tgt_lang", DType::Str),
                col("lang", DType::Str),
                col("segments", DType::U64),
                col("bleu", DType::F64),
                col("chrf", DType::F64),
                col("chrfpp", DType::F64),
                col("comet", DType::F64),
                col("bleu_signature", DType::Str),
                col("chrf_signature", DType::Str),
                col("chrfpp_signature", DType::Str),
                col("empty_rate", DType::F64),
                col("off_target_rate", DType::F64),
                col("source_copy_rate", DType::F64),
                col("oscillation_rate", DType::F64),
                col("length_ratio", DType::F64),
                col("over_translation_rate", DType::F64),
                col("under_translation_rate", DType::F64),
                col("copy_bleu", DType::F64),
                col("copy_chrfpp", DType::F64),
            ],
            "one row per direction (lang = the non-English side); comet null when absent, off_target_rate null without lid or for a target the identifier does not know, source_copy_rate null without a known source; copy_bleu and copy_chrfpp score the sources themselves as hypotheses (the trivial baseline to beat; null without known sources)",
        ),
        OutputSlot::table(
            "segments",
            &[
                col("direction", DType::Str),
                col("row", DType::U64),
                col("pair_id", DType::U64),
                col("bleu", DType::F64),
                col("chrf", DType::F64),
                col("chrfpp", DType::F64),
                col("empty", DType::Bool),
                col("off_target", DType::Bool),
                col("source_copy", DType::Bool),
                col("oscillation", DType::Bool),
                col("over_translation", DType::Bool),
                col("under_translation", DType::Bool),
                col("detected_lang", DType::Str),
                col("hyp_len", DType::U64),
                col("ref_len", DType::U64),
            ],
            "one row per segment: sentence-level scores and failure flags (off_target null without lid, source_copy null without source)",
        ),
    ];

    fn validate(p: &Params) -> Result<(), ParamError> {
        p.score
            .validate()
            .map_err(|(field, message)| ParamError::new(field, message))?;
        if p.test_set.is_empty() {
            return Err(ParamError::new("test_set", "must not be empty"));
        }
        if let Some(c) = &p.comet
            && CometCommand::parse(c).is_none()
        {
            return Err(ParamError::new(
                "comet",
                "empty command (leave the parameter out for no COMET)",
            ));
        }
        Ok(())
    }

    fn run(p: &Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let spm_model = input::spm_model(ctx, SPM_MODEL)?;
        let opts = p.options(spm_model).map_err(|e| match e {
            MetricsError::TokenizerModel(m) => StageError::Input {
                slot: SPM_MODEL.name().into(),
                message: m,
            },
            e => metrics_err(e),
        })?;
        let registry = Registry::with_extra(&p.extra_languages);
        let df = match (ctx.table(GENERATIONS)?, ctx.path(GENERATIONS_FILE)?) {
            (Some(df), None) => df,
            (None, Some(path)) => {
                let path = path.to_path_buf();
                input::read_file(&path, ctx.read_file(&path)?)?
            }
            (Some(_), Some(_)) => {
                return Err(StageError::Input {
                    slot: GENERATIONS.name().into(),
                    message: "give `generations` or `generations_file`, not both".into(),
                });
            }
            (None, None) => {
                return Err(StageError::Input {
                    slot: GENERATIONS.name().into(),
                    message: "no input: give `generations` (a table) or `generations_file`".into(),
                });
            }
        };
        let lid = if let Some(bytes) = ctx.blob(LID)? {
            let m: LidModel = serde_json::from_slice(&bytes).map_err(|e| StageError::Input {
                slot: LID.name().into(),
                message: format!("not a lid.train model: {e}"),
            })?;
            m.validate().map_err(|e| StageError::Input {
                slot: LID.name().into(),
                message: e.to_string(),
            })?;
            Some(m)
        } else {
            None
        };
        let pairs = match ctx.table(PAIRS)? {
            Some(df) => Some(input::index_pairs(&df)?),
            None => None,
        };
        let comet = p.comet.as_deref().and_then(CometCommand::parse);

        let mut counts = ReadCounts::default();
        let segs = input::segments(&df, p, pairs.as_ref(), &mut counts)?;
        let mut stats = Stats {
            rows_in: df.height() as u64,
            ..Stats::default()
        };
        if segs.is_empty() {
            return Err(StageError::Input {
                slot: GENERATIONS.name().into(),
                message: "the table has no rows to score".into(),
            });
        }
        stats.count("null_hypothesis", counts.null_hypothesis);
        stats.count("null_reference", counts.null_reference);
        stats.count("source_from_pairs", counts.source_from_pairs);
        stats.count("source_from_instruction", counts.source_from_instruction);
        stats.count("source_unknown", counts.source_unknown);

        // Group by direction, in order of first appearance.
        let mut order: Vec<String> = Vec::new();
        let mut groups: BTreeMap<String, Vec<Segment>> = BTreeMap::new();
        for s in segs {
            if !groups.contains_key(&s.direction) {
                order.push(s.direction.clone());
            }
            groups.entry(s.direction.clone()).or_default().push(s);
        }
        let mut results = Vec::with_capacity(order.len());
        let bar = ctx.progress(order.len() as u64, "directions scored");
        for d in &order {
            let segs = groups.remove(d).expect("grouped above");
            bar.set_message(format!("directions scored ({d})"));
            results.push(score_direction(
                &opts,
                &registry,
                lid.as_ref(),
                comet.as_ref(),
                ctx,
                segs,
                &mut stats,
            )?);
            bar.inc(1);
        }
        bar.finish_and_clear();

        let scores = scores_frame(p, &results)?;
        let segments = segments_frame(&results, lid.is_some())?;
        stats.rows_out = scores.height() as u64;
        stats.count("segments", segments.height() as u64);
        let mut out = Outputs::table("scores", scores, stats);
        out.tables.push(("segments".into(), segments));
        Ok(out)
    }
}

fn scores_frame(p: &Params, results: &[DirectionResult]) -> PolarsResult<DataFrame> {
    macro_rules! col {
        ($name:literal, $f:expr) => {
            Column::new($name.into(), results.iter().map($f).collect::<Vec<_>>())
        };
    }
    DataFrame::new_infer_height(vec![
        col!("test_set", |_: &DirectionResult| p.test_set.clone()),
        col!("direction", |r: &DirectionResult| r.direction.clone()),
        col!("src_lang", |r: &DirectionResult| r.src_lang.clone()),
        col!("tgt_lang", |r: &DirectionResult| r.tgt_lang.clone()),
        col!("lang", |r: &DirectionResult| lang_of(
            &r.src_lang,
            &r.tgt_lang
        )),
        col!("segments", |r: &DirectionResult| r.segments.len() as u64),
        col!("bleu", |r: &DirectionResult| r.report.bleu.score),
        col!("chrf", |r: &DirectionResult| r.report.chrf.score),
        col!("chrfpp", |r: &DirectionResult| r.report.chrf_pp.score),
        col!("comet", |r: &DirectionResult| r
            .report
            .comet
            .as_ref()
            .map(|c| c.score)),
        col!("bleu_signature", |r: &DirectionResult| r
            .report
            .bleu
            .signature
            .clone()),
        col!("chrf_signature", |r: &DirectionResult| r
            .report
            .chrf
            .signature
            .clone()),
        col!("chrfpp_signature", |r: &DirectionResult| r
            .report
            .chrf_pp
            .signature
            .clone()),
        col!("empty_rate", |r: &DirectionResult| r.failures.empty_rate),
        col!("off_target_rate", |r: &DirectionResult| r
            .failures
            .off_target_rate),
        col!("source_copy_rate", |r: &DirectionResult| r
            .has_sources
            .then_some(r.failures.source_copy_rate)),
        col!("oscillation_rate", |r: &DirectionResult| r
            .failures
            .oscillation_rate),
        col!("length_ratio", |r: &DirectionResult| r
            .failures
            .length_ratio),
        col!("over_translation_rate", |r: &DirectionResult| r
            .failures
            .over_translation_rate),
        col!("under_translation_rate", |r: &DirectionResult| r
            .failures
            .under_translation_rate),
        col!("copy_bleu", |r: &DirectionResult| r
            .copy
            .as_ref()
            .map(|c| c.bleu.score)),
        col!("copy_chrfpp", |r: &DirectionResult| r
            .copy
            .as_ref()
            .map(|c| c.chrf_pp.score)),
    ])
}

fn segments_frame(results: &[DirectionResult], with_lid: bool) -> PolarsResult<DataFrame> {
    let n: usize = results.iter().map(|r| r.segments.len()).sum();
    let mut direction = Vec::with_capacity(n);
    let mut row = Vec::with_capacity(n);
    let mut pair_id = Vec::with_capacity(n);
    let (mut bleu, mut chrf, mut chrfpp) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut empty, mut off_target, mut source_copy, mut oscillation) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut over, mut under, mut detected, mut hyp_len, mut ref_len) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in results {
        let cfg = &r.failures.config;
        let lid_used = with_lid && r.failures.off_target_rate.is_some();
        for ((s, sent), f) in r
            .segments
            .iter()
            .zip(&r.sentences)
            .zip(&r.failures.segments)
        {
            direction.push(r.direction.clone());
            row.push(s.row);
            pair_id.push(s.pair_id);
            bleu.push(sent.bleu);
            chrf.push(sent.chrf);
            chrfpp.push(sent.chrf_pp);
            empty.push(f.hyp_len == 0);
            off_target.push(lid_used.then_some(f.off_target));
            source_copy.push(r.has_sources.then_some(f.source_copy));
            oscillation.push(f.oscillation);
            over.push(f.ref_len > 0 && f.hyp_len as f64 > cfg.over_ratio * f.ref_len as f64);
            under.push(
                f.ref_len > 0
                    && f.hyp_len > 0
                    && (f.hyp_len as f64) < cfg.under_ratio * f.ref_len as f64,
            );
            detected.push(f.detected.clone());
            hyp_len.push(f.hyp_len as u64);
            ref_len.push(f.ref_len as u64);
        }
    }
    DataFrame::new_infer_height(vec![
        Column::new("direction".into(), direction),
        Column::new("row".into(), row),
        Column::new("pair_id".into(), pair_id),
        Column::new("bleu".into(), bleu),
        Column::new("chrf".into(), chrf),
        Column::new("chrfpp".into(), chrfpp),
        Column::new("empty".into(), empty),
        Column::new("off_target".into(), off_target),
        Column::new("source_copy".into(), source_copy),
        Column::new("oscillation".into(), oscillation),
        Column::new("over_translation".into(), over),
        Column::new("under_translation".into(), under),
        Column::new("detected_lang".into(), detected),
        Column::new("hyp_len".into(), hyp_len),
        Column::new("ref_len".into(), ref_len),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use input::source_from_instruction;

    #[test]
    fn source_is_parsed_from_the_mtinstruct_prompt_with_any_separator() {
        let i = alinea_instruct::template::mt_input(
            "\n",
            "Belarusian",
            "English",
            "Прывітанне, свет: 1",
        );
        assert_eq!(
            source_from_instruction(&i, "Belarusian", "English").as_deref(),
            Some("Прывітанне, свет: 1")
        );
        let i = alinea_instruct::template::mt_input(" ", "English", "Welsh", "Hello. English: yes");
        assert_eq!(
            source_from_instruction(&i, "English", "Welsh").as_deref(),
            Some("Hello. English: yes")
        );
        assert_eq!(
            source_from_instruction("Translate to Welsh.\nHello\nWelsh:", "English", "Welsh"),
            None
        );
    }

    fn generations() -> DataFrame {
        use alinea_instruct::{MtParams, ParallelPair, TokenCounter, build_mt};
        let pairs = vec![
            ParallelPair {
                pair_id: 3,
                src_lang: "be".into(),
                tgt_lang: "en".into(),
                src: "Добры дзень.".into(),
                tgt: "Good day.".into(),
            },
            ParallelPair {
                pair_id: 4,
                src_lang: "be".into(),
                tgt_lang: "en".into(),
                src: "Дзякуй.".into(),
                tgt: "Thank you.".into(),
            },
        ];
        let out = build_mt(
            &pairs,
            &crate::support::tables::instruct::names(),
            &TokenCounter::Bytes,
            &MtParams::default(),
        )
        .unwrap();
        let mut df = crate::support::tables::instruct::to_frame(&out.rows).unwrap();
        let hyps: Vec<String> = out
            .rows
            .iter()
            .map(|r| r.output.trim_start().to_string())
            .collect();
        df.with_column(Column::new("hypothesis".into(), hyps))
            .unwrap();
        df
    }

    #[test]
    fn reads_a_generations_table_with_sources_from_the_prompt() {
        let df = generations();
        let mut counts = ReadCounts::default();
        let segs = input::segments(&df, &Params::default(), None, &mut counts).unwrap();
        assert_eq!(segs.len(), 4);
        let be_en: Vec<&Segment> = segs.iter().filter(|s| s.direction == "be-en").collect();
        assert_eq!(be_en.len(), 2);
        assert_eq!(be_en[0].src.as_deref(), Some("Добры дзень."));
        assert_eq!(be_en[0].reference, "Good day.");
        assert_eq!(be_en[0].pair_id, Some(3));
        assert_eq!(counts.source_from_instruction, 4);
        assert_eq!(counts.source_unknown, 0);
    }

    #[test]
    fn a_plain_table_needs_a_direction() {
        let df = df!("src" => ["a"], "ref" => ["b"], "hyp" => ["b"]).unwrap();
        let err = input::segments(&df, &Params::default(), None, &mut ReadCounts::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("direction"), "{err}");
        let df =
            df!("direction" => ["be-en"], "src" => ["a"], "ref" => ["b "], "hyp" => ["b"]).unwrap();
        let segs =
            input::segments(&df, &Params::default(), None, &mut ReadCounts::default()).unwrap();
        assert_eq!(
            (
                segs[0].src_lang.as_str(),
                segs[0].tgt_lang.as_str(),
                segs[0].reference.as_str()
            ),
            ("be", "en", "b")
        );
    }

    /// The demo pipeline's `score` parameters serialize exactly as before the options were
    /// flattened in from `alinea_metrics::ScoreConfig`, so its cache keys stay where they were;
    /// and an unknown key is still refused.
    #[test]
    fn flattened_params_keep_the_demo_keys_and_refuse_typos() {
        let demo = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/demo.toml"),
        )
        .unwrap();
        let block: Vec<&str> = demo
            .lines()
            .skip_while(|l| *l != "[stages.score]")
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .collect();
        let keys: Vec<&str> = block
            .iter()
            .map(|l| l.split('=').next().unwrap().trim())
            .collect();
        assert_eq!(keys, ["kind", "inputs", "test_set"], "{block:?}");
        assert!(block.contains(&"test_set = \"flores200\""), "{block:?}");
        let p: Params = serde_json::from_value(serde_json::json!({"test_set": "flores200"})).unwrap();
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"test_set":"flores200","tokenize":"13a","lowercase":false,"chrf_lowercase":false,"smoothing":"exp","smooth_value":null,"comet":null,"hyp_column":"","ref_column":"","src_column":"","extra_languages":[]}"#
        );
        let typo = serde_json::json!({"test_set": "x", "smooth_valu": 0.1});
        let err = serde_json::from_value::<Params>(typo).unwrap_err().to_string();
        assert!(err.contains("smooth_valu"), "{err}");
    }

    #[test]
    fn bad_smoothing_is_a_parameter_error() {
        let with = |score: ScoreConfig| Params {
            score,
            ..Params::default()
        };
        let e = MetricsScore::validate(&with(ScoreConfig {
            smoothing: "nope".into(),
            ..ScoreConfig::default()
        }))
        .unwrap_err();
        assert_eq!(e.field, "smoothing");
        assert!(e.message.contains("nope"), "{e}");
        let e = MetricsScore::validate(&with(ScoreConfig {
            smoothing: "floor".into(),
            smooth_value: Some(f64::NAN),
            ..ScoreConfig::default()
        }))
        .unwrap_err();
        assert_eq!(e.field, "smooth_value");
        assert!(MetricsScore::validate(&Params::default()).is_ok());
    }
}
