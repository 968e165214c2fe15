"""Config loading, --set overrides and validation (issue 2, item 7)."""

from __future__ import annotations

import math

import pytest

from makemore.config import Config, load_config, parse_override
from makemore.errors import MakemoreError
from makemore.schedule import lr_at


def test_names_toml_is_the_lecture_setup() -> None:
    cfg = load_config("configs/names.toml")
    assert (cfg.data.block_size, cfg.model.n_embd, cfg.model.n_hidden) == (3, 10, 200)
    assert (cfg.train.batch_size, cfg.train.steps, cfg.train.lr) == (32, 200_000, 0.1)
    assert cfg.train.lr_milestones == [100_000] and cfg.train.lr_factor == 0.1
    assert cfg.data.path == "data/names.txt" and cfg.model.type == "mlp"
    assert cfg.train.backend == "auto"  # NumPy for this model on a CPU (tests/test_prepare.py), torch for any other family or --nproc
    assert lr_at(99_999, cfg.train) == 0.1 and math.isclose(lr_at(100_000, cfg.train), 0.01)


def test_set_reads_toml_values_and_bare_words_as_strings() -> None:
    assert parse_override("train.lr=0.05") == ("train.lr", 0.05)
    assert parse_override("train.lr_milestones=[10, 20]") == ("train.lr_milestones", [10, 20])
    assert parse_override("train.backend=numpy") == ("train.backend", "numpy")
    assert parse_override('data.path="my words.txt"') == ("data.path", "my words.txt")
    cfg = load_config("configs/names.toml", ["train.steps=500", "model.n_embd=2", "train.lr=1"])
    assert cfg.train.steps == 500 and cfg.model.n_embd == 2 and cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.lrr=0.1", "unknown key 'train.lrr' (did you mean 'train.lr'?)"),
        ("modle.n_embd=3", "did you mean 'model.n_embd'?"),
        ("train.steps=ten", "train.steps must be an integer, got 'ten'"),
        ("train.steps=1.5", "train.steps must be an integer"),
        ("train.steps=0", "train.steps must be a finite number >= 1, got 0"),
        ("data.block_size=-2", "data.block_size must be a finite number >= 1"),
        ("train.lr=0", "train.lr must be a finite number > 0"),
        ("train.lr=inf", "train.lr must be a finite number > 0"),
        ("train.lr=nan", "train.lr must be a finite number > 0"),
        ("model.dropout=1", "model.dropout must be a finite number >= 0 and < 1"),
        ("train.backend=jax", "train.backend must be one of 'auto', 'torch', 'numpy', 'mlx', got 'jax'"),
        ("train.device=tpu", "train.device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"),
        ("data.boundary=ab", "data.boundary must be exactly one character"),
        ("train.batch_size=true", "train.batch_size must be an integer, got True"),
        ("nonsense", "expected section.key=value"),
    ],
)
def test_bad_overrides_name_the_key_and_what_is_allowed(override: str, message: str) -> None:
    with pytest.raises(MakemoreError) as e:
        load_config("configs/names.toml", [override])
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_bad_config_files(tmp_path) -> None:
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("[train\nsteps = 3\n")
    with pytest.raises(MakemoreError, match="invalid TOML"):
        load_config(bad_toml)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[trian]\nsteps = 3\n")
    with pytest.raises(MakemoreError, match=r"unknown section \[trian\] \(did you mean 'train'\?\)"):
        load_config(unknown)
    with pytest.raises(MakemoreError, match="config file not found"):
        load_config(tmp_path / "missing.toml")


def test_resolved_config_round_trips_through_toml(tmp_path) -> None:
    cfg = load_config("configs/names.toml", ["train.lr_milestones=[5, 9]", 'data.path="dir/ü words.txt"', "train.schedule=cosine"])
    path = tmp_path / "resolved.toml"
    path.write_text(cfg.to_toml(), encoding="utf-8")
    assert load_config(path) == cfg
    assert Config.from_dict(cfg.to_dict()) == cfg


def test_cosine_schedule_with_warmup() -> None:
    cfg = load_config(None, ["train.schedule=cosine", "train.steps=1000", "train.lr=1.0", "train.min_lr=0.1", "train.warmup_steps=100"])
    t = cfg.train
    assert math.isclose(lr_at(0, t), 0.01) and math.isclose(lr_at(99, t), 1.0)
    assert math.isclose(lr_at(100, t), 1.0)
    assert math.isclose(lr_at(550, t), 0.55)
    lrs = [lr_at(s, t) for s in range(100, 1000)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:])) and lrs[-1] >= 0.1


def test_an_unknown_model_type_is_refused_by_the_registry_before_any_work() -> None:
    """load_config checks keys, types and ranges; the model registry checks model.type (and the
    backend the rest), which every command does before it reads data or creates a directory."""
    from makemore.prepare import check

    cfg = load_config("configs/names.toml", ["model.type=lstmx"])
    with pytest.raises(MakemoreError) as e:
        check(cfg)
    assert "model.type must be one of 'bigram', 'mlp'" in str(e.value) and "got 'lstmx'" in str(e.value)
