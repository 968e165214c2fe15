"""Ensembles: a mixture of trained runs' next-character distributions (issue 25, item 6).

    p(next | context) = Σ_i w_i p_i(next | context),   w_i ≥ 0, Σ_i w_i = 1

Members may be of any family and view: a window member reads the last block_size characters
before each position, a sequence member the whole prefix. `make_ensemble` writes an ensemble
directory (ensemble.json: the members' absolute paths and checkpoints, the weights, the
vocabulary); `load_ensemble` loads it as a makemore.runs.Run whose `model` is a `Mixture`, so
evaluate, sample and score read it through the same code paths as any run.

The weights are fitted on the dev split (the default) by expectation-maximisation on the mixture
weights (Dempster, Laird & Rubin 1977), which never increases the dev NLL, started from equal
weights; each single member (a one-hot weight vector) is a candidate too, and the lowest dev NLL
wins, so a fitted ensemble is never worse on dev than its best member. Or equal weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from makemore import runs
from makemore.data import IGNORE, Sequences, View, Windows
from makemore.errors import MakemoreError
from makemore.models import Family
from makemore.models.base import lm_loss

FORMAT = "makemore-ensemble-1"
WEIGHTINGS = ("fitted", "equal")

#: EM stops after this many iterations, or when no weight moves by more than EM_TOL.
EM_ITERATIONS = 1000
EM_TOL = 1e-10


class Mixture(nn.Module):
    """The ensemble's model: forward(idx, targets=None) -> (logits, loss) like every family's, where
    logits = ln Σ_i w_i softmax(logits_i), a valid logits tensor (its softmax is the mixture).

    Args:
        members: (model, view type) of each member, in evaluation mode.
        weights: (K,) mixture weights summing to 1.
        view: the view the ensemble reads: Windows when every member is a window model (its
            block_size the largest member's; member i reads the last block_size_i characters),
            else Sequences (block_size the shortest sequence member's; a window member's contexts
            are cut from the boundary-padded prefix).
    """

    def __init__(self, members: list[tuple[nn.Module, type[View]]], weights: list[float], view: type[View], vocab_size: int):
        super().__init__()
        self.members = nn.ModuleList([m for m, _ in members])
        self.kinds = [kind for _, kind in members]
        self.view, self.vocab_size = view, vocab_size
        self.register_buffer("weights", torch.tensor(weights, dtype=torch.float32))  # (K,)
        windows = [m.block_size for m, kind in members if kind is Windows]
        sequences = [m.block_size for m, kind in members if kind is not Windows]
        self.block_size = min(sequences) if sequences else max(windows)

    def component_log_probs(self, idx: torch.Tensor) -> torch.Tensor:
        """ln p_i of every member at every position idx asks for: (K, B, vocab_size) for windows
        idx (B, block_size), (K, B, T, vocab_size) for sequences idx (B, T)."""
        out = []
        for model, kind in zip(self.members, self.kinds):
            if self.view is Windows:
                logits, _ = model(idx[:, idx.shape[1] - model.block_size:])  # (B, vocab_size)
            elif kind is Windows:
                B, T = idx.shape
                k = model.block_size
                padded = torch.cat([idx.new_zeros(B, k - 1), idx], dim=1)  # (B, k - 1 + T): k boundaries before the first character
                logits, _ = model(padded.unfold(1, k, 1).reshape(B * T, k))  # (B·T, vocab_size)
                logits = logits.view(B, T, -1)  # (B, T, vocab_size)
            else:
                logits, _ = model(idx)  # (B, T, vocab_size)
            out.append(torch.log_softmax(logits.float(), dim=-1))
        return torch.stack(out)  # (K, ..., vocab_size)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        logp = self.component_log_probs(idx)  # (K, ..., vocab_size)
        log_w = torch.log(self.weights).view(-1, *([1] * (logp.dim() - 1)))  # (K, 1, ..., 1); −inf for a weight of 0
        logits = torch.logsumexp(logp + log_w, dim=0)  # (..., vocab_size) = ln Σ_i w_i p_i
        return logits, None if targets is None else lm_loss(logits, targets)


def _logsumexp(a: np.ndarray) -> np.ndarray:
    """ln Σ_k exp(a[k]) over axis 0 (entries may be −inf, not all of them)."""
    m = a.max(axis=0)  # (N,)
    return m + np.log(np.exp(a - m).sum(axis=0))


def mixture_nll(L: np.ndarray, w: np.ndarray) -> float:
    """Mean NLL (nats per target) of the mixture with weights w (K,) of members whose ln p of each
    target is L (K, N)."""
    with np.errstate(divide="ignore"):
        return float(-_logsumexp(L + np.log(w)[:, None]).mean())


def fit_weights(L: np.ndarray) -> np.ndarray:
    """The weights (K,) minimising `mixture_nll(L, w)`: EM from equal weights, where each step sets
    w_i to the mean over targets of the responsibility r_in = w_i p_in / Σ_j w_j p_jn (it never
    increases the NLL); then the better of that and each one-hot vector."""
    K = len(L)
    w = np.full(K, 1.0 / K)
    for _ in range(EM_ITERATIONS):
        a = L + np.log(w)[:, None]  # (K, N)
        new = np.exp(a - _logsumexp(a)).mean(axis=1)  # (K,) mean responsibilities
        done = np.abs(new - w).max() < EM_TOL
        w = new / new.sum()
        if done:
            break
    return min([w, *np.eye(K)], key=lambda c: mixture_nll(L, c))


@torch.inference_mode()
def target_log_probs(model: Mixture, view: View) -> np.ndarray:
    """ln p_i(target) of every member at every target of `view`: float64 (K, n_targets), in the view's order."""
    out = []
    for X, Y in view.chunks():
        logp = model.component_log_probs(torch.from_numpy(X))  # (K, ..., vocab_size)
        y = torch.from_numpy(Y).reshape(-1)  # (n,)
        flat = logp.reshape(len(logp), len(y), -1)  # (K, n, vocab_size)
        keep = y != IGNORE
        out.append(flat[:, keep].gather(2, y[keep].view(1, -1, 1).expand(len(flat), -1, 1)).squeeze(2).double().numpy())
    return np.concatenate(out, axis=1)  # (K, n_targets)


class EnsembleRun(runs.Run):
    """An ensemble directory loaded as a run: the first member's config and data (data.block_size
    the mixture's, for a window ensemble), the shared vocabulary, and a Mixture as `model`."""

    def __init__(self, path: Path, members: list[runs.Run], weights: list[float]):
        first = members[0]
        kinds = [m.family.view for m in members]
        view = Windows if all(k is Windows for k in kinds) else Sequences
        self._model = Mixture([(m.model, k) for m, k in zip(members, kinds)], weights, view, first.vocab.vocab_size).eval()
        self.inference, self.block_size = self._model, self._model.block_size
        self.path, self.which, self.members, self.labels = Path(path), "ensemble", members, None
        self.vocab, self.family = first.vocab, Family("ensemble", Mixture, (), view, embedding=None)
        config = first.config.to_dict()
        if view is Windows:
            config["data"]["block_size"] = self._model.block_size
        self.config = type(first.config).from_dict(config, source=str(runs.ensemble_file(path)))
        self.checkpoint = {"step": 0, "vocab": list(first.vocab.itos), "config": config, "data_sha256": first.checkpoint.get("data_sha256"),
                           "max_word_len": max(int(m.checkpoint.get("max_word_len", 0)) for m in members)}
        self._dataset = None


def _load_members(members: list[dict[str, Any]] | list[str | Path]) -> list[runs.Run]:
    """The member runs (entries {"path", "checkpoint"} or plain paths), checked to share one vocabulary.

    Raises:
        MakemoreError: no member; a member that does not exist, has no checkpoint or is an
            ensemble; a member whose vocabulary differs from the first one's.
    """
    if not members:
        raise MakemoreError("an ensemble needs at least one member run")
    loaded = []
    for m in members:
        path, which = (m["path"], m.get("checkpoint")) if isinstance(m, dict) else (m, None)
        if runs.is_ensemble(path):
            raise MakemoreError(f"{path}: an ensemble cannot be a member of another; name its members instead")
        run = runs.load_run(path, checkpoint=which)
        if run.labels is not None:
            raise MakemoreError(f"{path}: a labelled run cannot be a member of an ensemble (its members are mixed without labels)")
        if loaded and run.vocab.itos != loaded[0].vocab.itos:
            raise MakemoreError(f"{path}: its vocabulary {''.join(run.vocab.itos)!r} differs from {loaded[0].path}'s "
                                f"{''.join(loaded[0].vocab.itos)!r}: the members of an ensemble must share one vocabulary")
        loaded.append(run)
    return loaded


def make_ensemble(members: list[str | Path], out: str | Path, weights: str = "fitted") -> EnsembleRun:
    """Write the ensemble directory `out` of the runs `members` (each read from its best-dev
    checkpoint when it has one) and return it loaded.

    Args:
        weights: "fitted" (EM on the dev split of the first member's data, see `fit_weights`) or "equal".

    Raises:
        MakemoreError: `out` exists; an unknown weighting; a member as `_load_members` refuses it.
    """
    out = Path(out)
    if weights not in WEIGHTINGS:
        raise MakemoreError(f"--weights {weights!r}: choose fitted or equal")
    if out.exists():
        raise MakemoreError(f"{out} already exists: choose a new directory for the ensemble")
    loaded = _load_members(list(members))
    ensemble = EnsembleRun(out, loaded, [1.0 / len(loaded)] * len(loaded))
    L = target_log_probs(ensemble.model, ensemble.view("dev"))  # (K, n_dev)
    w = fit_weights(L) if weights == "fitted" else np.full(len(loaded), 1.0 / len(loaded))
    spec = {"format": FORMAT, "weighting": weights, "weights": [float(x) for x in w], "vocab": list(loaded[0].vocab.itos),
            "members": [{"path": str(m.path.resolve()), "checkpoint": m.which} for m in loaded],
            "dev_nll": mixture_nll(L, w), "member_dev_nll": [float(-row.mean()) for row in L]}
    try:
        out.mkdir(parents=True)
    except OSError as e:
        raise MakemoreError(f"{out}: cannot create the ensemble directory: {e.strerror or e}") from None
    runs.write_json(runs.ensemble_file(out), spec)
    return load_ensemble(out)


def load_ensemble(path: str | Path) -> EnsembleRun:
    """An ensemble directory (ensemble.json) loaded as a run.

    Raises:
        MakemoreError: an unreadable ensemble.json; a member that is gone or no longer fits.
    """
    spec = runs.read_ensemble(path)
    if spec.get("format") != FORMAT or len(spec.get("weights", [])) != len(spec.get("members", [])):
        raise MakemoreError(f"{runs.ensemble_file(path)}: not a makemore ensemble ({FORMAT})")
    loaded = _load_members(spec["members"])
    if list(loaded[0].vocab.itos) != spec["vocab"]:
        raise MakemoreError(f"{loaded[0].path}: its vocabulary is no longer the ensemble's")
    return EnsembleRun(Path(path), loaded, [float(x) for x in spec["weights"]])
