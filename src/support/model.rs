//! Loading a BLOOM model folder for the stages that run one (`train.lora`, `generate`, `analysis.representations`).

use alinea_engine::{ColumnDecl, DType, FolderSlot, Optional, StageCtx, StageError, col};
use polars::prelude::{Column, DataFrame, PolarsResult};

/// The `model` input of the stages that run a model.
pub const MODEL: FolderSlot = FolderSlot::new("model", "BLOOM model folder or model.tiny stage");
/// The optional `adapter` input of the stages that run a model.
pub const ADAPTER: FolderSlot<Optional> =
    FolderSlot::new("adapter", "train.lora stage or PEFT adapter folder").optional();

/// A BLOOM error as a stage error.
pub fn bloom_err(e: alinea_bloom::BloomError) -> StageError {
    StageError::domain("", e)
}

/// Loads the model of a `model` folder input on the requested device, with the dtype `auto` picks.
pub fn load_model(
    ctx: &StageCtx,
    device: &str,
) -> Result<
    (
        alinea_bloom::Bloom,
        tokenizers::Tokenizer,
        candle_core::Device,
    ),
    StageError,
> {
    load_model_as(ctx, device, "auto")
}

/// Loads the model of a `model` folder input on `device` (`cpu`, `cuda`, `cuda:N`) with weights in `dtype`
/// (`auto`, `f32`, `bf16`, `f16`). A CUDA device that this build or machine lacks is an error, never the CPU.
pub fn load_model_as(
    ctx: &StageCtx,
    device: &str,
    dtype: &str,
) -> Result<
    (
        alinea_bloom::Bloom,
        tokenizers::Tokenizer,
        candle_core::Device,
    ),
    StageError,
> {
    let dir = ctx.folder(MODEL)?;
    let device = alinea_bloom::parse_device(device).map_err(bloom_err)?;
    let dtype = alinea_bloom::parse_dtype(dtype, &device).map_err(bloom_err)?;
    let model = alinea_bloom::Bloom::load(&dir, &device, dtype).map_err(bloom_err)?;
    let tokenizer = alinea_bloom::load_tokenizer(&dir).map_err(bloom_err)?;
    Ok((model, tokenizer, device))
}

/// Columns of a training loss table (`train.lora`'s and `model.tiny`'s `loss` output).
pub const LOSS_COLUMNS: &[ColumnDecl] = &[
    col("step", DType::U64),
    col("epoch", DType::F64),
    col("phase", DType::U32),
    col("loss", DType::F64),
    col("learning_rate", DType::F64),
    col("val_loss", DType::F64),
];

/// A loss curve as a table of [`LOSS_COLUMNS`] (phases numbered from 1).
pub fn loss_frame(rows: &[alinea_bloom::LossRow]) -> PolarsResult<DataFrame> {
    DataFrame::new_infer_height(vec![
        Column::new(
            "step".into(),
            rows.iter().map(|r| r.step as u64).collect::<Vec<_>>(),
        ),
        Column::new(
            "epoch".into(),
            rows.iter().map(|r| r.epoch).collect::<Vec<_>>(),
        ),
        Column::new(
            "phase".into(),
            rows.iter().map(|r| r.phase as u32 + 1).collect::<Vec<_>>(),
        ),
        Column::new(
            "loss".into(),
            rows.iter().map(|r| r.loss).collect::<Vec<_>>(),
        ),
        Column::new(
            "learning_rate".into(),
            rows.iter().map(|r| r.lr).collect::<Vec<_>>(),
        ),
        Column::new(
            "val_loss".into(),
            rows.iter().map(|r| r.val_loss).collect::<Vec<_>>(),
        ),
    ])
}
