//! Loading a BLOOM model folder for the stages that run one (`train.lora`, `generate`, `analysis.representations`).

use alinea_engine::{FolderSlot, Optional, StageCtx, StageError};

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
