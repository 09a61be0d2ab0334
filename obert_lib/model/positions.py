"""Position schemes that act inside attention: T5 relative buckets and rotary embeddings (RoPE)."""

from __future__ import annotations

import math

import torch


def relative_position_bucket(
    relative_position: torch.Tensor, num_buckets: int = 32, max_distance: int = 128
) -> torch.Tensor:
    """Bucket of each key-minus-query offset, bidirectional (Raffel et al. 2020, T5 §2.1).

    Half the buckets are for keys before the query, half for keys after it. Within a half, the first
    half of the buckets holds offsets 0..n/2-1 exactly; the rest grow logarithmically up to
    `max_distance`, and every larger offset shares the last bucket.
    """
    half = num_buckets // 2
    bucket = (relative_position > 0).long() * half  # keys after the query use the upper half
    distance = relative_position.abs()
    exact = half // 2
    # log-spaced: distance exact..max_distance maps onto buckets exact..half-1
    scaled = torch.log(distance.float().clamp(min=1) / exact) / math.log(max_distance / exact) * (half - exact)
    far = (exact + scaled.long()).clamp(max=half - 1)
    return bucket + torch.where(distance < exact, distance, far)


def relative_positions(position_ids: torch.Tensor) -> torch.Tensor:
    """Key position minus query position. [B, T] -> [B, T(query), T(key)]"""
    return position_ids[:, None, :] - position_ids[:, :, None]


def rotary_tables(
    position_ids: torch.Tensor, head_dim: int, base: float, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin of the RoPE angles pos * base^(-2i/d) (Su et al. 2021, RoFormer §3.2). [B, T] -> 2 x [B, 1, T, d]

    Dimension i is paired with i + d/2 (the "half-split" layout of GPT-NeoX/LLaMA); RoFormer pairs (2i, 2i+1).
    The two are the same model up to a fixed permutation of the q/k projection outputs.
    """
    inv_freq = base ** (
        -torch.arange(0, head_dim, 2, device=position_ids.device, dtype=torch.float32) / head_dim
    )  # [d/2]
    angles = position_ids.float()[..., None] * inv_freq  # [B, T, d/2], in fp32 so long positions stay exact
    angles = torch.cat([angles, angles], dim=-1)[:, None]  # [B, 1, T, d]
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each (i, i + d/2) pair of x by its position's angle. x [B, heads, T, d]"""
    first, second = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-second, first], dim=-1) * sin
