//! Bench: sacrebleu's paired bootstrap test (1000 resamples, BLEU + chrF + chrF++) for 48
//! directions × 1000 lines of real Flores-200 devtest text (24 languages × {en→xx, xx→en}; a
//! baseline and a system made by deterministic corruptions of the references), against sacrebleu
//! 2.6.0's `PairedTest` in Python on the same files in one process. Checks that every mean, interval
//! and p-value is bit-identical.
//!
//! usage: cargo bench -p alinea-metrics --bench significance
//!            [-- --only-alinea DIR [SACREBLEU_JSON] | --write DIR]
//! env: SACREBLEU_PYTHON (default `python3`) must import sacrebleu 2.6.0 for the comparison.
//! `--write DIR` only writes the files (and the Python script, DIR/paired_bs.py, which takes DIR);
//! `--only-alinea DIR` only runs the alinea side on them: whole-process timing of each side. Given
//! the JSON that `python3 DIR/paired_bs.py DIR` printed, it also counts the directions whose
//! results are bit-identical to sacrebleu's.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use alinea_metrics::significance::{PairedReport, TestConfig, TestKind, paired_test};
use alinea_metrics::{ScoreOptions, read_lines};

const LANGS: [&str; 24] = [
    "afr_Latn", "amh_Ethi", "bel_Cyrl", "cym_Latn", "gle_Latn", "gla_Latn", "glg_Latn", "hau_Latn",
    "kat_Geor", "kaz_Cyrl", "khm_Khmr", "kir_Cyrl", "lim_Latn", "mya_Mymr", "nob_Latn", "nno_Latn",
    "oci_Latn", "sin_Sinh", "tat_Cyrl", "tgk_Cyrl", "tuk_Latn", "uig_Arab", "uzn_Latn", "ydd_Hebr",
];
const LINES: usize = 1000;

fn devtest(lang: &str) -> Vec<String> {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/datasets/flores200/flores200_dataset/devtest"
    ))
    .join(format!("{lang}.devtest"));
    let mut lines = read_lines(&p).expect("flores devtest");
    lines.truncate(LINES);
    lines
}

/// Deterministic xorshift so the hypotheses are the same on every run.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// Up to `edits` word drops / swaps / repeats.
fn corrupt(line: &str, edits: usize, rng: &mut Rng) -> String {
    let mut w: Vec<String> = line.split(' ').map(str::to_string).collect();
    for _ in 0..1 + rng.below(edits) {
        if w.len() < 3 {
            break;
        }
        match rng.below(3) {
            0 => {
                w.remove(rng.below(w.len()));
            }
            1 => {
                let i = rng.below(w.len() - 1);
                w.swap(i, i + 1);
            }
            _ => {
                let i = rng.below(w.len());
                let x = w[i].clone();
                w.insert(i, x);
            }
        }
    }
    w.join(" ")
}

fn write(path: &Path, lines: &[String]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(path, text).expect("write bench file");
}

const PY: &str = r#"
import json, os, struct, sys, time
os.environ["SACREBLEU_SEED"] = "12345"
import sacrebleu
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.significance import PairedTest
def read_lines(p):
    with open(p, encoding="utf-8", newline="\n") as f:
        return [l.rstrip() for l in f]
def bits(x):
    return None if x is None else struct.unpack("<Q", struct.pack("<d", float(x)))[0]
d = sys.argv[1]
names = json.load(open(os.path.join(d, "directions.json")))
t = time.perf_counter(); c = time.process_time()
out = []
for n in names:
    R = [read_lines(os.path.join(d, n + ".ref"))]
    systems = [("base", read_lines(os.path.join(d, n + ".base"))), ("sys", read_lines(os.path.join(d, n + ".sys")))]
    metrics = {"BLEU": BLEU(references=R), "chrF": CHRF(references=R), "chrF++": CHRF(word_order=2, references=R)}
    _, scores = PairedTest(systems, metrics, references=None, test_type="bs", n_samples=1000)()
    out.append([[bits(r.score), bits(r.p_value), bits(r.mean), bits(r.ci)] for k, v in scores.items() if k != "System" for r in v])
dt = time.perf_counter() - t; dc = time.process_time() - c
print(json.dumps({"seconds": dt, "cpu_seconds": dc, "version": sacrebleu.__version__, "results": out}))
"#;

fn write_files(dir: &Path) -> Vec<String> {
    std::fs::create_dir_all(dir).expect("bench dir");
    let eng = devtest("eng_Latn");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut names = Vec::new();
    for lang in LANGS {
        let xx = devtest(lang);
        for (name, refs) in [(format!("eng-{lang}"), &xx), (format!("{lang}-eng"), &eng)] {
            let base: Vec<String> = refs.iter().map(|l| corrupt(l, 3, &mut rng)).collect();
            let sys: Vec<String> = refs.iter().map(|l| corrupt(l, 4, &mut rng)).collect();
            write(&dir.join(format!("{name}.ref")), refs);
            write(&dir.join(format!("{name}.base")), &base);
            write(&dir.join(format!("{name}.sys")), &sys);
            names.push(name);
        }
    }
    std::fs::write(
        dir.join("directions.json"),
        serde_json::to_string(&names).expect("names"),
    )
    .expect("directions.json");
    std::fs::write(dir.join("paired_bs.py"), PY).expect("script");
    names
}

/// The alinea side: read the files and run the paired bootstrap per direction.
fn run_alinea(dir: &Path, names: &[String]) -> Vec<PairedReport> {
    let metrics = ScoreOptions::default().metrics();
    let config = TestConfig::new(TestKind::Bootstrap);
    names
        .iter()
        .map(|n| {
            let read = |ext: &str| read_lines(dir.join(format!("{n}.{ext}"))).expect("bench file");
            let refs = vec![read("ref")];
            let systems = vec![
                ("base".to_string(), read("base")),
                ("sys".to_string(), read("sys")),
            ];
            paired_test(&metrics, &refs, &systems, &config).expect("paired test")
        })
        .collect()
}

fn flat_bits(report: &PairedReport) -> Vec<Option<u64>> {
    let mut out = Vec::new();
    for m in 0..report.metrics.len() {
        for row in &report.results {
            let r = row[m];
            out.extend([Some(r.score), r.p_value, r.mean, r.ci].map(|v| v.map(f64::to_bits)));
        }
    }
    out
}

/// Directions whose every score, p-value, mean and interval has sacrebleu's bits.
fn identical(ours: &[PairedReport], sacrebleu: &serde_json::Value) -> usize {
    let mut identical = 0;
    for (o, p) in ours
        .iter()
        .zip(sacrebleu["results"].as_array().expect("results"))
    {
        let theirs: Vec<Option<u64>> = p
            .as_array()
            .expect("rows")
            .iter()
            .flat_map(|r| {
                r.as_array()
                    .expect("row")
                    .iter()
                    .map(|x| x.as_u64())
                    .collect::<Vec<_>>()
            })
            .collect();
        identical += usize::from(flat_bits(o) == theirs);
    }
    identical
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.as_slice() {
        [flag, dir] if flag == "--write" => {
            write_files(Path::new(dir));
            return;
        }
        [flag, dir, rest @ ..] if flag == "--only-alinea" && rest.len() <= 1 => {
            let dir = Path::new(dir);
            let names: Vec<String> = serde_json::from_str(
                &std::fs::read_to_string(dir.join("directions.json")).expect("directions.json"),
            )
            .expect("names");
            let reports = run_alinea(dir, &names);
            println!("{} directions tested", reports.len());
            if let Some(json) = rest.first() {
                let text = std::fs::read_to_string(json).expect("sacrebleu's JSON");
                // The last line: a file that farm-bench-style runs append to may hold several.
                let last = text
                    .lines()
                    .rev()
                    .find(|l| l.starts_with('{'))
                    .expect("a JSON line");
                let v: serde_json::Value = serde_json::from_str(last).expect("sacrebleu's JSON");
                println!(
                    "directions bit-identical to sacrebleu {}: {} of {}",
                    v["version"],
                    identical(&reports, &v),
                    names.len()
                );
            }
            return;
        }
        _ => {}
    }
    let dir =
        std::env::temp_dir().join(format!("alinea-significance-bench-{}", std::process::id()));
    let names = write_files(&dir);
    let _ = run_alinea(&dir, &names[..2]);
    let t = Instant::now();
    let ours = run_alinea(&dir, &names);
    let rust = t.elapsed().as_secs_f64();
    println!(
        "alinea-metrics: paired bootstrap (1000 resamples, BLEU+chrF+chrF++), {} directions x {LINES} lines, from files: {rust:.3} s ({} threads)",
        names.len(),
        rayon::current_num_threads()
    );
    let python = std::env::var("SACREBLEU_PYTHON").unwrap_or_else(|_| "python3".into());
    match Command::new(&python)
        .arg(dir.join("paired_bs.py"))
        .arg(&dir)
        .output()
    {
        Ok(out) if out.status.success() => {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("python JSON");
            let py = v["seconds"].as_f64().expect("seconds");
            let identical = identical(&ours, &v);
            println!(
                "sacrebleu {}: {py:.3} s ({:.2} CPU s; 1 process, excluding start-up and import)",
                v["version"],
                v["cpu_seconds"].as_f64().unwrap_or(f64::NAN)
            );
            println!(
                "speed ratio (wall): {:.1}x; directions bit-identical to sacrebleu: {identical} of {}",
                py / rust,
                names.len()
            );
        }
        Ok(out) => println!(
            "sacrebleu comparison skipped: {python} failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ),
        Err(e) => println!("sacrebleu comparison skipped: cannot run {python}: {e}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
