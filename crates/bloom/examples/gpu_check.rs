//! alinea's side of `scripts/gpu-check.sh`: the same models, data and batches as `scripts/gpu_check_ref.py` runs
//! through transformers + PEFT, on any device (`--device cpu|cuda|cuda:N`).
//!
//! ```text
//! gpu_check prepare    --flores DIR --out DIR [--pairs 240] [--vocab 4000]   tokenizer.json + examples.json
//! gpu_check logits     --model DIR --ids FILE --dtype f32|bf16 --device D --out FILE.safetensors
//! gpu_check curve      --model DIR --examples FILE --steps 50 --batch 8 --lr 5e-4 --device D --out DIR
//! gpu_check train-speed --model DIR --examples FILE --batch 8 --seq 512 --steps 12 --dtype bf16 --device D --out FILE
//! gpu_check gen-speed  --model DIR --examples FILE --batch 16 --prompt-len 32 --new 64 --dtype bf16 --device D --out FILE
//! ```
//!
//! Every command writes one small JSON (or safetensors) file that the reference script reads for the table. The
//! speed commands build their rows from the token stream of examples.json (all examples' ids concatenated, cut into
//! rows of the requested length), which the reference script rebuilds the same way.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use alinea_bloom::{
    Bloom, Example, GenerateConfig, LoraAdapter, LoraConfig, LoraTarget, TrainConfig, generate_ids,
    parse_device, parse_dtype, step_batches, train, train_tokenizer,
};
use serde_json::json;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// `--key value` pairs after the subcommand.
struct Args(HashMap<String, String>);

impl Args {
    fn parse(rest: &[String]) -> Res<Self> {
        let mut m = HashMap::new();
        let mut it = rest.iter();
        while let Some(k) = it.next() {
            let key = k
                .strip_prefix("--")
                .ok_or_else(|| format!("expected --key, got `{k}`"))?;
            let v = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
            m.insert(key.to_string(), v.clone());
        }
        Ok(Args(m))
    }
    fn str(&self, k: &str) -> Res<&str> {
        Ok(self
            .0
            .get(k)
            .ok_or_else(|| format!("missing --{k}"))?
            .as_str())
    }
    fn or<'a>(&'a self, k: &str, default: &'a str) -> &'a str {
        self.0.get(k).map(String::as_str).unwrap_or(default)
    }
    fn path(&self, k: &str) -> Res<PathBuf> {
        Ok(PathBuf::from(self.str(k)?))
    }
    fn num<T: std::str::FromStr>(&self, k: &str, default: &str) -> Res<T> {
        let v = self.or(k, default);
        v.parse()
            .map_err(|_| format!("--{k} {v}: expected a number").into())
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = argv.first() else {
        eprintln!("usage: gpu_check prepare|logits|curve|train-speed|gen-speed --key value ...");
        std::process::exit(2);
    };
    let result = Args::parse(&argv[1..]).and_then(|a| match cmd.as_str() {
        "prepare" => prepare(&a),
        "logits" => logits(&a),
        "curve" => curve(&a),
        "train-speed" => train_speed(&a),
        "gen-speed" => gen_speed(&a),
        other => Err(format!("unknown command `{other}`").into()),
    });
    if let Err(e) = result {
        eprintln!("gpu_check {cmd}: {e}");
        std::process::exit(1);
    }
}

fn write_json(path: &Path, v: &serde_json::Value) -> Res<()> {
    std::fs::write(path, serde_json::to_string_pretty(v)?)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(())
}

fn read_examples(path: &Path) -> Res<Vec<Example>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?)
}

/// Peak resident memory of this process (VmHWM), in MiB; the CPU-side figure of the speed rows.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// MTInstruct rows (both directions) of the first `pairs` Flores-200 dev sentences, a byte-level BPE trained on
/// them, and the tokenised examples (inputs and outputs up to 128 tokens, EOS appended).
fn prepare(a: &Args) -> Res<()> {
    let flores = a.path("flores")?;
    let out = a.path("out")?;
    let pairs: usize = a.num("pairs", "240")?;
    let vocab: usize = a.num("vocab", "4000")?;
    let read = |code: &str| -> Res<Vec<String>> {
        let p = flores.join(format!("{code}.dev"));
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(text.lines().take(pairs).map(String::from).collect())
    };
    let (en, af) = (read("eng_Latn")?, read("afr_Latn")?);
    let mut rows = Vec::new();
    for (e, f) in en.iter().zip(&af) {
        rows.push((
            format!("Translate from English to Afrikaans.\nEnglish: {e}\nAfrikaans:"),
            format!(" {f}"),
        ));
        rows.push((
            format!("Translate from Afrikaans to English.\nAfrikaans: {f}\nEnglish:"),
            format!(" {e}"),
        ));
    }
    let texts: Vec<String> = rows.iter().map(|(i, o)| format!("{i}{o}")).collect();
    let tok = train_tokenizer(&texts, vocab)?;
    std::fs::create_dir_all(&out)?;
    tok.save(out.join("tokenizer.json"), false)
        .map_err(|e| format!("tokenizer.json: {e}"))?;
    let examples: Vec<Example> = rows
        .iter()
        .map(|(i, o)| Example::encode(&tok, i, o, 128, 128, Some(2)))
        .collect::<alinea_bloom::Result<_>>()?;
    write_json(
        &out.join("examples.json"),
        &serde_json::to_value(&examples)?,
    )?;
    println!(
        "prepared {} examples, vocab {}",
        examples.len(),
        tok.get_vocab_size(true)
    );
    Ok(())
}

fn load(a: &Args) -> Res<Bloom> {
    let device = parse_device(a.or("device", "cpu"))?;
    let dtype = parse_dtype(a.or("dtype", "f32"), &device)?;
    Ok(Bloom::load(&a.path("model")?, &device, dtype)?)
}

/// Evaluation logits of a full-mask batch, saved as f32 `logits` `[B, T, vocab]`.
fn logits(a: &Args) -> Res<()> {
    let model = load(a)?;
    let ids_path = a.path("ids")?;
    let ids: Vec<Vec<u32>> = serde_json::from_str(&std::fs::read_to_string(&ids_path)?)?;
    let mask: Vec<Vec<u8>> = ids.iter().map(|r| vec![1; r.len()]).collect();
    let t0 = Instant::now();
    let lo = model
        .logits(&ids, &mask, None)?
        .to_device(&candle_core::Device::Cpu)?;
    let secs = t0.elapsed().as_secs_f64();
    candle_core::safetensors::save(&HashMap::from([("logits".to_string(), lo)]), a.path("out")?)?;
    println!("logits {:?} in {secs:.2}s", model.dtype());
    Ok(())
}

/// The LoRA r 8 / alpha 32 / query_key_value configuration of the paper, without dropout (dropout masks are
/// framework-specific random numbers; the curve is compared deterministically).
fn curve_config(a: &Args) -> Res<TrainConfig> {
    Ok(TrainConfig {
        lora: LoraConfig {
            rank: 8,
            alpha: 32.0,
            dropout: 0.0,
            targets: vec![LoraTarget::QueryKeyValue],
        },
        epochs: 1,
        learning_rate: a.num("lr", "5e-4")?,
        batch_size: a.num("batch", "8")?,
        grad_accum: 1,
        warmup_ratio: 0.03,
        weight_decay: 0.0,
        max_grad_norm: 1.0,
        max_input_len: 128,
        max_output_len: 128,
        seed: 42,
        group_by_length: true,
        checkpoint_every: 0,
        ..TrainConfig::default()
    })
}

/// Trains `steps` optimiser steps and writes the batch plan, the initial adapter (PEFT format, for PEFT to start
/// from the same weights), the loss curve, and how far every LoRA tensor moved (zero = no gradient reached it).
fn curve(a: &Args) -> Res<()> {
    let model = load(a)?;
    let out = a.path("out")?;
    std::fs::create_dir_all(&out)?;
    let steps: usize = a.num("steps", "50")?;
    let cfg = curve_config(a)?;
    let mut examples = read_examples(&a.path("examples")?)?;
    examples.truncate(steps * cfg.batch_size);
    if examples.len() < steps * cfg.batch_size {
        return Err(format!(
            "{} examples, {steps} steps x batch {} need more",
            examples.len(),
            cfg.batch_size
        )
        .into());
    }
    let phases = vec![examples];
    let plan: Vec<Vec<usize>> = step_batches(&phases, &cfg)
        .into_iter()
        .map(|(_, micro)| micro.concat())
        .collect();
    let init = LoraAdapter::new(model.config(), cfg.lora.clone(), cfg.seed, model.device())?;
    init.save(&out.join("init_adapter"), "random-bloom")?;
    let before = init.peft_tensors()?;
    let t0 = Instant::now();
    let outcome = train(&model, &phases, &cfg, None, &mut |_, _| {
        ControlFlow::Continue(())
    })?;
    let secs = t0.elapsed().as_secs_f64();
    let after = outcome.adapter.peft_tensors()?;
    let mut moved = Vec::new();
    for (name, b) in &before {
        let d = (after[name].to_device(&candle_core::Device::Cpu)?
            - b.to_device(&candle_core::Device::Cpu)?)?
        .abs()?
        .max_all()?
        .to_scalar::<f32>()?;
        moved.push(json!({"tensor": name, "max_abs_change": d}));
    }
    moved.sort_by(|x, y| x["tensor"].as_str().cmp(&y["tensor"].as_str()));
    let losses: Vec<f64> = outcome.rows.iter().map(|r| r.loss).collect();
    let lrs: Vec<f64> = outcome.rows.iter().map(|r| r.lr).collect();
    write_json(
        &out.join("alinea_curve.json"),
        &json!({
            "device": format!("{:?}", model.device()), "dtype": format!("{:?}", model.dtype()),
            "plan": plan, "loss": losses, "lr": lrs, "seconds": secs, "moved": moved,
            "config": {"lr": cfg.learning_rate, "batch": cfg.batch_size, "warmup_ratio": cfg.warmup_ratio,
                       "max_grad_norm": cfg.max_grad_norm, "rank": 8, "alpha": 32.0, "dropout": 0.0},
        }),
    )?;
    println!(
        "curve: {} steps in {secs:.1}s, loss {:.4} -> {:.4}",
        losses.len(),
        losses.first().copied().unwrap_or(f64::NAN),
        losses.last().copied().unwrap_or(f64::NAN)
    );
    Ok(())
}

/// All examples' ids concatenated, cut into `n` rows of `len` tokens (cycling through the stream).
fn stream_rows(examples: &[Example], n: usize, len: usize) -> Vec<Vec<u32>> {
    let stream: Vec<u32> = examples
        .iter()
        .flat_map(|e| e.ids.iter().copied())
        .collect();
    (0..n)
        .map(|i| {
            (0..len)
                .map(|j| stream[(i * len + j) % stream.len()])
                .collect()
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

/// Training throughput of `train` (the function `train.lora` runs) at a fixed batch and sequence length: rows of
/// `seq` tokens whose second half is the output, the paper's LoRA (r 8, alpha 32, dropout 0.1, query_key_value).
/// The first two steps (allocation, kernel loading) are left out of the median.
fn train_speed(a: &Args) -> Res<()> {
    let model = load(a)?;
    let batch: usize = a.num("batch", "8")?;
    let seq: usize = a.num("seq", "512")?;
    let steps: usize = a.num("steps", "12")?;
    let examples = read_examples(&a.path("examples")?)?;
    let rows: Vec<Example> = stream_rows(&examples, batch * steps, seq)
        .into_iter()
        .map(|ids| Example {
            ids,
            n_input: seq / 2,
        })
        .collect();
    let cfg = TrainConfig {
        epochs: 1,
        batch_size: batch,
        max_input_len: seq,
        max_output_len: seq,
        group_by_length: false,
        ..TrainConfig::default()
    };
    let t0 = Instant::now();
    let outcome = train(&model, &[rows], &cfg, None, &mut |_, _| {
        ControlFlow::Continue(())
    })?;
    let secs = t0.elapsed().as_secs_f64();
    let rates: Vec<f64> = outcome
        .rows
        .iter()
        .skip(2)
        .map(|r| r.tokens_per_sec)
        .collect();
    write_json(
        &a.path("out")?,
        &json!({
            "impl": "alinea", "device": format!("{:?}", model.device()), "dtype": format!("{:?}", model.dtype()),
            "batch": batch, "seq": seq, "steps": outcome.rows.len(), "tokens_per_sec": median(rates),
            "seconds": secs, "peak_rss_mib": peak_rss_mib(),
            "losses": outcome.rows.iter().map(|r| r.loss).collect::<Vec<_>>(),
        }),
    )?;
    println!("train-speed: {secs:.1}s");
    Ok(())
}

/// Greedy generation throughput (KV cache, no stop token: every row yields exactly `new` tokens), timed after
/// one warm-up batch.
fn gen_speed(a: &Args) -> Res<()> {
    let model = load(a)?;
    let batch: usize = a.num("batch", "16")?;
    let plen: usize = a.num("prompt-len", "32")?;
    let new: usize = a.num("new", "64")?;
    let examples = read_examples(&a.path("examples")?)?;
    let prompts = stream_rows(&examples, batch, plen);
    let cfg = GenerateConfig {
        max_new_tokens: new,
        batch_size: batch,
        max_input_len: plen,
        no_repeat_ngram_size: 0,
    };
    generate_ids(
        &model,
        None,
        &prompts,
        &Default::default(),
        &GenerateConfig {
            max_new_tokens: 4,
            ..cfg.clone()
        },
    )?;
    let t0 = Instant::now();
    let out = generate_ids(&model, None, &prompts, &Default::default(), &cfg)?;
    let secs = t0.elapsed().as_secs_f64();
    let produced: usize = out.iter().map(Vec::len).sum();
    write_json(
        &a.path("out")?,
        &json!({
            "impl": "alinea", "device": format!("{:?}", model.device()), "dtype": format!("{:?}", model.dtype()),
            "batch": batch, "prompt_len": plen, "new_tokens": new, "produced": produced,
            "tokens_per_sec": produced as f64 / secs, "seconds": secs, "peak_rss_mib": peak_rss_mib(),
            "first_row": out.first().cloned().unwrap_or_default(),
        }),
    )?;
    println!("gen-speed: {produced} tokens in {secs:.2}s");
    Ok(())
}
