#![allow(dead_code)]
use std::path::PathBuf;

use alinea_bloom::{Bloom, Example, tiny_config, write_tiny_model};
use candle_core::{DType, Device};

/// Runs candle single-threaded: its CPU pool spin-waits, which on a loaded 2-core CI machine makes
/// every op many times slower. Called first by every test, before any tensor op reads the variable.
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: every test calls this first and `Once` blocks them until the write is done, so no
    // thread reads the environment concurrently with this single write.
    ONCE.call_once(|| unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") });
}

/// Path under the shared folder (`../shared` relative to the repository root).
pub fn shared(rel: &str) -> PathBuf {
    init();
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/")).join(rel);
    assert!(
        p.exists(),
        "shared fixture missing: {} (expected the shared/ folder beside the repository)",
        p.display()
    );
    p
}

/// Parallel Flores-200 dev lines (English, Afrikaans), the `n` shortest English ones, in file order.
pub fn flores_pairs(n: usize) -> Vec<(String, String)> {
    let read = |code: &str| -> Vec<String> {
        let p = shared(&format!(
            "datasets/flores200/flores200_dataset/dev/{code}.dev"
        ));
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    };
    let (en, af) = (read("eng_Latn"), read("afr_Latn"));
    assert_eq!(en.len(), af.len(), "flores dev files not aligned");
    let mut idx: Vec<usize> = (0..en.len()).collect();
    idx.sort_by_key(|&i| (en[i].len(), i));
    idx.truncate(n);
    idx.sort();
    idx.into_iter()
        .map(|i| (en[i].clone(), af[i].clone()))
        .collect()
}

/// MTInstruct rows of RECIPE.md §4 (both directions) as (input, output) strings.
pub fn mt_instruct(pairs: &[(String, String)]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (en, af) in pairs {
        out.push((
            format!("Translate from English to Afrikaans.\nEnglish: {en}\nAfrikaans:"),
            format!(" {af}"),
        ));
        out.push((
            format!("Translate from Afrikaans to English.\nAfrikaans: {af}\nEnglish:"),
            format!(" {en}"),
        ));
    }
    out
}

/// A tiny random BLOOM with a BPE tokenizer trained on the rows, written to a temp folder.
pub fn tiny_model(
    rows: &[(String, String)],
    vocab: usize,
) -> (tempfile::TempDir, Bloom, tokenizers::Tokenizer) {
    let dir = tempfile::tempdir().unwrap();
    let texts: Vec<String> = rows.iter().map(|(a, b)| format!("{a}{b}")).collect();
    write_tiny_model(dir.path(), &texts, vocab, tiny_config(vocab), 7, 0.25).unwrap();
    let model = Bloom::load(dir.path(), &Device::Cpu, DType::F32).unwrap();
    let tok = alinea_bloom::load_tokenizer(dir.path()).unwrap();
    (dir, model, tok)
}

/// Encodes rows as training examples (EOS appended).
pub fn encode(
    tok: &tokenizers::Tokenizer,
    rows: &[(String, String)],
    max_len: usize,
) -> Vec<Example> {
    rows.iter()
        .map(|(i, o)| Example::encode(tok, i, o, max_len, max_len, Some(2)).unwrap())
        .collect()
}

/// Mean output-token loss of the examples under the model (with an optional adapter).
pub fn mean_loss(model: &Bloom, lora: Option<&alinea_bloom::LoraAdapter>, ex: &[Example]) -> f32 {
    let mut tot = 0.0;
    for e in ex {
        let labels: Vec<Option<u32>> = e
            .ids
            .iter()
            .enumerate()
            .map(|(p, &x)| if p >= e.n_input { Some(x) } else { None })
            .collect();
        tot += model
            .lm_loss(
                std::slice::from_ref(&e.ids),
                &[vec![1; e.ids.len()]],
                &[labels],
                lora,
            )
            .unwrap();
    }
    tot / ex.len() as f32
}
