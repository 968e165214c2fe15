"""Issue 13: training statistics (activations, gradients, update-to-data ratios) and `makemore inspect`.

The statistics are checked against numbers computed by hand in the tests (saturation of scaled
weights, the update ratio of an SGD step), the torch and numpy backends against each other on the
same run, the driver's recording schedule and resume, that nothing is left behind when recording
is off, and the command end to end (its table, flags, JSON, PNGs and errors). Figures are checked
through the matplotlib objects that draw them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from makemore import inspect as insp
from makemore import plots, runs, stats
from makemore.data import Windows
from makemore.prepare import check
from makemore.backends.numpy_mlp import NumpyBackend
from makemore.backends.torch_backend import TorchBackend
from makemore.cli import app
from makemore.config import Config
from makemore.errors import MakemoreError
from makemore.models import FAMILIES, Family, build_model
from makemore.models.base import HiddenCapture, hidden_layers, lm_loss
from makemore.training import train
from tests.conftest import tiny_cfg, tiny_overrides
from tests.test_explore import assert_png

V, T = 27, 3  # vocab_size, block_size of the in-process models


def make_cfg(**model: object) -> Config:
    """The lecture's MLP shape (n_embd 10, n_hidden 200) on a 27-token vocabulary, SGD."""
    cfg = Config()
    cfg.data.block_size = T
    for key, value in model.items():
        setattr(cfg.model, key, value)
    return cfg


def contexts(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, V, (n, T)), rng.integers(0, V, n)  # (n, T), (n,)


def first_layer(record: dict) -> dict:
    return record["layers"][0]


# --- the statistics against numbers computed by hand -----------------------------------------------


def test_weights_scaled_by_ten_saturate_over_half_and_kaiming_matches_its_gaussian():
    """Kaiming's tanh gain 5/3 on unit-variance inputs makes the pre-activation ~ N(0, (5/3)²), so
    P(|tanh| > 0.97) = P(|z| > atanh(0.97)·3/5) ≈ 21% (lecture part 3 shows 20% for its first
    layer); the lecture's plain randn init and weights ×10 saturate most units."""
    X, Y = contexts(1024)
    kaiming = TorchBackend(make_cfg(), V)
    _, record = kaiming.recorded_step(torch.from_numpy(X), torch.from_numpy(Y), 0.1)
    expected = math.erfc(math.atanh(stats.SATURATION) / (5 / 3) / math.sqrt(2))  # two-sided Gaussian tail
    assert first_layer(record)["saturated"] == pytest.approx(expected, abs=0.03)
    assert first_layer(record)["saturated"] < insp.SATURATED_HIGH_AT_INIT

    scaled = TorchBackend(make_cfg(), V)
    with torch.no_grad():
        scaled.model.W1 *= 10
    _, record = scaled.recorded_step(torch.from_numpy(X), torch.from_numpy(Y), 0.1)
    assert first_layer(record)["saturated"] > 0.5

    lecture = NumpyBackend(make_cfg(init="lecture"), V)
    _, record = lecture.recorded_step(X, Y, 0.1)
    assert first_layer(record)["saturated"] > 0.5


def autograd_grads(cfg: Config, X: np.ndarray, Y: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name → (initial value, gradient) of the model cfg describes, by torch autograd in float64."""
    model = build_model(cfg.model, V, T, torch.Generator().manual_seed(cfg.train.seed)).double()
    _, loss = model(torch.from_numpy(X), torch.from_numpy(Y))
    loss.backward()
    return {name: (p.detach().numpy(), p.grad.numpy()) for name, p in model.named_parameters()}


def test_update_ratio_of_an_sgd_step_is_lr_times_grad_over_param():
    """SGD's update is −lr·grad, so the recorded ratio must be log10(lr·std(grad) / std(param after)),
    with the gradient computed here by torch autograd on a float64 copy of the same model."""
    cfg = make_cfg(n_embd=4, n_hidden=16)
    X, Y = contexts(32)
    lr = 0.1
    by_hand = {name: math.log10(lr * g.std() / (p - lr * g).std()) for name, (p, g) in autograd_grads(cfg, X, Y).items()}

    _, exact = NumpyBackend(cfg, V, dtype=np.float64).recorded_step(X, Y, lr)
    _, single = TorchBackend(cfg, V).recorded_step(torch.from_numpy(X), torch.from_numpy(Y), lr)
    assert [p["name"] for p in exact["params"]] == [p["name"] for p in single["params"]] == list(by_hand)
    for p in exact["params"]:
        assert p["update_ratio"] == pytest.approx(by_hand[p["name"]], abs=2e-5), p["name"]
    for p in single["params"]:  # float32: the update is a difference of nearby numbers
        assert p["update_ratio"] == pytest.approx(by_hand[p["name"]], abs=2e-3), p["name"]


def test_update_is_what_the_optimizer_did_for_adamw_too():
    """AdamW's first step moves every entry by lr·g/(|g| + ε) ≈ ±lr, whatever the gradient's size:
    the ratio recorded is log10(lr·std(sign(grad)) / std(param after)), not lr·std(grad)'s."""
    cfg = make_cfg(n_embd=4, n_hidden=16)
    cfg.train.optimizer = "adamw"
    X, Y = contexts(32)
    lr = 0.01
    _, record = NumpyBackend(cfg, V, dtype=np.float64).recorded_step(X, Y, lr)
    for (name, (p, g)), rec in zip(autograd_grads(cfg, X, Y).items(), record["params"]):
        update = -lr * np.sign(g)
        assert rec["update_ratio"] == pytest.approx(math.log10(update.std() / (p + update).std()), abs=1e-3), name


def test_layer_statistics_by_hand():
    h = np.array([[0.99, 0.0, -0.98, 0.5], [-0.99, 0.1, 0.2, 0.5], [0.98, 0.2, 0.1, -0.99]])  # (3 examples, 4 units)
    tanh = stats.layer_stats("act1", "tanh", h)
    assert tanh["saturated"] == pytest.approx(5 / 12)
    assert tanh["dead"] == pytest.approx(1 / 4)  # unit 0 is saturated on every example
    assert tanh["mean"] == pytest.approx(h.mean()) and tanh["std"] == pytest.approx(h.std(), rel=1e-5)
    assert sum(tanh["hist"]["counts"]) == h.size and tanh["hist"]["counts"][-1] == 2  # 0.99, 0.98
    relu = stats.layer_stats("act1", "relu", np.maximum(h, 0))
    assert relu["saturated"] is None and relu["dead"] == pytest.approx(0.0)
    relu = stats.layer_stats("act1", "relu", np.array([[0.0, 1.0], [0.0, 2.0]]))
    assert relu["dead"] == 0.5
    gelu = stats.layer_stats("act1", "gelu", h)
    assert gelu["saturated"] is None and gelu["dead"] is None
    p = stats.param_stats("b", np.array([1.0]), np.array([0.5]), np.array([0.1]))
    assert p["update_ratio"] is None  # a one-element parameter has no spread


def test_recorded_steps_are_the_first_every_interval_and_the_last():
    assert [s for s in range(1, 61) if stats.is_recorded(s, 25, 60)] == [1, 25, 50, 60]
    assert not any(stats.is_recorded(s, 0, 60) for s in range(1, 61))


# --- hidden layers are found by module type, and the hooks go away ---------------------------------


def test_hidden_layers_are_found_by_module_type_in_any_model():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 4), nn.ReLU())
            self.cell = nn.GELU(approximate="tanh")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.body(x)  # (B, 4)
            return self.cell(self.cell(y))  # applied twice, as an RNN cell's non-linearity at every position

    net = Net()
    assert [(n, k) for n, k, _ in hidden_layers(net)] == [("body.1", "tanh"), ("body.3", "relu"), ("cell", "gelu")]
    with HiddenCapture(net) as capture:
        net(torch.randn(6, 3))
    shapes = {n: tuple(h.shape) for n, _, h in capture.outputs()}
    assert shapes == {"body.1": (6, 5), "body.3": (6, 4), "cell": (12, 4)}
    assert all(not m._forward_hooks for m in net.modules())


def test_mlp_layers_are_activation_modules_and_its_parameters_keep_their_names():
    model = build_model(make_cfg(n_layers=2, activation="relu").model, V, T)
    assert [(n, k) for n, k, _ in hidden_layers(model)] == [("act1", "relu"), ("act2", "relu")]
    assert list(model.state_dict()) == ["C", "W1", "b1", "W2", "b2", "W3", "b3"]


def test_recording_leaves_no_hooks_and_the_driver_never_records_when_off(tiny_words_file, tmp_path, monkeypatch):
    backend = TorchBackend(make_cfg(n_embd=4, n_hidden=8), V)
    X, Y = contexts(16)
    backend.recorded_step(torch.from_numpy(X), torch.from_numpy(Y), 0.1)
    assert all(not m._forward_hooks for m in backend.model.modules())
    assert not backend.optimizer._optimizer_step_pre_hooks

    def refuse(*args, **kwargs):
        raise AssertionError("recorded_step called with train.stats_interval = 0")

    monkeypatch.setattr(TorchBackend, "recorded_step", refuse)
    monkeypatch.setattr(NumpyBackend, "recorded_step", refuse)
    for backend_name in ("torch", "numpy"):
        train(tiny_cfg(tiny_words_file, 30, f"train.backend={backend_name}"), tmp_path / backend_name)
        assert not (tmp_path / backend_name / runs.STATS).exists()
        assert runs.read_stats(tmp_path / backend_name) == []


def test_mlx_refuses_to_record_with_one_line():
    cfg = make_cfg()
    cfg.train.backend, cfg.train.stats_interval, cfg.train.device = "mlx", 100, "cpu"
    with pytest.raises(MakemoreError, match=r"statistics are recorded with train.backend = torch or numpy") as e:
        check(cfg)
    assert "\n" not in str(e.value)


# --- both backends record the same numbers; the driver's schedule and resume ----------------------


@pytest.mark.parametrize("options", [[], ["model.n_layers=2", "model.activation=relu"]], ids=["lecture-mlp", "2-layers-relu"])
def test_torch_and_numpy_record_the_same_numbers(tiny_words_file, tmp_path, options):
    """Same initial weights, same minibatches: the two backends' records agree to float32 rounding."""
    records = {}
    for backend in ("torch", "numpy"):
        cfg = tiny_cfg(tiny_words_file, 60, f"train.backend={backend}", "train.stats_interval=25", *options)
        train(cfg, tmp_path / backend)
        records[backend] = runs.read_stats(tmp_path / backend)
    a, b = records["torch"], records["numpy"]
    assert [r["step"] for r in a] == [r["step"] for r in b] == [1, 25, 50, 60]
    for ra, rb in zip(a, b):
        assert ra["loss"] == pytest.approx(rb["loss"], abs=1e-4)
        assert [l["name"] for l in ra["layers"]] == [l["name"] for l in rb["layers"]]
        for la, lb in zip(ra["layers"], rb["layers"]):
            for key in ("mean", "std", "saturated", "dead"):
                assert la[key] == pytest.approx(lb[key], abs=1e-4), (ra["step"], la["name"], key)
            assert np.abs(np.subtract(la["hist"]["counts"], lb["hist"]["counts"])).sum() <= 2  # an entry on a bin edge
        assert [p["name"] for p in ra["params"]] == [p["name"] for p in rb["params"]]
        for pa, pb in zip(ra["params"], rb["params"]):
            for key in ("std", "grad_mean", "grad_std"):
                assert pa[key] == pytest.approx(pb[key], rel=1e-3, abs=1e-7), (ra["step"], pa["name"], key)
            assert pa["update_ratio"] == pytest.approx(pb["update_ratio"], abs=5e-3), (ra["step"], pa["name"])
    if options:
        assert [l["name"] for l in a[0]["layers"]] == ["act1", "act2"] and a[0]["layers"][0]["saturated"] is None
        run = runs.load_run(tmp_path / "numpy")
        maps = insp.saturation_maps(run, initial=False)
        assert [(name, kind) for name, kind, _ in maps] == [("act1", "relu"), ("act2", "relu")]
        assert maps[0][2].shape == (min(insp.SATURATION_EXAMPLES, len(run.view("dev"))), 16)


def test_a_resumed_run_records_what_an_uninterrupted_one_does(tiny_words_file, tmp_path):
    straight = tmp_path / "straight"
    train(tiny_cfg(tiny_words_file, 60, "train.stats_interval=25"), straight)
    resumed = tmp_path / "resumed"
    train(tiny_cfg(tiny_words_file, 30, "train.stats_interval=25", "train.lr_milestones=[30]"), resumed)  # the same run, stopped at 30
    with open(resumed / runs.STATS, "a", encoding="utf-8") as f:  # as if a killed session had gone on past it
        f.write(json.dumps({"step": 45, "loss": 0.0, "layers": [], "params": []}) + "\n")
    train(tiny_cfg(tiny_words_file, 60, "train.stats_interval=25"), resumed, resume=True)
    by_step = {r["step"]: r for r in runs.read_stats(resumed)}
    assert sorted(by_step) == [1, 25, 30, 50, 60]  # 30: the last step of the first session
    for r in runs.read_stats(straight):
        assert by_step[r["step"]] == r


# --- inspect: flags, figures, the command ------------------------------------------------------------


def test_flags_in_plain_words():
    tanh = {"name": "act1", "kind": "tanh", "mean": 0.0, "std": 0.9, "saturated": 0.54, "dead": 0.0}
    assert insp.layer_flag(tanh, first=True) == "54% saturated: the initialisation is too large for tanh"
    assert insp.layer_flag(dict(tanh, saturated=0.2), first=True) is None
    assert "dead" in insp.layer_flag({**tanh, "saturated": 0.1, "dead": 0.2}, first=False)
    W = {"name": "W1", "shape": [30, 200], "std": 0.3, "grad_std": 0.01, "update_ratio": -1.2}
    assert insp.param_flag(W, 0.01, first=False) == "update ratio -1.2: the learning rate is probably too high"
    assert insp.param_flag(W, 0.01, first=True) is None  # at the first step the ratio reflects the initial scale
    assert insp.param_flag(dict(W, update_ratio=-3.1), 0.01, first=False) is None
    assert "vanishes" in insp.param_flag(dict(W, update_ratio=-3.0), 5.0, first=False)
    assert insp.param_flag(dict(W, grad_std=0.0), 0.01, first=False) == "no gradient reaches it"
    assert "far above ln(27) = 3.30" in insp.loss_flag(27.8, 27)
    assert insp.loss_flag(3.31, 27) is None


def test_figures_draw_one_curve_per_layer_and_matrix():
    cfg = make_cfg(n_embd=4, n_hidden=16, n_layers=2)
    X, Y = contexts(64)
    backend = NumpyBackend(cfg, V)
    records = []
    for step in (1, 2, 3):
        _, record = backend.recorded_step(X, Y, 0.1)
        records.append({"step": step, **record})
    matrices = [p for p in records[-1]["params"] if len(p["shape"]) == 2]
    fig = plots.activations_figure(records[-1]["layers"], 3)
    assert len(fig.axes[0].lines) == 2 and "saturated" in fig.axes[0].get_legend().get_texts()[0].get_text()
    fig = plots.gradients_figure(matrices, 3)
    assert len(fig.axes[0].lines) == len(matrices) == 4  # C, W1, W2, W3
    series = [(p["name"], [1, 2, 3], [r["params"][i]["update_ratio"] for r in records])
              for i, p in enumerate(records[-1]["params"]) if len(p["shape"]) == 2]
    fig = plots.update_ratio_figure(series, 3)
    lines = fig.axes[0].lines
    assert len(lines) == 4 + 2  # one per matrix, the −3 guide, the step marker
    assert list(lines[4].get_ydata()) == [-3.0, -3.0]
    mask = np.zeros((5, 16), dtype=bool)
    mask[:, 3] = True
    fig = plots.saturation_figure([("act1", "tanh", mask), ("act2", "relu", ~mask)], "test")
    assert len(fig.axes) == 2
    assert np.array_equal(fig.axes[0].images[0].get_array(), mask)
    assert "1 of 16 units white in every row" in fig.axes[0].get_title()
    import matplotlib.pyplot as plt

    plt.close("all")


def test_inspect_tells_the_lecture_story_end_to_end(tiny_words_file, tmp_path, runner):
    """The lecture's init: a first-step loss far above ln(vocab_size) and a saturated layer, in the
    table, the JSON and the pictures; every PNG a real image."""
    run_dir = tmp_path / "run"
    args = ["train", "--config", "configs/names.toml", *tiny_overrides(tiny_words_file, 60), "--set", "model.init=lecture",
            "--set", "train.stats_interval=20", "--run-dir", str(run_dir), "-q"]  # names.toml: the numpy backend
    assert runner.invoke(app, args).exit_code == 0
    result = runner.invoke(app, ["inspect", str(run_dir), "--step", "1", "--json", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    vocab_size = runs.read_vocab_size(run_dir)
    assert report["step"] == 1 and report["recorded_steps"] == 4 and report["ln_vocab_size"] == pytest.approx(math.log(vocab_size))
    assert report["first_loss"] > math.log(vocab_size) + insp.FIRST_LOSS_EXCESS and "far above" in report["loss_flag"]
    assert report["layers"][0]["saturated"] > 0.5 and "too large for tanh" in report["layers"][0]["flag"]
    assert [Path(p).name for p in report["figures"]] == ["activations.png", "gradients.png", "update_ratio.png", "saturation.png"]
    for path in report["figures"]:
        assert_png(Path(path))
    result = runner.invoke(app, ["inspect", str(run_dir), "--step", "33"])  # the table, at the nearest recorded step (40)
    assert result.exit_code == 0, result.output
    assert "step 40" in result.stdout and "act1" in result.stdout and "W1" in result.stdout
    assert (run_dir / "saturation.png").is_file()  # by default into the run directory
    tiny_words_file.unlink()  # without its data the run has no dev batch: everything but the saturation map
    result = runner.invoke(app, ["inspect", str(run_dir), "--json", "--out", str(tmp_path / "no-data")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert len(report["figures"]) == 3 and report["notes"][0].startswith("no saturation map:")


def test_inspect_without_statistics_says_which_key_to_set(tiny_words_file, tmp_path, runner):
    run_dir = tmp_path / "run"
    assert runner.invoke(app, ["train", "--config", "configs/names.toml", *tiny_overrides(tiny_words_file, 20), "--run-dir", str(run_dir), "-q"]).exit_code == 0
    result = runner.invoke(app, ["inspect", str(run_dir)])
    assert result.exit_code == 2
    assert "train.stats_interval" in result.stderr and len(result.stderr.strip().splitlines()) == 1


class ToyFamily(nn.Module):
    """A model family makemore has never seen: an embedding, two Linear + GELU blocks and a tanh mix."""

    def __init__(self, cfg, vocab_size: int, block_size: int, generator: torch.Generator | None = None):
        super().__init__()
        self.vocab_size, self.block_size = vocab_size, block_size
        self.emb = nn.Embedding(vocab_size, 8)
        self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(8 * block_size if i == 0 else 16, 16), nn.GELU(approximate="tanh"))
                                     for i in range(2)])
        self.mix = nn.Tanh()
        self.head = nn.Linear(16, vocab_size)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        x = self.emb(idx).flatten(1)  # (B, block_size·8)
        for block in self.blocks:
            x = block(x)  # (B, 16)
        logits = self.head(self.mix(x))  # (B, vocab_size)
        return logits, (lm_loss(logits, targets) if targets is not None else None)


def test_any_family_is_recorded_and_inspected_without_code_of_its_own(tiny_words_file, tmp_path, runner, monkeypatch):
    """Hidden layers are found by module type and parameters by name, so a new family needs nothing here."""
    monkeypatch.setitem(FAMILIES, "toy", Family("toy", ToyFamily, (), Windows, embedding="emb.weight"))
    torch.manual_seed(0)
    run_dir = tmp_path / "toy"
    train(tiny_cfg(tiny_words_file, 30, "model.type=toy", "train.backend=torch", "train.stats_interval=10"), run_dir)
    result = runner.invoke(app, ["inspect", str(run_dir), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [(l["name"], l["kind"]) for l in report["layers"]] == [("blocks.0.1", "gelu"), ("blocks.1.1", "gelu"), ("mix", "tanh")]
    assert [p["name"] for p in report["params"]][:3] == ["emb.weight", "blocks.0.0.weight", "blocks.0.0.bias"]
    assert [Path(p).name for p in report["figures"]][-1] == "saturation.png"  # the tanh layer's
