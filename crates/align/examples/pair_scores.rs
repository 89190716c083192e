//! Development check: which per-link score makes the best word-pair filter for AlignInstruct.
//! On the shared gold sets (aer-protocol: train on all lines, grow-diag-final-and, the gold lines scored), the
//! one-word pairs `align.pairs` extracts are the links alone in their row and column; this prints, per score kind
//! and threshold, how many such pairs are kept and what share of them are gold links (sure, or possible), for
//! IBM Model 2 and for the Bayesian HMM + fertility aligner (whose posterior score is the pooled sample marginal).
//! usage: cargo run --release -p alinea-align --example pair_scores
use alinea_align::*;

fn shared(p: &str) -> String {
    format!("{}/../../../shared/{p}", env!("CARGO_MANIFEST_DIR"))
}

fn toks(s: &str) -> Vec<Vec<String>> {
    s.lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

/// Links that are the only link of their source row and target column: the one-word pairs.
fn isolated(links: &[Link]) -> Vec<usize> {
    (0..links.len())
        .filter(|&k| {
            let (i, j) = links[k];
            links.iter().filter(|l| l.0 == i || l.1 == j).count() == 1
        })
        .collect()
}

fn main() {
    for model in ["ibm2", "fertility"] {
        for set in ["enfr", "roen"] {
            report(model, set);
        }
    }
}

fn report(model: &str, set: &str) {
    {
        let read = |f: &str| {
            std::fs::read_to_string(shared(&format!("reference/aer-protocol/{set}/{f}")))
                .unwrap_or_else(|e| {
                    panic!("{set}/{f}: {e} (needs ../shared beside the repository)")
                })
        };
        let (src, tgt) = (toks(&read("src")), toks(&read("tgt")));
        let gold = pharaoh::read_pharaoh_gold(&read("gold"), true).unwrap();
        let (f, r) = if model == "ibm2" {
            align_bidirectional(&src, &tgt, &Ibm2Params::default()).unwrap()
        } else {
            align_bayes_bidirectional(&src, &tgt, &BayesParams::default()).unwrap()
        };
        let links = symmetrize(&f.links(), &r.links(), Method::GrowDiagFinalAnd).unwrap();
        let scores = link_scores(&src, &tgt, &links, &f, &r, false).unwrap();
        // (score, sure, possible) of every one-word pair in the gold sentences.
        let mut pairs: Vec<(LinkScore, bool, bool)> = Vec::new();
        for (s, g) in gold.iter().enumerate() {
            for k in isolated(&links[s]) {
                let l = links[s][k];
                pairs.push((scores[s][k], g.sure.contains(&l), g.possible.contains(&l)));
            }
        }
        println!(
            "{model} {set}: {} one-word pairs in {} gold sentences",
            pairs.len(),
            gold.len()
        );
        for kind in [
            ScoreKind::Posterior,
            ScoreKind::TranslationProb,
            ScoreKind::Product,
        ] {
            for th in [0.0, 0.1, 0.2, 0.3, 0.5, 0.7] {
                let kept: Vec<_> = pairs.iter().filter(|p| p.0.get(kind) >= th).collect();
                let sure = kept.iter().filter(|p| p.1).count();
                let possible = kept.iter().filter(|p| p.2).count();
                println!(
                    "  {kind:?} ≥ {th:.1}: kept {:5} ({:5.1}%), sure {:5.1}%, possible {:5.1}%",
                    kept.len(),
                    100.0 * kept.len() as f64 / pairs.len() as f64,
                    100.0 * sure as f64 / kept.len().max(1) as f64,
                    100.0 * possible as f64 / kept.len().max(1) as f64
                );
            }
        }
    }
}
