//! Development check of the Bayesian aligner: AER (gdfa) on the shared gold sets and wall time.
//! usage: [PARAMS='{"samplers":3}'] [SETS=enfr,roen] cargo run --release --example bayes_eval -p alinea-align
use alinea_align::*;

fn shared(p: &str) -> String {
    format!("{}/../../../shared/{p}", env!("CARGO_MANIFEST_DIR"))
}
fn toks(s: &str) -> Vec<Vec<String>> {
    s.lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

fn main() {
    let p: BayesParams = match std::env::var("PARAMS") {
        Ok(j) => serde_json::from_str(&j).unwrap(),
        Err(_) => BayesParams::default(),
    };
    let sets = std::env::var("SETS").unwrap_or("enfr,roen".into());
    for set in sets.split(',') {
        let read = |f: &str| {
            std::fs::read_to_string(shared(&format!("reference/aer-protocol/{set}/{f}"))).unwrap()
        };
        let (src, tgt) = (toks(&read("src")), toks(&read("tgt")));
        let gold = pharaoh::read_pharaoh_gold(&read("gold"), true).unwrap();
        let t = std::time::Instant::now();
        let (f, r) = align_bayes_bidirectional(&src, &tgt, &p).unwrap();
        let g = symmetrize(&f.links(), &r.links(), Method::GrowDiagFinalAnd).unwrap();
        let el = t.elapsed();
        let nl = |a: &Alignment| a.sentences.iter().map(|s| s.links.len()).sum::<usize>();
        let nt: usize = tgt.iter().map(Vec::len).sum();
        let ns: usize = src.iter().map(Vec::len).sum();
        println!(
            "links fwd {} / {nt} tgt tokens, rev {} / {ns} src tokens",
            nl(&f),
            nl(&r)
        );
        let (af, ar, ag) = (
            aer(&gold, &f.links()).unwrap(),
            aer(&gold, &r.links()).unwrap(),
            aer(&gold, &g).unwrap(),
        );
        println!(
            "{set}: fwd {:.2} rev {:.2} gdfa {:.2} (P {:.3} R {:.3}) in {el:?}",
            100.0 * af.aer,
            100.0 * ar.aer,
            100.0 * ag.aer,
            ag.precision,
            ag.recall
        );
    }
}
