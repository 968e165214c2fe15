"""The WaveNet family (lecture part 5): pairs fused in order, BatchNorm over batch and pairs, the
lecture's size, and a block_size that is not a power of two padded with boundary tokens in front."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from makemore.config import ModelConfig, load_config
from makemore.models import build_model, count_params
from makemore.models.wavenet import FlattenConsecutive, Level, levels


def test_flatten_consecutive_puts_neighbours_side_by_side() -> None:
    x = torch.arange(2 * 8 * 3).view(2, 8, 3)  # (B, T, C)
    y = FlattenConsecutive(2)(x)
    assert y.shape == (2, 4, 6)
    for j in range(4):
        assert torch.equal(y[:, j], torch.cat([x[:, 2 * j], x[:, 2 * j + 1]], dim=1))


@pytest.mark.parametrize(("block_size", "expected"), [(2, 1), (4, 2), (8, 3), (16, 4), (64, 6)])
def test_levels_halve_the_context_down_to_one(block_size: int, expected: int) -> None:
    assert levels(block_size) == expected
    model = build_model(dataclasses.replace(ModelConfig(), type="wavenet", n_embd=4, n_hidden=8), 27, block_size)
    assert len(model.levels) == expected
    logits, _ = model.eval()(torch.zeros(3, block_size, dtype=torch.long))
    assert logits.shape == (3, 27)


@pytest.mark.parametrize(("block_size", "width"), [(1, 2), (3, 4), (6, 8), (12, 16)])
def test_a_block_size_that_is_not_a_power_of_two_reads_boundary_tokens_in_front(block_size: int, width: int) -> None:
    """A context of 3 is read as the 4 positions a 2-level tree fuses, the first always the boundary
    (id 0): the same logits as the same model given that padded context explicitly."""
    model = build_model(dataclasses.replace(ModelConfig(), type="wavenet", n_embd=4, n_hidden=8), 27, block_size,
                        torch.Generator().manual_seed(0)).eval()
    assert len(model.levels) == levels(block_size) == width.bit_length() - 1
    idx = torch.randint(1, 27, (5, block_size), generator=torch.Generator().manual_seed(1))  # (B, block_size)
    padded = torch.cat([torch.zeros(5, width - block_size, dtype=torch.long), idx], dim=1)  # (B, width)
    assert torch.equal(model(idx)[0], model(padded)[0])
    assert not torch.equal(model(idx)[0], model(torch.cat([torch.ones(5, width - block_size, dtype=torch.long), idx], dim=1))[0])


def test_the_lecture_config_trains_a_wavenet(runner, tmp_path: Path, tiny_words_file: Path) -> None:
    from makemore.cli import app

    result = runner.invoke(app, ["train", "--config", "configs/names.toml", "--set", "model.type=wavenet", "--set", "train.steps=3",
                                 "--set", "train.eval_interval=3", "--set", f"data.path='{tiny_words_file}'", "-q",
                                 "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "summary.json").exists()


def test_a_level_is_linear_batchnorm_tanh_over_fused_pairs() -> None:
    """In training, the BatchNorm of a level normalises each unit over the batch and the pairs together (lecture part 5)."""
    g = torch.Generator().manual_seed(0)
    level = Level(fan_in=6, n_hidden=5, dropout=0.0, generator=g).train()
    x = torch.randn(4, 8, 3, generator=g)  # (B, T, C)
    pairs = x.view(4, 4, 6)  # (B, T/2, 2C)
    a = pairs @ level.W  # (B, T/2, n_hidden)
    mean = a.mean(dim=(0, 1), keepdim=True)
    var = a.var(dim=(0, 1), keepdim=True, unbiased=False)
    expected = torch.tanh((a - mean) / torch.sqrt(var + level.norm.eps))
    torch.testing.assert_close(level(x), expected)


def test_the_lecture_configuration_has_the_lectures_parameter_count() -> None:
    """Lecture part 5: n_embd 24, n_hidden 128, block_size 8 over 27 characters: 76,579 parameters."""
    assert count_params(load_config("configs/wavenet.toml"), 27) == 76_579

