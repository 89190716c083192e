//! Real-data loaders shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use alinea_instruct::*;

/// Path under the shared folder (`/work/shared` here, `../shared` in CI), with a clear failure when missing.
pub fn shared(rel: &str) -> PathBuf {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")).join(rel);
    assert!(
        p.exists(),
        "test data missing: {} (the shared data folder must sit beside the repository)",
        p.display()
    );
    p
}

pub fn data(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data")).join(rel)
}

fn lines(rel: &str) -> Vec<String> {
    std::fs::read_to_string(shared(rel))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The first `n` sentence pairs of the WPT-2003 English–French Hansards test set with their whitespace tokens and
/// the sure (S) gold links as one-token gold pairs (src = English, tgt = French).
pub fn hansards(n: usize) -> (Vec<ParallelPair>, Vec<SentenceTokens>, Vec<GoldPair>) {
    let base = "datasets/alignment-gold/enfr-hansards-wpt03/testing";
    let e = lines(&format!("{base}/test/test.e"));
    let f = lines(&format!("{base}/test/test.f"));
    let answers = lines(&format!("{base}/answers/test.wa.nonullalign"));
    let mut pairs = Vec::new();
    let mut toks = Vec::new();
    for i in 0..n {
        let (src, tgt) = (e[i].trim().to_string(), f[i].trim().to_string());
        let pair_id = 1000 + i as u64;
        toks.push(SentenceTokens {
            pair_id,
            src: whitespace_tokens(&src),
            tgt: whitespace_tokens(&tgt),
        });
        pairs.push(ParallelPair {
            pair_id,
            src_lang: "en".into(),
            tgt_lang: "fr".into(),
            src,
            tgt,
        });
    }
    let mut gold = Vec::new();
    for a in answers {
        let parts: Vec<&str> = a.split_whitespace().collect();
        let sent: usize = parts[0].parse().unwrap();
        if sent > n || parts[3] != "S" {
            continue;
        }
        let (ep, fp): (u32, u32) = (parts[1].parse().unwrap(), parts[2].parse().unwrap());
        let (t, pair) = (&toks[sent - 1], &pairs[sent - 1]);
        gold.push(GoldPair {
            pair_id: t.pair_id,
            src_start: ep - 1,
            src_end: ep,
            tgt_start: fp - 1,
            tgt_end: fp,
            src_phrase: t.src[ep as usize - 1].text(&pair.src).to_string(),
            tgt_phrase: t.tgt[fp as usize - 1].text(&pair.tgt).to_string(),
            score: 1.0,
        });
    }
    (pairs, toks, gold)
}

pub fn hansards_corpus(n: usize) -> AlignedCorpus {
    let (p, t, g) = hansards(n);
    AlignedCorpus::new(&p, &t, &g).unwrap()
}

/// The first `n` FLORES-200 devtest lines of English and `code` as pairs (src = eng).
pub fn flores(code: &str, iso: &str, n: usize) -> Vec<ParallelPair> {
    let d = "datasets/flores200/flores200_dataset/devtest";
    let e = lines(&format!("{d}/eng_Latn.devtest"));
    let x = lines(&format!("{d}/{code}.devtest"));
    (0..n)
        .map(|i| ParallelPair {
            pair_id: i as u64,
            src_lang: "en".into(),
            tgt_lang: iso.into(),
            src: e[i].clone(),
            tgt: x[i].clone(),
        })
        .collect()
}

pub fn names() -> std::collections::BTreeMap<String, String> {
    paper_language_names()
}

/// RECIPE.md §4 with every line break plus indentation collapsed into one space, as a reader would join wrapped
/// markdown lines.
pub fn recipe_section4() -> String {
    let text = std::fs::read_to_string(shared("papers/RECIPE.md")).unwrap();
    let start = text.find("## 4. Instructions").expect("RECIPE.md §4");
    let end = text.find("## 5. Training").expect("RECIPE.md §5");
    let mut out = String::new();
    for line in text[start..end].lines() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(line.trim());
    }
    out
}

/// The `nth` backticked string after `marker` in RECIPE.md §4, with the literal `\n` turned into `sep`.
pub fn recipe_template(marker: &str, nth: usize, sep: &str) -> String {
    let s = recipe_section4();
    let at = s
        .find(marker)
        .unwrap_or_else(|| panic!("marker {marker} not in RECIPE.md §4"));
    let mut rest = &s[at..];
    let mut found = String::new();
    for _ in 0..=nth {
        let open = rest.find('`').unwrap();
        let close = rest[open + 1..].find('`').unwrap() + open + 1;
        found = rest[open + 1..close].to_string();
        rest = &rest[close + 1..];
    }
    found.replace("\\n", sep)
}

pub fn sub(template: &str, values: &[(&str, &str)]) -> String {
    let mut s = template.to_string();
    for (k, v) in values {
        s = s.replace(k, v);
    }
    s
}

/// No length limit (the byte fallback's 384 is strict for the two-sentence prompts of these tests).
pub fn unlimited() -> LengthParams {
    LengthParams {
        max_input_tokens: 0,
        max_output_tokens: 0,
        overflow: Overflow::Drop,
    }
}
