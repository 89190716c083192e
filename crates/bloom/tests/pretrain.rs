//! Full-parameter pretraining of a tiny random model on real MTInstruct rows (FLORES-200 dev): every weight
//! learns, the causal-LM loss on the rows falls far below the random model's, runs repeat byte for byte, and the
//! saved model reloads to the same loss.
mod common;

use std::ops::ControlFlow;

use alinea_bloom::{Bloom, Example, PretrainConfig, pretrain};
use candle_core::{DType, Device};

fn mean_loss(model: &Bloom, examples: &[Example]) -> f64 {
    let mut sum = 0.0;
    for e in examples {
        let labels: Vec<Option<u32>> = e
            .ids
            .iter()
            .enumerate()
            .map(|(i, &x)| (i >= e.n_input).then_some(x))
            .collect();
        let l = model
            .lm_loss(
                std::slice::from_ref(&e.ids),
                &[vec![1; e.ids.len()]],
                &[labels],
                None,
            )
            .unwrap();
        sum += l as f64;
    }
    sum / examples.len() as f64
}

#[test]
fn pretraining_trains_every_weight_lowers_the_loss_and_repeats_byte_for_byte() {
    let rows = common::mt_instruct(&common::flores_pairs(24));
    let (_dir, random, tok) = common::tiny_model(&rows, 400);
    let eos = Some(random.config().eos_token_id);
    let examples: Vec<Example> = rows
        .iter()
        .map(|(i, o)| Example::encode(&tok, i, o, 96, 96, eos).unwrap())
        .collect();
    let cfg = PretrainConfig {
        epochs: 6,
        learning_rate: 3e-3,
        batch_size: 8,
        max_len: 96,
        ..PretrainConfig::default()
    };
    let mut seen = Vec::new();
    let (trained, rows_out) = pretrain(&random, &examples, &cfg, &mut |r, total| {
        seen.push((r.step, total));
        ControlFlow::Continue(())
    })
    .unwrap();
    // 48 rows / batch 8 = 6 steps per epoch.
    assert_eq!(rows_out.len(), 36);
    assert_eq!(seen.last(), Some(&(36, 36)));
    let before = mean_loss(&random, &examples);
    let after = mean_loss(&trained, &examples);
    assert!(
        after < 0.7 * before,
        "pretraining lowers the loss on its rows: {before} -> {after}"
    );
    let (a, b) = (random.state_dict().unwrap(), trained.state_dict().unwrap());
    for (name, t) in &a {
        let diff = (t - &b[name])
            .unwrap()
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff > 0.0, "{name} did not change");
    }

    let (again, _) = pretrain(&random, &examples, &cfg, &mut |_, _| {
        ControlFlow::Continue(())
    })
    .unwrap();
    let bytes = |m: &Bloom| {
        let d = tempfile::tempdir().unwrap();
        m.save(d.path()).unwrap();
        std::fs::read(d.path().join("model.safetensors")).unwrap()
    };
    assert_eq!(bytes(&trained), bytes(&again), "same inputs, same weights");

    let dir = tempfile::tempdir().unwrap();
    trained.save(dir.path()).unwrap();
    let reloaded = Bloom::load(dir.path(), &Device::Cpu, DType::F32).unwrap();
    assert!((mean_loss(&reloaded, &examples) - after).abs() < 1e-6);
}

#[test]
fn bad_pretraining_parameters_are_named() {
    let rows = common::mt_instruct(&common::flores_pairs(4));
    let (_dir, random, _tok) = common::tiny_model(&rows, 300);
    for (cfg, name) in [
        (
            PretrainConfig {
                batch_size: 0,
                epochs: 1,
                ..Default::default()
            },
            "pretrain_batch_size",
        ),
        (
            PretrainConfig {
                max_len: 1,
                epochs: 1,
                ..Default::default()
            },
            "pretrain_max_len",
        ),
        (
            PretrainConfig {
                learning_rate: f64::NAN,
                epochs: 1,
                ..Default::default()
            },
            "pretrain_learning_rate",
        ),
    ] {
        let e = pretrain(&random, &[], &cfg, &mut |_, _| ControlFlow::Continue(())).unwrap_err();
        assert!(e.to_string().contains(name), "{e}");
    }
}
