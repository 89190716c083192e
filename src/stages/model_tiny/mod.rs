//! `model.tiny`: a tiny BLOOM-architecture model with its own byte-level BPE tokenizer, made offline from the
//! pipeline's own text, so the demo trains and generates with no model download.

use serde::{Deserialize, Serialize};

use alinea_engine::{
    DType, InputSlot, OutputSlot, Outputs, ParamError, Stage, StageCtx, StageError, Stats,
    TableSlot, col,
};

/// Parameters of `model.tiny`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Upper bound of the tokenizer's vocabulary (bytes and 4 special tokens included).
    pub vocab_size: usize,
    /// Hidden size.
    pub hidden_size: usize,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Attention heads.
    pub n_head: usize,
    /// Seed of the random weights.
    pub seed: u64,
    /// Standard deviation of the random weights.
    pub init_std: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            vocab_size: 1000,
            hidden_size: 64,
            n_layer: 2,
            n_head: 4,
            seed: 0,
            init_std: 0.25,
        }
    }
}

const TEXTS: TableSlot = TableSlot::new(
    "texts",
    "a pairs table (its src and tgt train the tokenizer)",
)
.requires(&[col("src", DType::Str), col("tgt", DType::Str)]);

/// The stage kind.
pub struct ModelTiny;

impl Stage for ModelTiny {
    const KIND: &'static str = "model.tiny";
    const PLACEMENT: alinea_engine::Placement = alinea_engine::Placement::Local;
    const SUMMARY: &'static str =
        "make a tiny random BLOOM model + BPE tokenizer from the pipeline's text (offline demo)";
    const DOC: &'static str = "\
Makes a complete Hugging Face model folder for a tiny BLOOM-architecture model: a byte-level BPE tokenizer
(BLOOM's kind) trained on the `src` and `tgt` columns of a pairs table, and random weights drawn from `seed`.
Same inputs, same bytes. Real runs point `train.lora`/`generate` at a local BLOOMZ folder instead.";
    type Params = Params;
    const INPUTS: &'static [InputSlot] = &[TEXTS.slot()];
    const OUTPUTS: &'static [OutputSlot] = &[
        OutputSlot::blob("config.json", "the BLOOM configuration"),
        OutputSlot::blob("model.safetensors", "the random weights"),
        OutputSlot::blob("tokenizer.json", "the byte-level BPE tokenizer"),
    ];

    fn validate(p: &Params) -> Result<(), ParamError> {
        if p.n_head == 0 || !p.hidden_size.is_multiple_of(p.n_head) {
            return Err(ParamError::new(
                "n_head",
                format!(
                    "hidden_size ({}) must be a positive multiple of n_head ({})",
                    p.hidden_size, p.n_head
                ),
            ));
        }
        Ok(())
    }

    fn run(p: &Params, ctx: &StageCtx) -> Result<Outputs, StageError> {
        let df = ctx.table(TEXTS)?;
        let mut texts = Vec::with_capacity(df.height() * 2);
        for col in ["src", "tgt"] {
            texts.extend(
                df.column(col)?
                    .str()?
                    .iter()
                    .map(|s| s.unwrap_or("").to_string()),
            );
        }
        let config = alinea_bloom::BloomConfig {
            hidden_size: p.hidden_size,
            n_layer: p.n_layer,
            n_head: p.n_head,
            ..alinea_bloom::tiny_config(p.vocab_size)
        };
        let dir = ctx.work_dir()?.join("model");
        std::fs::create_dir_all(&dir).map_err(StageError::io(&dir))?;
        alinea_bloom::write_tiny_model(&dir, &texts, p.vocab_size, config, p.seed, p.init_std)
            .map_err(StageError::with(""))?;
        let mut outputs = Outputs {
            stats: Stats {
                rows_in: texts.len() as u64,
                ..Stats::default()
            },
            ..Outputs::default()
        };
        for name in ["config.json", "model.safetensors", "tokenizer.json"] {
            outputs.blob_file(name, dir.join(name));
        }
        Ok(outputs)
    }
}
