//! LoRA adapters on BLOOM's linear layers, saved and loaded in PEFT's format.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::config::BloomConfig;
use crate::error::{BloomError, Result, io_err, read_json, write_atomic};
use crate::rng::SplitMix64;

/// A linear layer of a BLOOM block that LoRA can target (PEFT `target_modules` names).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
pub enum LoraTarget {
    /// `self_attention.query_key_value` (the paper's only target).
    #[serde(rename = "query_key_value")]
    QueryKeyValue = 0,
    /// `self_attention.dense`.
    #[serde(rename = "dense")]
    Dense = 1,
    /// `mlp.dense_h_to_4h`.
    #[serde(rename = "dense_h_to_4h")]
    DenseHTo4h = 2,
    /// `mlp.dense_4h_to_h`.
    #[serde(rename = "dense_4h_to_h")]
    Dense4hToH = 3,
}

impl LoraTarget {
    /// All targetable layers, in block order.
    pub const ALL: [LoraTarget; 4] = [
        LoraTarget::QueryKeyValue,
        LoraTarget::Dense,
        LoraTarget::DenseHTo4h,
        LoraTarget::Dense4hToH,
    ];

    /// PEFT module name (`query_key_value`, ...).
    pub fn name(self) -> &'static str {
        match self {
            LoraTarget::QueryKeyValue => "query_key_value",
            LoraTarget::Dense => "dense",
            LoraTarget::DenseHTo4h => "dense_h_to_4h",
            LoraTarget::Dense4hToH => "dense_4h_to_h",
        }
    }

    /// Path of the layer inside a block (`self_attention.query_key_value`, ...).
    pub fn module_path(self) -> &'static str {
        match self {
            LoraTarget::QueryKeyValue => "self_attention.query_key_value",
            LoraTarget::Dense => "self_attention.dense",
            LoraTarget::DenseHTo4h => "mlp.dense_h_to_4h",
            LoraTarget::Dense4hToH => "mlp.dense_4h_to_h",
        }
    }

    /// Parses a PEFT module name.
    pub fn parse(name: &str) -> Result<Self> {
        LoraTarget::ALL.into_iter().find(|t| t.name() == name).ok_or_else(|| BloomError::Param {
            name: "lora_targets".into(),
            msg: format!("unknown module `{name}` (known: query_key_value, dense, dense_h_to_4h, dense_4h_to_h)"),
        })
    }
}

/// LoRA hyper-parameters (defaults: the paper's rank 8, alpha 32, dropout 0.1 on `query_key_value`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct LoraConfig {
    /// LoRA rank r.
    #[serde(rename = "lora_rank")]
    pub rank: usize,
    /// LoRA alpha; the update is scaled by alpha / r.
    #[serde(rename = "lora_alpha")]
    pub alpha: f64,
    /// LoRA dropout: probability on the adapter's input during training.
    #[serde(rename = "lora_dropout")]
    pub dropout: f64,
    /// Targeted linear layers (PEFT names).
    #[serde(rename = "lora_targets")]
    pub targets: Vec<LoraTarget>,
}

impl Default for LoraConfig {
    fn default() -> Self {
        LoraConfig {
            rank: 8,
            alpha: 32.0,
            dropout: 0.1,
            targets: vec![LoraTarget::QueryKeyValue],
        }
    }
}

impl LoraConfig {
    /// alpha / r.
    pub fn scaling(&self) -> f64 {
        self.alpha / self.rank as f64
    }

    /// Checks ranges; targets are sorted and deduplicated so equal sets compare equal.
    pub fn validated(mut self) -> Result<Self> {
        let bad = |name: &str, msg: &str| BloomError::Param {
            name: name.into(),
            msg: msg.into(),
        };
        if self.rank == 0 {
            return Err(bad("lora_rank", "must be positive"));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(bad("lora_dropout", "must be in [0, 1)"));
        }
        if !self.alpha.is_finite() {
            return Err(bad("lora_alpha", "must be finite"));
        }
        self.targets.sort();
        self.targets.dedup();
        if self.targets.is_empty() {
            return Err(bad("lora_targets", "at least one module is needed"));
        }
        Ok(self)
    }
}

/// One adapted linear layer: `A` is `[r, in]`, `B` is `[out, r]`, both f32 trainable variables.
#[derive(Debug, Clone)]
pub struct LoraModule {
    /// Block index.
    pub layer: usize,
    /// Layer inside the block.
    pub target: LoraTarget,
    /// Down projection `[r, in]`.
    pub a: Var,
    /// Up projection `[out, r]`.
    pub b: Var,
}

impl LoraModule {
    fn peft_prefix(&self) -> String {
        format!(
            "base_model.model.transformer.h.{}.{}",
            self.layer,
            self.target.module_path()
        )
    }
}

/// A LoRA adapter for every block of a BLOOM model.
#[derive(Debug, Clone)]
pub struct LoraAdapter {
    config: LoraConfig,
    modules: Vec<LoraModule>,
    index: Vec<[Option<usize>; 4]>,
}

impl LoraAdapter {
    /// PEFT's initialisation: `A ~ U(-1/sqrt(in), 1/sqrt(in))` (kaiming-uniform with a = sqrt 5),
    /// `B = 0`, drawn from `seed` only.
    pub fn new(
        model: &BloomConfig,
        config: LoraConfig,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let config = config.validated()?;
        let mut modules = Vec::new();
        for layer in 0..model.n_layer {
            for &target in &config.targets {
                let (o, i) = model.linear_shape(target);
                let mut r = SplitMix64::from_key(&[seed, 0x10_4a, layer as u64, target as u64]);
                let bound = 1.0 / (i as f64).sqrt();
                let a: Vec<f32> = (0..config.rank * i)
                    .map(|_| ((2.0 * r.next_f64() - 1.0) * bound) as f32)
                    .collect();
                let a = Var::from_tensor(&Tensor::from_vec(a, (config.rank, i), device)?)?;
                let b = Var::zeros((o, config.rank), DType::F32, device)?;
                modules.push(LoraModule {
                    layer,
                    target,
                    a,
                    b,
                });
            }
        }
        Ok(Self::from_modules(config, modules, model.n_layer))
    }

    fn from_modules(config: LoraConfig, modules: Vec<LoraModule>, n_layer: usize) -> Self {
        let mut index = vec![[None; 4]; n_layer];
        for (i, m) in modules.iter().enumerate() {
            index[m.layer][m.target as usize] = Some(i);
        }
        LoraAdapter {
            config,
            modules,
            index,
        }
    }

    /// The adapter's hyper-parameters.
    pub fn config(&self) -> &LoraConfig {
        &self.config
    }

    /// All adapted layers in (layer, target) order.
    pub fn modules(&self) -> &[LoraModule] {
        &self.modules
    }

    /// The module adapting `target` of block `layer`, if any.
    pub fn module(&self, layer: usize, target: LoraTarget) -> Option<&LoraModule> {
        self.index
            .get(layer)
            .and_then(|r| r[target as usize])
            .map(|i| &self.modules[i])
    }

    /// Trainable variables in a fixed order: A then B of each module.
    pub fn vars(&self) -> Vec<Var> {
        self.modules
            .iter()
            .flat_map(|m| [m.a.clone(), m.b.clone()])
            .collect()
    }

    /// Number of trainable parameters.
    pub fn num_params(&self) -> usize {
        self.modules
            .iter()
            .map(|m| m.a.elem_count() + m.b.elem_count())
            .sum()
    }

    /// Tensors under PEFT's key names (`base_model.model.transformer.h.N.<module>.lora_{A,B}.weight`), f32 on CPU.
    pub fn peft_tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for m in &self.modules {
            let p = m.peft_prefix();
            out.insert(
                format!("{p}.lora_A.weight"),
                m.a.as_tensor().to_device(&Device::Cpu)?,
            );
            out.insert(
                format!("{p}.lora_B.weight"),
                m.b.as_tensor().to_device(&Device::Cpu)?,
            );
        }
        Ok(out)
    }

    /// PEFT's `adapter_config.json` content for this adapter.
    pub fn peft_config_json(&self, base_model: &str) -> serde_json::Value {
        let targets: Vec<&str> = self.config.targets.iter().map(|t| t.name()).collect();
        serde_json::json!({
            "alpha_pattern": {},
            "auto_mapping": null,
            "base_model_name_or_path": base_model,
            "bias": "none",
            "fan_in_fan_out": false,
            "inference_mode": true,
            "init_lora_weights": true,
            "layers_pattern": null,
            "layers_to_transform": null,
            "lora_alpha": self.config.alpha,
            "lora_dropout": self.config.dropout,
            "modules_to_save": null,
            "peft_type": "LORA",
            "r": self.config.rank,
            "rank_pattern": {},
            "revision": null,
            "target_modules": targets,
            "task_type": "CAUSAL_LM",
            "use_dora": false,
            "use_rslora": false
        })
    }

    /// Writes `adapter_config.json` and `adapter_model.safetensors` into `dir` (created if needed), as
    /// `PeftModel.save_pretrained` does.
    pub fn save(&self, dir: &Path, base_model: &str) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let cfg = serde_json::to_string_pretty(&self.peft_config_json(base_model)).expect("json");
        write_atomic(&dir.join("adapter_config.json"), cfg.as_bytes())?;
        let p = dir.join("adapter_model.safetensors");
        let tmp = dir.join("adapter_model.safetensors.tmp-write");
        candle_core::safetensors::save(&self.peft_tensors()?, &tmp).map_err(|e| {
            BloomError::Safetensors {
                path: tmp.clone(),
                msg: e.to_string(),
            }
        })?;
        std::fs::rename(&tmp, &p).map_err(io_err(&p))
    }

    /// Loads a PEFT LoRA adapter folder for a model with config `model`.
    pub fn load(dir: &Path, model: &BloomConfig, device: &Device) -> Result<Self> {
        let cfg_path = dir.join("adapter_config.json");
        if !cfg_path.is_file() {
            return Err(BloomError::MissingFile {
                path: cfg_path,
                what: "PEFT adapter config",
            });
        }
        let w_path = dir.join("adapter_model.safetensors");
        if !w_path.is_file() {
            return Err(BloomError::MissingFile {
                path: w_path,
                what: "PEFT adapter weights",
            });
        }
        let v: serde_json::Value = read_json(&cfg_path)?;
        let field = |name: &str, msg: String| BloomError::Config {
            path: cfg_path.clone(),
            field: name.into(),
            msg,
        };
        let get = |k: &str| v.get(k).filter(|x| !x.is_null());
        if let Some(t) = get("peft_type").and_then(|x| x.as_str())
            && t != "LORA"
        {
            return Err(field("peft_type", format!("`{t}` is not LORA")));
        }
        for flag in [
            "use_rslora",
            "use_dora",
            "fan_in_fan_out",
            "lora_bias",
            "use_qalora",
        ] {
            if get(flag).and_then(|x| x.as_bool()) == Some(true) {
                return Err(field(flag, "true is not supported".into()));
            }
        }
        for pattern in ["rank_pattern", "alpha_pattern"] {
            if get(pattern)
                .and_then(|x| x.as_object())
                .is_some_and(|o| !o.is_empty())
            {
                return Err(field(
                    pattern,
                    "per-module ranks/alphas are not supported".into(),
                ));
            }
        }
        if get("layers_to_transform").is_some() {
            return Err(field(
                "layers_to_transform",
                "adapters on a subset of layers are not supported".into(),
            ));
        }
        if let Some(b) = get("bias").and_then(|x| x.as_str())
            && b != "none"
        {
            return Err(field("bias", format!("`{b}` is not supported (only none)")));
        }
        let rank = get("r")
            .and_then(|x| x.as_u64())
            .ok_or_else(|| field("r", "missing or not an integer".into()))?
            as usize;
        let alpha = get("lora_alpha")
            .and_then(|x| x.as_f64())
            .ok_or_else(|| field("lora_alpha", "missing or not a number".into()))?;
        let dropout = get("lora_dropout").and_then(|x| x.as_f64()).unwrap_or(0.0);
        let targets: Vec<String> = match get("target_modules") {
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect(),
            _ => {
                return Err(field(
                    "target_modules",
                    "missing (expected a list of module names)".into(),
                ));
            }
        };
        let targets = targets
            .iter()
            .map(|t| {
                LoraTarget::parse(t)
                    .map_err(|_| field("target_modules", format!("unsupported module `{t}`")))
            })
            .collect::<Result<Vec<_>>>()?;
        let config = LoraConfig {
            rank,
            alpha,
            dropout,
            targets,
        }
        .validated()
        .map_err(|e| field("r/lora_dropout/target_modules", e.to_string()))?;
        let tensors = candle_core::safetensors::load(&w_path, &Device::Cpu).map_err(|e| {
            BloomError::Safetensors {
                path: w_path.clone(),
                msg: e.to_string(),
            }
        })?;
        let mut by_key: HashMap<String, Tensor> = HashMap::new();
        for (k, t) in tensors {
            // PEFT writes keys without the adapter name; in-memory state dicts carry `.default`.
            let k = k
                .replace(".lora_A.default.", ".lora_A.")
                .replace(".lora_B.default.", ".lora_B.");
            let k = k.replace("base_model.model.h.", "base_model.model.transformer.h.");
            by_key.insert(k, t);
        }
        let mut modules = Vec::new();
        for layer in 0..model.n_layer {
            for &target in &config.targets {
                let (o, i) = model.linear_shape(target);
                let prefix = format!(
                    "base_model.model.transformer.h.{layer}.{}",
                    target.module_path()
                );
                let mut take = |which: &str, shape: [usize; 2]| -> Result<Var> {
                    let name = format!("{prefix}.lora_{which}.weight");
                    let t = by_key
                        .remove(&name)
                        .ok_or_else(|| BloomError::MissingTensor {
                            path: w_path.clone(),
                            name: name.clone(),
                        })?;
                    if t.dims() != shape {
                        return Err(BloomError::ShapeMismatch {
                            path: w_path.clone(),
                            name,
                            got: t.dims().to_vec(),
                            expected: shape.to_vec(),
                        });
                    }
                    Ok(Var::from_tensor(
                        &t.to_dtype(DType::F32)?.to_device(device)?,
                    )?)
                };
                let a = take("A", [rank, i])?;
                let b = take("B", [o, rank])?;
                modules.push(LoraModule {
                    layer,
                    target,
                    a,
                    b,
                });
            }
        }
        Ok(Self::from_modules(config, modules, model.n_layer))
    }

    /// Replaces the weights with those of `other` (same layout), e.g. after loading a checkpoint.
    pub(crate) fn assign_from(
        &self,
        tensors: &HashMap<String, Tensor>,
        origin: &Path,
    ) -> Result<()> {
        for m in &self.modules {
            let p = m.peft_prefix();
            for (which, var) in [("A", &m.a), ("B", &m.b)] {
                let name = format!("{p}.lora_{which}.weight");
                let t = tensors
                    .get(&name)
                    .ok_or_else(|| BloomError::MissingTensor {
                        path: origin.to_path_buf(),
                        name: name.clone(),
                    })?;
                if t.dims() != var.dims() {
                    return Err(BloomError::ShapeMismatch {
                        path: origin.to_path_buf(),
                        name,
                        got: t.dims().to_vec(),
                        expected: var.dims().to_vec(),
                    });
                }
                var.set(&t.to_device(var.device())?)?;
            }
        }
        Ok(())
    }
}
