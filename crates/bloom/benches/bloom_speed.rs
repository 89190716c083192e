//! Training and generation throughput on CPU (or `cuda` with `--features cuda` and BLOOM_DEVICE=cuda)
//! for a small BLOOM config on real Flores-200 MTInstruct rows.
//!
//! `cargo bench -p alinea-bloom --bench bloom_speed [-- tiny|small|medium]`

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;

use alinea_bloom::{
    Bloom, BloomConfig, Example, GenerateConfig, LoraConfig, TrainConfig, default_dtype,
    generate_ids, parse_device, train, train_tokenizer,
};

fn flores(code: &str, n: usize) -> Vec<String> {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/datasets/flores200/flores200_dataset/dev"
    ))
    .join(format!("{code}.dev"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    text.lines().take(n).map(String::from).collect()
}

fn main() {
    let size = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_else(|| "small".into());
    let (hidden, layers, heads, vocab, n_rows, batch) = match size.as_str() {
        "medium" => (512, 8, 8, 8000, 64, 8),
        // The demo's size: tiny_config() with a 1000-entry tokenizer.
        "tiny" => (64, 2, 4, 1000, 64, 8),
        _ => (128, 4, 4, 2000, 64, 8),
    };
    let device =
        parse_device(&std::env::var("BLOOM_DEVICE").unwrap_or_else(|_| "cpu".into())).unwrap();
    let dtype = default_dtype(&device);
    let en = flores("eng_Latn", n_rows);
    let af = flores("afr_Latn", n_rows);
    let rows: Vec<(String, String)> = en
        .iter()
        .zip(&af)
        .map(|(e, a)| {
            (
                format!("Translate from English to Afrikaans.\nEnglish: {e}\nAfrikaans:"),
                format!(" {a}"),
            )
        })
        .collect();
    let texts: Vec<String> = rows.iter().map(|(a, b)| format!("{a}{b}")).collect();
    let tok = train_tokenizer(&texts, vocab).unwrap();
    let cfg = BloomConfig {
        vocab_size: tok.get_vocab_size(true),
        hidden_size: hidden,
        n_layer: layers,
        n_head: heads,
        ..alinea_bloom::tiny_config(0)
    };
    let model = Bloom::random(cfg.clone(), 1, 0.02, &device).unwrap();
    let model = if dtype == candle_core::DType::F32 {
        model
    } else {
        Bloom::from_tensors(cfg.clone(), model.state_dict().unwrap(), &device, dtype).unwrap()
    };
    let ex: Vec<Example> = rows
        .iter()
        .map(|(i, o)| Example::encode(&tok, i, o, 384, 384, Some(2)).unwrap())
        .collect();
    let tcfg = TrainConfig {
        epochs: 1,
        batch_size: batch,
        lora: LoraConfig::default(),
        ..TrainConfig::default()
    };
    // `--gen-only`: one training step, to profile generation alone.
    let train_ex = if std::env::args().any(|a| a == "--gen-only") {
        ex[..batch].to_vec()
    } else {
        ex.clone()
    };
    let tokens: usize = train_ex.iter().map(|e| e.ids.len()).sum();
    let t0 = Instant::now();
    let out = train(
        &model,
        std::slice::from_ref(&train_ex),
        &tcfg,
        None,
        &mut |_, _| ControlFlow::Continue(()),
    )
    .unwrap();
    let train_s = t0.elapsed().as_secs_f64();
    let prompts: Vec<Vec<u32>> = ex
        .iter()
        .take(16)
        .map(|e| e.ids[..e.n_input].to_vec())
        .collect();
    let gcfg = GenerateConfig {
        max_new_tokens: 64,
        batch_size: 8,
        max_input_len: 384,
        no_repeat_ngram_size: 0,
    };
    let t0 = Instant::now();
    // No stop tokens: every prompt produces exactly max_new_tokens, so the rate is well defined.
    let gen_out = generate_ids(
        &model,
        Some(&out.adapter),
        &prompts,
        &Default::default(),
        &gcfg,
    )
    .unwrap();
    let gen_s = t0.elapsed().as_secs_f64();
    let new_tokens: usize = gen_out.iter().map(|g| g.len()).sum();
    // Digest of the trained adapter and the generations: equal across CANDLE_NUM_THREADS settings
    // when results do not depend on the thread count.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |x: u32| {
        h ^= x as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    };
    let mut tensors: Vec<_> = out.adapter.peft_tensors().unwrap().into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, t) in tensors {
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        v.iter().for_each(|x| eat(x.to_bits()));
    }
    gen_out.iter().flatten().for_each(|&x| eat(x));
    println!(
        "config={size} device={device:?} dtype={dtype:?} hidden={hidden} layers={layers} heads={heads} vocab={} params={}",
        cfg.vocab_size,
        cfg.base_params()
    );
    println!(
        "train: {} examples, {tokens} tokens, {} steps (batch {batch}) in {train_s:.2}s -> {:.0} tokens/s",
        train_ex.len(),
        out.total_steps,
        tokens as f64 / train_s
    );
    println!(
        "generate: {} prompts x {} new tokens (batch 8, KV cache) in {gen_s:.2}s -> {:.0} new tokens/s",
        prompts.len(),
        gcfg.max_new_tokens,
        new_tokens as f64 / gen_s
    );
    println!(
        "digest={h:016x} final_loss={:.4}",
        out.rows.last().map(|r| r.loss).unwrap_or(f64::NAN)
    );
}
