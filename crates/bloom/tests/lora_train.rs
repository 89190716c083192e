//! LoRA: B = 0 equals the base model, gradients reach A and B, training lowers the loss on real
//! instruction rows, PEFT save/reload, merge, and resume after interruption.
mod common;

use std::ops::ControlFlow;

use alinea_bloom::{Bloom, LoraAdapter, LoraConfig, LoraTarget, TrainConfig, lr_factor, train};
use candle_core::{DType, Device, Tensor};

fn fixture_model() -> Bloom {
    Bloom::load(
        &common::shared("reference/tiny-bloom"),
        &Device::Cpu,
        DType::F32,
    )
    .unwrap()
}

fn flat(t: Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

fn batch() -> (Vec<Vec<u32>>, Vec<Vec<u8>>) {
    (
        vec![vec![5, 17, 300, 42, 999], vec![3, 3, 9, 10, 11]],
        vec![vec![1; 5], vec![0, 0, 1, 1, 1]],
    )
}

fn randomise_b(a: &LoraAdapter, seed: u64) {
    for (k, m) in a.modules().iter().enumerate() {
        let t = (Tensor::randn(0f32, 0.5, m.b.dims(), &Device::Cpu).unwrap()
            * (1.0 + (seed + k as u64) as f64 * 1e-3))
            .unwrap();
        m.b.set(&t).unwrap();
    }
}

#[test]
fn zero_b_equals_base_and_merge_equals_adapter() {
    let model = fixture_model();
    let (ids, mask) = batch();
    let all = LoraConfig {
        targets: LoraTarget::ALL.to_vec(),
        ..LoraConfig::default()
    };
    let adapter = LoraAdapter::new(model.config(), all, 3, &Device::Cpu).unwrap();
    let base = flat(model.logits(&ids, &mask, None).unwrap());
    let with = flat(model.logits(&ids, &mask, Some(&adapter)).unwrap());
    assert_eq!(base, with, "B = 0 must leave the model unchanged");

    randomise_b(&adapter, 1);
    let with = flat(model.logits(&ids, &mask, Some(&adapter)).unwrap());
    let moved = base
        .iter()
        .zip(&with)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        moved > 1e-2,
        "non-zero B must change the logits (moved {moved})"
    );
    let merged = flat(
        model
            .merged(&adapter)
            .unwrap()
            .logits(&ids, &mask, None)
            .unwrap(),
    );
    let d = merged
        .iter()
        .zip(&with)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(d < 1e-4, "merged weights differ from base + adapter by {d}");
}

#[test]
fn peft_adapter_round_trip() {
    let model = fixture_model();
    let adapter = LoraAdapter::new(model.config(), LoraConfig::default(), 5, &Device::Cpu).unwrap();
    randomise_b(&adapter, 2);
    let dir = tempfile::tempdir().unwrap();
    adapter.save(dir.path(), "tiny-bloom").unwrap();
    let cfg: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("adapter_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(cfg["peft_type"], "LORA");
    assert_eq!(cfg["r"], 8);
    assert_eq!(cfg["lora_alpha"], 32.0);
    assert_eq!(
        cfg["target_modules"],
        serde_json::json!(["query_key_value"])
    );
    let t =
        candle_core::safetensors::load(dir.path().join("adapter_model.safetensors"), &Device::Cpu)
            .unwrap();
    let mut keys: Vec<&String> = t.keys().collect();
    keys.sort();
    assert_eq!(keys.len(), 4);
    assert_eq!(
        keys[0],
        "base_model.model.transformer.h.0.self_attention.query_key_value.lora_A.weight"
    );
    assert_eq!(t[keys[0]].dims(), &[8, 64]);
    assert_eq!(t[keys[1]].dims(), &[192, 8]);

    let back = LoraAdapter::load(dir.path(), model.config(), &Device::Cpu).unwrap();
    let (ids, mask) = batch();
    assert_eq!(
        flat(model.logits(&ids, &mask, Some(&adapter)).unwrap()),
        flat(model.logits(&ids, &mask, Some(&back)).unwrap())
    );

    std::fs::remove_file(dir.path().join("adapter_model.safetensors")).unwrap();
    let e = LoraAdapter::load(dir.path(), model.config(), &Device::Cpu).unwrap_err();
    assert!(e.to_string().contains("adapter_model.safetensors"), "{e}");
}

#[test]
fn schedule_is_linear_warmup_then_decay() {
    // 100 steps, ratio 0.03: 3 warm-up steps, the first at lr 0 as in transformers.
    assert_eq!(lr_factor(0, 100, 0.03), 0.0);
    assert!((lr_factor(1, 100, 0.03) - 1.0 / 3.0).abs() < 1e-12);
    assert_eq!(lr_factor(3, 100, 0.03), 1.0);
    assert!((lr_factor(50, 100, 0.03) - 50.0 / 97.0).abs() < 1e-12);
    assert!((lr_factor(99, 100, 0.03) - 1.0 / 97.0).abs() < 1e-12);
}

fn small_cfg() -> TrainConfig {
    TrainConfig {
        epochs: 2,
        learning_rate: 1e-2,
        lora: LoraConfig {
            targets: LoraTarget::ALL.to_vec(),
            ..LoraConfig::default()
        },
        batch_size: 4,
        grad_accum: 2,
        warmup_ratio: 0.1,
        max_input_len: 48,
        max_output_len: 48,
        seed: 11,
        ..TrainConfig::default()
    }
}

fn adapter_bytes(a: &LoraAdapter) -> Vec<(String, Vec<f32>)> {
    let mut v: Vec<(String, Vec<f32>)> = a
        .peft_tensors()
        .unwrap()
        .into_iter()
        .map(|(k, t)| (k, flat(t)))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn training_lowers_loss_on_real_rows_and_reaches_every_lora_weight() {
    let rows = common::mt_instruct(&common::flores_pairs(12));
    let (_dir, model, tok) = common::tiny_model(&rows, 500);
    let ex = common::encode(&tok, &rows, 40);
    let cfg = TrainConfig {
        epochs: 3,
        grad_accum: 1,
        ..small_cfg()
    };
    let init = LoraAdapter::new(model.config(), cfg.lora.clone(), cfg.seed, &Device::Cpu).unwrap();
    let before = common::mean_loss(&model, None, &ex);
    let out = train(
        &model,
        std::slice::from_ref(&ex),
        &cfg,
        None,
        &mut |_, _| ControlFlow::Continue(()),
    )
    .unwrap();
    assert!(out.finished);
    assert_eq!(out.rows.len(), out.total_steps);
    assert_eq!(
        out.total_steps,
        3 * 6,
        "24 rows / batch 4 = 6 steps per epoch"
    );
    let after = common::mean_loss(&model, Some(&out.adapter), &ex);
    assert!(after < before - 0.3, "loss {before} -> {after}");
    // Gradients reach both factors of every module (A moves only once B is non-zero).
    for ((k, a0), (_, a1)) in adapter_bytes(&init)
        .iter()
        .zip(adapter_bytes(&out.adapter).iter())
    {
        let d = a0
            .iter()
            .zip(a1)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(d > 1e-4, "{k} did not move ({d})");
    }
    let first = out.rows.first().unwrap();
    assert_eq!((first.step, first.phase, first.lr), (1, 0, 0.0));
    assert!(
        out.rows
            .iter()
            .all(|r| r.loss.is_finite() && r.tokens_per_sec > 0.0)
    );
}

#[test]
fn resume_after_interruption_equals_uninterrupted_run() {
    let rows = common::mt_instruct(&common::flores_pairs(10));
    let (_dir, model, tok) = common::tiny_model(&rows, 500);
    let ex = common::encode(&tok, &rows, 32);
    // Two phases (a curriculum) so that resuming crosses a phase boundary.
    let phases = vec![ex[..12].to_vec(), ex[8..].to_vec()];
    let cfg = TrainConfig {
        checkpoint_every: 2,
        ..small_cfg()
    };
    let full = train(&model, &phases, &cfg, None, &mut |_, _| {
        ControlFlow::Continue(())
    })
    .unwrap();

    let ck = tempfile::tempdir().unwrap();
    let part = train(&model, &phases, &cfg, Some(ck.path()), &mut |r, _| {
        if r.step == 3 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .unwrap();
    assert!(!part.finished);
    assert_eq!(part.rows.len(), 3);
    let mut seen = Vec::new();
    let resumed = train(&model, &phases, &cfg, Some(ck.path()), &mut |r, _| {
        seen.push(r.step);
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(resumed.resumed_from, Some(3));
    assert_eq!(seen.first(), Some(&4), "resumed run must not redo steps");
    assert!(resumed.finished);
    assert_eq!(
        adapter_bytes(&resumed.adapter),
        adapter_bytes(&full.adapter)
    );
    let losses = |o: &alinea_bloom::TrainOutcome| {
        o.rows
            .iter()
            .map(|r| (r.step, r.phase, r.loss, r.lr))
            .collect::<Vec<_>>()
    };
    assert_eq!(losses(&resumed), losses(&full));
    // 12 examples per phase, batch 4, accumulation 2: 2 steps per epoch, 2 epochs, 2 phases.
    assert_eq!(full.total_steps, 8);
    assert_eq!(full.rows.iter().filter(|r| r.phase == 1).count(), 4);
    assert_eq!(full.rows[4].lr, 0.0, "each phase restarts its warm-up");

    // A killed process (here: a panic inside the callback at step 5, before any stop checkpoint)
    // resumes from the last periodic checkpoint, step 4, and still ends identical.
    let ck2 = tempfile::tempdir().unwrap();
    let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        train(&model, &phases, &cfg, Some(ck2.path()), &mut |r, _| {
            assert!(r.step < 5, "simulated kill");
            ControlFlow::Continue(())
        })
    }));
    assert!(killed.is_err());
    let again = train(&model, &phases, &cfg, Some(ck2.path()), &mut |_, _| {
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(again.resumed_from, Some(4));
    assert_eq!(adapter_bytes(&again.adapter), adapter_bytes(&full.adapter));

    // A different configuration refuses the checkpoint instead of silently mixing runs.
    let other = TrainConfig {
        learning_rate: 1e-3,
        ..cfg
    };
    let e = train(&model, &phases, &other, Some(ck.path()), &mut |_, _| {
        ControlFlow::Continue(())
    })
    .unwrap_err();
    assert!(
        matches!(e, alinea_bloom::BloomError::Checkpoint { .. }),
        "{e}"
    );
}

#[test]
fn bf16_weights_run_inference_and_training() {
    // The GPU path uses bf16 weights with f32 LoRA factors, LayerNorms and softmax; CPU bf16 checks
    // the dtype plumbing without a GPU.
    let dir = common::shared("reference/tiny-bloom");
    let f32m = fixture_model();
    let bf = Bloom::load(&dir, &Device::Cpu, DType::BF16).unwrap();
    let (ids, mask) = batch();
    let a = flat(f32m.logits(&ids, &mask, None).unwrap());
    let b = flat(bf.logits(&ids, &mask, None).unwrap());
    let d = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(d < 0.5, "bf16 logits differ from f32 by {d}");
    let ex = vec![
        alinea_bloom::Example {
            ids: vec![5, 17, 300, 42, 999, 7],
            n_input: 3,
        },
        alinea_bloom::Example {
            ids: vec![9, 10, 11, 12],
            n_input: 2,
        },
    ];
    let cfg = TrainConfig {
        epochs: 3,
        batch_size: 2,
        warmup_ratio: 0.0,
        ..small_cfg()
    };
    let out = train(
        &bf,
        &[ex],
        &cfg,
        None,
        &mut |_, _| ControlFlow::Continue(()),
    )
    .unwrap();
    assert!(out.rows.iter().all(|r| r.loss.is_finite()));
    assert!(
        out.rows.last().unwrap().loss < out.rows[0].loss,
        "{:?}",
        out.rows
    );
}
