"""Configuration: three TOML sections, [data] [model] [train], as dataclasses.

A config is read from a TOML file (`load_config`), changed by `--set section.key=value`
overrides (`apply_overrides`) and checked (`Config.validate`) before any work starts. Every
mistake raises `MakemoreError` with one line naming the key and what is allowed.

The key names are a contract with users' config files: renaming one breaks their configs.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from makemore.errors import MakemoreError


def _choices(*allowed: str) -> dict[str, Any]:
    return {"choices": allowed}


def _range(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False, hi_open: bool = False) -> dict[str, Any]:
    return {"range": (lo, hi, lo_open, hi_open)}


@dataclass
class DataConfig:
    """[data]: where the words come from, how they are split, and the context a window model reads."""

    path: str = "data/names.txt"
    """A UTF-8 text file with one word per line; relative paths are relative to the working directory."""
    block_size: int = field(default=3, metadata=_range(1))
    """Characters of context the model sees to predict the next one."""
    seed: int = 42
    """Seed of the 80/10/10 train/dev/test shuffle of the words (random.Random(seed), as in the lecture)."""
    boundary: str = field(default=".", metadata={"char": True})
    """The boundary token (index 0) that pads the context and ends every word. No word may contain it."""
    max_len: int = field(default=256, metadata=_range(1))
    """Longest word a sequence model (model families whose view is makemore.data.Sequences) accepts: its context
    is the longest word + 1 characters, so a longer line in the file is an error before training."""


@dataclass
class ModelConfig:
    """[model]: which model and how big. The defaults are the lecture's MLP."""

    type: str = "mlp"
    """The model family: a name in makemore.models.FAMILIES ("mlp": Bengio et al. 2003; "bigram":
    the counting baseline with add-k smoothing; "wavenet": the hierarchical model of lecture part 5;
    "rnn", "gru", "lstm": recurrent networks over the whole word; "bow": a causal bag of words;
    "transformer": a GPT-style decoder; docs/models.md). Checked against the registry, which also
    says which of the keys below each family reads; the others are ignored for that family."""
    n_embd: int = field(default=10, metadata=_range(1))
    """Dimensions of each character's embedding (a row of C); for the transformer also the width of
    its residual stream."""
    n_hidden: int = field(default=200, metadata=_range(1))
    """Units in each hidden layer: the MLP's and bag of words' hidden layer, each WaveNet level, the
    state of a recurrent cell (rnn, gru, lstm), the MLP inside each transformer block (4·n_embd in GPT)."""
    n_layers: int = field(default=1, metadata=_range(1))
    """Layers stacked between the embeddings and the logits: the MLP's hidden layers (the lecture has
    1), recurrent layers (rnn, gru, lstm), transformer blocks."""
    n_head: int = field(default=1, metadata=_range(1))
    """Attention heads in each transformer block; each head reads n_embd / n_head dimensions, so it
    must divide n_embd (the default, 1, divides every n_embd)."""
    activation: str = field(default="tanh", metadata=_choices("tanh", "relu", "gelu"))
    """Non-linearity of the hidden layers (gelu is the tanh approximation)."""
    norm: str = field(default="none", metadata=_choices("none", "batchnorm", "layernorm"))
    """Normalisation after each hidden linear layer, before the activation."""
    dropout: float = field(default=0.0, metadata=_range(0.0, 1.0, hi_open=True))
    """Probability of zeroing a hidden activation during training."""
    init: str = field(default="kaiming", metadata=_choices("kaiming", "lecture"))
    """"kaiming": gain/sqrt(fan_in) W1, small W2, zero b2 (initial loss ~ ln(vocab_size));
    "lecture": plain randn everywhere, as in the part-2 video (initial loss far higher)."""
    smoothing: float = field(default=1.0, metadata=_range(0.0))
    """Add-k smoothing of the bigram counts (model.type = "bigram")."""
    pos: str = field(default="learned", metadata=_choices("learned", "rotary"))
    """Positions in a transformer: "learned" embeddings P added to the characters' (GPT-2), or
    "rotary", queries and keys rotated by their position (Su et al. 2021; needs an even
    n_embd / n_head). The options below up to value_embed are the transformer's too, each off by default."""
    qk_norm: bool = False
    """RMS-normalise each head's queries and keys before their dot product (Henry et al. 2020)."""
    mlp_act: str = field(default="gelu", metadata=_choices("gelu", "relu2"))
    """Non-linearity of each transformer block's MLP: "gelu" (tanh approximation) or "relu2",
    ReLU(x)² (So et al. 2021, Primer)."""
    zero_init: bool = False
    """Start the projections into the residual stream and the output layer at zero (the
    modded-nanogpt speedrun): every block starts as the identity, the initial loss is exactly ln(vocab_size)."""
    softcap: float = field(default=0.0, metadata=_range(0.0))
    """Soft-cap c of the logits, c·tanh(logits / c) (Gemma 2); 0: no cap."""
    embed_skip: bool = False
    """Each transformer block reads a learned mix of the residual stream and the embeddings (the speedrun's skips)."""
    value_embed: bool = False
    """Each attention layer adds a learned per-character vector to its values (the speedrun's value embeddings)."""


@dataclass
class TrainConfig:
    """[train]: how the parameters are fitted."""

    backend: str = field(default="auto", metadata=_choices("auto", "torch", "numpy", "mlx"))
    """"auto": the fastest backend that trains the model, its options, device and launch: NumPy for
    the MLP on a CPU in one process, torch otherwise (the run's config.toml records the one chosen);
    "torch": autograd; "numpy": every gradient by hand; "mlx": Apple's MLX."""
    device: str = field(default="auto", metadata={"device": True})
    """"auto" picks cuda, then mps, then cpu; or name one: "cpu", "cuda", "cuda:1", "mps"."""
    steps: int = field(default=200_000, metadata=_range(1))
    """Optimizer steps (minibatches)."""
    batch_size: int = field(default=32, metadata=_range(1))
    """Examples per minibatch (B): windows for a window model, whole words for a sequence model."""
    lr: float = field(default=0.1, metadata=_range(0.0, lo_open=True))
    """Peak learning rate."""
    schedule: str = field(default="step", metadata=_choices("step", "cosine", "constant"))
    """"step": lr times lr_factor at each of lr_milestones (the lecture); "cosine": down to min_lr."""
    lr_milestones: list[int] = field(default_factory=lambda: [100_000])
    """Steps at which the "step" schedule multiplies the learning rate by lr_factor."""
    lr_factor: float = field(default=0.1, metadata=_range(0.0, lo_open=True))
    """Factor applied at each milestone of the "step" schedule."""
    warmup_steps: int = field(default=0, metadata=_range(0))
    """Steps of linear warm-up from lr/warmup_steps to lr, for any schedule."""
    min_lr: float = field(default=0.0, metadata=_range(0.0))
    """Learning rate the "cosine" schedule ends at."""
    optimizer: str = field(default="sgd", metadata=_choices("sgd", "momentum", "adamw", "muon"))
    """"sgd": plain SGD (the lecture); "momentum": SGD with momentum; "adamw": AdamW; "muon": Muon on
    the hidden weight matrices at train.lr, AdamW on the other parameters at train.adam_lr (torch backend)."""
    adam_lr: float = field(default=0.0, metadata=_range(0.0))
    """With train.optimizer = "muon": AdamW's peak learning rate for the embedding tables, the output
    head, biases and gains (following the same schedule, scaled by adam_lr / lr); 0: train.lr."""
    momentum: float = field(default=0.9, metadata=_range(0.0, 1.0, hi_open=True))
    """Momentum of the "momentum" optimizer."""
    weight_decay: float = field(default=0.0, metadata=_range(0.0))
    """L2 penalty for sgd/momentum, decoupled weight decay for adamw."""
    seed: int = 2147483647
    """Seed of the initialisation, minibatch and dropout generators (the lecture's generator seed)."""
    eval_interval: int = field(default=10_000, metadata=_range(1))
    """Steps between evaluations of the whole dev split (each also writes the checkpoint)."""
    log_interval: int = field(default=100, metadata=_range(1))
    """Steps between records in metrics.jsonl (train_loss is the mean minibatch loss since the last one)."""
    threads: int = field(default=0, metadata=_range(0))
    """CPU threads for torch (and for the NumPy backend's BLAS); 0 lets makemore choose: one thread
    for steps too small to split (makemore.backends.base.small_step), else the library's default."""
    stats_interval: int = field(default=0, metadata=_range(0))
    """Steps between records of activation, gradient and update statistics in stats.jsonl (read by
    `makemore inspect`; lecture part 3); the first and last steps are recorded too. 0: off."""
    time_budget_s: float = field(default=0.0, metadata=_range(0.0))
    """Seconds of training to fit the run into (its steps, periodic evaluations and checkpoints;
    not the final evaluation of the whole splits); 0: off. The run times an evaluation at its first
    metrics record (train.log_interval) and its steps over the next records (2% of the budget, at
    most 5 s), then fixes its number of steps so that the rest fits the time left; the schedule
    (warm-up, cosine) runs over those steps, and train.steps is only the most it may take. The steps
    before the fit follow train.steps's schedule (a warm-up longer than the timing keeps them apart
    from it). The checkpoint keeps the fitted count: a resumed run ends at the same step."""
    patience: int = field(default=0, metadata=_range(0))
    """Early stopping: stop after this many whole-dev evaluations in a row without a new best dev
    loss (the best-dev checkpoint is kept beside the last one either way); 0: never stop early."""
    tensorboard: bool = False
    """Also write the metrics records as TensorBoard scalars into the run directory (needs the
    [tensorboard] extra); `tensorboard --logdir runs/` then compares runs and sweeps."""
    plot: bool = True
    """Draw loss.png (train and dev loss against step) when the run ends; `makemore train` draws it
    after printing the run's result. false: no plot (and no matplotlib import): `makemore plot-loss
    RUN` draws it on demand from metrics.jsonl."""


#: torch.optim.AdamW's default betas and eps: every backend's AdamW uses these (Kingma & Ba 2015).
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8

#: torch.optim.Muon's momentum (Nesterov) for train.optimizer = "muon" (Jordan et al. 2024, torch's default).
MUON_MOMENTUM = 0.95

SECTIONS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


@dataclass
class Config:
    """The whole configuration. `Config()` is the lecture's setup; see configs/names.toml."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain nested dict {section: {key: value}}: what the checkpoint and config.toml hold."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config") -> Config:
        """Build and validate a Config from {section: {key: value}}; missing keys take defaults.

        Raises:
            MakemoreError: an unknown section or key (with the nearest valid name), a wrong type,
                or a value out of range.
        """
        cfg = cls()
        if not isinstance(raw, dict):
            raise MakemoreError(f"{source}: expected a table of sections [data] [model] [train]")
        for section, table in raw.items():
            if section not in SECTIONS:
                raise MakemoreError(f"{source}: unknown section [{section}]{_suggest(section, SECTIONS)}")
            if not isinstance(table, dict):
                raise MakemoreError(f"{source}: [{section}] must be a table of keys, got {_describe(table)}")
            for key, value in table.items():
                cfg.set(f"{section}.{key}", value, source=source)
        cfg.validate(source)
        return cfg

    def set(self, dotted: str, value: Any, source: str = "--set") -> None:
        """Set `section.key` to `value`, converting ints to floats where a float is expected.

        Raises:
            MakemoreError: unknown key (suggesting the nearest) or wrong type.
        """
        section, _, key = dotted.partition(".")
        if section not in SECTIONS or not key:
            raise MakemoreError(f"{source}: unknown key '{dotted}'{_suggest(dotted, all_keys())}")
        sub = getattr(self, section)
        fields = {f.name: f for f in dataclasses.fields(sub)}
        if key not in fields:
            raise MakemoreError(f"{source}: unknown key '{dotted}'{_suggest(dotted, all_keys())}")
        setattr(sub, key, _coerce(dotted, fields[key], value, source))

    def validate(self, source: str = "config") -> None:
        """Check every value against its allowed range or choices and the keys against each other.

        Raises:
            MakemoreError: naming the first key that is out of range and what is allowed.
        """
        for section in SECTIONS:
            sub = getattr(self, section)
            for f in dataclasses.fields(sub):
                _check(f"{section}.{f.name}", f, getattr(sub, f.name), source)
        if any(m < 0 for m in self.train.lr_milestones):
            raise MakemoreError(f"{source}: train.lr_milestones must be steps >= 0, got {self.train.lr_milestones}")
        if self.train.schedule == "cosine" and self.train.min_lr > self.train.lr:
            raise MakemoreError(f"{source}: train.min_lr ({self.train.min_lr}) must not exceed train.lr ({self.train.lr})")

    def to_toml(self) -> str:
        """The resolved config as TOML text that `load_config` reads back to an equal Config."""
        lines = []
        for section, sub in self.to_dict().items():
            lines.append(f"[{section}]")
            lines.extend(f"{key} = {toml_value(value)}" for key, value in sub.items())
            lines.append("")
        return "\n".join(lines)


def all_keys() -> list[str]:
    """Every valid `section.key`, for suggestions and documentation."""
    return [f"{s}.{f.name}" for s, cls in SECTIONS.items() for f in dataclasses.fields(cls)]


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a TOML config (or start from the defaults when `path` is None) and apply `--set` overrides.

    Args:
        path: a TOML file with [data] [model] [train] sections.
        overrides: strings "section.key=value"; the value is parsed as a TOML value, and a bare
            word that is not valid TOML is taken as a string (`--set train.backend=numpy`).

    Raises:
        MakemoreError: missing or unreadable file, invalid TOML, unknown key, wrong type or range.
    """
    raw: dict[str, Any] = {}
    source = "config"
    if path is not None:
        p = Path(path)
        source = str(p)
        if not p.is_file():
            raise MakemoreError(f"{p}: config file not found" if not p.exists() else f"{p}: is not a file")
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise MakemoreError(f"{p}: config file is not UTF-8 text") from None
        except tomllib.TOMLDecodeError as e:
            raise MakemoreError(f"{p}: invalid TOML: {e}") from None
    cfg = Config.from_dict(raw, source=source)
    return apply_overrides(cfg, overrides) if overrides else cfg


def apply_overrides(cfg: Config, overrides: list[str] | tuple[str, ...]) -> Config:
    """Apply `--set section.key=value` strings to `cfg` (in place) and validate the result.

    Raises:
        MakemoreError: a malformed item, unknown key, wrong type or out-of-range value.
    """
    for item in overrides:
        cfg.set(*parse_override(item))
    cfg.validate("--set")
    return cfg


def parse_override(item: str) -> tuple[str, Any]:
    """Split "section.key=value" and read the value as TOML, or as a string if it is not valid TOML.

    Raises:
        MakemoreError: no "=" in the item.
    """
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise MakemoreError(f"--set {item!r}: expected section.key=value, e.g. --set train.lr=0.05")
    text = text.strip()
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    return key.strip(), value


def _suggest(name: str, candidates: Any) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else f"; valid: {', '.join(candidates)}"


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _coerce(key: str, f: dataclasses.Field, value: Any, source: str) -> Any:
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind == "str" and isinstance(value, str):
        return value
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "list[int]" and isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return list(value)
    wanted = {"int": "an integer", "float": "a number", "str": "a string", "list[int]": "a list of integers",
              "bool": "true or false"}[kind]
    raise MakemoreError(f"{source}: {key} must be {wanted}, got {_describe(value)}")


def _check(key: str, f: dataclasses.Field, value: Any, source: str) -> None:
    meta = f.metadata
    if "choices" in meta and value not in meta["choices"]:
        allowed = ", ".join(repr(c) for c in meta["choices"])
        raise MakemoreError(f"{source}: {key} must be one of {allowed}, got {value!r}")
    if "range" in meta:
        lo, hi, lo_open, hi_open = meta["range"]
        ok = math.isfinite(value)
        ok = ok and (lo is None or (value > lo if lo_open else value >= lo))
        ok = ok and (hi is None or (value < hi if hi_open else value <= hi))
        if not ok:
            parts = []
            if lo is not None:
                parts.append(f"{'>' if lo_open else '>='} {lo:g}")
            if hi is not None:
                parts.append(f"{'<' if hi_open else '<='} {hi:g}")
            raise MakemoreError(f"{source}: {key} must be a finite number {' and '.join(parts)}, got {value!r}")
    if meta.get("char") and len(value) != 1:
        raise MakemoreError(f"{source}: {key} must be exactly one character, got {value!r}")
    if meta.get("device"):
        base, _, index = value.partition(":")
        if base not in ("auto", "cpu", "cuda", "mps") or (index and (base != "cuda" or not index.isdigit())):
            raise MakemoreError(f"{source}: {key} must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {value!r}")


def toml_value(value: Any) -> str:
    """A config value as TOML text (what --set reads back to the same value).

    Raises:
        TypeError: a value of a type no config key has.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")
