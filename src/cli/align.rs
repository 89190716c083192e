//! `align` and `eval-align`: the word aligner on plain files, usable like fast_align, and AER against a gold file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;

use super::Global;
use crate::stages::align_priors::{LangPair, PRIOR_COLUMNS, priors_table, read_priors};
use alinea_align::{
    AlignError, Alignment, BayesModel, BayesParams, Corpus, Ibm2Params, Method, Model, Priors,
    TokenizeMode, aer, align_bayes_interned, align_bayes_interned_bidirectional, align_interned,
    length_limit, pharaoh, symmetrize_runs, tokenize,
};

/// Arguments of `align`.
#[derive(Debug, Args)]
pub struct AlignArgs {
    /// Source side, one sentence per line (the left index of each `i-j` link)
    #[arg(long)]
    src: PathBuf,
    /// Target side, line-aligned with --src
    #[arg(long)]
    tgt: PathBuf,
    /// Output only the reverse model's alignment P(src | tgt) (links still written src-tgt, as fast_align -r)
    #[arg(long, conflicts_with = "symmetrize")]
    reverse: bool,
    /// Run both directions and symmetrize: intersect, union, grow-diag (gd), grow-diag-final (gdf),
    /// grow-diag-final-and (gdfa). Without it (and without --reverse) only the forward alignment is written
    #[arg(long, value_name = "METHOD")]
    symmetrize: Option<String>,
    /// ibm2 (or fixed): IBM Model 2, fast_align's model with its bugs fixed, λ fixed at 4 [default]; fast_align:
    /// upstream -d -o -v; hmm / fertility: the Bayesian HMM / HMM + fertility aligner (collapsed Gibbs sampling,
    /// eflomal's model class; fertility is the more accurate)
    #[arg(long, value_parser = ["ibm2", "fixed", "fast_align", "hmm", "fertility"])]
    model: Option<String>,
    /// Tokenization: whitespace (the default, as fast_align: link indices count whitespace-separated tokens, so
    /// pre-tokenized files and their gold alignments line up), unicode (UAX #29 words, punctuation split off),
    /// chars (as unicode, with unspaced scripts such as zh, ja, km, my cut into characters)
    #[arg(long, default_value = "whitespace", value_parser = ["whitespace", "unicode", "chars"])]
    tokenize: String,
    /// Lowercase words before training
    #[arg(long)]
    lowercase: bool,
    /// Model parameters as JSON: the `ibm2` table of the align.ibm2 stage for IBM2 (e.g. '{"iterations": 6}';
    /// --model, when given, wins over its `model` field), its `bayes` table for hmm / fertility (e.g.
    /// '{"samplers": 4, "seed": 1}')
    #[arg(long, value_name = "JSON")]
    params: Option<String>,
    /// Learn the Bayesian aligner's priors from the two directions aligned here (any model; needs --symmetrize)
    /// and write them to FILE as Parquet, in the table format of the align.priors stage: reuse them with --priors
    /// on another corpus of the same language pair, or read them in pandas, polars or duckdb
    #[arg(long, value_name = "FILE", requires = "symmetrize")]
    save_priors: Option<PathBuf>,
    /// Raise the Bayesian model's Dirichlet priors by the pseudo-counts of a priors table (written by
    /// --save-priors, or an align.priors stage's table from `alinea export STAGE.priors -o FILE`): align a small or
    /// noisy corpus with what a large one taught. Needs --model hmm or fertility; words match by text, so use the
    /// --tokenize and --lowercase the priors were learned with
    #[arg(long, value_name = "FILE")]
    priors: Option<PathBuf>,
    /// The language pair SRC-TGT (e.g. be-en) the priors of --save-priors are filed under, and the one read from
    /// a --priors table holding several [default: the extensions of --src and --tgt, as train.be / train.en;
    /// with --priors, the table's only pair]
    #[arg(long, value_name = "SRC-TGT")]
    langs: Option<String>,
    /// Output file (Pharaoh `i-j`, 0-based, one line per input line; empty line for a skipped pair) [default:
    /// stdout]. With --json and -o, a JSON summary (sentences, skipped, links, final tension, seconds) is printed
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
}

/// Arguments of `eval-align`.
#[derive(Debug, Args)]
pub struct EvalAlignArgs {
    /// Gold alignments: Pharaoh (`i-j` sure, `ipj` possible, one line per sentence) or WPT (`sent i j [S|P]`,
    /// always 1-based), detected from the first line
    #[arg(long)]
    gold: PathBuf,
    /// Predicted alignments: Pharaoh `i-j`, 0-based, one line per sentence (lines beyond the gold's are ignored)
    #[arg(long)]
    pred: PathBuf,
    /// The Pharaoh gold file is 1-based (as the AER protocol's `gold` files)
    #[arg(long)]
    gold_one_based: bool,
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Reads a corpus side as UTF-8; invalid bytes are reported with their line and byte offset.
fn read_utf8(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        let bad = e.utf8_error().valid_up_to();
        let before = &e.as_bytes()[..bad];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        anyhow::anyhow!(
            "{}: line {line}: invalid UTF-8 at byte {} of the line (byte {bad} of the file, value 0x{:02x}); \
             the aligner reads UTF-8 text",
            path.display(),
            bad - line_start + 1,
            e.as_bytes()[bad]
        )
    })
}

/// The model `--model` and `--params` describe.
enum Chosen {
    Ibm2(Ibm2Params),
    Bayes(BayesParams),
}

fn chosen_model(args: &AlignArgs) -> anyhow::Result<Chosen> {
    let bayes = match args.model.as_deref() {
        Some("hmm") => Some(BayesModel::Hmm),
        Some("fertility") => Some(BayesModel::Fertility),
        _ => None,
    };
    if let Some(model) = bayes {
        let mut p: BayesParams = match &args.params {
            Some(j) => serde_json::from_str(j)
                .context("--params: not a valid parameter object of the Bayesian aligner")?,
            None => BayesParams::default(),
        };
        p.model = model;
        p.validate().context("--params")?;
        return Ok(Chosen::Bayes(p));
    }
    let mut params: Ibm2Params = match &args.params {
        Some(j) => {
            serde_json::from_str(j).context("--params: not a valid ibm2 parameter object")?
        }
        None => Ibm2Params::default(),
    };
    match args.model.as_deref() {
        Some("fast_align") => params.model = Model::FastAlign,
        Some(_) => params.model = Model::Fixed,
        None => {}
    }
    params.validate().context("--params")?;
    Ok(Chosen::Ibm2(params))
}

/// Tokenizes and interns both sides line by line: no string is kept per token (one per token was most of the peak
/// memory on a large corpus).
fn interned(
    src: &[&str],
    tgt: &[&str],
    limit: usize,
    mode: TokenizeMode,
    lowercase: bool,
) -> Result<Corpus, AlignError> {
    Corpus::from_lines(src, tgt, limit, |line, push| {
        for t in tokenize(line, mode) {
            if lowercase {
                push(&t.text.to_lowercase());
            } else {
                push(t.text);
            }
        }
    })
}

/// Reads, checks, tokenizes and interns both sides. The text is freed on return: the aligner reads only the
/// interned corpus.
fn read_corpus(args: &AlignArgs, limit: usize, mode: TokenizeMode) -> anyhow::Result<Corpus> {
    let (src, tgt) = (read_utf8(&args.src)?, read_utf8(&args.tgt)?);
    let (src_lines, tgt_lines): (Vec<&str>, Vec<&str>) =
        (src.lines().collect(), tgt.lines().collect());
    if src_lines.len() != tgt_lines.len() {
        bail!(
            "{} has {} lines but {} has {}",
            args.src.display(),
            src_lines.len(),
            args.tgt.display(),
            tgt_lines.len()
        );
    }
    if src_lines.is_empty() {
        bail!(
            "{} and {} are empty: nothing to align",
            args.src.display(),
            args.tgt.display()
        );
    }
    interned(&src_lines, &tgt_lines, limit, mode, args.lowercase).with_context(|| {
        format!(
            "aligning {} with {}",
            args.src.display(),
            args.tgt.display()
        )
    })
}

/// The language pair `--langs` names, else the one the file extensions name (`train.be`, `train.en`); `None`
/// when neither does. The second value says whether `--langs` named it.
fn named_langs(args: &AlignArgs) -> anyhow::Result<(Option<LangPair>, bool)> {
    if let Some(text) = &args.langs {
        let pair = text
            .split_once('-')
            .filter(|(s, t)| !s.is_empty() && !t.is_empty() && !t.contains('-'))
            .with_context(|| {
                format!("--langs `{text}`: expected SRC-TGT, two language codes joined by `-` (e.g. be-en)")
            })?;
        return Ok((Some((pair.0.to_string(), pair.1.to_string())), true));
    }
    let code = |p: &Path| {
        let ext = p.extension()?.to_str()?;
        is_language_code(ext).then(|| ext.to_string())
    };
    let pair = match (code(&args.src), code(&args.tgt)) {
        (Some(s), Some(t)) if s != t => Some((s, t)),
        _ => None,
    };
    Ok((pair, false))
}

/// An ISO 639-1 or 639-3 code (`be`, `bel`), optionally with a script as FLORES-200 writes them (`zho_Hans`),
/// and not one of the extensions corpus files commonly carry.
fn is_language_code(ext: &str) -> bool {
    let (lang, script) = ext.split_once('_').unwrap_or((ext, ""));
    let lang_ok = (2..=3).contains(&lang.len()) && lang.bytes().all(|b| b.is_ascii_lowercase());
    let script_ok = script.is_empty()
        || (script.len() == 4
            && script.starts_with(|c: char| c.is_ascii_uppercase())
            && script[1..].bytes().all(|b| b.is_ascii_lowercase()));
    lang_ok && script_ok && !matches!(lang, "src" | "tgt" | "txt" | "tok" | "raw" | "gz" | "xz")
}

/// The priors `--priors` names: the table's entry for `langs` when `--langs` named it, else its only language
/// pair, else the pair the file extensions name. Words are lowercased when `lowercase`.
fn load_priors(
    path: &Path,
    lowercase: bool,
    (langs, explicit): &(Option<LangPair>, bool),
) -> anyhow::Result<(LangPair, Priors)> {
    let shown = path.display();
    let bytes = std::fs::read(path).with_context(|| format!("--priors: cannot read {shown}"))?;
    let table = alinea_engine::table::decode_parquet(bytes)
        .with_context(|| format!("--priors: {shown} is not a Parquet table"))?;
    alinea_engine::contract::check_columns(&table, PRIOR_COLUMNS).map_err(|m| {
        anyhow::anyhow!(
            "--priors: {shown} is not a priors table ({m}); write one with --save-priors or export an \
             align.priors stage's table"
        )
    })?;
    let mut by_langs = read_priors(&table, "priors", lowercase).map_err(|e| match e {
        alinea_engine::StageError::Input { message, .. } => {
            anyhow::anyhow!("--priors: {shown}: {message}")
        }
        other => anyhow::Error::new(other).context(format!("--priors: reading {shown}")),
    })?;
    let held: Vec<String> = by_langs.keys().map(|(s, t)| format!("{s}-{t}")).collect();
    let held = held.join(", ");
    if by_langs.is_empty() {
        bail!("--priors: {shown} holds no priors (an empty table)");
    }
    let chosen = match langs {
        Some(l) if *explicit || by_langs.len() > 1 => {
            by_langs.remove_entry(l).ok_or_else(|| {
                anyhow::anyhow!(
                    "--priors: {shown} has no priors for {}-{}; it holds {held} (choose with --langs SRC-TGT)",
                    l.0,
                    l.1
                )
            })?
        }
        _ if by_langs.len() == 1 => by_langs.pop_first().expect("one entry"),
        _ => bail!(
            "--priors: {shown} holds priors for {} language pairs ({held}): choose one with --langs SRC-TGT",
            by_langs.len(),
        ),
    };
    if let Some((s, t)) = langs.as_ref().filter(|l| **l != chosen.0) {
        eprintln!(
            "warning: the files look like {s}-{t}, but {shown} holds {}-{} priors only; using them",
            chosen.0.0, chosen.0.1
        );
    }
    Ok(chosen)
}

/// Learns the priors of `forward` and `reverse` (aligned on `corpus`) and writes them to `path` as the
/// align.priors table of `langs`. Returns the number of entries written.
fn save_priors(
    path: &Path,
    langs: &LangPair,
    corpus: &Corpus,
    forward: &Alignment,
    reverse: &Alignment,
) -> anyhow::Result<usize> {
    let priors = Priors::learn_interned(corpus, forward, reverse, 1.0).context("--save-priors")?;
    let mut table =
        priors_table([(langs, &priors)]).context("--save-priors: building the table")?;
    drop(priors);
    super::inspect::write_exported_with(path, |w| {
        Ok(alinea_engine::table::encode_parquet_into(&mut table, w)?)
    })?;
    Ok(table.height())
}

/// Skipped lines printed one by one before the rest are summarised.
const SHOWN_SKIPS: usize = 5;

/// `alinea align`.
pub fn align(global: &Global, args: AlignArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let chosen = chosen_model(&args)?;
    let method: Option<Method> = args
        .symmetrize
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(anyhow::Error::msg)
        .context("--symmetrize")?;
    let mode: TokenizeMode = args.tokenize.parse().map_err(anyhow::Error::msg)?;
    let named = |e: AlignError| {
        anyhow::Error::new(e).context(format!(
            "aligning {} with {}",
            args.src.display(),
            args.tgt.display()
        ))
    };
    let limit = match &chosen {
        Chosen::Ibm2(p) => length_limit(p.max_sentence_len, true),
        Chosen::Bayes(p) => length_limit(p.max_sentence_len, false),
    };
    // Every flag is checked before the corpus is read: a mistake should not cost an alignment run.
    let langs = named_langs(&args)?;
    if args.save_priors.is_some() && langs.0.is_none() {
        bail!(
            "--save-priors: name the language pair with --langs SRC-TGT (file extensions would name it, as in \
             train.be / train.en; {} and {} name none)",
            args.src.display(),
            args.tgt.display()
        );
    }
    let priors = match (&args.priors, &chosen) {
        (None, _) => None,
        (Some(_), Chosen::Ibm2(_)) => bail!(
            "--priors: priors are for the Bayesian models (IBM Model 2 has no Dirichlet parameters to raise): \
             add --model hmm or --model fertility"
        ),
        (Some(path), Chosen::Bayes(_)) => Some(load_priors(path, args.lowercase, &langs)?),
    };
    let primed = priors.as_ref().map(|(_, p)| p);
    let corpus = read_corpus(&args, limit, mode)?;
    let direction = |reverse: bool| match &chosen {
        Chosen::Ibm2(p) => align_interned(&corpus, p, reverse),
        Chosen::Bayes(p) => align_bayes_interned(&corpus, p, reverse, primed),
    };
    let mut saved = None;
    let (links, runs): (Vec<Vec<(u32, u32)>>, Vec<Alignment>) = match method {
        Some(m) => {
            let (f, r) = match &chosen {
                Chosen::Ibm2(_) => {
                    let mut forward = direction(false).map_err(named)?;
                    // Only the links are written: the forward table goes before the reverse one is built.
                    forward.release_table();
                    let mut reverse = direction(true).map_err(named)?;
                    reverse.release_table();
                    (forward, reverse)
                }
                // Both directions at once: their samplers share one pool of jobs.
                Chosen::Bayes(p) => {
                    align_bayes_interned_bidirectional(&corpus, p, primed).map_err(named)?
                }
            };
            if let (Some(path), Some(langs)) = (&args.save_priors, &langs.0) {
                let entries = save_priors(path, langs, &corpus, &f, &r)?;
                saved = Some((path, langs, entries));
            }
            (symmetrize_runs(&f, &r, m)?, vec![f, r])
        }
        None => {
            let a = direction(args.reverse).map_err(named)?;
            (a.links(), vec![a])
        }
    };
    let text = pharaoh::write_pharaoh(&links);
    match &args.output {
        Some(p) => {
            std::fs::write(p, text).with_context(|| format!("cannot write {}", p.display()))?
        }
        None => out!("{text}"),
    }
    let st = &runs[0].stats;
    let summary = serde_json::json!({
        "sentences": st.sentences,
        "aligned": st.aligned,
        "skipped": st.skipped.len(),
        "suspicious_tokens": st.suspicious_tokens,
        "links": links.iter().map(Vec::len).sum::<usize>(),
        "final_tension": runs.iter().map(|a| a.stats.final_tension).collect::<Vec<_>>(),
        "threads": global.threads(),
        "seconds": started.elapsed().as_secs_f64(),
        "priors_read": priors.as_ref().map(|((s, t), _)| serde_json::json!({
            "path": args.priors, "langs": format!("{s}-{t}"),
        })),
        "priors_written": saved.as_ref().map(|(path, (s, t), entries)| serde_json::json!({
            "path": path, "langs": format!("{s}-{t}"), "entries": entries,
        })),
    });
    if global.json && args.output.is_some() {
        outln!("{}", serde_json::to_string(&summary)?);
    } else {
        eprintln!(
            "aligned {} of {} pairs ({} skipped{}) in {:.2} s",
            st.aligned,
            st.sentences,
            st.skipped.len(),
            if st.suspicious_tokens > 0 {
                format!(", {} tokens special to fast_align", st.suspicious_tokens)
            } else {
                String::new()
            },
            started.elapsed().as_secs_f64()
        );
    }
    if let Some(((s, t), _)) = &priors {
        eprintln!(
            "primed with the {s}-{t} priors of {}",
            args.priors.as_ref().expect("read").display()
        );
    }
    if let Some((path, (s, t), entries)) = &saved {
        eprintln!(
            "{s}-{t} priors ({entries} entries) written to {}",
            path.display()
        );
    }
    for s in st.skipped.iter().take(SHOWN_SKIPS) {
        eprintln!(
            "warning: {} line {} skipped: {}",
            args.src.display(),
            s.index + 1,
            crate::stages::align_ibm2::skip_name(s.reason)
        );
    }
    if st.skipped.len() > SHOWN_SKIPS {
        let rest = &st.skipped[SHOWN_SKIPS..];
        let mut by_reason: std::collections::BTreeMap<&str, usize> = Default::default();
        for s in rest {
            *by_reason
                .entry(crate::stages::align_ibm2::skip_name(s.reason))
                .or_default() += 1;
        }
        let reasons: Vec<String> = by_reason.iter().map(|(r, n)| format!("{n} {r}")).collect();
        eprintln!(
            "warning: {} more skipped lines not listed ({}; first at line {})",
            rest.len(),
            reasons.join(", "),
            rest[0].index + 1
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `alinea eval-align`.
pub fn eval_align(global: &Global, args: EvalAlignArgs) -> anyhow::Result<ExitCode> {
    let gold = pharaoh::read_gold(&read(&args.gold)?, args.gold_one_based)
        .with_context(|| format!("gold {}", args.gold.display()))?;
    let pred = pharaoh::read_pharaoh(&read(&args.pred)?, false)
        .with_context(|| format!("prediction {}", args.pred.display()))?;
    let s = aer(&gold, &pred)?;
    if global.json {
        outln!(
            "{}",
            serde_json::json!({"aer": s.aer, "precision": s.precision, "recall": s.recall, "sentences": s.sentences, "predicted": s.predicted, "sure": s.sure})
        );
    } else {
        outln!(
            "precision {:.4}\nrecall    {:.4}\nAER       {:.4}\n({} sentences, {} predicted links, {} sure gold links)",
            s.precision,
            s.recall,
            s.aer,
            s.sentences,
            s.predicted,
            s.sure
        );
    }
    Ok(ExitCode::SUCCESS)
}
