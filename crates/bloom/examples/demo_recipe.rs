//! Recipe search for the demo's tiny model: pretrains a random BLOOM on MTInstruct-formatted OPUS-100 pairs
//! (the demo's data), optionally trains a LoRA adapter on top, and writes greedy translations of the OPUS-100
//! test sets for sacrebleu. Settings come from the environment (`N`, `VOCAB`, `HIDDEN`, `LAYERS`, `HEADS`,
//! `EPOCHS`, `LR`, `BS`, `MAXLEN`, `STD`, `OBJ` = all|output, `TEST`, `LORA_EPOCHS`, `LORA_LR`, `MAXNEW`, `NOREP`, `OUT`).
//!
//! `cargo run --release -p alinea-bloom --example demo_recipe` from the repository root; then
//! `sacrebleu OUT/ref.<dir> -i OUT/hyp.<dir> -m chrf --chrf-word-order 2`.

use std::ops::ControlFlow;
use std::time::Instant;

use alinea_bloom::*;
use candle_core::Device;

fn env<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn lines(p: &str, n: usize) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{p}: {e}"))
        .lines()
        .take(n)
        .map(str::to_string)
        .collect()
}

fn prompt(y_name: &str, x_name: &str, y: &str) -> String {
    format!("Translate from {y_name} to {x_name}.\n{y_name}: {y}\n{x_name}:")
}

fn main() -> Result<()> {
    let n = env("N", 600usize);
    let test = env("TEST", 100usize);
    let out = std::path::PathBuf::from(env("OUT", "/tmp/demo_recipe".to_string()));
    std::fs::create_dir_all(&out).expect("out dir");
    let root = "datasets/opus-100/supervised";
    let corpora = [
        ("be", "Belarusian", format!("{root}/be-en/opus.be-en")),
        ("li", "Limburgish", format!("{root}/en-li/opus.en-li")),
    ];
    let mut texts = Vec::new();
    let mut pairs = Vec::new(); // (src name, tgt name, src, tgt)
    let mut tests = Vec::new();
    for (code, name, base) in &corpora {
        let x = lines(&format!("{base}-train.{code}"), n);
        let e = lines(&format!("{base}-train.en"), n);
        for (a, b) in x.iter().zip(&e) {
            if a.trim().is_empty() || b.trim().is_empty() {
                continue;
            }
            texts.push(a.clone());
            texts.push(b.clone());
            pairs.push(("English", *name, b.clone(), a.clone()));
            pairs.push((*name, "English", a.clone(), b.clone()));
        }
        let x = lines(&format!("{base}-test.{code}"), test);
        let e = lines(&format!("{base}-test.en"), test);
        tests.push((format!("en-{code}"), "English", *name, e.clone(), x.clone()));
        tests.push((format!("{code}-en"), *name, "English", x, e));
    }
    let tk = train_tokenizer(&texts, env("VOCAB", 1000usize))?;
    let config = BloomConfig {
        hidden_size: env("HIDDEN", 64usize),
        n_layer: env("LAYERS", 2usize),
        n_head: env("HEADS", 4usize),
        ..tiny_config(tk.get_vocab_size(true))
    };
    let model = Bloom::random(config, 0, env("STD", 0.02f64), &Device::Cpu)?;
    let eos = model.config().eos_token_id;
    let output_only = env("OBJ", "output".to_string()) == "output";
    let examples: Vec<Example> = pairs
        .iter()
        .map(|(yn, xn, y, x)| {
            let mut e = Example::encode(
                &tk,
                &prompt(yn, xn, y),
                &format!(" {x}"),
                256,
                128,
                Some(eos),
            )?;
            if !output_only {
                e.n_input = 1;
            }
            Ok(e)
        })
        .collect::<Result<_>>()?;
    let cfg = PretrainConfig {
        epochs: env("EPOCHS", 3usize),
        learning_rate: env("LR", 3e-3f64),
        batch_size: env("BS", 16usize),
        max_len: env("MAXLEN", 96usize),
        ..PretrainConfig::default()
    };
    let t0 = Instant::now();
    let (model, rows) = pretrain(&model, &examples, &cfg, &mut |r, total| {
        if r.step % 20 == 0 || r.step == total {
            eprintln!(
                "step {}/{total} loss {:.3} {:.0} tok/s {:.0}s",
                r.step,
                r.loss,
                r.tokens_per_sec,
                t0.elapsed().as_secs_f64()
            );
        }
        ControlFlow::Continue(())
    })?;
    eprintln!(
        "pretrain: {} steps, {:.1}s, vocab {}",
        rows.len(),
        t0.elapsed().as_secs_f64(),
        model.config().vocab_size
    );
    let lora_epochs = env("LORA_EPOCHS", 0usize);
    let adapter = if lora_epochs > 0 {
        let tcfg = TrainConfig {
            epochs: lora_epochs,
            learning_rate: env("LORA_LR", 0.01f64),
            batch_size: 16,
            ..TrainConfig::default()
        };
        let t1 = Instant::now();
        let o = train(
            &model,
            std::slice::from_ref(&examples),
            &tcfg,
            None,
            &mut |_, _| ControlFlow::Continue(()),
        )?;
        eprintln!(
            "lora: {} steps {:.1}s last loss {:.3}",
            o.rows.len(),
            t1.elapsed().as_secs_f64(),
            o.rows.last().map(|r| r.loss).unwrap_or(0.0)
        );
        Some(o.adapter)
    } else {
        None
    };
    let gcfg = GenerateConfig {
        max_new_tokens: env("MAXNEW", 48usize),
        batch_size: 16,
        max_input_len: 256,
        no_repeat_ngram_size: env("NOREP", 3usize),
    };
    let t2 = Instant::now();
    let stops = stop_token_ids(&model, &tk);
    for (dir, yn, xn, src, refs) in &tests {
        let prompts: Vec<String> = src.iter().map(|s| prompt(yn, xn, s)).collect();
        let hyps =
            generate_text_with_stops(&model, adapter.as_ref(), &tk, &prompts, &stops, &gcfg)?;
        let w = |name: &str, v: &[String]| {
            std::fs::write(out.join(format!("{name}.{dir}")), v.join("\n") + "\n").expect("write")
        };
        w("hyp", &hyps);
        w("ref", refs);
        w("src", src);
        w("empty", &vec![String::new(); refs.len()]);
        eprintln!(
            "{dir}: empty {}/{}  e.g. {:?}",
            hyps.iter().filter(|h| h.is_empty()).count(),
            hyps.len(),
            &hyps[..3.min(hyps.len())]
        );
    }
    eprintln!("generate: {:.1}s", t2.elapsed().as_secs_f64());
    Ok(())
}
