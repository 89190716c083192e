//! Development check: agreement with fast_align on be-en and AER on the shared gold sets.
//! usage: [PARAMS='{"optimize_tension":false}'] [SKIPBE=1] cargo run --release --example eval -p alinea-align [fixed|fast_align]
use std::io::Read;

use alinea_align::*;

fn shared(p: &str) -> String {
    format!("{}/../../../shared/{p}", env!("CARGO_MANIFEST_DIR"))
}
fn gz(p: &str) -> String {
    let mut s = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(shared(p)).unwrap())
        .read_to_string(&mut s)
        .unwrap();
    s
}
fn toks(s: &str) -> Vec<Vec<String>> {
    s.lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}
fn agreement(a: &[Vec<(u32, u32)>], b: &[Vec<(u32, u32)>]) -> (usize, usize, usize) {
    let (mut both, mut na, mut nb) = (0, 0, 0);
    for (x, y) in a.iter().zip(b) {
        na += x.len();
        nb += y.len();
        both += x.iter().filter(|l| y.contains(l)).count();
    }
    (both, na, nb)
}

fn main() {
    let model = std::env::args().nth(1).unwrap_or("fixed".into());
    let mut p = Ibm2Params {
        model: if model == "fast_align" {
            Model::FastAlign
        } else {
            Model::Fixed
        },
        ..Default::default()
    };
    if let Ok(j) = std::env::var("PARAMS") {
        let mut v: serde_json::Value = serde_json::to_value(&p).unwrap();
        let o: serde_json::Value = serde_json::from_str(&j).unwrap();
        for (k, x) in o.as_object().unwrap() {
            v[k] = x.clone();
        }
        p = serde_json::from_value(v).unwrap();
    }
    let skip_be = std::env::var_os("SKIPBE").is_some();
    let t = std::time::Instant::now();
    if !skip_be {
        let src = toks(&gz("reference/fast_align-outputs/be-en-67k/src.be.gz"));
        let tgt = toks(&gz("reference/fast_align-outputs/be-en-67k/tgt.en.gz"));
        let (f, r) = align_bidirectional(&src, &tgt, &p).unwrap();
        let g = symmetrize(&f.links(), &r.links(), Method::GrowDiagFinalAnd).unwrap();
        println!(
            "be-en {:?} fwd λ {} rev λ {}",
            t.elapsed(),
            f.stats.final_tension,
            r.stats.final_tension
        );
        for (name, mine) in [("fwd", f.links()), ("rev", r.links()), ("gdfa", g)] {
            let fa = pharaoh::read_pharaoh(
                &gz(&format!(
                    "reference/fast_align-outputs/be-en-67k/fa.{name}.gz"
                )),
                false,
            )
            .unwrap();
            let (both, na, nb) = agreement(&mine, &fa);
            println!(
                "{name}: mine {na} fa {nb} common {both} = {:.3}% of fa",
                100.0 * both as f64 / nb as f64
            );
        }
    }
    for set in ["enfr", "roen"] {
        let src = toks(
            &std::fs::read_to_string(shared(&format!("reference/aer-protocol/{set}/src"))).unwrap(),
        );
        let tgt = toks(
            &std::fs::read_to_string(shared(&format!("reference/aer-protocol/{set}/tgt"))).unwrap(),
        );
        let gold = pharaoh::read_pharaoh_gold(
            &std::fs::read_to_string(shared(&format!("reference/aer-protocol/{set}/gold")))
                .unwrap(),
            true,
        )
        .unwrap();
        let t1 = std::time::Instant::now();
        let (f, r) = if model == "hmm" {
            align_hmm_bidirectional(
                &src,
                &tgt,
                &p,
                &std::env::var("HMM")
                    .map(|j| serde_json::from_str(&j).unwrap())
                    .unwrap_or_default(),
            )
            .unwrap()
        } else {
            align_bidirectional(&src, &tgt, &p).unwrap()
        };
        println!("{set} aligned in {:?}", t1.elapsed());
        let g = symmetrize(&f.links(), &r.links(), Method::GrowDiagFinalAnd).unwrap();
        println!("{set} gdfa: {:?}", aer(&gold, &g).unwrap());
        if let (Some(pf), Some(pr)) = (f.posteriors.as_ref(), r.posteriors.as_ref()) {
            for th in [0.3f32, 0.4, 0.5] {
                let links = symmetrize_posteriors(pf, pr, th).unwrap();
                let s = aer(&gold, &links).unwrap();
                println!(
                    "{set} posterior-avg ≥ {th}: AER {:.4} P {:.3} R {:.3}",
                    s.aer, s.precision, s.recall
                );
            }
        }
        println!(
            "{set} fwd {:.4} rev {:.4} λ {} {}",
            aer(&gold, &f.links()).unwrap().aer,
            aer(&gold, &r.links()).unwrap().aer,
            f.stats.final_tension,
            r.stats.final_tension
        );
    }
}
