//! `align.ibm2`: word alignment of a pairs table, one model per language pair, both directions, symmetrized; per-link
//! posteriors and translation probabilities for `align.pairs`. `model` picks IBM Model 2 (fast_align's model, the
//! default, so existing pipelines keep their behaviour) or the Bayesian HMM / HMM + fertility aligner
//! ([`alinea_align::gibbs`]).

use std::collections::BTreeMap;

use alinea_align::{
    AlignError, Alignment, BayesModel, BayesParams, Corpus, Ibm2Params, LinkScore, Method,
    Priors, SkipReason, TokenizeMode, align_bayes_interned_bidirectional, align_interned,
    link_scores_interned, pharaoh, symmetrize_runs, tokenize,
};
use polars::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Deserializer, Serialize};

use crate::stages::align_priors::{PRIOR_COLUMNS, read_priors};
use crate::support::text::pairs::str_column;
use alinea_engine::{
    ColumnDecl, DType, InputSlot, Optional, OutputSlot, Outputs, ParamError, Stage, StageCtx,
    StageError, Stats, TableSlot, col,
};

/// How sentences are cut into alignment tokens.
#[derive(
    Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Tokenize {
    /// Unicode word boundaries (UAX #29), punctuation split off. Default.
    #[default]
    Unicode,
    /// Whitespace only (pre-tokenized corpora).
    Whitespace,
    /// Unicode words, with words of unspaced scripts (Han, kana, Thai, Lao, Khmer, Myanmar) cut into characters.
    Chars,
    /// Per side, from its language code: `chars` for zh, ja, km, my, th, lo (and yue, wuu), `unicode` otherwise.
    Auto,
}

/// Languages written without spaces between words, tokenized with `chars` by `tokenize = "auto"`.
pub const UNSPACED_LANGS: &[&str] = &["zh", "ja", "km", "my", "th", "lo", "yue", "wuu"];

impl Tokenize {
    /// The crate mode for a side written in `lang` (an ISO code, possibly with a region or script suffix).
    pub fn mode_for(self, lang: &str) -> TokenizeMode {
        match self {
            Tokenize::Unicode => TokenizeMode::Unicode,
            Tokenize::Whitespace => TokenizeMode::Whitespace,
            Tokenize::Chars => TokenizeMode::Chars,
            Tokenize::Auto => {
                let base = lang
                    .split(['-', '_'])
                    .next()
                    .unwrap_or(lang)
                    .to_ascii_lowercase();
                if UNSPACED_LANGS.contains(&base.as_str()) {
                    TokenizeMode::Chars
                } else {
                    TokenizeMode::Unicode
                }
            }
        }
    }
}

/// Which alignment model the stage trains.
#[derive(
    Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AlignModel {
    /// IBM Model 2 with fast_align's diagonal prior, configured by the `ibm2` table. Default.
    #[default]
    Ibm2,
    /// Bayesian HMM (IBM1 → HMM, collapsed Gibbs), configured by the `bayes` table.
    Hmm,
    /// Bayesian HMM + fertility (IBM1 → HMM → fertility, eflomal's model class), configured by `bayes`.
    Fertility,
}

impl AlignModel {
    /// The model of the `--model` / `model` names (`ibm2`, `hmm`, `fertility`).
    pub fn bayes(self) -> Option<BayesModel> {
        match self {
            AlignModel::Ibm2 => None,
            AlignModel::Hmm => Some(BayesModel::Hmm),
            AlignModel::Fertility => Some(BayesModel::Fertility),
        }
    }
}

/// Parameters of `align.ibm2`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Tokenization of both sides.
    pub tokenize: Tokenize,
    /// Lowercase tokens before training (the stored tokens and spans keep the original case).
    pub lowercase: bool,
    /// Symmetrization heuristic (atools names or gd / gdf / gdfa).
    #[serde(deserialize_with = "method_from_str")]
    pub symmetrize: Method,
    /// Keep the full posterior matrices so every symmetrized link gets both directions' posteriors (IBM2 only:
    /// the Bayesian models keep each token's pooled marginal, never a matrix).
    pub full_posteriors: bool,
    /// Alignment model: `ibm2` (default), `hmm` or `fertility`.
    pub model: AlignModel,
    /// The IBM Model 2 parameters (`model = "ibm2"`).
    pub ibm2: Ibm2Params,
    /// The Bayesian aligner's parameters (`model = "hmm"` or `"fertility"`; its `model` field is set from the
    /// stage's `model`).
    pub bayes: BayesParams,
}

impl Params {
    /// The length limit of the model in use (0 = none).
    fn max_sentence_len(&self) -> usize {
        match self.model {
            AlignModel::Ibm2 => self.ibm2.max_sentence_len,
            _ => self.bayes.max_sentence_len,
        }
    }
}

impl Default for Params {
    fn default() -> Self {
        Params {
            tokenize: Tokenize::Unicode,
            lowercase: false,
            symmetrize: Method::GrowDiagFinalAnd,
            full_posteriors: true,
            model: AlignModel::Ibm2,
            ibm2: Ibm2Params::default(),
            bayes: BayesParams::default(),
        }
    }
}

fn method_from_str<'de, D: Deserializer<'de>>(d: D) -> Result<Method, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(serde::de::Error::custom)
}

const PAIRS: TableSlot = TableSlot::new("pairs", "a pairs table (ingest / sample)").requires(&[
    col("pair_id", DType::U64),
    col("lang", DType::Str),
    col("src_lang", DType::Str),
    col("tgt_lang", DType::Str),
    col("src", DType::Str),
    col("tgt", DType::Str),
]);

const PRIORS: TableSlot<Optional> = TableSlot::new(
    "priors",
    "an align.priors table: the Bayesian models (`model = \"hmm\"` / `\"fertility\"`) add its counts to their Dirichlet parameters, per language pair",
)
.requires(PRIOR_COLUMNS)
.optional();

/// The `alignments` table.
pub const ALIGNMENT_COLUMNS: &[ColumnDecl] = &[
    col("pair_id", DType::U64),
    col("lang", DType::Str),
    col("src_lang", DType::Str),
    col("tgt_lang", DType::Str),
    col("src", DType::Str),
    col("tgt", DType::Str),
    col("src_tokens", DType::List(&DType::Str)),
    col("src_starts", DType::List(&DType::U32)),
    col("src_ends", DType::List(&DType::U32)),
    col("tgt_tokens", DType::List(&DType::Str)),
    col("tgt_starts", DType::List(&DType::U32)),
    col("tgt_ends", DType::List(&DType::U32)),
    col("link_src", DType::List(&DType::U32)),
    col("link_tgt", DType::List(&DType::U32)),
    col("link_posterior", DType::List(&DType::F64)),
    col("link_tprob", DType::List(&DType::F64)),
    col("forward", DType::Str),
    col("reverse", DType::Str),
    col("pharaoh", DType::Str),
    col("skipped", DType::Str),
];

/// The stage kind.
pub struct AlignIbm2;

/// The snake_case name of a skip reason, as stored in the `skipped` column and the stats.
pub fn skip_name(r: SkipReason) -> &'static str {
    match r {
        SkipReason::EmptySource => "empty_source",
        SkipReason::EmptyTarget => "empty_target",
        SkipReason::TooLong => "too_long",
    }
}

/// Everything stored for one input row (token texts are sliced from the row's text when the table is built).
#[derive(Default)]
struct RowOut {
    src_spans: Vec<(u32, u32)>,
    tgt_spans: Vec<(u32, u32)>,
    links: Vec<(u32, u32)>,
    scores: Vec<LinkScore>,
    forward: String,
    reverse: String,
    skipped: Option<&'static str>,
}

/// Byte spans [start, end) of a sentence's tokens.
fn spans_of(text: &str, mode: TokenizeMode) -> Vec<(u32, u32)> {
    tokenize(text, mode)
        .into_iter()
        .map(|t| (t.start as u32, t.end as u32))
        .collect()
}

/// The words the model sees: the tokens, lowercased with `lowercase`.
fn words_of(mode: TokenizeMode, lowercase: bool) -> impl Fn(&str, &mut dyn FnMut(&str)) + Sync {
    move |line, push| {
        for t in tokenize(line, mode) {
            if lowercase {
                push(&t.text.to_lowercase());
            } else {
                push(t.text);
            }
        }
    }
}

/// Why a pair is skipped, computed the way the crate does (used when a whole group is unusable).
fn local_skip(s: usize, t: usize, max_len: usize, model: AlignModel) -> Option<SkipReason> {
    let limit = alinea_align::ibm2::length_limit(max_len, model == AlignModel::Ibm2);
    if s == 0 {
        Some(SkipReason::EmptySource)
    } else if t == 0 {
        Some(SkipReason::EmptyTarget)
    } else if s > limit || t > limit {
        Some(SkipReason::TooLong)
    } else {
        None
    }
}

/// Aligns one (src_lang, tgt_lang) group; rows in group order.
fn align_group(
    p: &Params,
    priors: Option<&Priors>,
    src: &[&str],
    tgt: &[&str],
    src_lang: &str,
    tgt_lang: &str,
    stats: &mut Stats,
) -> Result<Vec<RowOut>, StageError> {
    let (ms, mt) = (p.tokenize.mode_for(src_lang), p.tokenize.mode_for(tgt_lang));
    // Spans for the output; the model's words are interned straight from the text (4 bytes a token, no string
    // per token).
    let (src_spans, tgt_spans): (Vec<_>, Vec<_>) = rayon::join(
        || src.par_iter().map(|s| spans_of(s, ms)).collect(),
        || tgt.par_iter().map(|t| spans_of(t, mt)).collect(),
    );
    let group = format!("{src_lang}-{tgt_lang}");
    stats.count(&format!("sentences/{group}"), src.len() as u64);
    let mut params = p.ibm2.clone();
    params.reverse = false;
    // Exact posteriors of every symmetrized link are computed at the link from the final parameters
    // (`posteriors_at`), never as dense matrices.
    let exact_posteriors = p.full_posteriors || params.keep_posteriors;
    params.keep_posteriors = false;
    let limit = alinea_align::ibm2::length_limit(p.max_sentence_len(), p.model == AlignModel::Ibm2);
    let run = || {
        let corpus = Corpus::from_lines_each(
            src,
            tgt,
            limit,
            words_of(ms, p.lowercase),
            words_of(mt, p.lowercase),
        )?;
        let (fwd, rev) = match p.model.bayes() {
            None => (
                align_interned(&corpus, &params, false)?,
                align_interned(&corpus, &params, true)?,
            ),
            Some(model) => {
                let bayes = BayesParams {
                    model,
                    ..p.bayes.clone()
                };
                align_bayes_interned_bidirectional(&corpus, &bayes, priors)?
            }
        };
        Ok::<_, AlignError>((corpus, fwd, rev))
    };
    let mut rows: Vec<RowOut> = src_spans
        .into_iter()
        .zip(tgt_spans)
        .map(|(s, t)| RowOut {
            src_spans: s,
            tgt_spans: t,
            ..RowOut::default()
        })
        .collect();
    let (corpus, fwd, rev): (Corpus, Alignment, Alignment) = match run() {
        Ok(x) => x,
        Err(AlignError::NothingToAlign { .. }) => {
            // Every pair of the group is unusable: keep the rows, each with its reason, and say so.
            stats.count(&format!("unaligned_groups/{group}"), 1);
            for r in rows.iter_mut() {
                let reason = local_skip(
                    r.src_spans.len(),
                    r.tgt_spans.len(),
                    p.max_sentence_len(),
                    p.model,
                )
                .unwrap_or(SkipReason::TooLong);
                r.skipped = Some(skip_name(reason));
                stats.count(&format!("skipped/{}", skip_name(reason)), 1);
            }
            return Ok(rows);
        }
        Err(e) => {
            return Err(StageError::domain(
                format!("align.ibm2, language pair {group}"),
                e,
            ));
        }
    };
    let sym = symmetrize_runs(&fwd, &rev, p.symmetrize).map_err(StageError::with(
        format!("align.ibm2, language pair {group}"),
    ))?;
    let exact = (p.model == AlignModel::Ibm2 && exact_posteriors).then_some(&params);
    let scores = link_scores_interned(&corpus, &sym, &fwd, &rev, exact).map_err(
        StageError::with(format!("align.ibm2, language pair {group}")),
    )?;
    for s in &fwd.stats.skipped {
        rows[s.index].skipped = Some(skip_name(s.reason));
        stats.count(&format!("skipped/{}", skip_name(s.reason)), 1);
    }
    stats.count("suspicious_tokens", fwd.stats.suspicious_tokens as u64);
    stats.count(
        &format!("final_tension_milli/{group}/forward"),
        (fwd.stats.final_tension * 1000.0).round() as u64,
    );
    stats.count(
        &format!("final_tension_milli/{group}/reverse"),
        (rev.stats.final_tension * 1000.0).round() as u64,
    );
    stats.count(
        &format!("links/{group}"),
        sym.iter().map(|l| l.len() as u64).sum(),
    );
    stats.count(
        &format!("ttable_cells/{group}/forward"),
        fwd.stats.ttable_cells as u64,
    );
    stats.count(
        &format!("ttable_cells/{group}/reverse"),
        rev.stats.ttable_cells as u64,
    );
    rows.par_iter_mut()
        .zip(sym)
        .zip(scores)
        .enumerate()
        .for_each(|(k, ((r, links), sc))| {
            r.forward = pharaoh::format_links(fwd.sentences.get(k).links);
            r.reverse = pharaoh::format_links(rev.sentences.get(k).links);
            r.links = links;
            r.scores = sc;
        });
    Ok(rows)
}

fn u32_list<'a>(name: &str, rows: &'a [RowOut], f: impl Fn(&'a RowOut) -> Vec<u32>) -> Column {
    let mut b = ListPrimitiveChunkedBuilder::<UInt32Type>::new(
        name.into(),
        rows.len(),
        rows.len() * 8,
        DataType::UInt32,
    );
    for r in rows {
        b.append_slice(&f(r));
    }
    b.finish().into_series().into_column()
}

fn f64_list<'a>(name: &str, rows: &'a [RowOut], f: impl Fn(&'a RowOut) -> Vec<f64>) -> Column {
    let mut b = ListPrimitiveChunkedBuilder::<Float64Type>::new(
        name.into(),
        rows.len(),
        rows.len() * 8,
        DataType::Float64,
    );
    for r in rows {
        b.append_slice(&f(r));
    }
    b.finish().into_series().into_column()
}

fn str_list<'a>(
    name: &str,
    rows: &'a [RowOut],
    texts: &'a StringChunked,
    f: impl Fn(&'a RowOut) -> &'a [(u32, u32)],
) -> Column {
    let mut b = ListStringChunkedBuilder::new(name.into(), rows.len(), rows.len() * 8);
    for (r, text) in rows.iter().zip(texts.iter()) {
        let text = text.unwrap_or("");
        b.append_values_iter(f(r).iter().map(|&(s, e)| &text[s as usize..e as usize]));
    }
    b.finish().into_series().into_column()
}

impl Stage for AlignIbm2 {
    const KIND: &'static str = "align.ibm2";
    const SUMMARY: &'static str = "word alignment per language pair (IBM Model 2, or the Bayesian HMM / HMM + fertility), both directions, symmetrized";
    const DOC: &'static str = "\
Word-aligns every pair of a pairs table (crate alinea-align). `model = \"ibm2\"` (default): IBM Model 2 with
fast_align's diagonal prior, configured by the `ibm2` table. `model = \"hmm\"` / `\"fertility\"`: the Bayesian
IBM1 → HMM (→ fertility) aligner of Östling & Tiedemann (2016), collapsed Gibbs sampling with several samplers
pooled into per-link marginals, configured by the `bayes` table (seeded; `fertility` is the more accurate).
ONE model is trained per (src_lang, tgt_lang) group (groups in sorted order), forward P(tgt|src) and reverse
P(src|tgt), then the two alignments are symmetrized. Parallel (rayon) and deterministic: the output is
byte-identical for any thread count. link_posterior is the mean of the two directions' posteriors (IBM2) or pooled
sample marginals (Bayesian models) of the link.

Priors: with an align.priors table as input `priors`, the Bayesian models add its counts for the group's
(src_lang, tgt_lang) to their Dirichlet parameters (words matched by text, lowercased with `lowercase`; a group the
table does not cover is aligned without; counters priors/primed_groups, priors/unprimed_groups). IBM2 refuses it.

Bad input is never silent: a pair with an empty side (after tokenization) or a side longer than
max_sentence_len is skipped (empty alignment, `skipped` set, counted); a group where every pair is unusable keeps
its rows, all skipped (counter unaligned_groups/<src>-<tgt>). `|||`, `<eps>` and tabs are ordinary words here
(counted as suspicious_tokens).

Stats: rows_in = rows_out = input rows; counters sentences/<src>-<tgt>, skipped/<reason>, suspicious_tokens,
links/<src>-<tgt>, final_tension_milli/<src>-<tgt>/{forward,reverse} (λ × 1000), ttable_cells/....";
    type Params = Params;
    const INPUTS: &'static [InputSlot] = &[PAIRS.slot(), PRIORS.slot()];
    const OUTPUTS: &'static [OutputSlot] = &[
        OutputSlot::table(
            "alignments",
            ALIGNMENT_COLUMNS,
            "one row per input pair, in input order: tokens with byte spans [start, end), symmetrized links (0-based, i-major) with per-link posterior (q_fwd + q_rev) / 2 and tprob sqrt(t_fwd · t_rev), Pharaoh `i-j` of forward, reverse and symmetrized alignments, skipped = null | empty_source | empty_target | too_long",
        ),
        OutputSlot::blob(
            "alignments.pharaoh",
            "the symmetrized alignments as Pharaoh text, one line per row (empty for skipped)",
        ),
    ];

    fn validate(p: &Params) -> Result<(), ParamError> {
        let named = |table: &'static str| {
            move |e| match e {
                AlignError::InvalidParam { field, reason } => {
                    ParamError::new(format!("{table}.{field}"), reason)
                }
                other => ParamError::new(table, other.to_string()),
            }
        };
        p.ibm2.validate().map_err(named("ibm2"))?;
        p.bayes.validate().map_err(named("bayes"))
    }

    fn run(p: &Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let priors = match ctx.table(PRIORS)? {
            Some(_) if p.model == AlignModel::Ibm2 => {
                return Err(StageError::Input {
                    slot: PRIORS.name().into(),
                    message: "priors are for the Bayesian models: set `model = \"hmm\"` or `\"fertility\"`".into(),
                });
            }
            Some(table) => read_priors(&table, PRIORS.name(), p.lowercase)?,
            None => BTreeMap::new(),
        };
        let df = ctx.table(PAIRS)?;
        let n = df.height();
        let pair_id = df.column("pair_id")?.u64()?.clone();
        let (lang, src_lang, tgt_lang) = (
            str_column(&df, "lang")?,
            str_column(&df, "src_lang")?,
            str_column(&df, "tgt_lang")?,
        );
        let (src, tgt) = (str_column(&df, "src")?, str_column(&df, "tgt")?);
        let mut stats = Stats {
            rows_in: n as u64,
            ..Stats::default()
        };

        let mut groups: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
        for i in 0..n {
            groups
                .entry((src_lang.get(i).unwrap_or(""), tgt_lang.get(i).unwrap_or("")))
                .or_default()
                .push(i);
        }
        let mut rows: Vec<Option<RowOut>> = (0..n).map(|_| None).collect();
        let bar = ctx.progress(groups.len() as u64, "language pairs aligned");
        for ((sl, tl), members) in &groups {
            let s: Vec<&str> = members.iter().map(|&i| src.get(i).unwrap_or("")).collect();
            let t: Vec<&str> = members.iter().map(|&i| tgt.get(i).unwrap_or("")).collect();
            let group_priors = priors.get(&(sl.to_string(), tl.to_string()));
            if !priors.is_empty() {
                let hit = if group_priors.is_some() { "primed" } else { "unprimed" };
                stats.count(&format!("priors/{hit}_groups"), 1);
            }
            let out = align_group(p, group_priors, &s, &t, sl, tl, &mut stats)?;
            for (&i, r) in members.iter().zip(out) {
                rows[i] = Some(r);
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        let rows: Vec<RowOut> = rows
            .into_iter()
            .map(|r| r.expect("every row belongs to a group"))
            .collect();

        let pharaoh_col: Vec<String> = rows
            .par_iter()
            .map(|r| pharaoh::format_links(&r.links))
            .collect();
        let mut blob = String::with_capacity(pharaoh_col.iter().map(|s| s.len() + 1).sum());
        for l in &pharaoh_col {
            blob.push_str(l);
            blob.push('\n');
        }
        let strs = |c: &StringChunked| -> Vec<Option<String>> {
            c.iter().map(|v| v.map(str::to_string)).collect()
        };
        let out = DataFrame::new_infer_height(vec![
            Column::new(
                "pair_id".into(),
                pair_id.iter().collect::<Vec<Option<u64>>>(),
            ),
            Column::new("lang".into(), strs(lang)),
            Column::new("src_lang".into(), strs(src_lang)),
            Column::new("tgt_lang".into(), strs(tgt_lang)),
            Column::new("src".into(), strs(src)),
            Column::new("tgt".into(), strs(tgt)),
            str_list("src_tokens", &rows, src, |r| &r.src_spans),
            u32_list("src_starts", &rows, |r| r.src_spans.iter().map(|t| t.0).collect()),
            u32_list("src_ends", &rows, |r| r.src_spans.iter().map(|t| t.1).collect()),
            str_list("tgt_tokens", &rows, tgt, |r| &r.tgt_spans),
            u32_list("tgt_starts", &rows, |r| r.tgt_spans.iter().map(|t| t.0).collect()),
            u32_list("tgt_ends", &rows, |r| r.tgt_spans.iter().map(|t| t.1).collect()),
            u32_list("link_src", &rows, |r| r.links.iter().map(|l| l.0).collect()),
            u32_list("link_tgt", &rows, |r| r.links.iter().map(|l| l.1).collect()),
            f64_list("link_posterior", &rows, |r| {
                r.scores.iter().map(|s| s.posterior).collect()
            }),
            f64_list("link_tprob", &rows, |r| {
                r.scores.iter().map(|s| s.tprob).collect()
            }),
            Column::new(
                "forward".into(),
                rows.iter().map(|r| r.forward.as_str()).collect::<Vec<_>>(),
            ),
            Column::new(
                "reverse".into(),
                rows.iter().map(|r| r.reverse.as_str()).collect::<Vec<_>>(),
            ),
            Column::new("pharaoh".into(), pharaoh_col),
            Column::new(
                "skipped".into(),
                rows.iter()
                    .map(|r| r.skipped)
                    .collect::<Vec<Option<&str>>>(),
            ),
        ])?;
        stats.rows_out = out.height() as u64;
        let mut outputs = Outputs::table("alignments", out, stats);
        outputs.blob_bytes("alignments.pharaoh", blob.into_bytes());
        Ok(outputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_tokenization_picks_chars_for_unspaced_languages() {
        assert_eq!(Tokenize::Auto.mode_for("zh"), TokenizeMode::Chars);
        assert_eq!(Tokenize::Auto.mode_for("ja_JP"), TokenizeMode::Chars);
        assert_eq!(Tokenize::Auto.mode_for("my"), TokenizeMode::Chars);
        assert_eq!(Tokenize::Auto.mode_for("be"), TokenizeMode::Unicode);
        assert_eq!(
            Tokenize::Whitespace.mode_for("zh"),
            TokenizeMode::Whitespace
        );
    }

    #[test]
    fn params_accept_abbreviations_and_reject_unknown_fields() {
        let p: Params = serde_json::from_value(
            serde_json::json!({"symmetrize": "gdfa", "ibm2": {"model": "fast_align"}}),
        )
        .unwrap();
        assert_eq!(p.symmetrize, Method::GrowDiagFinalAnd);
        assert!(p.ibm2.optimizes_tension());
        assert!(!Params::default().ibm2.optimizes_tension());
        assert!(
            serde_json::from_value::<Params>(serde_json::json!({"ibm2": {"iterationz": 3}}))
                .is_err()
        );
        assert!(
            serde_json::from_value::<Params>(serde_json::json!({"symmetrize": "diag"})).is_err()
        );
        // `model` picks the Bayesian aligner; old pipelines (no `model`) keep IBM2.
        assert_eq!(Params::default().model, AlignModel::Ibm2);
        let b: Params = serde_json::from_value(
            serde_json::json!({"model": "fertility", "bayes": {"samplers": 2, "seed": 5}}),
        )
        .unwrap();
        assert_eq!(b.model.bayes(), Some(BayesModel::Fertility));
        assert_eq!(b.bayes.samplers, 2);
        assert!(
            serde_json::from_value::<Params>(serde_json::json!({"model": "ibm3"})).is_err()
        );
        assert!(AlignIbm2::validate(&Params {
            bayes: BayesParams {
                samplers: 0,
                ..Default::default()
            },
            ..Default::default()
        })
        .is_err_and(|e| e.to_string().contains("bayes.samplers")));
        // The canonical form names the method in full.
        assert_eq!(
            serde_json::to_value(&p).unwrap()["symmetrize"],
            "grow-diag-final-and"
        );
    }
}
