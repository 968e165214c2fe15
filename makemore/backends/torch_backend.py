"""The torch backend, the reference: the model's own forward, autograd for the backward, torch.optim for the update.

It trains every registered model family with every option, on any torch device (train.device).
Per-step overhead, not arithmetic, is what a small model's training time is made of: the
backend keeps the loss lazy (the driver reads it only at log records) and, on a CPU, uses one
thread for small steps, where a second thread only adds synchronisation (`choose_threads`).
For the MLP family on a CPU the NumPy backend, with its hand-derived backward, takes the same
steps faster (BENCHMARKS.md); configs/names.toml and configs/fast.toml use it.

Under torchrun (makemore.distributed) the model takes its steps wrapped in
torch.nn.parallel.DistributedDataParallel, which averages the ranks' gradients, and evaluation
is split over the ranks and summed.
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import torch

from makemore import distributed
from makemore.backends.base import Support, small_step
from makemore.config import ADAM_BETAS, ADAM_EPS, MUON_MOMENTUM, Config
from makemore.data import EVAL_CHUNK, View
from makemore.errors import MakemoreError
from makemore.models import build_model, family
from makemore.models.base import IGNORE, HiddenCapture, mean_nll, set_dropout_generator
from makemore.stats import step_stats
from makemore.threads import scoped

#: torch's own choice of CPU threads, before any backend changed it.
DEFAULT_THREADS = torch.get_num_threads()

#: Devices whose parameters AdamW updates with torch's fused kernel (make_optimizer).
FUSED_ADAMW_DEVICES = ("cpu", "cuda")


def make_optimizer(params: list[torch.nn.Parameter], cfg: Config) -> torch.optim.Optimizer:
    """torch.optim for train.optimizer: SGD (the lecture), SGD with momentum, or AdamW.

    The learning rate is set before every step from makemore.schedule.lr_at. On a CPU or a CUDA
    device AdamW runs as torch's fused kernel (one pass over every parameter; the same update as
    the per-tensor code to float rounding), which saves most of the optimizer's per-tensor
    overhead for models with many small parameter tensors, such as the transformer.
    """
    t = cfg.train
    if t.optimizer == "adamw":
        return _adamw(params, t.lr, t.weight_decay)
    momentum = t.momentum if t.optimizer == "momentum" else 0.0
    return torch.optim.SGD(params, lr=t.lr, momentum=momentum, weight_decay=t.weight_decay, foreach=True)


def _adamw(params: list[torch.nn.Parameter], lr: float, weight_decay: float) -> torch.optim.AdamW:
    """torch.optim.AdamW, fused on a CPU or a CUDA device (see `make_optimizer`)."""
    fused = bool(params) and all(p.device.type in FUSED_ADAMW_DEVICES for p in params)
    return torch.optim.AdamW(params, lr=lr, betas=ADAM_BETAS, eps=ADAM_EPS, weight_decay=weight_decay,
                             **({"fused": True} if fused else {"foreach": True}))


def muon_split(model: torch.nn.Module) -> tuple[list[str], list[str]]:
    """The parameter names of `model` that Muon updates (its hidden weight matrices) and those
    AdamW updates (the rest), each in the model's parameter order.

    A hidden matrix is a 2-D parameter that is not named by the model's `outer_matrices()`: the
    character (and position, and a conditional model's label) embedding tables and the output head, which map tokens in and logits
    out and are not the linear maps between hidden features Muon orthogonalises (Jordan et al.
    2024, "Muon: an optimizer for hidden layers"). Biases and norm gains (1-D) go to AdamW.

    Raises:
        ValueError: `outer_matrices()` names a parameter the model does not have (a renamed one).
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    outer = set(model.outer_matrices()) | ({"label_emb"} if getattr(model, "label_emb", None) is not None else set())  # a label table too
    missing = outer - {n for n, _ in named}
    if missing:
        raise ValueError(f"outer_matrices() names {', '.join(sorted(missing))}, which {type(model).__name__} does not have")
    hidden = [n for n, p in named if p.dim() == 2 and n not in outer]
    return hidden, [n for n, _ in named if n not in hidden]


def orthogonalize(G: torch.Tensor, coefficients: tuple[float, float, float], steps: int, eps: float) -> torch.Tensor:
    """Muon's Newton–Schulz orthogonalisation of a stack of matrices at once: G (k, rows, cols),
    rows ≤ cols → bfloat16 (k, rows, cols), each matrix G_i replaced by about the nearest
    semi-orthogonal matrix (U Vᵀ of its SVD G_i = U S Vᵀ, singular values pushed into about [0.5, 1.5]).

    Each matrix is divided by its Frobenius norm (at least eps), then `steps` times
    X ← a·X + (b·A + c·A²)·X with A = X·Xᵀ, (a, b, c) = coefficients (Jordan et al. 2024,
    "Muon: an optimizer for hidden layers in neural networks", its quintic iteration), in bfloat16
    as torch.optim.Muon computes it: the same operations on each matrix, batched.
    """
    a, b, c = coefficients
    X = G.bfloat16()  # (k, rows, cols)
    X = X / torch.linalg.vector_norm(X, dim=(1, 2)).clamp(min=eps)[:, None, None]  # (k, rows, cols), each of norm 1
    for _ in range(steps):
        A = X @ X.mT  # (k, rows, rows)
        B = torch.baddbmm(A, A, A, beta=b, alpha=c)  # (k, rows, rows) b·A + c·A·A
        X = torch.baddbmm(X, B, X, beta=a)  # (k, rows, cols) a·X + B·X
    return X


def _match_rms(lr: float, adjust_lr_fn: str | None, shape: torch.Size) -> float:
    """torch.optim.Muon's step size for a (rows, cols) matrix: lr·√max(1, rows/cols) ("original",
    the default), lr·0.2·√max(rows, cols) ("match_rms_adamw"), else lr."""
    rows, cols = shape
    if adjust_lr_fn in (None, "original"):
        return lr * math.sqrt(max(1.0, rows / cols))
    return lr * 0.2 * math.sqrt(max(rows, cols)) if adjust_lr_fn == "match_rms_adamw" else lr


class StackedMuon(torch.optim.Muon):
    """torch.optim.Muon with its per-matrix work batched: the same update, the same state
    ("momentum_buffer" per matrix, so checkpoints are interchangeable), fewer operations.

    torch.optim.Muon orthogonalises one matrix at a time: for a model of many small matrices
    (the transformer's four per block) the step is mostly per-operation overhead. Here the
    momentum is updated for every matrix in one foreach operation, the matrices of one shape (a
    tall one transposed, as Muon treats it) are orthogonalised as one stack (`orthogonalize`), and
    the updates of one shape are added in one foreach operation. Every matrix goes through the
    same arithmetic as in torch.optim.Muon.step, in the same order; only a batched product may
    round differently from a single one (tests/test_muon.py compares the two).
    """

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        """One Muon step of every matrix with a gradient; returns closure() if given (torch.optim's contract)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                self._step_group(group, params)
        return loss

    def _step_group(self, group: dict[str, Any], params: list[torch.Tensor]) -> None:
        """Muon's update of `params` (those of `group` with a gradient), grouped by shape."""
        grads = [p.grad for p in params]
        for p, g in zip(params, grads):
            if "momentum_buffer" not in self.state[p]:
                self.state[p]["momentum_buffer"] = torch.zeros_like(g)
        bufs = [self.state[p]["momentum_buffer"] for p in params]
        m, lr, wd = group["momentum"], group["lr"], group["weight_decay"]
        torch._foreach_lerp_(bufs, grads, 1 - m)  # B ← m·B + (1 − m)·g
        updates = torch._foreach_lerp(grads, bufs, m) if group["nesterov"] else bufs  # Nesterov: (1 − m)·g + m·B
        if wd:
            torch._foreach_mul_(params, 1 - lr * wd)  # decoupled weight decay
        stacks: dict[tuple[int, int], list[int]] = {}  # (rows, cols), rows ≤ cols → the matrices of that shape or its transpose
        for i, p in enumerate(params):
            stacks.setdefault((min(p.shape), max(p.shape)), []).append(i)
        for members in stacks.values():
            tall = [params[i].shape[0] > params[i].shape[1] for i in members]
            G = torch.stack([updates[i].T if t else updates[i] for i, t in zip(members, tall)])  # (k, rows, cols), rows ≤ cols
            O = orthogonalize(G, group["ns_coefficients"], group["ns_steps"], group["eps"]).unbind(0)  # k × (rows, cols) bfloat16
            for shape in dict.fromkeys(params[i].shape for i in members):  # each shape's own step size
                same = [j for j, i in enumerate(members) if params[i].shape == shape]
                torch._foreach_add_([params[members[j]] for j in same], [O[j].T if tall[j] else O[j] for j in same],
                                    alpha=-_match_rms(lr, group["adjust_lr_fn"], shape))


class MuonAdamW:
    """train.optimizer = "muon": torch.optim.Muon (as `StackedMuon`) on the hidden matrices (`muon_split`) at train.lr,
    torch.optim.AdamW on the other parameters at train.adam_lr (0: train.lr), stepped together.

    Muon keeps a Nesterov momentum (MUON_MOMENTUM) of each matrix's gradient and replaces it by
    the nearest semi-orthogonal matrix (5 Newton–Schulz iterations) before the update; its step
    is scaled by 0.2·√max(rows, cols) (adjust_lr_fn "match_rms_adamw", Liu et al. 2025, "Muon is
    Scalable for LLM Training"), which gives the update AdamW's RMS, so both can share one learning
    rate, and treats a (fan_in, fan_out) matrix as its transpose. Both use train.weight_decay, decoupled.

    It looks like one torch.optim optimizer to the backend: `param_groups` are Muon's (the driver
    sets their "lr" each step); `step` sets AdamW's to that lr times adam_lr / lr first, so AdamW
    follows the same schedule. `state_dict` holds both optimizers' state, so a resume is exact.

    Raises:
        MakemoreError: the model has no hidden matrix.
    """

    def __init__(self, model: torch.nn.Module, cfg: Config):
        t = cfg.train
        hidden, rest = muon_split(model)
        if not hidden:
            raise MakemoreError(f"train.optimizer = 'muon': model.type = {cfg.model.type!r} has no hidden weight matrix for Muon")
        params = dict(model.named_parameters())
        self.muon = StackedMuon([params[n] for n in hidden], lr=t.lr, weight_decay=t.weight_decay, momentum=MUON_MOMENTUM,
                                 nesterov=True, adjust_lr_fn="match_rms_adamw")
        self.adamw = _adamw([params[n] for n in rest], t.adam_lr or t.lr, t.weight_decay)
        self.adam_ratio = (t.adam_lr or t.lr) / t.lr

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.muon.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.muon.zero_grad(set_to_none=set_to_none)
        self.adamw.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for group in self.adamw.param_groups:
            group["lr"] = self.muon.param_groups[0]["lr"] * self.adam_ratio
        self.muon.step()
        self.adamw.step()

    def register_step_pre_hook(self, hook: Any) -> Any:
        """A hook run before each step, before either optimizer has changed a parameter."""
        return self.muon.register_step_pre_hook(hook)

    def state_dict(self) -> dict[str, Any]:
        return {"muon": self.muon.state_dict(), "adamw": self.adamw.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.muon.load_state_dict(state["muon"])
        self.adamw.load_state_dict(state["adamw"])


def choose_threads(model: torch.nn.Module, cfg: Config) -> int:
    """CPU threads for train.threads = 0: 1 for small steps (makemore.backends.base.small_step, the
    lecture's model), else torch's default.

    A step's operations span one position per example for a window model and for a recurrent one
    (Family.recurrent: its cell runs a position at a time), the whole context for the other
    sequence models (bow, transformer), which handle every position at once."""
    fam = family(cfg.model)
    positions = 1 if fam.recurrent else fam.view.positions(model.block_size)
    return 1 if small_step(cfg, sum(p.numel() for p in model.parameters()), positions) else DEFAULT_THREADS


class TorchBackend:
    """Trains any makemore model on `device` with autograd and torch.optim.

    The initialisation uses torch.Generator().manual_seed(train.seed) (the lecture's `g`);
    dropout draws from a second generator seeded train.seed + 1 on the model's device (rank r
    of a torchrun job: train.seed + 1 + r, so the ranks drop different units).

    Args:
        cfg: the whole config.
        vocab_size: tokens, boundary included.
        device: a torch device name (see makemore.backends.resolve_device).
        block_size: the model's context (makemore.models.context_length); default data.block_size.
        n_labels: the labels of a labelled words file (a conditional model); 0 for unlabelled data.
    """

    name = "torch"
    takes_steps = True
    SUPPORTS = Support(models=None, optimizers=("sgd", "momentum", "adamw", "muon"), devices=None, records_stats=True, labels=True)

    def __init__(self, cfg: Config, vocab_size: int, device: str = "cpu", block_size: int | None = None, n_labels: int = 0):
        self.cfg = cfg
        self.summary_extra: dict[str, Any] = {}
        self.device = torch.device(device)
        g = torch.Generator().manual_seed(cfg.train.seed)
        self.model = build_model(cfg.model, vocab_size, cfg.data.block_size if block_size is None else block_size, g, n_labels)
        self.n_threads = cfg.train.threads or (choose_threads(self.model, cfg) if self.device.type == "cpu" else None)
        self.model.to(self.device).train()
        self.world = distributed.joined()
        self.drop_generator = torch.Generator(self.device).manual_seed(cfg.train.seed + 1 + self.world.rank)
        set_dropout_generator(self.model, self.drop_generator)
        self.named_params = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        self.params = [p for _, p in self.named_params]
        self.optimizer = MuonAdamW(self.model, cfg) if cfg.train.optimizer == "muon" else make_optimizer(self.params, cfg)
        self._stepper: torch.nn.Module | None = None

    @property
    def stepper(self) -> torch.nn.Module:
        """The module whose forward the training steps run: the model, or under torchrun the model
        in DistributedDataParallel (made at the first step, as making it is collective)."""
        if self._stepper is None:
            self._stepper = self.model if self.world.size == 1 else torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        return self._stepper

    def threads(self) -> AbstractContextManager[None]:
        """The scope training runs in: `n_threads` CPU threads (train.threads; else on a CPU
        `choose_threads`; else the process's own), restored when the scope ends (makemore.threads)."""
        return scoped(self.n_threads)

    def asarray(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).to(self.device)

    def train_step(self, X: torch.Tensor, Y: torch.Tensor, lr: float, label: torch.Tensor | None = None) -> torch.Tensor:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        _, loss = self.stepper(X, Y) if label is None else self.stepper(X, Y, label=label)  # scalar, mean NLL of the minibatch (of this rank's rows)
        if self.world.size > 1 and Y.dim() > 1:  # sequences: ranks hold different numbers of targets
            loss = loss * self.world.share((Y != IGNORE).sum().to(loss.dtype))  # its share of the global mean, times W
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def recorded_step(self, X: torch.Tensor, Y: torch.Tensor, lr: float, label: torch.Tensor | None = None) -> tuple[float, dict[str, Any]]:
        """`train_step` with forward hooks on the hidden layers' non-linearities (HiddenCapture) and
        an optimizer pre-step hook that copies the parameters, so update = after − before the step;
        both hooks are removed before returning. Returns (loss, makemore.stats.step_stats)."""
        before: list[torch.Tensor] = []
        snapshot = self.optimizer.register_step_pre_hook(lambda *_: before.extend(p.detach().clone() for p in self.params))
        try:
            with HiddenCapture(self.model) as capture:
                loss = self.train_step(X, Y, lr, label)
        finally:
            snapshot.remove()

        def numpy(t: torch.Tensor) -> np.ndarray:
            t = t.detach().cpu()
            return (t if t.dtype in (torch.float32, torch.float64) else t.float()).numpy()  # bf16/fp16 have no NumPy type

        hidden = [(name, kind, numpy(h)) for name, kind, h in capture.outputs()]  # h (N, units)
        params = [(name, numpy(p), None if p.grad is None else numpy(p.grad), numpy(p.detach() - b))
                  for (name, p), b in zip(self.named_params, before)]
        return float(loss), step_stats(hidden, params)

    def mean_loss(self, view: View) -> float:
        if self.world.size == 1:
            return mean_nll(self.model, view, self.device)
        self.world.sync_buffers(self.model)  # every rank evaluates with rank 0's BatchNorm statistics
        chunk = max(1, min(EVAL_CHUNK, -(-view.n_targets // self.world.size)))  # so that every rank has work
        return self.world.sum(mean_nll(self.model, view, self.device, chunk, part=(self.world.rank, self.world.size)))

    def export_params(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().copy() for k, v in self.model.state_dict().items()}

    def export_state(self) -> dict[str, Any]:
        state = {"optimizer": self.optimizer.state_dict(), "dropout_rng": self.drop_generator.get_state()}
        if self.world.size > 1:  # every rank's dropout stream, so that a resume with as many ranks is exact
            state["dropout_rng_ranks"] = self.world.gather(state["dropout_rng"])
        return state

    def load(self, params: dict[str, Any], state: dict[str, Any] | None) -> None:
        self.model.load_state_dict({k: torch.as_tensor(v) for k, v in params.items()})
        if state:
            self.optimizer.load_state_dict(state["optimizer"])
            ranks = state.get("dropout_rng_ranks")
            if ranks is not None and len(ranks) == self.world.size:
                self.drop_generator.set_state(torch.as_tensor(ranks[self.world.rank]))
            elif self.world.rank == 0:  # another number of ranks: rank 0 goes on with rank 0's stream, the others start theirs
                self.drop_generator.set_state(torch.as_tensor(state["dropout_rng"]))
