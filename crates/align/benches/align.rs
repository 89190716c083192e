//! Alignment benchmark: forward + reverse + grow-diag-final-and on real corpora, sentences/s, wall, peak RSS.
//!
//! `cargo bench -p alinea-align --bench align [-- CORPUS...] ` with CORPUS in `be-en`, `enfr-long`, `be-en-x3`,
//! `flores-en-de` (default: all); `-- --one CORPUS THREADS KIND` runs one (KIND: fixed, fast_align, hmm, fertility, bayes_hmm).
//! Each corpus runs in a child process so that its peak RSS (VmHWM) is its own; threads are taken
//! from `ALINEA_THREADS` (default: all cores) and the run is repeated for 1 thread with `--threads 1`.
use std::io::Read;
use std::time::Instant;

use alinea_align::*;

fn shared(p: &str) -> String {
    let path = format!("{}/../../../shared/{p}", env!("CARGO_MANIFEST_DIR"));
    assert!(
        std::path::Path::new(&path).exists(),
        "shared data missing: {path}"
    );
    path
}

fn read(p: &str) -> String {
    let path = shared(p);
    let mut s = String::new();
    if path.ends_with(".gz") {
        flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
            .read_to_string(&mut s)
            .unwrap();
    } else {
        s = std::fs::read_to_string(&path).unwrap();
    }
    s
}

fn status_mb(key: &str) -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// User + system CPU seconds of this process (/proc/self/stat fields 14 and 15, in clock ticks of 1/100 s).
fn cpu_s() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let f: Vec<&str> = s
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let tick = |k: usize| {
        f.get(k)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (tick(11) + tick(12)) / 100.0
}

/// The two sides' texts: lines are tokenized and interned straight from them (see `Corpus::from_lines`), so the
/// peak RSS is the aligner's plus the text, as for `alinea align`.
fn texts(name: &str) -> (String, String) {
    match name {
        "be-en" | "be-en-x3" => {
            let s = read("reference/fast_align-outputs/be-en-67k/src.be.gz");
            let t = read("reference/fast_align-outputs/be-en-67k/tgt.en.gz");
            let k = if name == "be-en" { 1 } else { 3 };
            (s.repeat(k), t.repeat(k))
        }
        "enfr-long" => (
            read("reference/aer-protocol/enfr/src"),
            read("reference/aer-protocol/enfr/tgt"),
        ),
        // Long sentences (about 21 words a side, against be-en's 5): FLORES-200 dev + devtest, English–German,
        // 2,009 lines, untokenized text split at whitespace like the rest.
        "flores-en-de" => {
            let side = |lang: &str| {
                let dir = "datasets/flores200/flores200_dataset";
                read(&format!("{dir}/dev/{lang}.dev"))
                    + &read(&format!("{dir}/devtest/{lang}.devtest"))
            };
            (side("eng_Latn"), side("deu_Latn"))
        }
        other => panic!("unknown corpus {other}"),
    }
}

fn lines((s, t): &(String, String)) -> (Vec<&str>, Vec<&str>) {
    (s.lines().collect(), t.lines().collect())
}

fn whitespace(line: &str, push: &mut dyn FnMut(&str)) {
    line.split_whitespace().for_each(push);
}

fn run_one(name: &str, threads: usize, model: Model, kind: &str) {
    let hmm = kind == "hmm";
    let bayes = match kind {
        "fertility" => Some(BayesModel::Fertility),
        "bayes_hmm" => Some(BayesModel::Hmm),
        _ => None,
    };
    let text = texts(name);
    let (pairs, cells) = {
        let (src, tgt) = lines(&text);
        let cells: usize = src
            .iter()
            .zip(&tgt)
            .map(|(s, t)| s.split_whitespace().count() * t.split_whitespace().count())
            .sum();
        (src.len(), cells)
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let p = Ibm2Params {
        model,
        ..Default::default()
    };
    let rss0 = status_mb("VmRSS:");
    let cpu0 = cpu_s();
    let t0 = Instant::now();
    let (f, r, g) = pool.install(move || {
        let (f, r) = if let Some(model) = bayes {
            let (src, tgt) = lines(&text);
            let p = BayesParams {
                model,
                ..Default::default()
            };
            let limit = length_limit(p.max_sentence_len, false);
            let c = Corpus::from_lines(&src, &tgt, limit, whitespace).unwrap();
            align_bayes_interned_bidirectional(&c, &p, None).unwrap()
        } else if hmm {
            let (src, tgt) = lines(&text);
            let (s, t): (Vec<Vec<&str>>, Vec<Vec<&str>>) = (
                src.iter().map(|l| l.split_whitespace().collect()).collect(),
                tgt.iter().map(|l| l.split_whitespace().collect()).collect(),
            );
            align_hmm_bidirectional(&s, &t, &p, &HmmParams::default()).unwrap()
        } else {
            // As `alinea align`: the text goes once interned, and the forward table before the reverse run.
            let c = {
                let (src, tgt) = lines(&text);
                Corpus::from_lines(
                    &src,
                    &tgt,
                    length_limit(p.max_sentence_len, true),
                    whitespace,
                )
                .unwrap()
            };
            drop(text);
            let mut f = align_interned(&c, &p, false).unwrap();
            f.release_table();
            (f, align_interned(&c, &p, true).unwrap())
        };
        let g = symmetrize_runs(&f, &r, Method::GrowDiagFinalAnd).unwrap();
        (f, r, g)
    });
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_s() - cpu0;
    let links: usize = g.iter().map(Vec::len).sum();
    println!(
        "{name:<10} model={} threads={threads} pairs={} cells/pass={cells} wall={wall:.2}s cpu={cpu:.2}s pairs/s={:.0} peak_rss={:.0}MB (input text {rss0:.0}MB) ttable={}+{} λ={:.2}/{:.2} gdfa_links={links}",
        if bayes.is_some() || hmm {
            kind.to_string()
        } else {
            format!("{model:?}")
        },
        pairs,
        pairs as f64 / wall,
        status_mb("VmHWM:"),
        f.stats.ttable_cells,
        r.stats.ttable_cells,
        f.stats.final_tension,
        r.stats.final_tension,
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("--one") {
        let kind = args.get(3).map(String::as_str);
        let model = if kind == Some("fast_align") {
            Model::FastAlign
        } else {
            Model::Fixed
        };
        run_one(
            &args[1],
            args[2].parse().unwrap(),
            model,
            kind.unwrap_or("fixed"),
        );
        return;
    }
    let names: Vec<String> = if args.is_empty() {
        vec![
            "be-en".into(),
            "enfr-long".into(),
            "be-en-x3".into(),
            "flores-en-de".into(),
        ]
    } else {
        args
    };
    let all = std::thread::available_parallelism().map_or(2, |n| n.get());
    let threads: usize = std::env::var("ALINEA_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(all);
    let exe = std::env::current_exe().unwrap();
    println!(
        "peers (peer-figures.md, fwd+rev+gdfa, same machine class): be-en fast_align 6.9 s (2 thr) / 12.8 s (1 thr), eflomal 8.8 s; be-en x3 fast_align 37.3 s, eflomal 32.9 s; peak RSS fast_align 78 MB (be-en)"
    );
    for name in &names {
        let mut runs = vec![
            (threads, "fertility"),
            (threads, "bayes_hmm"),
            (threads, "fixed"),
            (1, "fixed"),
            (threads, "fast_align"),
        ];
        if name != "be-en-x3" {
            runs.push((threads, "hmm"));
        }
        for (th, model) in runs {
            let st = std::process::Command::new(&exe)
                .args(["--one", name, &th.to_string(), model])
                .status()
                .unwrap();
            assert!(st.success());
        }
    }
}
