//! Loading a BLOOM model folder for the stages that run one (`train.lora`, `generate`, `analysis.representations`).

use alinea_engine::{StageCtx, StageError};

/// A BLOOM error as a stage error.
pub fn bloom_err(e: alinea_bloom::BloomError) -> StageError {
    StageError::domain("", e)
}

/// Loads the model of a `model` folder input on the requested device.
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
    let dir = ctx.folder("model")?;
    let device = alinea_bloom::parse_device(device).map_err(bloom_err)?;
    let model = alinea_bloom::Bloom::load(&dir, &device, alinea_bloom::default_dtype(&device))
        .map_err(bloom_err)?;
    let tokenizer = alinea_bloom::load_tokenizer(&dir).map_err(bloom_err)?;
    Ok((model, tokenizer, device))
}
