"""The torch backend: the model's forward, a backward, and an optimizer update, on any torch device.

Two ways to take a step, with the same mathematics:

- the general path: the model's forward, torch autograd for the backward, a torch.optim update.
  Every model option (batchnorm, layernorm, dropout, the bigram) goes this way.
- the fused path (`FusedMLP`), used when the model is the plain MLP (no normalisation, no dropout):
  the forward and a hand-derived backward written directly as torch ops, with no autograd graph,
  and the optimizer's update as a few `torch._foreach_*` calls over all parameters at once.
  On a CPU at the lecture's batch of 32 a step is ~20 small ops instead of ~60, which about
  triples the steps per second, and the run never imports torch.optim (whose first use costs
  over a second of start-up); tests/test_speed_paths.py checks it gives autograd's gradients
  and torch.optim's updates.

Per-step overhead, not arithmetic, is what a small model's training time is made of: the
backend keeps everything lazy (the loss comes back as a tensor; the driver reads it only at
log records) and, on a CPU, uses one thread for small steps, where a second thread only adds
synchronisation (see `choose_threads`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from makemore.config import Config
from makemore.data import Windows
from makemore.evaluate import mean_nll
from makemore.models import build_model

#: Below this many forward multiply-adds per step (see `choose_threads`), one CPU thread is
#: faster than several: the work is too small to split.
SMALL_STEP_MACS = 16_000_000

#: torch's own choice of CPU threads, before any backend changed it.
DEFAULT_THREADS = torch.get_num_threads()


def make_optimizer(params: list[torch.nn.Parameter], cfg: Config) -> torch.optim.Optimizer:
    """torch.optim for train.optimizer: SGD (the lecture), SGD with momentum, or AdamW.

    The learning rate is set before every step from makemore.schedule.lr_at.
    """
    t = cfg.train
    if t.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay, foreach=True)
    momentum = t.momentum if t.optimizer == "momentum" else 0.0
    return torch.optim.SGD(params, lr=t.lr, momentum=momentum, weight_decay=t.weight_decay, foreach=True)


def choose_threads(cfg: Config) -> int:
    """CPU threads for train.threads = 0: 1 for small steps (the lecture's model), else torch's default.

    The size of a step is its forward multiply-adds, batch_size · (fan_in·n_hidden +
    (n_layers−1)·n_hidden² + n_hidden·64), the output layer taken as 64 wide. A step of the
    lecture's MLP at batch 32 is ~0.6 M: splitting it over threads costs more in synchronisation
    than it saves, and far more when the cores are shared (BENCHMARKS.md).
    """
    m = cfg.model
    fan_in = cfg.data.block_size * m.n_embd
    macs = cfg.train.batch_size * (fan_in * m.n_hidden + (m.n_layers - 1) * m.n_hidden**2 + m.n_hidden * 64)
    return 1 if macs < SMALL_STEP_MACS else DEFAULT_THREADS


def fused_supported(cfg: Config) -> bool:
    """Whether `FusedMLP` can train this config: the MLP without norm or dropout (any optimizer)."""
    m, t = cfg.model, cfg.train
    return m.type == "mlp" and m.norm == "none" and m.dropout == 0.0 and t.optimizer in ("sgd", "momentum", "adamw")


class FusedMLP:
    """Forward, hand-derived backward and optimizer update of the plain MLP, as torch ops without autograd.

    The model (makemore.models.mlp.MLP, norm "none", dropout 0) is, for hidden layers i = 1..L:

        x0 = C[idx].view(B, block_size·n_embd)
        a_i = x_{i-1} @ W_i + b_i ;  x_i = act(a_i)                      (B, n_hidden)
        logits = x_L @ W_{L+1} + b_{L+1}                                  (B, vocab_size)
        loss = −(1/B) Σ_b log softmax(logits_b)[Y_b]

    and its gradients, derived by hand (lecture "makemore part 4: becoming a backprop ninja"):

        dlogits = (softmax(logits) − onehot(Y)) / B
        dW_i = x_{i-1}ᵀ @ da_i ;  db_i = Σ_b da_i ;  dx_{i-1} = da_i @ W_iᵀ ;  da_i = act'(a_i) ⊙ dx_i
        dC[v] = Σ over positions where idx = v of dx0 (the embedding rows scattered back)

    act' uses the activations' own backward kernels (tanh: 1 − x_i², relu: x_i > 0, gelu: tanh
    approximation). The update is torch.optim.SGD's or AdamW's (foreach) arithmetic, written here
    so that a run never imports torch.optim (whose first use imports torch._dynamo: over a second
    of start-up); `state_dict`/`load_state_dict` use torch.optim's layout, so checkpoints are the
    same whichever path wrote them.

    Args:
        model: the MLP whose parameters are trained in place.
        cfg: train.optimizer, train.momentum, train.weight_decay; AdamW uses torch's default
            betas (0.9, 0.999) and eps 1e-8, as make_optimizer does.
    """

    BETAS = (0.9, 0.999)
    EPS = 1e-8

    def __init__(self, model: torch.nn.Module, cfg: Config):
        self.model = model
        L = model.n_layers
        self.params = [model.C] + [getattr(model, f"{k}{i}") for i in range(1, L + 2) for k in ("W", "b")]
        self.weights = [p.detach() for p in self.params]  # aliases without autograd: same storage
        self.activation = model.activation
        self.act_backward = {
            "tanh": lambda dx, a, x: torch.ops.aten.tanh_backward(dx, x),
            "relu": lambda dx, a, x: torch.ops.aten.threshold_backward(dx, x, 0.0),
            "gelu": lambda dx, a, x: torch.ops.aten.gelu_backward(dx, a, approximate="tanh"),
        }[model.activation]
        t = cfg.train
        self.kind, self.weight_decay, self.lr = t.optimizer, t.weight_decay, t.lr
        self.momentum = t.momentum if t.optimizer == "momentum" else 0.0
        self.buffers: list[torch.Tensor] | None = None  # SGD momentum buffers, one per parameter
        self.t = 0  # AdamW steps taken
        self.exp_avg: list[torch.Tensor] | None = None  # AdamW first moments
        self.exp_avg_sq: list[torch.Tensor] | None = None  # AdamW second moments
        self._cache: dict[int, torch.Tensor] = {}

    def state_dict(self) -> dict[str, Any]:
        """The optimizer state as torch.optim.SGD / AdamW's state_dict() would hold it (parameters by index)."""
        index = list(range(len(self.params)))
        if self.kind == "adamw":
            group = {"lr": self.lr, "betas": self.BETAS, "eps": self.EPS, "weight_decay": self.weight_decay, "amsgrad": False,
                     "maximize": False, "foreach": True, "capturable": False, "differentiable": False, "fused": None,
                     "decoupled_weight_decay": True, "params": index}
            state = {} if self.exp_avg is None else {
                i: {"step": torch.tensor(float(self.t)), "exp_avg": m.clone(), "exp_avg_sq": v.clone()}
                for i, m, v in zip(index, self.exp_avg, self.exp_avg_sq)}
        else:
            group = {"lr": self.lr, "momentum": self.momentum, "dampening": 0, "weight_decay": self.weight_decay,
                     "nesterov": False, "maximize": False, "foreach": True, "differentiable": False, "fused": None, "params": index}
            state = {} if self.buffers is None else {i: {"momentum_buffer": b.clone()} for i, b in zip(index, self.buffers)}
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        """Restore what `state_dict` (or torch.optim's state_dict for the same parameters) returned."""
        state = {int(k): v for k, v in sd["state"].items()}
        self.lr = float(sd["param_groups"][0]["lr"])
        def tensor(v: Any, p: torch.Tensor) -> torch.Tensor:
            return torch.as_tensor(v).to(device=p.device, dtype=p.dtype).clone()
        self.buffers = self.exp_avg = self.exp_avg_sq = None
        self.t = 0
        if not state:
            return
        if self.kind == "adamw":
            self.t = int(float(state[0]["step"]))
            self.exp_avg = [tensor(state[i]["exp_avg"], p) for i, p in enumerate(self.weights)]
            self.exp_avg_sq = [tensor(state[i]["exp_avg_sq"], p) for i, p in enumerate(self.weights)]
        elif self.momentum:
            self.buffers = [tensor(state[i]["momentum_buffer"], p) for i, p in enumerate(self.weights)]

    def _minus_one_over(self, B: int, like: torch.Tensor) -> torch.Tensor:
        """A (B, 1) column of −1/B, made once per batch size."""
        if B not in self._cache:
            self._cache[B] = torch.full((B, 1), -1.0 / B, dtype=like.dtype, device=like.device)
        return self._cache[B]

    def loss_and_grads(self, X: torch.Tensor, Y: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Mean NLL (scalar tensor, nats/char) of X (B, block_size), Y (B,) and the gradient of every
        parameter, in the order C, W1, b1, ..., W{L+1}, b{L+1}."""
        C, *layers = self.weights
        B = X.shape[0]
        vocab_size, n_embd = C.shape
        x = F.embedding(X, C).view(B, -1)  # (B, block_size·n_embd)
        inputs, pres = [], []  # x_{i-1} and a_i of each hidden layer
        for i in range(0, len(layers) - 2, 2):
            W, b = layers[i], layers[i + 1]
            inputs.append(x)
            a = torch.addmm(b, x, W)  # (B, n_hidden) = x @ Wi + bi
            pres.append(a)
            if self.activation == "tanh":
                x = torch.tanh(a)  # (B, n_hidden)
            elif self.activation == "relu":
                x = torch.relu(a)  # (B, n_hidden)
            else:
                x = F.gelu(a, approximate="tanh")  # (B, n_hidden)
        W_out, b_out = layers[-2], layers[-1]
        logits = torch.addmm(b_out, x, W_out)  # (B, vocab_size)
        logp = torch.log_softmax(logits, dim=1)  # (B, vocab_size)
        loss = F.nll_loss(logp, Y)  # scalar: mean NLL
        dlogits = logp.exp_().mul_(1.0 / B)  # (B, vocab_size): softmax / B
        dlogits.scatter_add_(1, Y.view(B, 1), self._minus_one_over(B, dlogits))  # − onehot(Y) / B
        grads: list[torch.Tensor] = [dlogits.sum(0), torch.mm(x.t(), dlogits)]  # reversed: db_out, dW_out
        dx = torch.mm(dlogits, W_out.t())  # (B, n_hidden)
        for i in range(len(inputs) - 1, -1, -1):
            W = layers[2 * i]
            da = self.act_backward(dx, pres[i], x)  # (B, n_hidden)
            grads.append(da.sum(0))  # db_i (n_hidden,)
            grads.append(torch.mm(inputs[i].t(), da))  # dW_i (fan_in, n_hidden)
            dx = torch.mm(da, W.t())  # (B, fan_in)
            x = inputs[i]
        dC = torch.ops.aten.embedding_dense_backward(dx.view(B, -1, n_embd), X, vocab_size, -1, False)  # (vocab_size, n_embd)
        grads.append(dC)
        grads.reverse()  # C, W1, b1, ..., W_out, b_out
        return loss, grads

    def step(self, X: torch.Tensor, Y: torch.Tensor, lr: float) -> torch.Tensor:
        """One optimizer step at learning rate `lr`, as torch.optim would take it. Returns the loss (scalar tensor)."""
        loss, grads = self.loss_and_grads(X, Y)
        self.lr = lr
        if self.kind == "adamw":
            self._adamw(grads, lr)
        else:
            self._sgd(grads, lr)
        return loss

    def _sgd(self, grads: list[torch.Tensor], lr: float) -> None:
        """torch.optim.SGD: g += wd·p; with momentum μ, buf = μ·buf + g (buf = g at the first step); p −= lr·buf."""
        if self.weight_decay:
            torch._foreach_add_(grads, self.weights, alpha=self.weight_decay)  # L2 penalty
        if self.momentum:
            if self.buffers is None:  # first step: the buffer is the gradient itself
                self.buffers = [g.clone() for g in grads]
            else:
                torch._foreach_mul_(self.buffers, self.momentum)
                torch._foreach_add_(self.buffers, grads)
            grads = self.buffers
        torch._foreach_add_(self.weights, grads, alpha=-lr)

    def _adamw(self, grads: list[torch.Tensor], lr: float) -> None:
        """torch.optim.AdamW (Loshchilov & Hutter 2019, after Kingma & Ba 2015):

            t += 1;  p *= 1 − lr·wd;  m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²
            p −= lr / (1−β1^t) · m / (√v / √(1−β2^t) + ε)
        """
        beta1, beta2 = self.BETAS
        if self.exp_avg is None:  # first step: zero moments
            self.exp_avg = [torch.zeros_like(w) for w in self.weights]
            self.exp_avg_sq = [torch.zeros_like(w) for w in self.weights]
        self.t += 1
        m, v = self.exp_avg, self.exp_avg_sq
        if self.weight_decay:
            torch._foreach_mul_(self.weights, 1.0 - lr * self.weight_decay)  # decoupled weight decay
        torch._foreach_lerp_(m, grads, 1.0 - beta1)
        torch._foreach_mul_(v, beta2)
        torch._foreach_addcmul_(v, grads, grads, 1.0 - beta2)
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, (1.0 - beta2**self.t) ** 0.5)
        torch._foreach_add_(denom, self.EPS)
        torch._foreach_addcdiv_(self.weights, m, denom, -lr / (1.0 - beta1**self.t))


class TorchBackend:
    """Trains makemore.models on `device`: by the fused path where it applies, else with autograd.

    The initialisation uses torch.Generator().manual_seed(train.seed) (the lecture's `g`);
    dropout draws from a second generator seeded train.seed + 1 on the model's device.

    Args:
        cfg: the whole config.
        vocab_size: tokens, boundary included.
        device: a torch device name (see makemore.backends.resolve_device).
        fused: force the fused path on (True: raises ValueError where unsupported) or off (False);
            None uses it wherever `fused_supported(cfg)`.
    """

    name = "torch"

    def __init__(self, cfg: Config, vocab_size: int, device: str = "cpu", fused: bool | None = None):
        self.cfg = cfg
        self.device = torch.device(device)
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        elif self.device.type == "cpu":
            torch.set_num_threads(choose_threads(cfg))
        g = torch.Generator().manual_seed(cfg.train.seed)
        self.model = build_model(cfg.model, vocab_size, cfg.data.block_size, g).to(self.device)
        self.model.drop_generator = torch.Generator(self.device).manual_seed(cfg.train.seed + 1)
        self.model.train()
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        if fused and not fused_supported(cfg):
            raise ValueError("the fused path needs model.type mlp, norm none and dropout 0")
        use_fused = fused_supported(cfg) if fused is None else fused
        self.fused = FusedMLP(self.model, cfg) if use_fused else None
        self._optimizer = None if use_fused else make_optimizer(self.params, cfg)

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The torch.optim optimizer of the autograd path. On the fused path (which keeps its own
        state and never imports torch.optim) a torch.optim optimizer is built on request, holding
        the fused path's current state: for inspection only, it does not take the steps."""
        if self.fused is None:
            return self._optimizer
        opt = make_optimizer(self.params, self.cfg)
        opt.load_state_dict(self.fused.state_dict())
        return opt

    def asarray(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).to(self.device)

    def train_step(self, X: torch.Tensor, Y: torch.Tensor, lr: float) -> torch.Tensor:
        if self.fused is not None:
            return self.fused.step(X, Y, lr)
        opt = self._optimizer
        for group in opt.param_groups:
            group["lr"] = lr
        _, loss = self.model(X, Y)  # scalar, mean NLL of the minibatch
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    def mean_loss(self, windows: Windows) -> float:
        return mean_nll(self.model, windows, self.device)

    def export_params(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().copy() for k, v in self.model.state_dict().items()}

    def export_state(self) -> dict[str, Any]:
        opt = self.fused.state_dict() if self.fused is not None else self._optimizer.state_dict()
        return {"optimizer": opt, "dropout_rng": self.model.drop_generator.get_state()}

    def load(self, params: dict[str, Any], state: dict[str, Any] | None) -> None:
        self.model.load_state_dict({k: torch.as_tensor(v) for k, v in params.items()})
        if state:
            if self.fused is not None:
                self.fused.load_state_dict(state["optimizer"])
            else:
                self._optimizer.load_state_dict(state["optimizer"])
            self.model.drop_generator.set_state(torch.as_tensor(state["dropout_rng"]))
