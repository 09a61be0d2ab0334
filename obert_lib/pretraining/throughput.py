"""Model FLOPs per token, model FLOPs utilisation (MFU) and the peak dense FLOPs of the GPUs we use.

Training FLOPs per token (Kaplan et al. 2020, "Scaling Laws for Neural Language Models", §2.1; Chowdhery
et al. 2022, PaLM, appendix B):

    6 N + 12 L H S

* 6 N: every parameter takes part in one multiply-add (2 FLOPs) per token in the forward pass, and twice
  that in the backward pass (gradient with respect to the activations and to the weights): 2 + 4 = 6.
* 12 L H S: attention's two matmuls that have no parameters, Q K^T and softmax(.) V, each 2 S H FLOPs per
  token and layer in the forward pass (S: sequence length, H: hidden size = heads x head size), times 3
  for forward + backward: 3 x 2 x 2 S H = 12 S H per layer. Kaplan's table 1 counts only the first of the
  two matmuls (2 L S d forward); PaLM counts both, as we do.

N is the total parameter count (`count_parameters`, tied embeddings once): the input embedding lookups are
no matmuls, but the tied MLM decoder applies the same matrix to every position, so the total is the
usual, slightly high (position/type embeddings, LayerNorms) estimate. These are model FLOPs: activation
recomputation (gradient checkpointing) does more work that MFU does not count (that would be hardware
FLOPs utilisation). tokens_per_s should count the positions the model computes (padded length x batch);
counting only non-pad tokens gives a lower, "useful work" MFU.
"""

from __future__ import annotations

# Peak dense (no structured sparsity) FLOP/s per GPU by precision. "fp32" is the plain CUDA-core rate
# (PyTorch's default: TF32 matmuls are off unless torch.backends.cuda.matmul.allow_tf32 is set).
PEAK_FLOPS: dict[str, dict[str, float]] = {
    # NVIDIA Tesla V100 datasheet (SXM2): 125 TFLOPS tensor (fp16), 15.7 TFLOPS single precision; no bf16.
    "V100": {"fp16": 125e12, "fp32": 15.7e12},
    # Same datasheet, V100 PCIe: 112 TFLOPS tensor, 14 TFLOPS single precision.
    "V100-PCIE": {"fp16": 112e12, "fp32": 14e12},
    # NVIDIA A100 Tensor Core GPU datasheet: bf16/fp16 tensor 312 TFLOPS (624 with sparsity), TF32 156
    # (312 with sparsity), fp32 19.5 TFLOPS; the same for SXM and PCIe, 40 and 80 GB.
    "A100": {"bf16": 312e12, "fp16": 312e12, "tf32": 156e12, "fp32": 19.5e12},
    # NVIDIA H100 Tensor Core GPU datasheet, H100 SXM: bf16/fp16 tensor 1,979 TFLOPS with sparsity, so 989
    # dense (the figure PaLM-style MFU reports use); TF32 989 with sparsity (494.5 dense); fp32 67 TFLOPS.
    "H100-SXM": {"bf16": 989e12, "fp16": 989e12, "tf32": 494.5e12, "fp32": 67e12},
    # Same datasheet, H100 PCIe: bf16/fp16 1,513 TFLOPS with sparsity (756 dense); TF32 378 dense; fp32 51.
    "H100-PCIE": {"bf16": 756e12, "fp16": 756e12, "tf32": 378e12, "fp32": 51e12},
    # NVIDIA H200 Tensor Core GPU datasheet (H200 SXM): the H100 SXM's compute figures (1,979 bf16 with
    # sparsity, 67 fp32) with more and faster memory (141 GB HBM3e).
    "H200": {"bf16": 989e12, "fp16": 989e12, "tf32": 494.5e12, "fp32": 67e12},
}

PRECISIONS = ("fp16", "bf16", "tf32", "fp32")


def model_flops_per_token(n_params: int, layers: int, hidden: int, seq_len: int) -> int:
    """Training (forward + backward) model FLOPs per token: 6 N + 12 L H S (see the module docstring)."""
    return 6 * n_params + 12 * layers * hidden * seq_len


def mfu(tokens_per_s: float, flops_per_token: float, peak_flops: float, devices: int = 1) -> float:
    """Model FLOPs utilisation: achieved model FLOP/s over the peak of the `devices` GPUs that made tokens_per_s.

    Pass tokens_per_s of the whole job with devices = world size, or one rank's with devices = 1.
    """
    if peak_flops <= 0 or devices < 1:
        raise ValueError(f"peak_flops ({peak_flops}) must be > 0 and devices ({devices}) >= 1")
    return tokens_per_s * flops_per_token / (peak_flops * devices)


def device_key(device_name: str) -> str | None:
    """The PEAK_FLOPS key of a torch.cuda.get_device_name() string, or None when unknown (CPU, other GPUs)."""
    name = device_name.upper()
    if "H200" in name:
        return "H200"
    if "H100" in name:
        if "NVL" in name:
            return None  # H100 NVL has its own figures; unlisted rather than mistaken for SXM
        return "H100-PCIE" if "PCIE" in name else "H100-SXM"  # SXM: "NVIDIA H100 80GB HBM3"
    if "A100" in name:
        return "A100"
    if "V100" in name:
        if "V100S" in name:
            return None  # V100S PCIe: 130 / 16.4 TFLOPS, not listed
        return "V100-PCIE" if "PCIE" in name else "V100"  # SXM2: "Tesla V100-SXM2-32GB"
    return None


def peak_flops(device_name: str, precision: str) -> float | None:
    """Peak dense FLOP/s of one GPU at `precision` (fp16, bf16, tf32, fp32); None when unknown or unsupported.

    `device_name` as torch.cuda.get_device_name() writes it ("Tesla V100-SXM2-32GB", "NVIDIA A100-SXM4-80GB",
    "NVIDIA H100 80GB HBM3", "NVIDIA H200"); "cpu" or an unlisted GPU gives None, as does bf16 on a V100.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is unknown; use one of {list(PRECISIONS)}")
    key = device_key(device_name)
    return None if key is None else PEAK_FLOPS[key].get(precision)
