import math

import torch

from obert_lib.model.positions import apply_rotary, relative_position_bucket, relative_positions, rotary_tables


def test_relative_buckets_match_hand_computed_t5_values():
    # 32 buckets, max distance 128: 16 per direction, offsets 0..7 exact, then
    # 8 + floor(log(d / 8) / log(128 / 8) * 8), capped at 15; keys after the query add 16.
    offsets = torch.tensor([0, -1, -7, -8, -12, -20, -50, -100, -127, -128, -1000, 1, 7, 12, 20, 1000])
    expected = [0, 1, 7, 8, 9, 10, 13, 15, 15, 15, 15, 17, 23, 25, 26, 31]
    # e.g. -20: log(2.5) / log(16) * 8 = 2.64 -> 8 + 2 = 10;  -50: log(6.25) / log(16) * 8 = 5.29 -> 13
    assert relative_position_bucket(offsets, num_buckets=32, max_distance=128).tolist() == expected
    # 8 buckets, max distance 16: 4 per direction, 0..1 exact; -12: 2 + floor(log(6) / log(8) * 2 = 1.72) = 3
    assert relative_position_bucket(torch.tensor([-3, 3, -5, -12, 9]), 8, 16).tolist() == [2, 6, 2, 3, 7]


def test_relative_buckets_agree_with_transformers_t5():
    from transformers.models.t5.modeling_t5 import T5Attention

    offsets = torch.arange(-300, 301)
    reference = T5Attention._relative_position_bucket(offsets, bidirectional=True, num_buckets=32, max_distance=128)
    assert torch.equal(relative_position_bucket(offsets, 32, 128), reference)


def test_relative_positions_are_key_minus_query():
    rel = relative_positions(torch.tensor([[0, 1, 3]]))
    assert rel.tolist() == [[[0, 1, 3], [-1, 0, 2], [-3, -2, 0]]]


def test_rotary_rotates_each_pair_by_position_times_frequency():
    # head size 4: pairs (0, 2) turn by pos * 1 and (1, 3) by pos * base^(-2/4) = pos / 100 for base 10^4
    cos, sin = rotary_tables(torch.tensor([[0, 1, 2]]), head_dim=4, base=10000.0, dtype=torch.float32)
    x = torch.tensor([1.0, 1.0, 0.0, 0.0]).expand(1, 1, 3, 4)  # [B, heads, T, d]
    out = apply_rotary(x, cos, sin)[0, 0]
    for pos in range(3):
        expected = [math.cos(pos), math.cos(pos / 100), math.sin(pos), math.sin(pos / 100)]
        assert torch.allclose(out[pos], torch.tensor(expected), atol=1e-6)
