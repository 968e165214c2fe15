"""The WaveNet family (lecture part 5): pairs fused in order, BatchNorm over batch and pairs, the
lecture's size, and a clear error for a block_size that is not a power of two."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from makemore.prepare import check
from makemore.config import ModelConfig, load_config
from makemore.errors import MakemoreError
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


@pytest.mark.parametrize("block_size", [1, 3, 6, 12])
def test_a_block_size_that_is_not_a_power_of_two_is_refused(block_size: int) -> None:
    cfg = load_config("configs/wavenet.toml", [f"data.block_size={block_size}"])
    with pytest.raises(MakemoreError, match=f"data.block_size must be a power of two .*got {block_size}$"):
        check(cfg)


def test_the_command_line_refuses_it_in_one_line_before_anything_is_written(runner, tmp_path: Path) -> None:
    from makemore.cli import app

    result = runner.invoke(app, ["train", "--config", "configs/wavenet.toml", "--set", "data.block_size=6",
                                 "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: model.type = 'wavenet' fuses the context two characters at a time: data.block_size must be a power of two "
        "(2, 4, 8, 16, ...), got 6"
    ]
    assert not (tmp_path / "run").exists()


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

