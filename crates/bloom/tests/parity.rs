//! Parity of the forward pass with transformers on the shared tiny-bloom fixture.
mod common;

use alinea_bloom::Bloom;
use candle_core::{DType, Device};

fn reference() -> serde_json::Value {
    let p = common::shared("reference/tiny-bloom/reference.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn rows<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> T {
    serde_json::from_value(v.clone()).unwrap()
}

#[test]
fn logits_and_loss_match_transformers() {
    let dir = common::shared("reference/tiny-bloom");
    let model = Bloom::load(&dir, &Device::Cpu, DType::F32).unwrap();
    let r = reference();
    let ids: Vec<Vec<u32>> = rows(&r["input_ids"]);
    let mask: Vec<Vec<u8>> = rows(&r["attention_mask"]);
    let full: Vec<Vec<u8>> = ids.iter().map(|x| vec![1; x.len()]).collect();
    let want: Vec<Vec<Vec<f32>>> = rows(&r["logits"]);
    let want_mask: Vec<Vec<Vec<f32>>> = rows(&r["logits_with_mask"]);

    let got: Vec<Vec<Vec<f32>>> = model.logits(&ids, &full, None).unwrap().to_vec3().unwrap();
    let diff = max_diff(&got, &want, None);
    assert!(diff < 1e-4, "unmasked logits differ by {diff}");

    let got: Vec<Vec<Vec<f32>>> = model.logits(&ids, &mask, None).unwrap().to_vec3().unwrap();
    let diff = max_diff(&got, &want_mask, Some(&mask));
    assert!(
        diff < 1e-4,
        "left-padded logits differ by {diff} on real tokens"
    );

    let labels: Vec<Vec<Option<u32>>> = ids
        .iter()
        .map(|r| r.iter().map(|&x| Some(x)).collect())
        .collect();
    let loss = model.lm_loss(&ids, &full, &labels, None).unwrap();
    let want_loss = r["lm_loss"].as_f64().unwrap() as f32;
    assert!(
        (loss - want_loss).abs() < 1e-5,
        "loss {loss} vs {want_loss}"
    );
}

fn max_diff(a: &[Vec<Vec<f32>>], b: &[Vec<Vec<f32>>], mask: Option<&[Vec<u8>]>) -> f32 {
    let mut d = 0f32;
    for (i, (ra, rb)) in a.iter().zip(b).enumerate() {
        for (t, (xa, xb)) in ra.iter().zip(rb).enumerate() {
            if mask.is_some_and(|m| m[i][t] == 0) {
                continue;
            }
            for (p, q) in xa.iter().zip(xb) {
                d = d.max((p - q).abs());
            }
        }
    }
    d
}

#[test]
fn mean_pooled_states_ignore_padding() {
    let model = Bloom::load(
        &common::shared("reference/tiny-bloom"),
        &Device::Cpu,
        DType::F32,
    )
    .unwrap();
    let padded = model
        .mean_pooled_states(
            &[vec![5, 17, 300], vec![3, 3, 42]],
            &[vec![1, 1, 1], vec![0, 0, 1]],
            None,
        )
        .unwrap();
    let alone = model
        .mean_pooled_states(&[vec![42]], &[vec![1]], None)
        .unwrap();
    assert_eq!(padded.len(), 3, "embeddings + 2 blocks");
    for (p, a) in padded.iter().zip(&alone) {
        let d = p[1]
            .iter()
            .zip(&a[0])
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(d < 1e-5, "left padding changed the pooled state by {d}");
    }
}

#[test]
fn peft_adapter_matches_peft_logits_and_merge() {
    let model = Bloom::load(
        &common::shared("reference/tiny-bloom"),
        &Device::Cpu,
        DType::F32,
    )
    .unwrap();
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/peft-lora"));
    let adapter = alinea_bloom::LoraAdapter::load(dir, model.config(), &Device::Cpu).unwrap();
    assert_eq!(adapter.config().rank, 4);
    assert_eq!(adapter.config().scaling(), 2.0);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    let ids: Vec<Vec<u32>> = rows(&r["input_ids"]);
    let mask: Vec<Vec<u8>> = rows(&r["attention_mask"]);
    let want: Vec<Vec<Option<Vec<f32>>>> = rows(&r["logits_with_mask"]);
    let check = |got: Vec<Vec<Vec<f32>>>, what: &str| {
        let mut d = 0f32;
        for (gb, wb) in got.iter().zip(&want) {
            for (g, w) in gb.iter().zip(wb) {
                if let Some(w) = w {
                    d = g.iter().zip(w).fold(d, |d, (a, b)| d.max((a - b).abs()));
                }
            }
        }
        assert!(d < 1e-4, "{what}: logits differ from PEFT by {d}");
    };
    check(
        model
            .logits(&ids, &mask, Some(&adapter))
            .unwrap()
            .to_vec3()
            .unwrap(),
        "adapter",
    );
    check(
        model
            .merged(&adapter)
            .unwrap()
            .logits(&ids, &mask, None)
            .unwrap()
            .to_vec3()
            .unwrap(),
        "merged",
    );
    let full: Vec<Vec<u8>> = ids.iter().map(|x| vec![1; x.len()]).collect();
    let labels: Vec<Vec<Option<u32>>> = ids
        .iter()
        .map(|r| r.iter().map(|&x| Some(x)).collect())
        .collect();
    let loss = model.lm_loss(&ids, &full, &labels, Some(&adapter)).unwrap();
    let want_loss = r["lm_loss"].as_f64().unwrap() as f32;
    assert!(
        (loss - want_loss).abs() < 1e-5,
        "loss {loss} vs PEFT {want_loss}"
    );
}
