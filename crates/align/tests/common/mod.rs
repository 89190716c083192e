//! Shared test helpers: reading the project's shared data (fails with a clear message when it is missing).
#![allow(dead_code)]
use std::io::Read;

pub fn shared(p: &str) -> String {
    let path = format!("{}/../../../shared/{p}", env!("CARGO_MANIFEST_DIR"));
    assert!(
        std::path::Path::new(&path).exists(),
        "shared data missing: {path} (tests need ../shared beside the repo)"
    );
    path
}

pub fn read(p: &str) -> String {
    let path = shared(p);
    if path.ends_with(".gz") {
        let mut s = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
            .read_to_string(&mut s)
            .unwrap();
        s
    } else {
        std::fs::read_to_string(&path).unwrap()
    }
}

pub fn toks(s: &str) -> Vec<Vec<String>> {
    s.lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

pub fn be_en() -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    (
        toks(&read("reference/fast_align-outputs/be-en-67k/src.be.gz")),
        toks(&read("reference/fast_align-outputs/be-en-67k/tgt.en.gz")),
    )
}

/// Links of `mine` also in `reference`, and the totals.
pub fn agreement(mine: &[Vec<(u32, u32)>], reference: &[Vec<(u32, u32)>]) -> (usize, usize, usize) {
    let (mut both, mut na, mut nb) = (0, 0, 0);
    for (x, y) in mine.iter().zip(reference) {
        na += x.len();
        nb += y.len();
        both += x.iter().filter(|l| y.contains(l)).count();
    }
    (both, na, nb)
}
