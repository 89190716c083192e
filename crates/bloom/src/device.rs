//! Device and dtype names as users write them (`cpu`, `cuda`, `cuda:1`; `auto`, `f32`, `bf16`, `f16`).
//!
//! A CUDA name never falls back to the CPU: a build without the `cuda` feature, a machine without a visible GPU,
//! or an ordinal past the last GPU is an error that says which of these it is.

use candle_core::{DType, Device};

use crate::error::{BloomError, Result};

/// Parses a device name: `cpu`, `cuda` (= `cuda:0`) or `cuda:N`. CUDA devices need a build with the `cuda`
/// feature and a visible GPU of that ordinal; the error names what is missing.
pub fn parse_device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        n if n == "cuda" || n.starts_with("cuda:") => {
            let ordinal = match n.strip_prefix("cuda:") {
                Some(i) => i.parse::<usize>().map_err(|_| {
                    device_err(name, "expected cuda:N with N a GPU ordinal (0, 1, ...)")
                })?,
                None => 0,
            };
            cuda_device(name, ordinal)
        }
        _ => Err(device_err(name, "expected cpu, cuda or cuda:N")),
    }
}

fn device_err(name: &str, msg: impl Into<String>) -> BloomError {
    BloomError::Device {
        name: name.to_string(),
        msg: msg.into(),
    }
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(name: &str, _ordinal: usize) -> Result<Device> {
    Err(device_err(
        name,
        "this alinea was built without CUDA support; rebuild with `cargo build --release --features cuda` \
         (README.md, \"GPU\"), or use device = \"cpu\"",
    ))
}

#[cfg(feature = "cuda")]
fn cuda_device(name: &str, ordinal: usize) -> Result<Device> {
    use candle_core::cuda_backend::cudarc::driver::CudaContext;
    let count = CudaContext::device_count().map_err(|e| {
        device_err(
            name,
            format!("no CUDA GPU is visible (the driver answered {e}); check nvidia-smi and CUDA_VISIBLE_DEVICES"),
        )
    })?;
    if count <= 0 {
        return Err(device_err(
            name,
            "no CUDA GPU is visible; check nvidia-smi and CUDA_VISIBLE_DEVICES",
        ));
    }
    if ordinal >= count as usize {
        return Err(device_err(
            name,
            format!(
                "GPU {ordinal} requested but {count} visible (cuda:0..cuda:{})",
                count - 1
            ),
        ));
    }
    Device::new_cuda(ordinal).map_err(|e| device_err(name, e.to_string()))
}

/// The compute capability `(major, minor)` of a CUDA device; `None` for the CPU (or when the driver does not
/// answer).
pub fn compute_capability(device: &Device) -> Option<(i32, i32)> {
    #[cfg(feature = "cuda")]
    if let Ok(d) = device.as_cuda_device() {
        return d.cuda_stream().context().compute_capability().ok();
    }
    let _ = device;
    None
}

/// The dtype `auto` picks: f32 on CPU; bf16 on GPUs with native bf16 arithmetic (compute capability 8.0 and newer:
/// Ampere, Ada, Hopper, Blackwell); f32 on older GPUs, whose bf16 is emulated and whose f16 overflows in training.
/// LoRA factors, layer norms, softmax and the loss stay f32 whatever the weights' dtype.
pub fn default_dtype(device: &Device) -> DType {
    auto_dtype(compute_capability(device))
}

fn auto_dtype(capability: Option<(i32, i32)>) -> DType {
    match capability {
        Some((major, _)) if major >= 8 => DType::BF16,
        _ => DType::F32,
    }
}

/// Parses a weight dtype name for `device`: `auto` ([`default_dtype`]), `f32`, `bf16` or `f16` (`float32`,
/// `bfloat16`, `float16` too, as PyTorch spells them).
pub fn parse_dtype(name: &str, device: &Device) -> Result<DType> {
    match name {
        "auto" => Ok(default_dtype(device)),
        "f32" | "float32" => Ok(DType::F32),
        "bf16" | "bfloat16" => Ok(DType::BF16),
        "f16" | "float16" => Ok(DType::F16),
        _ => Err(BloomError::Param {
            name: "dtype".into(),
            msg: format!("`{name}`: expected auto, f32, bf16 or f16"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_its_dtypes_parse() {
        assert!(parse_device("cpu").unwrap().is_cpu());
        assert_eq!(parse_dtype("auto", &Device::Cpu).unwrap(), DType::F32);
        assert_eq!(parse_dtype("bf16", &Device::Cpu).unwrap(), DType::BF16);
        assert_eq!(parse_dtype("float16", &Device::Cpu).unwrap(), DType::F16);
        assert_eq!(parse_dtype("f32", &Device::Cpu).unwrap(), DType::F32);
    }

    #[test]
    fn auto_is_bf16_from_ampere_on() {
        assert_eq!(auto_dtype(None), DType::F32);
        assert_eq!(auto_dtype(Some((7, 5))), DType::F32, "Turing");
        assert_eq!(auto_dtype(Some((8, 0))), DType::BF16, "A100");
        assert_eq!(auto_dtype(Some((9, 0))), DType::BF16, "H100/H200");
    }

    #[test]
    fn bad_names_say_what_was_expected() {
        let e = parse_device("gpu").unwrap_err().to_string();
        assert_eq!(e, "device `gpu`: expected cpu, cuda or cuda:N");
        let e = parse_device("cuda:one").unwrap_err().to_string();
        assert!(e.contains("device `cuda:one`: expected cuda:N"), "{e}");
        let e = parse_dtype("fp64", &Device::Cpu).unwrap_err().to_string();
        assert_eq!(
            e,
            "parameter `dtype`: `fp64`: expected auto, f32, bf16 or f16"
        );
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_is_an_error_not_the_cpu() {
        for name in ["cuda", "cuda:0", "cuda:1"] {
            let e = parse_device(name).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!(
                    "device `{name}`: this alinea was built without CUDA support"
                )) && e.contains("--features cuda"),
                "{e}"
            );
        }
    }
}
