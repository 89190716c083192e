//! `align.pairs`: gold word/phrase pairs for AlignInstruct, extracted from an `align.ibm2` table's symmetrized links
//! and per-link scores.

use alinea_align::{
    LinkScore, PairFilter, PairStats, ScoredPairInput, Token, extract_pairs_scored,
};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use alinea_engine::{
    DType, InputSlot, OutputSlot, Outputs, ParamError, Stage, StageCtx, StageError, Stats,
    TableSlot, col,
};

/// Parameters of `align.pairs`: the crate's [`PairFilter`] (same keys, flattened: `max_len`, `min_score`, `score`,
/// `skip_punctuation`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Span and score filter.
    #[serde(flatten)]
    pub filter: PairFilter,
    /// Sentences whose tokens and links are unpacked at once (default 65,536; 0 = the default): memory against
    /// per-chunk overhead. Extraction is per sentence, so it cannot change the result and is not in the key.
    pub chunk_sentences: usize,
}

/// [`Params::chunk_sentences`]'s default.
const SENTENCES_PER_CHUNK: usize = 1 << 16;

const ALIGNMENTS: TableSlot = TableSlot::new("alignments", "an align.ibm2 table").requires(&[
    col("pair_id", DType::U64),
    col("src", DType::Str),
    col("tgt", DType::Str),
    col("link_src", DType::List(&DType::U32)),
    col("link_tgt", DType::List(&DType::U32)),
]);

/// The stage kind.
pub struct AlignPairs;

fn column_err(row: usize, name: &str, message: &str) -> StageError {
    StageError::Input {
        slot: "alignments".into(),
        message: format!("row {row}, column `{name}`: {message}"),
    }
}

fn lists<T>(
    df: &DataFrame,
    name: &str,
    get: impl Fn(&Series) -> PolarsResult<Vec<T>>,
) -> Result<Vec<Vec<T>>, StageError> {
    let col = df.column(name).map_err(|_| StageError::Input {
        slot: "alignments".into(),
        message: format!("no column `{name}` (is it an align.ibm2 table?)"),
    })?;
    let l = col.list()?;
    l.series_iter()
        .map(|s| {
            Ok(match s {
                Some(s) => get(&s)?,
                None => Vec::new(),
            })
        })
        .collect()
}

fn u32s(df: &DataFrame, name: &str) -> Result<Vec<Vec<u32>>, StageError> {
    lists(df, name, |s| {
        Ok(s.u32()?.iter().map(|v| v.unwrap_or(0)).collect())
    })
}

fn f64s(df: &DataFrame, name: &str) -> Result<Vec<Vec<f64>>, StageError> {
    lists(df, name, |s| {
        Ok(s.f64()?.iter().map(|v| v.unwrap_or(0.0)).collect())
    })
}

fn strs<'a>(df: &'a DataFrame, name: &str) -> Result<&'a StringChunked, StageError> {
    Ok(df.column(name)?.str()?)
}

/// Tokens of one side from stored spans (their text is the span of the sentence, or empty when out of range: the
/// crate then reports the row).
fn side_tokens<'a>(
    text: &'a str,
    starts: &[u32],
    ends: &[u32],
    row: usize,
    name: &str,
) -> Result<Vec<Token<'a>>, StageError> {
    if starts.len() != ends.len() {
        return Err(column_err(
            row,
            name,
            &format!("{} starts but {} ends", starts.len(), ends.len()),
        ));
    }
    Ok(starts
        .iter()
        .zip(ends)
        .map(|(&s, &e)| {
            let (s, e) = (s as usize, e as usize);
            Token {
                text: text.get(s..e).unwrap_or(""),
                start: s,
                end: e,
            }
        })
        .collect())
}

impl Stage for AlignPairs {
    const KIND: &'static str = "align.pairs";
    const PLACEMENT: alinea_engine::Placement = alinea_engine::Placement::Local;
    const SUMMARY: &'static str = "gold word/phrase pairs for AlignInstruct from symmetrized alignments, scored and thresholded";
    const DOC: &'static str = "\
Extracts aligned word/phrase pairs per sentence from an align.ibm2 table (symmetrized links and their per-link
scores), for AlignInstruct. A span pair (src tokens [s1, s2], tgt tokens [t1, t2]) is kept when:
  - it has at least one link, and no link leaves it on either side (consistent with the alignment);
  - its boundary tokens are aligned (the target span is the hull of the source span's links);
  - both spans have at most `max_len` tokens;
  - with skip_punctuation, both phrases contain an alphanumeric character;
  - its score, the mean over its links of the chosen per-link score, is at least `min_score`.
Phrases are cut from the original sentences (first token's start to last token's end), so they are exact
substrings of `src` / `tgt`.

Stats: rows_in = alignment rows, rows_out = pairs kept; dropped: punctuation, below_threshold (candidate pairs);
counters: candidates, kept, sentences_without_links, pairs/<src>-<tgt>.";
    type Params = Params;
    const UNKEYED_PARAMS: &'static [&'static str] = &["chunk_sentences"];
    const INPUTS: &'static [InputSlot] = &[ALIGNMENTS.slot()];
    const OUTPUTS: &'static [OutputSlot] = &[OutputSlot::table(
        "gold",
        &[
            col("pair_id", DType::U64),
            col("lang", DType::Str),
            col("src_lang", DType::Str),
            col("tgt_lang", DType::Str),
            col("src_start", DType::U32),
            col("src_end", DType::U32),
            col("tgt_start", DType::U32),
            col("tgt_end", DType::U32),
            col("src_phrase", DType::Str),
            col("tgt_phrase", DType::Str),
            col("score", DType::F64),
            col("links", DType::U32),
        ],
        "gold pairs in alignment-row then span order: token spans (end exclusive), phrases cut from the original text, pair score and links inside the pair",
    )];

    fn validate(p: &Params) -> Result<(), ParamError> {
        p.filter
            .validate()
            .map_err(|(field, reason)| ParamError::new(field, reason))
    }

    fn run(p: &Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let df = ctx.table(ALIGNMENTS)?;
        let mut totals = PairStats::default();
        let mut per_direction: std::collections::BTreeMap<String, u64> = Default::default();
        // Tokens, links and scores exist as vectors for one chunk at a time: the stage's memory is its input and
        // output tables plus one chunk (the paper's 24 languages are 4.8M sentences).
        let chunk_len = match p.chunk_sentences {
            0 => SENTENCES_PER_CHUNK,
            n => n,
        };
        let out = crate::support::tables::concat_ranges(df.height(), chunk_len, |range| {
            let chunk = df.slice(range.start as i64, range.len());
            let (out, pst) = gold_of_chunk(&chunk, range.start, p, &mut per_direction)?;
            totals.add(&pst);
            Ok::<_, StageError>(out)
        })?;
        let mut stats = Stats {
            rows_in: df.height() as u64,
            rows_out: out.height() as u64,
            ..Stats::default()
        };
        stats.drop_rows("punctuation", totals.punctuation);
        stats.drop_rows("below_threshold", totals.below_threshold);
        stats.count("candidates", totals.candidates);
        stats.count("kept", totals.kept);
        stats.count("sentences_without_links", totals.sentences_without_links);
        for (direction, n) in &per_direction {
            stats.count(&format!("pairs/{direction}"), *n);
        }
        Ok(Outputs::table("gold", out, stats))
    }
}

/// The gold pairs of the alignments rows `df` (rows `offset..` of the table: errors name table rows), their
/// extraction counts, and the pairs per direction added to `per_direction`.
fn gold_of_chunk(
    df: &DataFrame,
    offset: usize,
    p: &Params,
    per_direction: &mut std::collections::BTreeMap<String, u64>,
) -> Result<(DataFrame, PairStats), StageError> {
    let n = df.height();
    let pair_id = df.column("pair_id")?.u64()?.clone();
    let (lang, src_lang, tgt_lang) = (
        strs(df, "lang")?,
        strs(df, "src_lang")?,
        strs(df, "tgt_lang")?,
    );
    let (src, tgt) = (strs(df, "src")?, strs(df, "tgt")?);
    let (ss, se, ts, te) = (
        u32s(df, "src_starts")?,
        u32s(df, "src_ends")?,
        u32s(df, "tgt_starts")?,
        u32s(df, "tgt_ends")?,
    );
    let (ls, lt) = (u32s(df, "link_src")?, u32s(df, "link_tgt")?);
    let (lp, lq) = (f64s(df, "link_posterior")?, f64s(df, "link_tprob")?);

    let src_text: Vec<&str> = (0..n).map(|i| src.get(i).unwrap_or("")).collect();
    let tgt_text: Vec<&str> = (0..n).map(|i| tgt.get(i).unwrap_or("")).collect();
    let mut src_tokens = Vec::with_capacity(n);
    let mut tgt_tokens = Vec::with_capacity(n);
    let mut links = Vec::with_capacity(n);
    let mut scores = Vec::with_capacity(n);
    for i in 0..n {
        src_tokens.push(side_tokens(src_text[i], &ss[i], &se[i], i, "src_starts")?);
        tgt_tokens.push(side_tokens(tgt_text[i], &ts[i], &te[i], i, "tgt_starts")?);
        if ls[i].len() != lt[i].len()
            || lp[i].len() != ls[i].len()
            || lq[i].len() != ls[i].len()
        {
            return Err(column_err(
                i,
                "link_src",
                "link_src, link_tgt, link_posterior and link_tprob differ in length",
            ));
        }
        links.push(
            ls[i]
                .iter()
                .copied()
                .zip(lt[i].iter().copied())
                .collect::<Vec<_>>(),
        );
        scores.push(
            lp[i]
                .iter()
                .zip(&lq[i])
                .map(|(&posterior, &tprob)| LinkScore { posterior, tprob })
                .collect::<Vec<_>>(),
        );
    }
    let input = ScoredPairInput {
        src_text: &src_text,
        tgt_text: &tgt_text,
        src_tokens: &src_tokens,
        tgt_tokens: &tgt_tokens,
        links: &links,
        scores: &scores,
    };
    let (pairs, pst) = extract_pairs_scored(input, &p.filter).map_err(|e| StageError::Input {
        slot: "alignments".into(),
        message: format!("{} (sentence = 0-based table row)", at_table_row(e, offset)),
    })?;

    for r in &pairs {
        let k = r.sentence;
        let direction = format!(
            "{}-{}",
            src_lang.get(k).unwrap_or(""),
            tgt_lang.get(k).unwrap_or("")
        );
        *per_direction.entry(direction).or_default() += 1;
    }
    let s = |c: &StringChunked, k: usize| c.get(k).map(str::to_string);
    let out = DataFrame::new_infer_height(vec![
        Column::new(
            "pair_id".into(),
            pairs
                .iter()
                .map(|r| pair_id.get(r.sentence))
                .collect::<Vec<Option<u64>>>(),
        ),
        Column::new(
            "lang".into(),
            pairs
                .iter()
                .map(|r| s(lang, r.sentence))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "src_lang".into(),
            pairs
                .iter()
                .map(|r| s(src_lang, r.sentence))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "tgt_lang".into(),
            pairs
                .iter()
                .map(|r| s(tgt_lang, r.sentence))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "src_start".into(),
            pairs.iter().map(|r| r.src_span.0).collect::<Vec<u32>>(),
        ),
        Column::new(
            "src_end".into(),
            pairs.iter().map(|r| r.src_span.1).collect::<Vec<u32>>(),
        ),
        Column::new(
            "tgt_start".into(),
            pairs.iter().map(|r| r.tgt_span.0).collect::<Vec<u32>>(),
        ),
        Column::new(
            "tgt_end".into(),
            pairs.iter().map(|r| r.tgt_span.1).collect::<Vec<u32>>(),
        ),
        Column::new(
            "src_phrase".into(),
            pairs
                .iter()
                .map(|r| r.src_text.as_str())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "tgt_phrase".into(),
            pairs
                .iter()
                .map(|r| r.tgt_text.as_str())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "score".into(),
            pairs.iter().map(|r| r.score).collect::<Vec<f64>>(),
        ),
        Column::new(
            "links".into(),
            pairs.iter().map(|r| r.links).collect::<Vec<u32>>(),
        ),
    ])?;
    Ok((out, pst))
}

/// `e` with its sentence index counted from the start of the table rather than of the chunk.
fn at_table_row(mut e: alinea_align::PairError, offset: usize) -> alinea_align::PairError {
    use alinea_align::PairError::*;
    match &mut e {
        LinkOutOfRange { sentence, .. }
        | SpanOutOfText { sentence, .. }
        | ScoreCount { sentence, .. } => *sentence += offset,
        Count { .. } | MaxLen | Align(_) => {}
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_keep_the_flat_keys_and_reject_unknown_ones() {
        let p: Params = serde_json::from_value(
            serde_json::json!({"max_len": 2, "min_score": 0.3, "score": "posterior", "skip_punctuation": false}),
        )
        .unwrap();
        assert_eq!(p.filter.max_len, 2);
        assert_eq!(p.filter.score, alinea_align::ScoreKind::Posterior);
        // The canonical form less the unkeyed chunk size (what enters the cache key) is the same four flat keys
        // as before the crate type.
        let canon = serde_json::to_value(Params::default()).unwrap();
        let mut keys: Vec<&str> = canon
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .filter(|k| !AlignPairs::UNKEYED_PARAMS.contains(k))
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["max_len", "min_score", "score", "skip_punctuation"]);
        assert!(serde_json::from_value::<Params>(serde_json::json!({"max_lenn": 2})).is_err());
        assert!(serde_json::from_value::<Params>(serde_json::json!({"lowercase": true})).is_err());
    }
}
