//! `BloomForCausalLM`: loading from a Hugging Face folder, forward pass with ALiBi, padding masks,
//! KV cache and optional LoRA.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{D, DType, Device, Tensor, Var};

use crate::config::BloomConfig;
use crate::error::{BloomError, Result, io_err, read_json};
use crate::lora::{LoraAdapter, LoraTarget};
use crate::rng::SplitMix64;

/// Additive score for masked attention entries. Large enough that ALiBi and the scores vanish next
/// to it in f32 and bf16, so a fully masked row (a left-padding query) becomes uniform exactly as
/// Hugging Face's `masked_fill(finfo.min)` makes it.
const MASKED: f32 = -1e30;

#[derive(Debug, Clone)]
struct LayerNorm {
    w: Tensor,
    b: Tensor,
    eps: f64,
}

#[derive(Debug, Clone)]
struct Linear {
    /// `[out, in]`, as stored by PyTorch.
    w: Tensor,
    b: Tensor,
}

#[derive(Debug, Clone)]
struct Block {
    ln1: LayerNorm,
    qkv: Linear,
    dense: Linear,
    ln2: LayerNorm,
    up: Linear,
    down: Linear,
}

/// Takes a named tensor out of the loaded set, checking its shape and casting it.
type Take<'a> = dyn FnMut(String, &[usize], DType) -> Result<Tensor> + 'a;

/// Key/value cache for incremental decoding: one `[B, heads, T_past, head_dim]` pair per layer.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
}

impl KvCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of cached positions (0 when empty).
    pub fn len(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.as_ref())
            .map(|(k, _)| k.dims()[2])
            .unwrap_or(0)
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How a forward pass runs: evaluation uses fused kernels; training uses differentiable forms
/// (candle's fused layer norm / softmax record no gradients) and LoRA dropout.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Pass {
    Eval,
    /// Differentiable pass; the key seeds the dropout masks (seed, step, micro-batch).
    Train {
        noise_key: [u64; 3],
    },
}

/// A BLOOM causal language model with frozen weights.
#[derive(Debug, Clone)]
pub struct Bloom {
    config: BloomConfig,
    device: Device,
    dtype: DType,
    wte: Tensor,
    emb_ln: LayerNorm,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    lm_head: Option<Tensor>,
    slopes: Vec<f32>,
    /// Whether the weights are trainable variables ([`Bloom::trainable`]): training passes then take the gradient
    /// of every weight instead of skipping it with [`FrozenMatmul`].
    full_grad: bool,
}

/// ALiBi slopes as in transformers' `build_alibi_tensor`.
fn alibi_slopes(n_head: usize) -> Vec<f32> {
    let closest = 1usize << (usize::BITS - 1 - n_head.leading_zeros());
    let base = 2f64.powf(-(2f64.powf(-((closest as f64).log2() - 3.0))));
    let mut s: Vec<f32> = (1..=closest).map(|p| base.powi(p as i32) as f32).collect();
    if closest != n_head {
        let extra_base = 2f64.powf(-(2f64.powf(-((2.0 * closest as f64).log2() - 3.0))));
        let remaining = closest.min(n_head - closest);
        s.extend((0..remaining).map(|i| extra_base.powi((1 + 2 * i) as i32) as f32));
    }
    s
}

/// Resolves the weight files of a folder: `model.safetensors`, or the shards named by
/// `model.safetensors.index.json`.
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if !index.is_file() {
        return Err(BloomError::MissingFile {
            path: single,
            what: "weights: model.safetensors or model.safetensors.index.json with its shards",
        });
    }
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: HashMap<String, String>,
    }
    let idx: Index = read_json(&index)?;
    let mut shards: Vec<String> = idx.weight_map.into_values().collect();
    shards.sort();
    shards.dedup();
    if shards.is_empty() {
        return Err(BloomError::Config {
            path: index,
            field: "weight_map".into(),
            msg: "names no shard".into(),
        });
    }
    let mut out = Vec::new();
    for s in shards {
        let p = dir.join(&s);
        if !p.is_file() {
            return Err(BloomError::MissingFile {
                path: p,
                what: "weight shard named in model.safetensors.index.json",
            });
        }
        out.push(p);
    }
    Ok(out)
}

/// Loads every tensor of the given safetensors files, keyed without the `transformer.` prefix,
/// remembering which file each came from.
fn load_tensors(files: &[PathBuf], device: &Device) -> Result<HashMap<String, (Tensor, PathBuf)>> {
    let mut out = HashMap::new();
    for f in files {
        // SAFETY: the file is only read; the mapping does not outlive this loop iteration and the
        // tensors are copied out of it by `load`.
        let st = unsafe { candle_core::safetensors::MmapedSafetensors::new(f) }.map_err(|e| {
            BloomError::Safetensors {
                path: f.clone(),
                msg: e.to_string(),
            }
        })?;
        for (name, _) in st.tensors() {
            let t = st
                .load(&name, device)
                .map_err(|e| BloomError::Safetensors {
                    path: f.clone(),
                    msg: format!("tensor `{name}`: {e}"),
                })?;
            let key = name
                .strip_prefix("transformer.")
                .unwrap_or(&name)
                .to_string();
            out.insert(key, (t, f.clone()));
        }
    }
    Ok(out)
}

impl Bloom {
    /// Loads a local Hugging Face BLOOM folder (`config.json` + single or sharded safetensors, keys with
    /// or without the `transformer.` prefix) onto `device`, casting weights to `dtype` (LayerNorms
    /// stay f32).
    pub fn load(dir: &Path, device: &Device, dtype: DType) -> Result<Self> {
        if !dir.is_dir() {
            return Err(BloomError::MissingFolder(dir.to_path_buf()));
        }
        let cfg_path = dir.join("config.json");
        if !cfg_path.is_file() {
            return Err(BloomError::MissingFile {
                path: cfg_path,
                what: "model config",
            });
        }
        let config = BloomConfig::from_file(&cfg_path)?;
        let files = weight_files(dir)?;
        let tensors = load_tensors(&files, device)?;
        let origin = if files.len() == 1 {
            files[0].clone()
        } else {
            dir.to_path_buf()
        };
        Self::from_named(config, tensors, &origin, device, dtype)
    }

    /// Builds a model from tensors named as in a Hugging Face state dict (prefix optional).
    pub fn from_tensors(
        config: BloomConfig,
        tensors: HashMap<String, Tensor>,
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        let origin = PathBuf::from("<memory>");
        config.validate(&origin)?;
        let named = tensors
            .into_iter()
            .map(|(k, t)| {
                (
                    k.strip_prefix("transformer.").unwrap_or(&k).to_string(),
                    (t, origin.clone()),
                )
            })
            .collect();
        Self::from_named(config, named, &origin, device, dtype)
    }

    fn from_named(
        config: BloomConfig,
        mut t: HashMap<String, (Tensor, PathBuf)>,
        origin: &Path,
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        let h = config.hidden_size;
        let mut take = |name: String, shape: &[usize], dt: DType| -> Result<Tensor> {
            let (x, file) = t.remove(&name).ok_or_else(|| BloomError::MissingTensor {
                path: origin.to_path_buf(),
                name: name.clone(),
            })?;
            if x.dims() != shape {
                return Err(BloomError::ShapeMismatch {
                    path: file,
                    name,
                    got: x.dims().to_vec(),
                    expected: shape.to_vec(),
                });
            }
            Ok(x.to_device(device)?.to_dtype(dt)?)
        };
        let eps = config.layer_norm_epsilon;
        let ln = |take: &mut Take<'_>, p: &str| -> Result<LayerNorm> {
            Ok(LayerNorm {
                w: take(format!("{p}.weight"), &[h], DType::F32)?,
                b: take(format!("{p}.bias"), &[h], DType::F32)?,
                eps,
            })
        };
        let lin = |take: &mut Take<'_>, p: String, o: usize, i: usize| -> Result<Linear> {
            Ok(Linear {
                w: take(format!("{p}.weight"), &[o, i], dtype)?,
                b: take(format!("{p}.bias"), &[o], dtype)?,
            })
        };
        let wte = take(
            "word_embeddings.weight".into(),
            &[config.vocab_size, h],
            dtype,
        )?;
        let emb_ln = ln(&mut take, "word_embeddings_layernorm")?;
        let mut blocks = Vec::with_capacity(config.n_layer);
        for l in 0..config.n_layer {
            let p = format!("h.{l}");
            blocks.push(Block {
                ln1: ln(&mut take, &format!("{p}.input_layernorm"))?,
                qkv: lin(
                    &mut take,
                    format!("{p}.self_attention.query_key_value"),
                    3 * h,
                    h,
                )?,
                dense: lin(&mut take, format!("{p}.self_attention.dense"), h, h)?,
                ln2: ln(&mut take, &format!("{p}.post_attention_layernorm"))?,
                up: lin(&mut take, format!("{p}.mlp.dense_h_to_4h"), 4 * h, h)?,
                down: lin(&mut take, format!("{p}.mlp.dense_4h_to_h"), h, 4 * h)?,
            });
        }
        let ln_f = ln(&mut take, "ln_f")?;
        let lm_head = if config.tie_word_embeddings {
            None
        } else {
            Some(take(
                "lm_head.weight".into(),
                &[config.vocab_size, h],
                dtype,
            )?)
        };
        let slopes = alibi_slopes(config.n_head);
        Ok(Bloom {
            config,
            device: device.clone(),
            dtype,
            wte,
            emb_ln,
            blocks,
            ln_f,
            lm_head,
            slopes,
            full_grad: false,
        })
    }

    /// A copy of this model whose every weight (f32) is a trainable variable, with those variables in a fixed
    /// order (sorted Hugging Face names), for full-parameter training: the model reads the variables' storage,
    /// so updating a variable updates the model.
    pub fn trainable(&self) -> Result<(Bloom, Vec<(String, Var)>)> {
        let mut named: Vec<(String, Tensor)> = self.state_dict()?.into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let mut vars = Vec::with_capacity(named.len());
        let mut tensors = HashMap::new();
        for (name, t) in named {
            let v = Var::from_tensor(&t.to_device(&self.device)?)?;
            tensors.insert(name.clone(), v.as_tensor().clone());
            vars.push((name, v));
        }
        let mut model = Self::from_tensors(self.config.clone(), tensors, &self.device, DType::F32)?;
        model.full_grad = true;
        Ok((model, vars))
    }

    /// A randomly initialised model (normal(0, `std`) weights, unit LayerNorms, zero biases), fully
    /// determined by `seed`; used for the offline demo and tests.
    pub fn random(config: BloomConfig, seed: u64, std: f64, device: &Device) -> Result<Self> {
        config.validate(Path::new("<random>"))?;
        let mut tensors = HashMap::new();
        let h = config.hidden_size;
        let mut counter = 0u64;
        let mut normal = |shape: &[usize]| -> Result<Tensor> {
            counter += 1;
            let mut r = SplitMix64::from_key(&[seed, counter]);
            let n: usize = shape.iter().product();
            let v: Vec<f32> = (0..n).map(|_| (r.next_normal() * std) as f32).collect();
            Ok(Tensor::from_vec(v, shape, &Device::Cpu)?)
        };
        let ones = |n: usize| Tensor::ones(n, DType::F32, &Device::Cpu);
        let zeros = |n: usize| Tensor::zeros(n, DType::F32, &Device::Cpu);
        tensors.insert(
            "word_embeddings.weight".to_string(),
            normal(&[config.vocab_size, h])?,
        );
        for p in ["word_embeddings_layernorm".to_string(), "ln_f".to_string()]
            .into_iter()
            .chain((0..config.n_layer).flat_map(|l| {
                [
                    format!("h.{l}.input_layernorm"),
                    format!("h.{l}.post_attention_layernorm"),
                ]
            }))
        {
            tensors.insert(format!("{p}.weight"), ones(h)?);
            tensors.insert(format!("{p}.bias"), zeros(h)?);
        }
        for l in 0..config.n_layer {
            for t in LoraTarget::ALL {
                let (o, i) = config.linear_shape(t);
                tensors.insert(
                    format!("h.{l}.{}.weight", t.module_path()),
                    normal(&[o, i])?,
                );
                tensors.insert(format!("h.{l}.{}.bias", t.module_path()), zeros(o)?);
            }
        }
        if !config.tie_word_embeddings {
            tensors.insert(
                "lm_head.weight".to_string(),
                normal(&[config.vocab_size, h])?,
            );
        }
        Self::from_tensors(config, tensors, device, DType::F32)
    }

    /// The state dict with Hugging Face names (`transformer.`-prefixed), in f32 on CPU.
    pub fn state_dict(&self) -> Result<HashMap<String, Tensor>> {
        let mut m = HashMap::new();
        let mut put = |k: String, t: &Tensor| -> Result<()> {
            m.insert(
                format!("transformer.{k}"),
                t.to_dtype(DType::F32)?.to_device(&Device::Cpu)?,
            );
            Ok(())
        };
        put("word_embeddings.weight".into(), &self.wte)?;
        let put_ln = |put: &mut dyn FnMut(String, &Tensor) -> Result<()>,
                      p: String,
                      ln: &LayerNorm|
         -> Result<()> {
            put(format!("{p}.weight"), &ln.w)?;
            put(format!("{p}.bias"), &ln.b)
        };
        put_ln(&mut put, "word_embeddings_layernorm".into(), &self.emb_ln)?;
        put_ln(&mut put, "ln_f".into(), &self.ln_f)?;
        for (l, b) in self.blocks.iter().enumerate() {
            put_ln(&mut put, format!("h.{l}.input_layernorm"), &b.ln1)?;
            put_ln(&mut put, format!("h.{l}.post_attention_layernorm"), &b.ln2)?;
            for t in LoraTarget::ALL {
                let lin = b.linear(t);
                put(format!("h.{l}.{}.weight", t.module_path()), &lin.w)?;
                put(format!("h.{l}.{}.bias", t.module_path()), &lin.b)?;
            }
        }
        if let Some(w) = &self.lm_head {
            m.insert(
                "lm_head.weight".into(),
                w.to_dtype(DType::F32)?.to_device(&Device::Cpu)?,
            );
        }
        Ok(m)
    }

    /// Writes `config.json` and `model.safetensors` (f32, prefixed keys) into `dir`, creating it.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut cfg = serde_json::to_value(&self.config).expect("config serialises");
        if let Some(o) = cfg.as_object_mut() {
            o.insert(
                "architectures".into(),
                serde_json::json!(["BloomForCausalLM"]),
            );
            o.insert("model_type".into(), serde_json::json!("bloom"));
        }
        let p = dir.join("config.json");
        std::fs::write(&p, serde_json::to_string_pretty(&cfg).expect("json"))
            .map_err(io_err(&p))?;
        let p = dir.join("model.safetensors");
        candle_core::safetensors::save(&self.state_dict()?, &p).map_err(|e| {
            BloomError::Safetensors {
                path: p.clone(),
                msg: e.to_string(),
            }
        })
    }

    /// The model config.
    pub fn config(&self) -> &BloomConfig {
        &self.config
    }

    /// The device holding the weights.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Compute dtype of the linear layers and embeddings.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Returns a copy whose targeted linear layers hold `W + scale * B A` (the adapter merged).
    pub fn merged(&self, lora: &LoraAdapter) -> Result<Bloom> {
        let mut out = self.clone();
        for m in lora.modules() {
            let lin = out.blocks[m.layer].linear_mut(m.target);
            let delta =
                m.b.as_tensor()
                    .matmul(m.a.as_tensor())?
                    .affine(lora.config().scaling(), 0.0)?;
            lin.w = (lin.w.to_dtype(DType::F32)? + delta.to_device(&self.device)?)?
                .to_dtype(self.dtype)?;
        }
        Ok(out)
    }

    /// Token embeddings followed by their LayerNorm, `[B, T, H]`.
    fn embed(&self, ids: &Tensor, pass: Pass) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let x = self.wte.index_select(&ids.flatten_all()?, 0)?.reshape((
            b,
            t,
            self.config.hidden_size,
        ))?;
        layer_norm(&x, &self.emb_ln, pass)
    }

    /// Builds the `[B, heads, T, T_k]` additive attention bias: ALiBi (`slope * position`, positions
    /// counted over non-padding tokens as transformers does) plus causal and padding masks.
    /// `mask` is `B x T_k` (1 = token, 0 = padding) covering the cached and the new positions.
    fn attention_bias(&self, b: usize, t: usize, mask: &[u8]) -> Result<Tensor> {
        let tk = mask.len() / b;
        let past = tk - t;
        let nh = self.config.n_head;
        let mut alibi = vec![0f32; b * nh * tk];
        let mut add = vec![0f32; b * t * tk];
        for r in 0..b {
            let row = &mask[r * tk..(r + 1) * tk];
            let mut cum = 0i64;
            for (k, &m) in row.iter().enumerate() {
                cum += m as i64;
                let pos = ((cum - 1) * m as i64) as f32;
                for h in 0..nh {
                    alibi[(r * nh + h) * tk + k] = self.slopes[h] * pos;
                }
            }
            for q in 0..t {
                for k in 0..tk {
                    if k > past + q || row[k] == 0 {
                        add[(r * t + q) * tk + k] = MASKED;
                    }
                }
            }
        }
        let alibi = Tensor::from_vec(alibi, (b, nh, 1, tk), &self.device)?;
        let add = Tensor::from_vec(add, (b, 1, t, tk), &self.device)?;
        Ok(alibi.broadcast_add(&add)?)
    }

    /// Runs the transformer and the final LayerNorm: `[B, T]` ids to `[B, T, H]` hidden states.
    pub(crate) fn hidden(
        &self,
        ids: &Tensor,
        mask: &[u8],
        cache: Option<&mut KvCache>,
        lora: Option<&LoraAdapter>,
        pass: Pass,
    ) -> Result<Tensor> {
        self.hidden_collect(ids, mask, cache, lora, pass, None)
    }

    /// [`Bloom::hidden`], optionally pushing every intermediate hidden state as transformers'
    /// `output_hidden_states` does (embeddings after their LayerNorm, then each block's output, the
    /// last one after `ln_f`).
    fn hidden_collect(
        &self,
        ids: &Tensor,
        mask: &[u8],
        mut cache: Option<&mut KvCache>,
        lora: Option<&LoraAdapter>,
        pass: Pass,
        mut states: Option<&mut Vec<Tensor>>,
    ) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let past = cache.as_ref().map(|c| c.len()).unwrap_or(0);
        if mask.len() != b * (past + t) {
            return Err(BloomError::Param {
                name: "attention_mask".into(),
                msg: format!("has {} entries, expected {} x {}", mask.len(), b, past + t),
            });
        }
        if let Some(c) = cache.as_deref_mut()
            && c.layers.is_empty()
        {
            c.layers = vec![None; self.config.n_layer];
        }
        let bias = self.attention_bias(b, t, mask)?;
        let mut x = self.embed(ids, pass)?;
        if let Some(s) = states.as_deref_mut() {
            s.push(x.clone());
        }
        let nh = self.config.n_head;
        let hd = self.config.head_dim();
        let h = self.config.hidden_size;
        let inv_norm = 1.0 / (hd as f64).sqrt();
        let post = self.config.apply_residual_connection_post_layernorm;
        for (l, blk) in self.blocks.iter().enumerate() {
            let lin = |x: &Tensor, target: LoraTarget| -> Result<Tensor> {
                self.linear(x, blk.linear(target), lora, l, target, pass)
            };
            let ln1 = layer_norm(&x, &blk.ln1, pass)?;
            let residual = if post { ln1.clone() } else { x.clone() };
            let fused = lin(&ln1, LoraTarget::QueryKeyValue)?.reshape((b, t, nh, 3, hd))?;
            let part = |i: usize| -> Result<Tensor> {
                Ok(fused
                    .narrow(3, i, 1)?
                    .squeeze(3)?
                    .transpose(1, 2)?
                    .contiguous()?)
            };
            let (q, mut k, mut v) = (part(0)?, part(1)?, part(2)?);
            if let Some(c) = cache.as_deref_mut() {
                if let Some((pk, pv)) = &c.layers[l] {
                    k = Tensor::cat(&[pk, &k], 2)?;
                    v = Tensor::cat(&[pv, &v], 2)?;
                }
                c.layers[l] = Some((k.clone(), v.clone()));
            }
            let scores = (q.matmul(&k.t()?)? * inv_norm)?
                .to_dtype(DType::F32)?
                .broadcast_add(&bias)?;
            let probs = match pass {
                Pass::Eval => candle_nn::ops::softmax_last_dim(&scores)?,
                Pass::Train { .. } => candle_nn::ops::softmax(&scores, D::Minus1)?,
            };
            let ctx = probs
                .to_dtype(self.dtype)?
                .matmul(&v)?
                .transpose(1, 2)?
                .reshape((b, t, h))?;
            let attn = (lin(&ctx, LoraTarget::Dense)? + residual)?;
            let ln2 = layer_norm(&attn, &blk.ln2, pass)?;
            let residual = if post { ln2.clone() } else { attn };
            let up = gelu(&lin(&ln2, LoraTarget::DenseHTo4h)?, pass)?;
            x = (lin(&up, LoraTarget::Dense4hToH)? + residual)?;
            if let Some(s) = states.as_deref_mut()
                && l + 1 < self.blocks.len()
            {
                s.push(x.clone());
            }
        }
        let out = layer_norm(&x, &self.ln_f, pass)?;
        if let Some(s) = states {
            s.push(out.clone());
        }
        Ok(out)
    }

    /// Mean over non-padding tokens of every hidden state (transformers' `hidden_states`: n_layer + 1
    /// entries), as `[layer][row][hidden]` f32; the per-layer representations of RECIPE.md §6.
    pub fn mean_pooled_states(
        &self,
        ids: &[Vec<u32>],
        mask: &[Vec<u8>],
        lora: Option<&LoraAdapter>,
    ) -> Result<Vec<Vec<Vec<f32>>>> {
        let (ids_t, flat) = self.batch_tensors(ids, mask)?;
        let (b, t) = ids_t.dims2()?;
        let mut states = Vec::new();
        self.hidden_collect(&ids_t, &flat, None, lora, Pass::Eval, Some(&mut states))?;
        let w: Vec<f32> = flat.iter().map(|&m| m as f32).collect();
        let w = Tensor::from_vec(w, (b, t, 1), &self.device)?;
        let n = w.sum(1)?.clamp(1f32, f32::MAX)?;
        states
            .iter()
            .map(|s| {
                let s = s
                    .to_dtype(DType::F32)?
                    .broadcast_mul(&w)?
                    .sum(1)?
                    .broadcast_div(&n)?;
                Ok(s.to_vec2::<f32>()?)
            })
            .collect()
    }

    /// One linear layer `x W^T + b`, plus `scale * B A dropout(x)` when the adapter targets it.
    fn linear(
        &self,
        x: &Tensor,
        lin: &Linear,
        lora: Option<&LoraAdapter>,
        layer: usize,
        target: LoraTarget,
        pass: Pass,
    ) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let n_in = *dims.last().expect("rank >= 1");
        let rows: usize = dims[..dims.len() - 1].iter().product();
        let x2 = x.reshape((rows, n_in))?;
        let frozen = !self.full_grad
            && matches!(pass, Pass::Train { .. })
            && x2.device().is_cpu()
            && x2.dtype() == DType::F32;
        let mut y = if frozen {
            x2.apply_op1(FrozenMatmul { w: lin.w.clone() })?
        } else {
            x2.matmul(&lin.w.t()?)?
        }
        .broadcast_add(&lin.b)?;
        if let Some(m) = lora.and_then(|a| a.module(layer, target)) {
            let cfg = lora.expect("module implies adapter").config();
            let xin = match pass {
                Pass::Train { noise_key } if cfg.dropout > 0.0 => {
                    let mut r = SplitMix64::from_key(&[
                        noise_key[0],
                        noise_key[1],
                        noise_key[2],
                        layer as u64,
                        target as u64,
                    ]);
                    let keep = 1.0 - cfg.dropout as f32;
                    let scale = 1.0 / keep;
                    let mask: Vec<f32> = (0..rows * n_in)
                        .map(|_| if r.next_f32() < keep { scale } else { 0.0 })
                        .collect();
                    let mask =
                        Tensor::from_vec(mask, (rows, n_in), &self.device)?.to_dtype(self.dtype)?;
                    (&x2 * mask)?
                }
                _ => x2.clone(),
            };
            let a = m.a.as_tensor().to_dtype(self.dtype)?;
            let bm = m.b.as_tensor().to_dtype(self.dtype)?;
            let delta = xin
                .matmul(&a.t()?)?
                .matmul(&bm.t()?)?
                .affine(cfg.scaling(), 0.0)?;
            y = (y + delta)?;
        }
        let mut out_dims = dims;
        *out_dims.last_mut().expect("rank >= 1") = y.dims()[1];
        Ok(y.reshape(out_dims)?)
    }

    /// Projects hidden states `[.., H]` onto the vocabulary (tied head unless the config unties it).
    pub(crate) fn project(&self, hidden: &Tensor) -> Result<Tensor> {
        let w = self.lm_head.as_ref().unwrap_or(&self.wte);
        let dims = hidden.dims().to_vec();
        let h = *dims.last().expect("rank >= 1");
        let rows: usize = dims[..dims.len() - 1].iter().product();
        let y = hidden
            .reshape((rows, h))?
            .matmul(&w.t()?)?
            .to_dtype(DType::F32)?;
        let mut out = dims;
        *out.last_mut().expect("rank >= 1") = self.config.vocab_size;
        Ok(y.reshape(out)?)
    }

    /// Evaluation logits `[B, T, vocab]` (f32) for token ids `[B][T]` and a `B x T` mask (1 = token;
    /// padding on the left for generation-style batches). All rows must have length T.
    pub fn logits(
        &self,
        ids: &[Vec<u32>],
        mask: &[Vec<u8>],
        lora: Option<&LoraAdapter>,
    ) -> Result<Tensor> {
        let (ids_t, flat) = self.batch_tensors(ids, mask)?;
        let h = self.hidden(&ids_t, &flat, None, lora, Pass::Eval)?;
        self.project(&h)
    }

    /// Mean next-token cross-entropy over positions whose label is not `None`, as transformers'
    /// `labels=` loss (labels are aligned with `ids` and shifted inside).
    pub fn lm_loss(
        &self,
        ids: &[Vec<u32>],
        mask: &[Vec<u8>],
        labels: &[Vec<Option<u32>>],
        lora: Option<&LoraAdapter>,
    ) -> Result<f32> {
        let (ids_t, flat) = self.batch_tensors(ids, mask)?;
        let t = ids[0].len();
        let mut pos = Vec::new();
        let mut tgt = Vec::new();
        for (r, lab) in labels.iter().enumerate() {
            for p in 0..t.saturating_sub(1) {
                if let Some(Some(y)) = lab.get(p + 1) {
                    pos.push((r * t + p) as u32);
                    tgt.push(*y);
                }
            }
        }
        let h = self.hidden(&ids_t, &flat, None, lora, Pass::Eval)?;
        Ok(self.loss_at(&h, &pos, &tgt)?.to_scalar::<f32>()?)
    }

    /// Mean cross-entropy of the logits at flattened positions `pos` of `hidden` against `targets`;
    /// only those rows are projected onto the (large) vocabulary.
    pub(crate) fn loss_at(&self, hidden: &Tensor, pos: &[u32], targets: &[u32]) -> Result<Tensor> {
        let hs = hidden.dims()[2];
        let flat = hidden.reshape(((), hs))?;
        let idx = Tensor::from_slice(pos, pos.len(), &self.device)?;
        let sel = flat.index_select(&idx, 0)?;
        let w = self.lm_head.as_ref().unwrap_or(&self.wte);
        let logits = if !self.full_grad && sel.device().is_cpu() && sel.dtype() == DType::F32 {
            // The head is frozen: skip the wasted vocabulary-sized weight gradient.
            sel.apply_op1(FrozenMatmul { w: w.clone() })?
        } else {
            self.project(&sel)?
        };
        let tgt = Tensor::from_slice(targets, targets.len(), &self.device)?;
        Ok(candle_nn::loss::cross_entropy(&logits, &tgt)?)
    }

    /// Converts rectangular id/mask rows into a `[B, T]` u32 tensor and a flat mask, checking shapes.
    pub(crate) fn batch_tensors(
        &self,
        ids: &[Vec<u32>],
        mask: &[Vec<u8>],
    ) -> Result<(Tensor, Vec<u8>)> {
        let b = ids.len();
        let t = ids.first().map(|r| r.len()).unwrap_or(0);
        if b == 0 || t == 0 {
            return Err(BloomError::Param {
                name: "input_ids".into(),
                msg: "empty batch".into(),
            });
        }
        if mask.len() != b {
            return Err(BloomError::Param {
                name: "attention_mask".into(),
                msg: format!("{} rows for {b} inputs", mask.len()),
            });
        }
        let mut flat_ids = Vec::with_capacity(b * t);
        let mut flat_mask = Vec::with_capacity(b * t);
        for (r, (row, m)) in ids.iter().zip(mask).enumerate() {
            if row.len() != t || m.len() != t {
                return Err(BloomError::Data {
                    phase: 0,
                    index: r,
                    msg: format!("row length {} / mask {} != {t}", row.len(), m.len()),
                });
            }
            if let Some(&bad) = row.iter().find(|&&x| x as usize >= self.config.vocab_size) {
                return Err(BloomError::Data {
                    phase: 0,
                    index: r,
                    msg: format!("token id {bad} >= vocab_size {}", self.config.vocab_size),
                });
            }
            flat_ids.extend_from_slice(row);
            flat_mask.extend_from_slice(m);
        }
        Ok((Tensor::from_vec(flat_ids, (b, t), &self.device)?, flat_mask))
    }
}

impl Block {
    fn linear(&self, t: LoraTarget) -> &Linear {
        match t {
            LoraTarget::QueryKeyValue => &self.qkv,
            LoraTarget::Dense => &self.dense,
            LoraTarget::DenseHTo4h => &self.up,
            LoraTarget::Dense4hToH => &self.down,
        }
    }
    fn linear_mut(&mut self, t: LoraTarget) -> &mut Linear {
        match t {
            LoraTarget::QueryKeyValue => &mut self.qkv,
            LoraTarget::Dense => &mut self.dense,
            LoraTarget::DenseHTo4h => &mut self.up,
            LoraTarget::Dense4hToH => &mut self.down,
        }
    }
}

/// `x W^T` for a frozen `W` on CPU. candle's matmul backward always computes the gradient of both
/// operands; for a frozen weight that product is wasted work as large as the forward matmul, so
/// this op only returns the input's gradient. The arithmetic is the same as the plain matmul's.
struct FrozenMatmul {
    w: Tensor,
}

impl candle_core::CustomOp1 for FrozenMatmul {
    fn name(&self) -> &'static str {
        "frozen-matmul"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let x = Tensor::from_slice(
            contiguous_f32(storage, layout, "frozen-matmul")?,
            layout.shape(),
            &Device::Cpu,
        )?;
        let y = x.matmul(&self.w.t()?)?;
        let (s, l) = y.storage_and_layout();
        match &*s {
            candle_core::Storage::Cpu(c) if l.is_contiguous() && l.start_offset() == 0 => {
                Ok((c.clone(), y.shape().clone()))
            }
            _ => Err(candle_core::Error::Msg(
                "frozen-matmul: unexpected output layout".into(),
            )),
        }
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad_res.matmul(&self.w)?))
    }
}

/// The f32 values of a contiguous CPU input of custom op `op`.
fn contiguous_f32<'a>(
    storage: &'a candle_core::CpuStorage,
    layout: &candle_core::Layout,
    op: &str,
) -> candle_core::Result<&'a [f32]> {
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg(format!("{op}: non-contiguous input")))?;
    Ok(&storage.as_slice::<f32>()?[start..end])
}

/// BLOOM's tanh GeLU. candle's backward for it builds about a dozen tensors with `powf`; training on
/// CPU uses a fused elementwise derivative instead (same formula, one pass).
pub(crate) fn gelu(x: &Tensor, pass: Pass) -> Result<Tensor> {
    if matches!(pass, Pass::Train { .. }) && x.device().is_cpu() && x.dtype() == DType::F32 {
        Ok(x.apply_op1(GeluTanh { derivative: false })?)
    } else {
        Ok(x.gelu()?)
    }
}

const GELU_C: f32 = 0.797_884_6; // sqrt(2 / pi)

/// tanh GeLU of one value, as transformers' `gelu_new`/BLOOM's `bloom_gelu_forward`.
#[inline]
fn gelu_tanh(v: f32) -> f32 {
    0.5 * v * (1.0 + branch_free_tanh(GELU_C * (v + 0.044715 * v * v * v)))
}

/// Derivative of [`gelu_tanh`] at `v`.
#[inline]
fn gelu_tanh_grad(v: f32) -> f32 {
    let t = branch_free_tanh(GELU_C * (v + 0.044715 * v * v * v));
    0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * 0.044715 * v * v)
}

/// tanh through [`branch_free_exp`]: `1 - 2 / (e^{2u} + 1)`, exact to about 1e-7 absolute, which is what GeLU
/// needs (it adds the tanh to 1). Why not `f32::tanh`: libm's is a scalar call that profiling showed to be a fifth
/// of a tiny model's training step, and its last bits vary between libm versions; this one is plain arithmetic
/// (the same bits on every machine) that the compiler vectorises.
#[inline]
fn branch_free_tanh(u: f32) -> f32 {
    1.0 - 2.0 / (branch_free_exp(2.0 * u) + 1.0)
}

/// e^x for f32, branch-free (so loops over it vectorise): x = n ln2 + r with |r| <= ln2 / 2, e^r by its Taylor
/// series to r^7 (relative error below 1e-8), 2^n through the exponent bits. Inputs are clamped to [-87, 88],
/// where e^x stays a normal f32.
#[inline]
fn branch_free_exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 in two parts (Cody and Waite's reduction): LN2_HI = 355/512 has 9 significant bits, so n * LN2_HI is
    // exact for every |n| <= 128; LN2_LO = ln 2 - LN2_HI.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer without a libm call.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    p * scale
}

/// Elementwise tanh GeLU (`derivative: false`) or its derivative (`true`) on contiguous f32 CPU data.
struct GeluTanh {
    derivative: bool,
}

impl candle_core::CustomOp1 for GeluTanh {
    fn name(&self) -> &'static str {
        if self.derivative {
            "gelu-tanh-grad"
        } else {
            "gelu-tanh"
        }
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let x = contiguous_f32(storage, layout, self.name())?;
        let out: Vec<f32> = if self.derivative {
            x.iter().map(|&v| gelu_tanh_grad(v)).collect()
        } else {
            x.iter().map(|&v| gelu_tanh(v)).collect()
        };
        Ok((candle_core::CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let d = arg
            .detach()
            .apply_op1_no_bwd(&GeluTanh { derivative: true })?;
        Ok(Some((grad_res * d)?))
    }
}

/// LayerNorm in f32: the fused kernel for evaluation, basic ops (which record gradients) in training.
fn layer_norm(x: &Tensor, ln: &LayerNorm, pass: Pass) -> Result<Tensor> {
    let dt = x.dtype();
    let x32 = x.to_dtype(DType::F32)?;
    let y = match pass {
        Pass::Eval => candle_nn::ops::layer_norm(&x32.contiguous()?, &ln.w, &ln.b, ln.eps as f32)?,
        Pass::Train { .. } => {
            let mean = x32.mean_keepdim(D::Minus1)?;
            let xc = x32.broadcast_sub(&mean)?;
            let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
            let xn = xc.broadcast_div(&(var + ln.eps)?.sqrt()?)?;
            xn.broadcast_mul(&ln.w)?.broadcast_add(&ln.b)?
        }
    };
    Ok(y.to_dtype(dt)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_free_exp_and_tanh_match_f64() {
        let mut worst_exp = 0f64;
        let mut worst_tanh = 0f64;
        for i in -20_000..=20_000 {
            let x = i as f32 * 0.004; // [-80, 80]
            let e = branch_free_exp(x) as f64;
            let want = (x as f64).exp();
            worst_exp = worst_exp.max(((e - want) / want).abs());
            let u = x / 8.0;
            worst_tanh = worst_tanh.max((branch_free_tanh(u) as f64 - (u as f64).tanh()).abs());
        }
        assert!(worst_exp < 4e-7, "exp: relative error {worst_exp}");
        assert!(worst_tanh < 4e-7, "tanh: absolute error {worst_tanh}");
        assert_eq!(branch_free_tanh(50.0), 1.0);
        assert_eq!(branch_free_tanh(-50.0), -1.0);
        assert!(branch_free_exp(-1000.0) > 0.0 && branch_free_exp(1000.0).is_finite());
    }

    #[test]
    fn fused_gelu_matches_candle_values_and_gradients() {
        let v: Vec<f32> = (-60..60).map(|i| i as f32 * 0.1).collect();
        let x = Var::from_tensor(&Tensor::from_vec(v, (4, 30), &Device::Cpu).unwrap()).unwrap();
        let train = Pass::Train { noise_key: [0; 3] };
        let ours = gelu(x.as_tensor(), train).unwrap();
        let theirs = x.as_tensor().gelu().unwrap();
        let d = (&ours - &theirs)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(d < 1e-5, "values differ by {d}");
        let g1 = ours
            .sum_all()
            .unwrap()
            .backward()
            .unwrap()
            .get(&x)
            .unwrap()
            .clone();
        let g2 = theirs
            .sum_all()
            .unwrap()
            .backward()
            .unwrap()
            .get(&x)
            .unwrap()
            .clone();
        let d = (&g1 - &g2)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(d < 1e-4, "gradients differ by {d}");
    }

    #[test]
    fn frozen_matmul_gives_the_input_gradient_of_a_plain_matmul() {
        let x = Var::from_tensor(
            &Tensor::arange(0f32, 24., &Device::Cpu)
                .unwrap()
                .reshape((4, 6))
                .unwrap(),
        )
        .unwrap();
        let w = (Tensor::arange(0f32, 30., &Device::Cpu)
            .unwrap()
            .reshape((5, 6))
            .unwrap()
            * 0.1)
            .unwrap();
        let a = x
            .as_tensor()
            .apply_op1(FrozenMatmul { w: w.clone() })
            .unwrap();
        let b = x.as_tensor().matmul(&w.t().unwrap()).unwrap();
        assert_eq!(a.to_vec2::<f32>().unwrap(), b.to_vec2::<f32>().unwrap());
        let ga = a
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap()
            .get(&x)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let gb = b
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap()
            .get(&x)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(ga, gb);
    }
}
