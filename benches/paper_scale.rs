//! BLOOMZ+24's data preparation at paper scale on one machine: 24 languages × up to 200k sampled pairs, from a
//! generated OPUS-100 of 4.5M training pairs (the size of the 24 languages' real train sets), at 1×, 2× and 4×.
//!
//! The generator (documented in [`write_corpus`]) repeats and perturbs the shared OPUS-100 train files (be-en
//! 67,312 pairs, en-li 25,535) into the original OPUS-100 layout for the 24 languages of BLOOMZ+24; no download.
//! The pipeline is the data half of `pipelines/bloomz24-table1.toml`: ingestion → sampling (`per_lang` 200k,
//! `max_words` 250) → IBM Model 2 alignment → gold pairs → MTInstruct and AlignInstruct → the four Table 1 training
//! sets (a matrix) → export of one as prompt-completion JSON Lines. Each stage is measured on its own: the pipeline is
//! run as growing prefixes against one store, so each `alinea run` computes exactly one new stage (the ones before
//! are cache hits, whose cost is measured by the same run and small), under `/usr/bin/time` (wall seconds, peak RSS).
//!
//! Environment: `ALINEA_BENCH_SCALE` (fraction of the paper's size for the 1× point; default 1.0),
//! `ALINEA_BENCH_FACTORS` (default `1,2,4`), `ALINEA_BENCH_THREADS` (default 2), `ALINEA_BENCH_JOBS` (stages at once,
//! default 2). Figures are printed: per stage and
//! size, wall time and peak RSS, and the growth of each from one size to the next (1.0 per doubling is linear).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The 24 languages of BLOOMZ+24 (RECIPE.md), as `pipelines/bloomz24-table1.toml` lists them.
const LANGS: [&str; 24] = [
    "af", "am", "be", "cy", "ga", "gd", "gl", "ha", "ka", "kk", "km", "ky", "li", "my", "nb", "nn",
    "oc", "si", "tg", "tk", "tt", "ug", "uz", "yi",
];

/// OPUS-100 training pairs of the 24 languages together, before sampling.
const PAPER_TRAIN_PAIRS: f64 = 4.5e6;

fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared")
        .join(rel)
}

/// The real pairs the generator starts from: every shared OPUS-100 training pair, as (English, other).
fn base_pairs() -> Vec<(String, String)> {
    let dir = shared("datasets/opus-100/opus-100-corpus/v1.0/supervised");
    let read = |p: PathBuf| -> Vec<String> {
        std::io::BufReader::new(
            std::fs::File::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
        )
        .lines()
        .map(Result::unwrap)
        .collect()
    };
    let mut out = Vec::new();
    for (pair, other) in [("be-en", "be"), ("en-li", "li")] {
        let en = read(dir.join(pair).join(format!("opus.{pair}-train.en")));
        let xx = read(dir.join(pair).join(format!("opus.{pair}-train.{other}")));
        out.extend(en.into_iter().zip(xx));
    }
    out
}

/// `text` with its words rotated left by `k` (a perturbation that keeps the words and the length).
fn rotate_words(text: &str, k: usize) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() {
        return String::new();
    }
    let k = k % words.len();
    words[k..]
        .iter()
        .chain(&words[..k])
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes `per_lang` training pairs for each of the 24 languages in OPUS-100's layout
/// (`supervised/<a>-<b>/opus.<a>-<b>-train.<lang>`, pairs sorted as OPUS-100 names them).
///
/// Pair `i` of language number `l` is base pair `(i + l·7919) mod n` (a different stretch of the base per language),
/// and its `r`-th repetition (`r = (i + l·7919) / n`) has the words of its non-English side rotated by `r` and a
/// repetition marker `r` appended to both sides, so that repetitions are distinct (the sampler's dedup keeps them)
/// yet alignable like the originals. Sentence lengths, vocabulary and alignment structure are those of real
/// OPUS-100 be-en and en-li; what is not real is that 24 languages share them.
fn write_corpus(root: &Path, base: &[(String, String)], per_lang: usize) {
    for (l, lang) in LANGS.iter().enumerate() {
        let pair = if *lang < "en" {
            format!("{lang}-en")
        } else {
            format!("en-{lang}")
        };
        let dir = root.join("supervised").join(&pair);
        std::fs::create_dir_all(&dir).unwrap();
        let open = |side: &str| {
            std::io::BufWriter::new(
                std::fs::File::create(dir.join(format!("opus.{pair}-train.{side}"))).unwrap(),
            )
        };
        let (mut en_file, mut xx_file) = (open("en"), open(lang));
        for i in 0..per_lang {
            let j = i + l * 7919;
            let (en, xx) = &base[j % base.len()];
            let r = j / base.len();
            if r == 0 {
                writeln!(en_file, "{en}").unwrap();
                writeln!(xx_file, "{xx}").unwrap();
            } else {
                writeln!(en_file, "{en} {r}").unwrap();
                writeln!(xx_file, "{} {r}", rotate_words(xx, r)).unwrap();
            }
        }
        en_file.flush().unwrap();
        xx_file.flush().unwrap();
    }
}

/// The stages of the preparation, in order, as pipeline TOML.
fn stages(data: &Path) -> Vec<(&'static str, String)> {
    let langs = LANGS.map(|l| format!("\"{l}\"")).join(", ");
    vec![
        (
            "opus",
            format!(
                "[stages.opus]\nkind = \"ingest.opus100\"\ninputs = {{ root = \"{}\" }}\nlangs = [{langs}]\nsplits = [\"train\"]\n",
                data.display()
            ),
        ),
        (
            "train_pairs",
            "[stages.train_pairs]\nkind = \"sample\"\ninputs = { pairs = \"opus\" }\nper_lang = 200000\nmax_words = 250\n".into(),
        ),
        ("align", "[stages.align]\nkind = \"align.ibm2\"\ninputs = { pairs = \"train_pairs\" }\n".into()),
        ("gold", "[stages.gold]\nkind = \"align.pairs\"\ninputs = { alignments = \"align\" }\n".into()),
        ("mt", "[stages.mt]\nkind = \"instruct.mt\"\ninputs = { pairs = \"train_pairs\" }\n".into()),
        (
            "align_instr",
            "[stages.align_instr]\nkind = \"instruct.align\"\ninputs = { alignments = \"align\", gold = \"gold\" }\n".into(),
        ),
        (
            "train_set",
            "[stages.train_set]\nkind = \"instruct.curriculum\"\ninputs = { tasks = [\"mt\", \"align_instr\"] }\nmatrix = { objective = [\"MT\", \"MT+Align\", \"Align->MT\", \"MT+Align->MT\"] }\nresources = { mem = \"15G\" }\n".into(),
        ),
    ]
}

/// Wall seconds and peak RSS (MiB) of one command, measured by GNU time.
fn timed(cmd: &mut Command) -> (f64, f64) {
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut wrapped = Command::new("/usr/bin/time");
    wrapped
        .args(["-f", "%e %M", "-o"])
        .arg(report.path())
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            wrapped.env(k, v);
        }
    }
    let out = wrapped
        .output()
        .expect("/usr/bin/time (GNU time) is installed");
    assert!(
        out.status.success(),
        "{:?} failed:\n{}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(report.path()).unwrap();
    let mut it = text.split_whitespace();
    let wall: f64 = it.next().unwrap().parse().unwrap();
    let kb: f64 = it.next().unwrap().parse().unwrap();
    (wall, kb / 1024.0)
}

fn alinea(store: &Path, threads: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_alinea"));
    c.arg("--store").arg(store).arg("--threads").arg(threads);
    c
}

/// `alinea run` with the stages-at-once of `ALINEA_BENCH_JOBS` (default 2, `run`'s default): the four Table 1
/// training sets are one matrix, and the instances running at once add up in the peak.
fn run(store: &Path, threads: &str) -> Command {
    let mut c = alinea(store, threads);
    c.arg("run")
        .arg("-j")
        .arg(std::env::var("ALINEA_BENCH_JOBS").unwrap_or_else(|_| "2".into()));
    c
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn main() {
    let scale: f64 = std::env::var("ALINEA_BENCH_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    let factors: Vec<usize> = std::env::var("ALINEA_BENCH_FACTORS")
        .unwrap_or_else(|_| "1,2,4".into())
        .split(',')
        .map(|f| f.trim().parse().expect("ALINEA_BENCH_FACTORS: integers"))
        .collect();
    let threads = std::env::var("ALINEA_BENCH_THREADS").unwrap_or_else(|_| "2".into());
    let base = base_pairs();
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    println!(
        "base: {} real OPUS-100 pairs; 1x = {:.0} training pairs ({} per language); threads {threads}; load average {}",
        base.len(),
        PAPER_TRAIN_PAIRS * scale,
        (PAPER_TRAIN_PAIRS * scale / 24.0).round(),
        loadavg()
    );
    // results[stage][factor index] = (wall s, peak MiB)
    let mut results: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for (fi, &factor) in factors.iter().enumerate() {
        let per_lang = (PAPER_TRAIN_PAIRS * scale * factor as f64 / 24.0).round() as usize;
        let dir = work.path().join(format!("x{factor}"));
        let data = dir.join("opus-100");
        write_corpus(&data, &base, per_lang);
        let store = dir.join("store");
        let mut text = format!(
            "[pipeline]\nname = \"paper-scale\"\nroot = \"{}\"\n",
            dir.display()
        );
        for (si, (name, toml)) in stages(&data).into_iter().enumerate() {
            text.push_str(&toml);
            let file = dir.join(format!("prefix-{si}.toml"));
            std::fs::write(&file, &text).unwrap();
            let m = timed(run(&store, &threads).arg(&file));
            record(&mut results, name, fi, m);
            println!("  {factor}x {name:<12} {:>8.1} s {:>8.0} MiB", m.0, m.1);
        }
        let export = dir.join("train.jsonl");
        let m = timed(
            alinea(&store, &threads)
                .args([
                    "export",
                    "--pipeline",
                    "paper-scale",
                    "train_set_mt_align",
                    "-o",
                ])
                .arg(&export)
                .args(["--as", "prompt-completion"]),
        );
        record(&mut results, "export", fi, m);
        println!(
            "  {factor}x {:<12} {:>8.1} s {:>8.0} MiB  ({} per language)",
            "export", m.0, m.1, per_lang
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
    println!("\nload average after: {}", loadavg());
    println!(
        "stage          {}",
        factors
            .iter()
            .map(|f| format!("{f:>4}x wall  peak MiB"))
            .collect::<Vec<_>>()
            .join("  ")
    );
    for (name, ms) in &results {
        let cells: Vec<String> = ms
            .iter()
            .map(|(w, r)| format!("{w:>9.1} s {r:>8.0}"))
            .collect();
        // Growth per doubling of the size: 1.0 is linear.
        let growth: Vec<String> = ms
            .windows(2)
            .zip(factors.windows(2))
            .map(|(m, f)| {
                let size = f[1] as f64 / f[0] as f64;
                format!(
                    "wall ×{:.2} rss ×{:.2} for ×{size}",
                    m[1].0 / m[0].0,
                    m[1].1 / m[0].1
                )
            })
            .collect();
        println!("{name:<14} {}   {}", cells.join("  "), growth.join("; "));
    }
}

fn record(results: &mut Vec<(String, Vec<(f64, f64)>)>, name: &str, fi: usize, m: (f64, f64)) {
    if fi == 0 {
        results.push((name.to_string(), vec![m]));
    } else if let Some((_, v)) = results.iter_mut().find(|(n, _)| n == name) {
        v.push(m);
    }
}
