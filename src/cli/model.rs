//! `alinea model info`: parameter counts of BLOOM configurations with a LoRA adapter.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use super::{Global, print_json};

/// Arguments of `model`.
#[derive(Debug, Args)]
pub struct ModelArgs {
    #[command(subcommand)]
    command: ModelCommand,
}

#[derive(Debug, Subcommand)]
enum ModelCommand {
    /// Total and trainable parameters of a BLOOM model with LoRA
    Info(InfoArgs),
}

#[derive(Debug, Args)]
struct InfoArgs {
    /// A built-in preset holding a public BLOOMZ config: bloomz-560m, bloomz-1b1, bloomz-3b, bloomz-7b1
    #[arg(long, conflicts_with = "config")]
    preset: Option<String>,
    /// A Hugging Face config.json instead of a preset
    #[arg(long)]
    config: Option<PathBuf>,
    /// LoRA rank
    #[arg(long, default_value_t = 8)]
    lora_rank: usize,
    /// LoRA target modules (PEFT names), comma-separated
    #[arg(long, default_value = "query_key_value", value_delimiter = ',')]
    lora_targets: Vec<String>,
}

/// `alinea model …`.
pub fn model(global: &Global, args: ModelArgs) -> anyhow::Result<ExitCode> {
    let ModelCommand::Info(info) = args.command;
    let config = match (&info.preset, &info.config) {
        (Some(p), None) => alinea_bloom::BloomConfig::preset(p)?,
        (None, Some(path)) => alinea_bloom::BloomConfig::from_file(path)
            .with_context(|| format!("reading {}", path.display()))?,
        _ => bail!("give --preset NAME or --config config.json"),
    };
    let targets = info
        .lora_targets
        .iter()
        .map(|t| alinea_bloom::LoraTarget::parse(t.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    let lora = alinea_bloom::LoraConfig {
        rank: info.lora_rank,
        targets,
        ..alinea_bloom::LoraConfig::default()
    }
    .validated()?;
    let count = alinea_bloom::count_params(&config, &lora);
    if global.json {
        print_json(&serde_json::json!({
            "total_params": count.total_params,
            "trainable_params": count.trainable_params,
            "base_params": count.base_params,
            "trainable_percent": 100.0 * count.trainable_params as f64 / count.total_params as f64,
        }))?;
    } else {
        outln!(
            "trainable params: {} || all params: {} || trainable%: {:.4}",
            count.trainable_params,
            count.total_params,
            100.0 * count.trainable_params as f64 / count.total_params as f64
        );
    }
    Ok(ExitCode::SUCCESS)
}
