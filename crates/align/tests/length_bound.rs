//! Memory must not grow with the product of sentence lengths: one long pair is aligned in a child process whose
//! data segment is limited (RLIMIT_DATA through `ulimit -d`), far below what holding every (i, j) cell took.
use alinea_align::*;

/// One pair of `len` × `len` tokens over a small vocabulary: 9e6 cells per direction. Holding a table index (4 B)
/// and a posterior (8 B) per cell, as IBM2 did before, needs > 100 MB for one direction.
fn long_pair(len: usize) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let side = |salt: usize| {
        vec![
            (0..len)
                .map(|i| format!("w{}", (i * 31 + salt) % 40))
                .collect::<Vec<_>>(),
        ]
    };
    (side(0), side(7))
}

const LEN: usize = 3000;
/// The child's data limit in KiB (the test harness and rayon's threads fit well within it).
const LIMIT_KIB: u64 = 96 * 1024;

fn child(model: &str) {
    let (src, tgt) = long_pair(LEN);
    match model {
        "ibm2" => {
            let p = Ibm2Params {
                max_sentence_len: 0,
                iterations: 2,
                ..Default::default()
            };
            let a = align_corpus(&src, &tgt, &p).unwrap();
            assert_eq!(a.stats.aligned, 1);
            // One E+M pass and the Viterbi pass over every cell (the diagonal prior spread over 3000 positions
            // may leave every token on NULL, so links are not asserted).
            assert_eq!(a.stats.iterations.len(), 2);
            assert!(
                a.stats
                    .iterations
                    .iter()
                    .all(|l| l.log_likelihood.is_finite())
            );
            assert_eq!(a.stats.ttable_cells, 40 * 40 + 40);
        }
        _ => {
            let p = BayesParams {
                max_sentence_len: 0,
                iterations: Some(2),
                samplers: 1,
                ..Default::default()
            };
            let a = align_bayes_corpus(&src, &tgt, &p, false).unwrap();
            assert_eq!(a.stats.aligned, 1);
            assert!(!a.sentences.get(0).links.is_empty());
        }
    }
}

fn run_limited(test: &str, model: &str) {
    if let Ok(m) = std::env::var("ALINEA_LENGTH_BOUND_CHILD") {
        child(&m);
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -d {LIMIT_KIB} && exec \"$0\" --exact {test} --nocapture --test-threads 1"
        ))
        .arg(&exe)
        .env("ALINEA_LENGTH_BOUND_CHILD", model)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{model}: a {LEN} x {LEN} pair did not align within {LIMIT_KIB} KiB of data: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("1 passed"),
        "the child ran no test: {stdout}"
    );
}

#[test]
fn ibm2_aligns_a_long_pair_in_bounded_memory() {
    run_limited("ibm2_aligns_a_long_pair_in_bounded_memory", "ibm2");
}

#[test]
fn fertility_aligns_a_long_pair_in_bounded_memory() {
    run_limited(
        "fertility_aligns_a_long_pair_in_bounded_memory",
        "fertility",
    );
}
