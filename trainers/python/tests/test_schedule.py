"""The built-in trainer's learning-rate schedule and FLOPs estimate (pure functions of their inputs)."""
from __future__ import annotations

import argparse
import math

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from instruct_pt_trainer.train import flops_per_token, learning_rate  # noqa: E402


def args(**kw) -> argparse.Namespace:
    base = {"lr": 1e-3, "warmup_steps": 10, "lr_schedule": "cosine", "min_lr_ratio": 0.1, "steps": 110}
    base.update(kw)
    return argparse.Namespace(**base)


def test_warm_up_then_cosine_to_the_floor():
    a = args()
    assert learning_rate(a, 0) == pytest.approx(1e-4)
    assert learning_rate(a, 9) == pytest.approx(1e-3)
    assert learning_rate(a, 10) == pytest.approx(1e-3)
    assert learning_rate(a, 60) == pytest.approx(1e-4 + (1e-3 - 1e-4) * 0.5)
    assert learning_rate(a, 110) == pytest.approx(1e-4)
    rates = [learning_rate(a, s) for s in range(10, 111)]
    assert all(x >= y for x, y in zip(rates, rates[1:]))


def test_constant_schedule_and_no_warm_up():
    assert learning_rate(args(lr_schedule="constant", warmup_steps=0), 57) == 1e-3


def test_flops_per_token_counts_six_per_parameter_plus_attention():
    config = transformers.LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=True)
    model = transformers.LlamaForCausalLM(config)
    params = sum(p.numel() for p in model.parameters())
    assert flops_per_token(model, 128) == 6 * params + 12 * 2 * 32 * 128
    assert not math.isnan(flops_per_token(model, 1))
