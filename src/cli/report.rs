//! `report`: writes the documents of a `report` stage's last run (Markdown, CSV, HTML) to a folder.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;

use super::{Global, print_json};
use alinea_engine::store::ObjectKind;

/// Arguments of `report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Name of a `report` stage
    stage: String,
    /// Folder to write report.md, report.csv and report.html to (created if needed)
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
    /// Pipeline whose stage to read [default: the one run last]
    #[arg(long)]
    pipeline: Option<String>,
}

/// `alinea report`.
pub fn report(global: &Global, args: ReportArgs) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let record = store.resolve_stage(&args.stage, args.pipeline.as_deref())?;
    let blobs: Vec<_> = record
        .outputs
        .iter()
        .filter(|o| o.kind == ObjectKind::Blob)
        .collect();
    if blobs.is_empty() {
        bail!(
            "stage `{}` ({}) produced no documents; `alinea report` reads a stage of kind `report`",
            record.stage,
            record.components.kind
        );
    }
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let mut written = Vec::new();
    for out in blobs {
        // Output names are plain file names (`report.html`); refuse anything that could leave the folder.
        if out.name.is_empty() || out.name.contains(['/', '\\']) || out.name.starts_with('.') {
            bail!(
                "stage `{}` has an output named `{}`, which is not a plain file name",
                record.stage,
                out.name
            );
        }
        let bytes = store.get_bytes(&out.digest)?;
        let path = args.output.join(&out.name);
        alinea_engine::store::write_atomic(&path, &bytes)?;
        written.push(serde_json::json!({"path": path, "bytes": bytes.len(), "digest": out.digest}));
        if !global.json {
            eprintln!("wrote {} ({} bytes)", path.display(), bytes.len());
        }
    }
    if global.json {
        print_json(&serde_json::json!({"stage": record.stage, "files": written}))?;
    }
    Ok(ExitCode::SUCCESS)
}
