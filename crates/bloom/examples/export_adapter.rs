//! Writes a LoRA adapter made by alinea-bloom (seeded, non-zero B) for the shared tiny-bloom
//! model, plus its logits, so that `tests/data/make_peft_fixture.py --check-rust DIR` can load it
//! with `PeftModel.from_pretrained` and compare.
//!
//! `cargo run -p alinea-bloom --example export_adapter -- crates/bloom/tests/data/rust-lora`

use std::path::PathBuf;

use alinea_bloom::rng::SplitMix64;
use alinea_bloom::{Bloom, LoraAdapter, LoraConfig, LoraTarget};
use candle_core::{DType, Device, Tensor};

fn main() {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: export_adapter OUT_DIR"),
    );
    let base = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/reference/tiny-bloom"
    ));
    let model = Bloom::load(&base, &Device::Cpu, DType::F32).expect("tiny-bloom fixture");
    let cfg = LoraConfig {
        rank: 4,
        alpha: 8.0,
        dropout: 0.0,
        targets: vec![LoraTarget::QueryKeyValue, LoraTarget::Dense],
    };
    let adapter = LoraAdapter::new(model.config(), cfg, 3, &Device::Cpu).unwrap();
    for (k, m) in adapter.modules().iter().enumerate() {
        let mut r = SplitMix64::from_key(&[99, k as u64]);
        let v: Vec<f32> = (0..m.b.elem_count())
            .map(|_| (r.next_normal() * 0.3) as f32)
            .collect();
        m.b.set(&Tensor::from_vec(v, m.b.dims(), &Device::Cpu).unwrap())
            .unwrap();
    }
    adapter.save(&out, "tiny-bloom").unwrap();
    let ids = vec![
        vec![5u32, 17, 300, 42, 999, 0, 7, 123],
        vec![1, 2, 3, 4, 5, 6, 7, 8],
    ];
    let mask = vec![vec![1u8; 8], vec![0, 0, 1, 1, 1, 1, 1, 1]];
    let logits: Vec<Vec<Vec<f32>>> = model
        .logits(&ids, &mask, Some(&adapter))
        .unwrap()
        .to_vec3()
        .unwrap();
    let json =
        serde_json::json!({"input_ids": ids, "attention_mask": mask, "logits_with_mask": logits});
    std::fs::write(out.join("alinea_logits.json"), json.to_string()).unwrap();
    println!("wrote {}", out.display());
}
