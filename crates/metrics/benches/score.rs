//! Bench: corpus BLEU + chrF + chrF++ for the 48 directions of a BLOOMZ+24-sized evaluation
//! (24 languages × {en→xx, xx→en} × 3,000 lines of real Flores-200 + NTREX-128 text, hypotheses
//! made by deterministic corruptions of the references), against sacrebleu 2.6.0 in Python on the
//! same files in one process. Also checks that both give the same numbers.
//!
//! usage: cargo bench -p alinea-metrics --bench score
//! env: SACREBLEU_PYTHON (default `python3`) must import sacrebleu 2.6.0 for the comparison;
//!      BENCH_LINES (default 3000).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use alinea_metrics::{ScoreOptions, read_lines, score_files};

const LANGS: [(&str, Option<&str>); 24] = [
    ("afr_Latn", Some("afr")),
    ("amh_Ethi", Some("amh")),
    ("bel_Cyrl", Some("bel")),
    ("cym_Latn", Some("cym")),
    ("gle_Latn", Some("gle")),
    ("gla_Latn", None),
    ("glg_Latn", Some("glg")),
    ("hau_Latn", Some("hau")),
    ("kat_Geor", Some("kat")),
    ("kaz_Cyrl", Some("kaz")),
    ("khm_Khmr", Some("khm")),
    ("kir_Cyrl", Some("kir")),
    ("lim_Latn", None),
    ("mya_Mymr", Some("mya")),
    ("nob_Latn", Some("nob")),
    ("nno_Latn", Some("nno")),
    ("oci_Latn", None),
    ("sin_Sinh", Some("sin")),
    ("tat_Cyrl", Some("tat")),
    ("tgk_Cyrl", Some("tgk-Cyrl")),
    ("tuk_Latn", Some("tuk")),
    ("uig_Arab", Some("uig")),
    ("uzn_Latn", Some("uzb")),
    ("ydd_Hebr", None),
];

fn shared() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/datasets"
    ))
}

/// Flores dev + devtest + NTREX (when the language has it), cycled up to `n` lines.
fn real_text(flores: &str, ntrex: Option<&str>, n: usize) -> Vec<String> {
    let f = shared().join("flores200/flores200_dataset");
    let mut lines = read_lines(f.join(format!("dev/{flores}.dev"))).expect("flores dev");
    lines.extend(read_lines(f.join(format!("devtest/{flores}.devtest"))).expect("flores devtest"));
    if let Some(code) = ntrex {
        let name = if code == "eng" {
            "newstest2019-src.eng.txt".to_string()
        } else {
            format!("newstest2019-ref.{code}.txt")
        };
        lines.extend(read_lines(shared().join("ntrex128/NTREX-128").join(name)).expect("ntrex"));
    }
    let base = lines.clone();
    while lines.len() < n {
        lines.extend(base.iter().cloned());
    }
    lines.truncate(n);
    lines
}

/// Deterministic xorshift so the hypotheses are the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A system-like hypothesis: words dropped, swapped, repeated or recased.
fn corrupt(line: &str, rng: &mut Rng) -> String {
    let mut w: Vec<String> = line.split(' ').map(str::to_string).collect();
    for _ in 0..1 + rng.below(4) {
        if w.len() < 3 {
            break;
        }
        match rng.below(5) {
            0 => {
                let i = rng.below(w.len());
                w.remove(i);
            }
            1 => {
                let i = rng.below(w.len() - 1);
                w.swap(i, i + 1);
            }
            2 => {
                let i = rng.below(w.len());
                let x = w[i].clone();
                w.insert(i, x);
            }
            3 => {
                let i = rng.below(w.len());
                w[i] = w[i].to_uppercase();
            }
            _ => {}
        }
    }
    w.join(" ")
}

/// CPU seconds (user + system) of this process so far, from /proc (Linux); under contention on
/// a shared machine this is steadier than wall time.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn write(path: &Path, lines: &[String]) {
    let mut s = String::new();
    for l in lines {
        s.push_str(l);
        s.push('\n');
    }
    std::fs::write(path, s).expect("write bench file");
}

const PY: &str = r#"
import json, sys, time
import sacrebleu
from sacrebleu.metrics import BLEU, CHRF
def read_lines(p):
    with open(p, encoding="utf-8", newline="\n") as f:
        return [l.rstrip() for l in f]
pairs = json.load(open(sys.argv[1]))
t = time.perf_counter(); c = time.process_time()
out = []
for hyp, ref in pairs:
    H = read_lines(hyp); R = [read_lines(ref)]
    out.append([BLEU().corpus_score(H, R).score, CHRF().corpus_score(H, R).score, CHRF(word_order=2).corpus_score(H, R).score])
dt = time.perf_counter() - t; dc = time.process_time() - c
print(json.dumps({"seconds": dt, "cpu_seconds": dc, "version": sacrebleu.__version__, "scores": out}))
"#;

fn main() {
    let n: usize = std::env::var("BENCH_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let dir = std::env::temp_dir().join(format!("alinea-metrics-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    let eng = real_text("eng_Latn", Some("eng"), n);
    let mut pairs: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut n_lines = 0;
    for (flores, ntrex) in LANGS {
        let xx = real_text(flores, ntrex, n);
        for (dir_name, refs) in [
            (format!("eng-{flores}"), &xx),
            (format!("{flores}-eng"), &eng),
        ] {
            let hyps: Vec<String> = refs.iter().map(|l| corrupt(l, &mut rng)).collect();
            let (h, r) = (
                dir.join(format!("{dir_name}.hyp")),
                dir.join(format!("{dir_name}.ref")),
            );
            write(&h, &hyps);
            write(&r, refs);
            n_lines += hyps.len();
            pairs.push((h, r));
        }
    }
    let opts = ScoreOptions::default();
    let score_all = || -> Vec<[f64; 3]> {
        pairs
            .iter()
            .map(|(h, r)| {
                let rep = score_files(h, std::slice::from_ref(r), &opts).expect("score");
                [rep.bleu.score, rep.chrf.score, rep.chrf_pp.score]
            })
            .collect()
    };
    // Warm the page cache and the allocator once.
    let _ = score_all();
    let threads = rayon::current_num_threads();
    let t = Instant::now();
    let ours = score_all();
    let rust_all = t.elapsed().as_secs_f64();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let c0 = cpu_seconds();
    let t = Instant::now();
    let ours1 = pool.install(score_all);
    let rust_one = t.elapsed().as_secs_f64();
    let rust_cpu = match (c0, cpu_seconds()) {
        (Some(a), Some(b)) => b - a,
        _ => f64::NAN,
    };
    assert_eq!(ours, ours1, "thread count changed the scores");
    println!(
        "alinea-metrics: {} directions, {n_lines} segments, BLEU+chrF+chrF++ from files: {rust_all:.3} s ({threads} threads), {rust_one:.3} s (1 thread; {rust_cpu:.2} CPU s)",
        pairs.len()
    );

    let python = std::env::var("SACREBLEU_PYTHON").unwrap_or_else(|_| "python3".into());
    let list = dir.join("pairs.json");
    let mut js = String::from("[");
    for (i, (h, r)) in pairs.iter().enumerate() {
        let _ = write!(
            js,
            "{}[{:?},{:?}]",
            if i > 0 { "," } else { "" },
            h.display().to_string(),
            r.display().to_string()
        );
    }
    js.push(']');
    std::fs::write(&list, js).expect("pairs.json");
    let script = dir.join("bench_sacrebleu.py");
    std::fs::write(&script, PY).expect("script");
    match Command::new(&python).arg(&script).arg(&list).output() {
        Ok(out) if out.status.success() => {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("python JSON");
            let py = v["seconds"].as_f64().expect("seconds");
            let py_cpu = v["cpu_seconds"].as_f64().expect("cpu seconds");
            let mut max_diff = 0.0f64;
            let mut same_2dp = true;
            for (o, p) in ours.iter().zip(v["scores"].as_array().expect("scores")) {
                for k in 0..3 {
                    let pv = p[k].as_f64().expect("score");
                    max_diff = max_diff.max((o[k] - pv).abs());
                    same_2dp &= format!("{:.2}", o[k]) == format!("{pv:.2}");
                }
            }
            println!(
                "sacrebleu {}: {py:.3} s ({py_cpu:.2} CPU s; 1 process, excluding start-up and import)",
                v["version"]
            );
            println!(
                "speed ratio: wall {:.1}x ({threads} threads), wall {:.1}x (1 thread), CPU {:.1}x (1 thread); max |Δscore| = {max_diff:.3e}, identical 2-decimal strings: {same_2dp}",
                py / rust_all,
                py / rust_one,
                py_cpu / rust_cpu
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
