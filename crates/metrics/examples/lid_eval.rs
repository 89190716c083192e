//! Trains the language identifier on Flores-200 dev and prints accuracy per language on devtest.
//! usage: cargo run --release -p alinea-metrics --example lid_eval [FLORES_DIR] [max_order top_k alpha]

use std::time::Instant;

use alinea_metrics::{LidConfig, LidModel, read_lines};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let root = args.get(1).cloned().unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/datasets/flores200/flores200_dataset"
        )
        .to_string()
    });
    let mut cfg = LidConfig::default();
    if args.len() >= 5 {
        cfg = LidConfig {
            max_order: args[2].parse()?,
            top_k: args[3].parse()?,
            alpha: args[4].parse()?,
        };
    }
    let t = Instant::now();
    let model = LidModel::train_flores_dir(format!("{root}/dev"), None, &cfg)?;
    let train_s = t.elapsed().as_secs_f64();
    let json = serde_json::to_string(&model)?;
    let mut test = Vec::new();
    for l in &model.languages {
        test.push((
            l.clone(),
            read_lines(format!("{root}/devtest/{l}.devtest"))?,
        ));
    }
    let t = Instant::now();
    let acc = model.evaluate(&test);
    let eval_s = t.elapsed().as_secs_f64();
    let (mut ok, mut n) = (0, 0);
    println!("| language | correct | lines | accuracy |\n|---|---:|---:|---:|");
    for (l, (c, t)) in &acc {
        ok += c;
        n += t;
        println!(
            "| {l} | {c} | {t} | {:.2}% |",
            100.0 * *c as f64 / *t as f64
        );
    }
    println!(
        "| **all** | {ok} | {n} | {:.2}% |",
        100.0 * ok as f64 / n as f64
    );
    println!(
        "config {:?}: {} features, model JSON {:.2} MB, train {train_s:.2}s, identify {:.0} lines/s",
        cfg,
        model.features.len(),
        json.len() as f64 / 1e6,
        n as f64 / eval_s
    );
    Ok(())
}
