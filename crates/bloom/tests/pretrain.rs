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

/// A tiny random model made from the MTInstruct rows of `pairs` FLORES-200 dev pairs, and those rows encoded
/// (96 tokens at most per side). The folder lives as long as the returned guard.
fn model_and_examples(pairs: usize) -> (tempfile::TempDir, Bloom, Vec<Example>) {
    let rows = common::mt_instruct(&common::flores_pairs(pairs));
    let (dir, random, tok) = common::tiny_model(&rows, 400);
    let eos = Some(random.config().eos_token_id);
    let examples = rows
        .iter()
        .map(|(i, o)| Example::encode(&tok, i, o, 96, 96, eos).unwrap())
        .collect();
    (dir, random, examples)
}

#[test]
fn pretraining_trains_every_weight_lowers_the_loss_and_repeats_byte_for_byte() {
    let (_dir, random, examples) = model_and_examples(24);
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

/// `pretrain` computes each batch as shards side by side and weights each shard's mean loss by its share of the
/// target tokens: the step's loss must be the whole batch's token mean, as one padded batch gives it. (Weighting
/// the shards equally would not match: their target counts differ.)
#[test]
fn a_batch_cut_into_shards_has_the_loss_of_the_whole_batch() {
    let (_dir, random, examples) = model_and_examples(6);
    let cfg = PretrainConfig {
        epochs: 1,
        batch_size: examples.len(),
        max_len: 96,
        ..PretrainConfig::default()
    };
    let (_, steps) =
        pretrain(&random, &examples, &cfg, &mut |_, _| ControlFlow::Break(())).unwrap();
    let t = examples.iter().map(|e| e.ids.len()).max().unwrap();
    let pad = random.config().pad_token_id;
    let (mut ids, mut mask, mut labels) = (vec![], vec![], vec![]);
    for e in &examples {
        let mut row = e.ids.clone();
        row.resize(t, pad);
        ids.push(row);
        mask.push((0..t).map(|i| u8::from(i < e.ids.len())).collect());
        labels.push(
            (0..t)
                .map(|i| (i >= e.n_input.max(1) && i < e.ids.len()).then(|| e.ids[i]))
                .collect::<Vec<_>>(),
        );
    }
    let whole = random.lm_loss(&ids, &mask, &labels, None).unwrap() as f64;
    let half = examples.len() / 2;
    let (first, second): (usize, usize) = (
        examples[..half]
            .iter()
            .map(|e| e.ids.len() - e.n_input.max(1))
            .sum(),
        examples[half..]
            .iter()
            .map(|e| e.ids.len() - e.n_input.max(1))
            .sum(),
    );
    assert_ne!(
        first, second,
        "the shards must differ in target tokens for this test to mean anything"
    );
    assert!(
        (steps[0].loss - whole).abs() < 1e-4 * whole,
        "sharded step loss {} vs whole-batch loss {whole}",
        steps[0].loss
    );
}
