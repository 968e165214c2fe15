"""train.optimizer = "muon": Muon on the hidden weight matrices, AdamW on the rest (issue 25, item 1).

The split of the parameters is checked for every family against a table written here, by hand,
from each family's maths (so a new family, or a renamed parameter, fails until its split is
written down); a run with Muon resumes after Ctrl-C bit for bit; NumPy refuses Muon with one
line and train.backend = "auto" picks torch for it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from makemore import runs
from makemore import training as train_module
from makemore.backends.torch_backend import MuonAdamW, StackedMuon, TorchBackend, muon_split
from makemore.cli import app
from makemore.config import Config, ModelConfig
from makemore.errors import MakemoreError
from makemore.models import FAMILIES, build_model
from makemore.prepare import check
from makemore.training import TrainingInterrupted, train
from tests.conftest import CtrlCAt

pytestmark = pytest.mark.usefixtures("no_loss_plot")

#: Per family, with n_layers = 2: the hidden matrices Muon must update (every other parameter goes
#: to AdamW). Embedding tables (C, P) and the output head (the last matrix, producing logits) are not hidden.
HIDDEN = {
    "mlp": ["W1", "W2"],
    "wavenet": ["levels.0.W", "levels.1.W", "levels.2.W"],
    "rnn": ["cells.0.Wx", "cells.0.Wh", "cells.1.Wx", "cells.1.Wh"],
    "gru": ["cells.0.Wx", "cells.0.Wh", "cells.1.Wx", "cells.1.Wh"],
    "lstm": ["cells.0.Wx", "cells.0.Wh", "cells.1.Wx", "cells.1.Wh"],
    "bow": ["W1"],
    "transformer": [f"blocks.{i}.{m}" for i in range(2) for m in ("attn.W_qkv", "attn.W_proj", "mlp.W_fc", "mlp.W_proj")],
}
GRADIENT = sorted(n for n, f in FAMILIES.items() if not f.counted)


def small_model(name: str) -> torch.nn.Module:
    cfg = dataclasses.replace(ModelConfig(), type=name, n_embd=8, n_hidden=16, n_layers=2, n_head=2,
                              norm="layernorm" if name == "mlp" else "none")
    return build_model(cfg, 27, 8, torch.Generator().manual_seed(0))


def test_every_gradient_family_has_a_written_split() -> None:
    assert sorted(HIDDEN) == GRADIENT


@pytest.mark.parametrize("name", GRADIENT)
def test_muon_takes_exactly_the_hidden_matrices(name: str) -> None:
    model = small_model(name)
    hidden, rest = muon_split(model)
    assert hidden == HIDDEN[name]
    every = [n for n, _ in model.named_parameters()]
    assert sorted(hidden + rest) == sorted(every) and not set(hidden) & set(rest)
    params = dict(model.named_parameters())
    assert all(params[n].dim() == 2 for n in hidden)
    assert "C" in rest  # the embedding table, and the head:
    assert any(params[n].dim() == 2 and params[n].shape[1] == 27 for n in rest)


@pytest.mark.parametrize("name", GRADIENT)
def test_the_optimizers_hold_the_split(name: str, tiny_words_file: Path) -> None:
    cfg = muon_cfg(tiny_words_file, name)
    backend = TorchBackend(cfg, 27, "cpu", 8)
    opt = backend.optimizer
    assert isinstance(opt, MuonAdamW)
    ids = lambda o: {id(p) for g in o.param_groups for p in g["params"]}  # noqa: E731
    params = dict(backend.model.named_parameters())
    hidden, rest = muon_split(backend.model)
    assert ids(opt.muon) == {id(params[n]) for n in hidden}
    assert ids(opt.adamw) == {id(params[n]) for n in rest}


def test_adamw_follows_the_schedule_at_its_own_rate(tiny_words_file: Path) -> None:
    cfg = muon_cfg(tiny_words_file, "mlp", "train.adam_lr=0.004")
    backend = TorchBackend(cfg, 27, "cpu", 3)
    X, Y = torch.zeros(4, 3, dtype=torch.long), torch.ones(4, dtype=torch.long)
    backend.train_step(X, Y, 0.01)
    assert backend.optimizer.muon.param_groups[0]["lr"] == 0.01
    assert backend.optimizer.adamw.param_groups[0]["lr"] == pytest.approx(0.004 * 0.01 / 0.02)
    cfg.train.adam_lr = 0.0  # 0: the same rate as Muon
    backend = TorchBackend(cfg, 27, "cpu", 3)
    backend.train_step(X, Y, 0.01)
    assert backend.optimizer.adamw.param_groups[0]["lr"] == pytest.approx(0.01)


def hidden_of(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    params = dict(model.named_parameters())
    return [params[n] for n in muon_split(model)[0]]


@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_stacked_muon_takes_torchs_muon_steps(wd: float) -> None:
    """StackedMuon batches torch.optim.Muon's work by shape (tall matrices transposed): the same
    parameters and momentum after three steps, up to bfloat16 rounding, far below the steps' size."""
    cfg = dataclasses.replace(ModelConfig(), type="transformer", n_embd=16, n_hidden=48, n_layers=2, n_head=2,
                              qk_norm=True, value_embed=True)
    ours, theirs = (build_model(cfg, 27, 8, torch.Generator().manual_seed(0)) for _ in range(2))
    kw = {"lr": 0.02, "weight_decay": wd, "adjust_lr_fn": "match_rms_adamw"}
    optimizers = [(ours, StackedMuon(hidden_of(ours), **kw)), (theirs, torch.optim.Muon(hidden_of(theirs), **kw))]
    start = [p.detach().clone() for p in hidden_of(ours)]
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        X, Y = torch.randint(0, 27, (4, 8), generator=g), torch.randint(0, 27, (4, 8), generator=g)
        for model, opt in optimizers:
            opt.zero_grad()
            model(X, Y)[1].backward()
            opt.step()
    assert {tuple(p.shape) for p in start} == {(16, 48), (48, 16), (16, 16)}  # wide, tall and square matrices
    for a, b, p0 in zip(hidden_of(ours), hidden_of(theirs), start):
        assert (a - p0).abs().max() > 0.01  # every matrix moved, by far more than the tolerance
        torch.testing.assert_close(a, b, rtol=0, atol=1e-3)
        sa, sb = optimizers[0][1].state[a], optimizers[1][1].state[b]
        torch.testing.assert_close(sa["momentum_buffer"], sb["momentum_buffer"], rtol=1e-3, atol=1e-7)


def muon_cfg(words: Path, name: str, *extra: str, steps: int = 30) -> Config:
    cfg = Config()
    settings = {"data.path": str(words), "data.block_size": 4, "model.type": name, "model.n_embd": 8, "model.n_hidden": 16,
                "model.n_layers": 2, "model.n_head": 2, "train.backend": "torch", "train.device": "cpu", "train.steps": steps,
                "train.batch_size": 8, "train.optimizer": "muon", "train.lr": 0.02, "train.weight_decay": 0.01,
                "train.eval_interval": 10, "train.log_interval": 5, "train.schedule": "cosine", "train.threads": 1}
    for key, value in settings.items():
        cfg.set(key, value)
    for item in extra:
        key, _, value = item.partition("=")
        cfg.set(key, float(value) if "." in value else int(value))
    cfg.validate()
    return cfg


@pytest.mark.parametrize("name", ["mlp", "transformer"])
def test_muon_resumes_bit_for_bit(name: str, tiny_words_file: Path, tmp_path: Path) -> None:
    cfg = muon_cfg(tiny_words_file, name, "train.adam_lr=0.005", "model.dropout=0.1")
    train(cfg, tmp_path / "straight")
    with pytest.raises(TrainingInterrupted):
        train(cfg, tmp_path / "stopped", listener=CtrlCAt(15))
    stopped = runs.load_checkpoint(tmp_path / "stopped")
    assert stopped["step"] == 16
    assert set(stopped["backend_state"]["optimizer"]) == {"muon", "adamw"}
    train(cfg, tmp_path / "stopped", resume=True)
    a, b = runs.load_checkpoint(tmp_path / "straight"), runs.load_checkpoint(tmp_path / "stopped")
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    for opt in ("muon", "adamw"):
        for k, state in a["backend_state"]["optimizer"][opt]["state"].items():
            for field, value in state.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(b["backend_state"]["optimizer"][opt]["state"][k][field])), (opt, k, field)
    # and the comparison can fail: without the optimizer state the resumed run differs
    assert a["backend_state"]["optimizer"]["muon"]["state"], "Muon kept momentum buffers"


def test_muon_learns(tiny_words_file: Path, tmp_path: Path) -> None:
    summary = train(muon_cfg(tiny_words_file, "mlp", steps=60), tmp_path / "run")
    assert summary.train_loss < 3.0  # ln 27 = 3.30 at the start


def test_numpy_refuses_muon_and_auto_picks_torch(tiny_words_file: Path) -> None:
    cfg = muon_cfg(tiny_words_file, "mlp")
    cfg.train.backend = "numpy"
    with pytest.raises(MakemoreError, match="train.optimizer = 'muon'.*train.backend = 'torch'"):
        check(cfg)
    cfg.train.backend = "auto"
    assert check(cfg).cfg.train.backend == "torch"


def test_an_unknown_optimizer_is_one_line_and_exit_2(tiny_words_file: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--config", str(write_config(tmp_path, tiny_words_file)),
                                      "--set", "train.optimizer=lion", "--run-dir", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "train.optimizer" in lines[0] and "muon" in lines[0], lines
    assert not (tmp_path / "run").exists()


def write_config(directory: Path, words: Path) -> Path:
    path = directory / "tiny.toml"
    path.write_text(muon_cfg(words, "mlp").to_toml(), encoding="utf-8")
    return path
