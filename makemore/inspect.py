"""`makemore inspect`: what a run's training statistics say, as the pictures of "makemore part 3"
and a table with the numbers out of their healthy range flagged in plain words.

The statistics are recorded while training with train.stats_interval > 0 (makemore.stats: every
hidden layer's activations, every parameter's gradient and update-to-data ratio, the loss), into
the run's stats.jsonl. For one recorded step (the last, or --step S) this module builds:

- the loss at the first recorded step next to ln(vocab_size), the loss of a uniform guess: a
  first-step loss far above it means the initial logits are confidently wrong;
- a row per hidden layer (activation mean, std, saturated %, dead %) and per parameter (gradient
  std, gradient-to-data ratio, update-to-data ratio), each with a flag where a number is out of
  the lecture's healthy range (see the constants below);
- the figures (makemore.plots): activation and gradient histograms, the update-to-data ratio of
  every weight matrix against step with the −3 guide, and the saturation map: the run's torch
  model on one batch of dev examples, white where a unit sits in a flat part of its non-linearity.

Source: A. Karpathy, "Building makemore Part 3: Activations & Gradients, BatchNorm" (2022).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from makemore import runs
from makemore.errors import MakemoreError
from makemore.models import initial_model
from makemore.models.base import Dropout, HiddenCapture
from makemore.plots import plot_activations, plot_gradients, plot_saturation, plot_update_ratios
from makemore.stats import flat_mask

#: A tanh layer with a larger share of saturated entries is flagged: at the first step (the
#: initialisation; Kaiming's gain 5/3 on unit-variance inputs saturates about 20%, the lecture's
#: plain randn init about 70%), and later in training, when saturation has usually grown.
SATURATED_HIGH_AT_INIT, SATURATED_HIGH = 0.25, 0.50
#: A layer with more than this share of dead units (flat on every example of the batch) is flagged.
DEAD_HIGH = 0.01
#: A hidden layer whose activations have a smaller std is flagged: its signal is fading.
STD_LOW = 0.1
#: A weight matrix's update-to-data ratio (log10) above HIGH or below LOW (about 30 times the
#: lecture's rule of thumb of −3, either way) is flagged after the first step; at the first step it
#: reflects the initial scale (a matrix initialised small has a large ratio) and is not judged.
UPDATE_RATIO_HIGH, UPDATE_RATIO_LOW = -1.5, -4.5
#: A weight matrix whose gradient std is this many times below the largest one's is flagged.
GRAD_VANISH = 100.0
#: A first-step loss more than this many nats above ln(vocab_size) is flagged.
FIRST_LOSS_EXCESS = 1.0
#: Examples (rows) of the saturation map: the lecture's batch of 32.
SATURATION_EXAMPLES = 32


@dataclass
class Inspection:
    """What `inspect_run` found: the rows of the table (with their flags) and what the figures need."""

    run_dir: Path
    step: int
    """The recorded step shown (1 = the first step; its activations come from the initial parameters)."""
    recorded_steps: list[int]
    first_step: int
    first_loss: float
    """Minibatch NLL (nats/char) of the first recorded step."""
    vocab_size: int
    loss_flag: str | None
    layers: list[dict[str, Any]]
    """The recorded layers at `step` (makemore.stats.layer_stats), each with "flag" added."""
    params: list[dict[str, Any]]
    """The recorded parameters at `step` (makemore.stats.param_stats), each with "grad_data" and "flag" added."""
    ratio_series: list[tuple[str, list[int], list[float]]]
    """(name, steps, log10 update-to-data ratios) of every weight matrix, over every recorded step (NaN where undefined)."""
    figures: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What `write_figures` could not draw, and why."""

    @property
    def ln_vocab_size(self) -> float:
        """The loss of a uniform guess over the vocabulary, nats/char."""
        return math.log(self.vocab_size)

    def flags(self) -> list[str]:
        """Every flag, each prefixed with where it was raised."""
        found = [f"loss: {self.loss_flag}"] if self.loss_flag else []
        return found + [f"{row['name']}: {row['flag']}" for row in self.layers + self.params if row["flag"]]

    def to_dict(self) -> dict[str, Any]:
        """The JSON of `makemore inspect --json` (non-finite numbers as null)."""
        def clean(x: Any) -> Any:
            return None if isinstance(x, float) and not math.isfinite(x) else x

        layers = [{k: clean(row[k]) for k in ("name", "kind", "mean", "std", "saturated", "dead", "flag")} for row in self.layers]
        params = [{k: clean(row[k]) for k in ("name", "shape", "std", "grad_mean", "grad_std", "grad_data", "update_ratio", "flag")}
                  for row in self.params]
        return {"run": str(self.run_dir), "step": self.step, "recorded_steps": len(self.recorded_steps),
                "first_step": self.first_step, "first_loss": clean(self.first_loss), "ln_vocab_size": self.ln_vocab_size,
                "loss_flag": self.loss_flag, "layers": layers, "params": params, "flags": self.flags(),
                "figures": [str(p) for p in self.figures], "notes": self.notes}


def is_matrix(param: dict[str, Any]) -> bool:
    """Whether a recorded parameter is a weight matrix (or embedding table): what the lecture plots."""
    return len(param["shape"]) >= 2


def load_stats(run: runs.Run) -> list[dict[str, Any]]:
    """The run's recorded statistics, in step order.

    Raises:
        MakemoreError: none were recorded, saying which key to set.
    """
    records = runs.read_stats(run.path)
    if records:
        return records
    if run.family.counted:
        raise MakemoreError(f"{run.path}: a model.type = {run.config.model.type!r} run is counted in one pass: it has no hidden layers or steps to inspect")
    raise MakemoreError(f"{run.path}: no training statistics were recorded: train with --set train.stats_interval=100 "
                        f"(backend torch or numpy) to record them into {runs.STATS}")


def nearest_record(records: list[dict[str, Any]], step: int | None) -> dict[str, Any]:
    """The record at `step`, or the one nearest it (the earlier on a tie); the last one for None."""
    if step is None:
        return records[-1]
    return min(records, key=lambda r: (abs(r["step"] - step), r["step"]))


def layer_flag(layer: dict[str, Any], first: bool) -> str | None:
    """The plain-words flag of one hidden layer's record ("; " between several), or None when it looks healthy.

    `first`: the record is of the first step, whose activations come from the initialisation.
    """
    sat, dead, std = layer["saturated"], layer["dead"], layer["std"]
    if not math.isfinite(std):
        return "non-finite activations: training diverged"
    flags = []
    if sat is not None and sat > (SATURATED_HIGH_AT_INIT if first else SATURATED_HIGH):
        flags.append(f"{sat:.0%} saturated: " + ("the initialisation is too large for tanh" if first
                                                  else "units stuck at ±1 pass back little gradient"))
    if dead is not None and dead > DEAD_HIGH:
        flags.append(f"{dead:.0%} of units dead: flat on every example, they do not learn")
    if std < STD_LOW:
        flags.append(f"activation std {std:.3f}: the signal is fading (weights too small)")
    return "; ".join(flags) or None


def param_flag(param: dict[str, Any], largest_grad_std: float, first: bool) -> str | None:
    """The plain-words flag of one parameter's record, or None when it looks healthy.

    largest_grad_std: the largest gradient std among the run's weight matrices at the same step;
    first: the record is of the first step (update ratios are not judged there).
    """
    grad_std, ratio = param["grad_std"], param["update_ratio"]
    if grad_std is None or grad_std == 0:
        return "no gradient reaches it"
    if not math.isfinite(grad_std):
        return "non-finite gradient: training diverged"
    if not is_matrix(param):
        return None
    if grad_std * GRAD_VANISH < largest_grad_std:
        return f"gradient {largest_grad_std / grad_std:.0f}x below the largest: it vanishes on the way back"
    if first or ratio is None:
        return None
    if ratio > UPDATE_RATIO_HIGH:
        return f"update ratio {ratio:.1f}: the learning rate is probably too high"
    if ratio < UPDATE_RATIO_LOW:
        return f"update ratio {ratio:.1f}: it barely moves (learning rate too low?)"
    return None


def loss_flag(first_loss: float, vocab_size: int) -> str | None:
    """The flag of the first-step loss against ln(vocab_size), the loss of a uniform guess."""
    uniform = math.log(vocab_size)
    if math.isfinite(first_loss) and first_loss <= uniform + FIRST_LOSS_EXCESS:
        return None
    return (f"first-step loss {first_loss:.2f} is far above ln({vocab_size}) = {uniform:.2f}, a uniform guess: "
            "the initial logits are large and confidently wrong (scale the output layer's initial weights down)")


def inspect_run(run: runs.Run, step: int | None = None) -> Inspection:
    """The table rows and flags of a run's statistics at the recorded step nearest `step` (None: the last).

    Raises:
        MakemoreError: the run recorded no statistics.
    """
    records = load_stats(run)
    record, first = nearest_record(records, step), records[0]
    at_init = record["step"] == 1  # its activations and gradients come from the initial parameters
    layers = [dict(layer, flag=layer_flag(layer, at_init)) for layer in record["layers"]]
    matrices = [p["grad_std"] for p in record["params"] if is_matrix(p) and p["grad_std"] is not None and math.isfinite(p["grad_std"])]
    largest = max(matrices, default=0.0)
    params = [dict(p, grad_data=p["grad_std"] / p["std"] if p["grad_std"] is not None and p["std"] else None,
                   flag=param_flag(p, largest, at_init)) for p in record["params"]]
    steps = [r["step"] for r in records]
    by_name = [{p["name"]: p["update_ratio"] for p in r["params"]} for r in records]
    series = [(p["name"], steps, [math.nan if ratios.get(p["name"]) is None else ratios[p["name"]] for ratios in by_name])
              for p in record["params"] if is_matrix(p)]
    vocab_size = run.vocab.vocab_size
    judged = loss_flag(first["loss"], vocab_size) if first["step"] == 1 else None  # a run recording from a resume has no first step
    return Inspection(run.path, record["step"], steps, first["step"], first["loss"], vocab_size, judged, layers, params, series)


def saturation_maps(run: runs.Run, initial: bool, examples: int = SATURATION_EXAMPLES, seed: int = 0) -> list[tuple[str, str, np.ndarray]]:
    """Where each hidden layer's units sit in a flat part of their non-linearity (makemore.stats.flat_mask:
    tanh |h| > 0.97, relu h = 0), on one batch of dev examples.

    The run's torch model (or, with `initial`, the model as initialised from train.seed: the
    parameters the first recorded step saw) runs one forward pass in training mode, as during
    training (BatchNorm with the batch's statistics), with dropout off, on `examples` dev
    examples drawn with np.random.default_rng(seed). A copy of the model is used, so the run's is untouched.

    Returns:
        (layer name, kind, flat bool (rows, units)) of every layer whose kind has a flat region;
        rows are the examples (for a sequence model, the positions of the first examples).
    """
    model = initial_model(run.config, run.vocab.vocab_size, run.model.block_size, len(run.labels or ())) if initial else copy.deepcopy(run.model)
    view = run.view("dev")
    if len(view) == 0:
        return []
    ix = np.sort(np.random.default_rng(seed).choice(len(view), size=min(examples, len(view)), replace=False))  # (b,)
    X, _, *L = next(view.batches(ix[None, :]))  # (b, block_size) or (b, T)[, labels (b,)]
    model.train()
    for module in model.modules():
        if isinstance(module, (Dropout, nn.Dropout)):
            module.eval()
    with torch.no_grad(), HiddenCapture(model) as capture:
        model(torch.from_numpy(X), **({"label": torch.from_numpy(L[0])} if L else {}))
    maps = []
    for name, kind, h in capture.outputs():  # h (N, units)
        flat = flat_mask(kind, h[:examples].numpy())
        if flat is not None:
            maps.append((name, kind, flat))
    return maps


def write_figures(ins: Inspection, run: runs.Run, out_dir: Path) -> list[Path]:
    """Draw activations.png, gradients.png, update_ratio.png and saturation.png into out_dir; record
    their paths in ins.figures (and why a figure was not drawn in ins.notes) and return them."""
    paths = runs.inspect_pngs(out_dir)
    ins.figures = [
        plot_activations(ins.layers, ins.step, paths["activations"]),
        plot_gradients([p for p in ins.params if is_matrix(p)], ins.step, paths["gradients"]),
        plot_update_ratios(ins.ratio_series, ins.step, paths["update_ratio"]),
    ]
    initial = ins.step == 1
    try:
        maps = saturation_maps(run, initial)
    except MakemoreError as e:  # e.g. the data file is gone: the other figures still stand
        ins.notes.append(f"no saturation map: {e}")
        return ins.figures
    if maps:
        where = "the initial parameters (step 0, rebuilt from train.seed)" if initial else f"the checkpoint's parameters (step {run.step:,})"
        ins.figures.append(plot_saturation(maps, where, paths["saturation"]))
    else:
        ins.notes.append("no saturation map: no tanh or relu hidden layer (gelu has no flat region)")
    return ins.figures
