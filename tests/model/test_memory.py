from obert_lib.model import ModelConfig, activation_bytes, max_micro_batch, memory_plan, model_state_bytes

GIB = 2**30


def test_zero_model_states_follow_deepspeed_formulas():
    # ZeRO-2: 2P replicated fp16 params + 18P/N (fp16 grads 2, fp32 grads 4, fp32 params 4, Adam m and v 8)
    assert model_state_bytes(1000, 100, zero_stage=2, gpus=1) == 2000 + 18000
    assert model_state_bytes(1000, 100, zero_stage=2, gpus=8) == 2000 + 2250
    # ZeRO-3: 4 x largest layer (gathered for compute) + 18P/N
    assert model_state_bytes(1000, 100, zero_stage=3, gpus=8) == 400 + 2250


def test_activation_formula_on_a_tiny_case():
    # s=128, h=64, a=2, f=256 (=4h), L=2, V=1000, b=1
    layer = 128 * 64 * (34 + 5 * 2 * 128 // 64)  # Korthikanti et al.: sbh(34 + 5as/h) = 442,368
    outside = 128 * (11 * 64 + 6 * 1000)  # embeddings 3sbh + head 8sbh + logits 2sbV + fp32 loss 4sbV = 858,112
    kwargs = dict(seq_len=128, layers=2, hidden=64, heads=2, ffn=256, vocab_size=1000)
    assert activation_bytes(micro_batch=1, **kwargs) == 2 * layer + outside == 1_742_848
    assert activation_bytes(micro_batch=3, **kwargs) == 3 * 1_742_848
    assert activation_bytes(micro_batch=1, recompute=True, **kwargs) == 2 * 2 * 128 * 64 + layer + outside == 1_333_248
    assert max_micro_batch(10, 4, 3) == 2 and max_micro_batch(3, 4, 3) == 0


def test_memory_plan_rows_on_a_tiny_case():
    # tiny with V=1000: P = 202,280 (see test_model); largest module = decoder (tied 64,000 weight + 1,000 bias)
    plan = memory_plan(
        ModelConfig(preset="tiny"), gpus=[1, 8], seq_lens=[128], gpu_memory_gb=0.01, vocab_size=1000, reserve_gb=0
    ).set_index(["zero_stage", "gpus"])
    capacity = int(0.01 * GIB)  # 10,737,418 bytes
    zero2_1 = plan.loc[(2, 1)]
    assert zero2_1["parameters"] == 202_280 and zero2_1["model_states_gib"] * GIB == 20 * 202_280
    assert zero2_1["max_micro_batch"] == (capacity - 4_045_600) // 1_742_848 == 3
    assert zero2_1["max_micro_batch_recompute"] == (capacity - 4_045_600) // 1_333_248 == 5
    assert plan.loc[(3, 8), "model_states_gib"] * GIB == 4 * 65_000 + 18 * 202_280 // 8
    assert list(memory_plan("100M", gpus=[8], seq_lens=[128, 512]).columns)[:5] == [
        "preset",
        "parameters",
        "zero_stage",
        "gpus",
        "seq_len",
    ]


def test_memory_plan_hides_deepspeeds_accelerator_note_in_a_fresh_interpreter():
    """Notebook 03's memory-plan cell imports DeepSpeed first; its "Setting accelerator to CPU" note is hidden."""
    import subprocess
    import sys

    code = "from obert_lib.model import memory_plan; print(len(memory_plan(['100M'], gpus=[1], seq_lens=[128])))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert done.stdout.strip().splitlines()[-1] == "2"
    assert "Setting accelerator" not in done.stdout + done.stderr
