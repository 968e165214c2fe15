"""A GPT-style Transformer decoder over the whole word.

    idx (B, T) ──C[idx] + P[t]──▶ x (B, T, n_embd)                       the residual stream
        n_layers blocks, each:  x = x + Attention(LayerNorm(x))           causal, n_head heads
                                x = x + MLP(LayerNorm(x))                 n_embd → n_hidden → n_embd, GELU
        ──LayerNorm, @ W_out + b_out──▶ logits (B, T, vocab_size)

A sequence model (the "sequences" view): the input is the boundary and then the word, and
position t predicts the character after inputs 0..t. Self-attention lets every position gather
from the positions before it with learned, data-dependent weights (the bag of words, bow.py,
averages them uniformly):

    Attention(x) = concat over heads of softmax(q·kᵀ / √d + M) · v, then @ W_proj + b_proj

with q, k, v = x·W_qkv + b_qkv split into n_head heads of d = n_embd / n_head dimensions, and M
the causal mask (0 on and below the diagonal, −∞ above: no position sees a later one). The
attention itself is torch's `F.scaled_dot_product_attention(is_causal=True)`, which computes
exactly that (tests/test_transformer.py checks it against the explicit masked softmax). The
LayerNorm comes before each sub-layer ("pre-LN", GPT-2), with a last one before the logits.

Training computes only the positions the loss needs. A minibatch of words is padded to its
longest word, and a position only sees the ones before it, so nothing after a row's last target
can change the loss: with targets, the embeddings are packed to the N positions up to each
row's last target (`computed_positions`), every position-wise layer (LayerNorm, the q, k, v and
output projections, the MLP, the logits) runs on those N rows only, and only the attention puts
them back in their (B, T) places, with zeros after each row's end. The loss and the gradients are
those of the whole padded minibatch (tests/test_transformer.py checks both); the time saved is
the padding's share of the minibatch, about a third on names.

Dropout (model.dropout) is applied to the embeddings and to each sub-layer's output before it is
added to the residual stream, always through makemore.models.base.Dropout's seeded generator so
that a resumed run is exact; attention weights themselves are not dropped (the fused attention
would draw from torch's global generator).

Initialisation follows lecture part 3: each weight matrix is randn · gain / √fan_in (gain √2 before
the GELU, 1 elsewhere), and the two projections that write into the residual stream are further
scaled by 1/√(2·n_layers) so the stream's variance does not grow with depth (GPT-2); the output
layer starts small, so the initial loss is about ln(vocab_size).

Architecture options (each off by default, which is the model above; every one works in the
key/value-cache `step` too):

- model.pos = "rotary": no P; instead q and k of every head are rotated by an angle proportional
  to their absolute position, pair of dimensions (i, i + d/2) by t·θ_i with θ_i = 10000^(−2i/d),
  so that q_s·k_t depends on the positions only through s − t (`rotate`; RoFormer: J. Su, Y. Lu,
  S. Pan, A. Murtadha, B. Wen, Y. Liu, "RoFormer: Enhanced Transformer with Rotary Position
  Embedding", 2021, section 3.4, whose pairs are adjacent dimensions: the same rotation up to a
  fixed permutation of the head's dimensions). The cache holds rotated keys. d must be even.
- model.qk_norm = true: q and k of every head are RMS-normalised (no gain) before the dot
  product, which bounds the attention logits to ±√d (A. Henry, P. R. Dachapally, S. Pawar, Y. Chen,
  "Query-Key Normalization for Transformers", Findings of EMNLP 2020; M. Dehghani et al., "Scaling
  Vision Transformers to 22 Billion Parameters", ICML 2023, which uses a LayerNorm).
- model.mlp_act = "relu2": the MLP's non-linearity is ReLU(x)², "squared ReLU" (D. R. So et al.,
  "Primer: Searching for Efficient Transformers for Language Modeling", NeurIPS 2021).
- model.zero_init = true: the two projections into the residual stream of every block and the
  output layer W_out start at zero, so every block starts as the identity and the initial logits
  are exactly 0: the initial loss is exactly ln(vocab_size) (the modded-nanogpt speedrun, K. Jordan
  et al. 2024, github.com/KellerJordan/modded-nanogpt).
- model.softcap = c > 0: logits = c · tanh(logits / c), bounded to ±c (Gemma 2: Gemma Team,
  "Gemma 2: Improving Open Language Models at a Practical Size", 2024; the modded-nanogpt speedrun).
- model.embed_skip = true: each block reads λ_i·x + μ_i·x₀ instead of x, where x₀ is the embedding
  (the block's learned pair `mix` (2,), starting at (1, 0): the plain model) (the speedrun's
  skip from the embeddings into every block).
- model.value_embed = true: each block's attention has its own table VE (vocab_size, n_embd) of
  per-character values added to v, starting at zero (the speedrun's value embeddings).

Sources: A. Vaswani et al., "Attention Is All You Need", NeurIPS 2017; A. Radford, J. Wu, R. Child,
D. Luan, D. Amodei, I. Sutskever, "Language Models are Unsupervised Multitask Learners" (GPT-2,
2019); A. Karpathy, "Let's build GPT: from scratch, in code, spelled out" (2023), nanoGPT (the
block structure) and makemore.py (its Transformer model, the default size of configs/transformer.toml);
the options' sources above.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from makemore.config import Config, ModelConfig
from makemore.data import IGNORE
from makemore.errors import MakemoreError
from makemore.models.base import GAINS, NORM_EPS, OUTPUT_SCALE, Dropout, Packing, label_table, label_vectors, lm_loss


#: One block's key/value cache: (k, v), each (B, n_head, t, d) for the t positions read so far.
KV = tuple[torch.Tensor, torch.Tensor]

#: Base of the rotary angles' frequencies θ_i = ROPE_BASE^(−2i/d) (Su et al. 2021).
ROPE_BASE = 10000.0


def head_size(cfg: ModelConfig) -> int:
    """Dimensions of one attention head: n_embd / n_head.

    Raises:
        MakemoreError: n_head does not divide n_embd, naming both keys; or rotary positions with an
            odd head size (rotation turns pairs of dimensions).
    """
    if cfg.n_embd % cfg.n_head:
        raise MakemoreError(
            f"model.type = 'transformer' splits model.n_embd = {cfg.n_embd} over model.n_head = {cfg.n_head} heads: "
            f"n_head must divide n_embd"
        )
    d = cfg.n_embd // cfg.n_head
    if cfg.pos == "rotary" and d % 2:
        raise MakemoreError(
            f"model.pos = 'rotary' rotates pairs of dimensions, but each head has model.n_embd / model.n_head = "
            f"{cfg.n_embd} / {cfg.n_head} = {d}: make it even"
        )
    return d


def check(cfg: Config) -> None:
    """What a Transformer needs of a whole config, checked before any data is read: n_head divides
    n_embd, into heads of an even size for rotary positions (raises MakemoreError otherwise, see
    `head_size`)."""
    head_size(cfg.model)


def computed_positions(targets: torch.Tensor) -> Packing:
    """The positions of targets (B, T) a training step computes: every position up to and
    including each row's last target (targets ≠ IGNORE), none after it (a row without targets has
    none). Causality makes the rest irrelevant to the loss: no earlier position sees them."""
    t = torch.arange(targets.shape[1], device=targets.device)  # (T,)
    last = torch.where(targets != IGNORE, t, -1).amax(dim=1)  # (B,) index of each row's last target, −1 if none
    return Packing.of(t <= last[:, None])  # (B, T) bool → N packed positions


def rotate(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding (Su et al. 2021): x (..., T, d) at absolute positions pos (T,) →
    (..., T, d), each pair of dimensions (i, i + d/2) turned by the angle pos·θ_i, θ_i =
    ROPE_BASE^(−2i/d). A rotation keeps lengths, and (R_s q)·(R_t k) = q·(R_(t−s) k): a dot product
    of rotated vectors depends on the positions only through their difference."""
    return _turn(x, *rotation(pos, x.shape[-1], x.dtype))


def rotation(pos: torch.Tensor, d: int, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin (T, d/2) of the rotary angles pos·θ_i, θ_i = ROPE_BASE^(−2i/d), at positions pos (T,)."""
    half = d // 2
    theta = ROPE_BASE ** (-torch.arange(half, device=pos.device, dtype=dtype) / half)  # (d/2,)
    angle = pos.to(dtype)[:, None] * theta  # (T, d/2)
    return angle.cos(), angle.sin()


def _turn(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (..., T, d) with each pair of dimensions (i, i + d/2) turned by the angles whose cos and sin (T, d/2) are given."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]  # (..., T, d/2) each
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)  # (..., T, d)


def _weight(fan_in: int, fan_out: int, gain: float, generator: torch.Generator | None) -> nn.Parameter:
    """randn (fan_in, fan_out) · gain / √fan_in (gain 0: zeros, still drawn so that the generator
    advances as it would for any gain)."""
    return nn.Parameter(torch.randn(fan_in, fan_out, generator=generator) * (gain / math.sqrt(fan_in)))


class ReLU2(nn.ReLU):
    """Squared ReLU, max(x, 0)² (So et al. 2021, Primer). A subclass of nn.ReLU, so training
    statistics and `makemore inspect` count it as a ReLU layer (dead: output 0)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x).square()


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention (Vaswani et al. 2017, section 3.2), with the options of
    the module docstring: rotary positions (model.pos), QK-norm, value embeddings.

    Shapes: W_qkv (n_embd, 3·n_embd), columns [q | k | v]; b_qkv (3·n_embd,); W_proj (n_embd, n_embd);
    b_proj (n_embd,); with model.value_embed, VE (vocab_size, n_embd).
    """

    def __init__(self, cfg: ModelConfig, vocab_size: int, residual_gain: float, generator: torch.Generator | None):
        super().__init__()
        E = cfg.n_embd
        self.n_head, self.rotary, self.qk_norm = cfg.n_head, cfg.pos == "rotary", cfg.qk_norm
        self.W_qkv = _weight(E, 3 * E, 1.0, generator)  # (n_embd, 3·n_embd)
        self.b_qkv = nn.Parameter(torch.zeros(3 * E))  # (3·n_embd,)
        self.W_proj = _weight(E, E, residual_gain, generator)  # (n_embd, n_embd)
        self.b_proj = nn.Parameter(torch.zeros(E))  # (n_embd,)
        self.VE = nn.Parameter(torch.zeros(vocab_size, E)) if cfg.value_embed else None  # (vocab_size, n_embd)
        self.drop = Dropout(cfg.dropout)

    def _qkv(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """x (..., n_embd) and the inputs idx (...) there → q, k, v side by side (..., 3·n_embd), with
        q and k of every head RMS-normalised (qk_norm) and the value embeddings added to v.

        The normalisation works on each head's d dimensions, so doing it here, per position, gives
        what normalising the (B, n_head, T, d) heads gives, on the packed positions only and in one
        call for q and k (a padded position is all zeros either way: its RMS-normalised q, k are zeros)."""
        qkv = x @ self.W_qkv + self.b_qkv  # (..., 3·n_embd)
        if not self.qk_norm and self.VE is None:
            return qkv
        E = x.shape[-1]
        qk, v = qkv.split((2 * E, E), dim=-1)  # (..., 2·n_embd), (..., n_embd)
        if self.qk_norm:
            d = E // self.n_head
            qk = F.rms_norm(qk.unflatten(-1, (2 * self.n_head, d)), (d,), eps=NORM_EPS).flatten(-2)  # (..., 2·n_embd)
        if self.VE is not None:
            v = v + self.VE[idx]  # (..., n_embd): the value embedding of each position's input
        return torch.cat((qk, v), dim=-1)  # (..., 3·n_embd)

    def _position(self, q: torch.Tensor, k: torch.Tensor, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q, k (B, n_head, T, d) at positions pos (T,) → the q, k the dot products use: rotated
        (rotary; after QK-norm, which `_qkv` applied), unchanged otherwise."""
        if self.rotary:
            cos, sin = rotation(pos, q.shape[-1], q.dtype)  # (T, d/2) each
            q, k = _turn(q, cos, sin), _turn(k, cos, sin)  # (B, n_head, T, d)
        return q, k

    def forward(self, x: torch.Tensor, idx: torch.Tensor, packing: Packing | None = None) -> torch.Tensor:
        """x (B, T, n_embd), the inputs idx (B, T) → (B, T, n_embd): each position's mix of the
        values at and before it.

        Packed (see `computed_positions`): x (N, n_embd) and idx (N,) hold a prefix of each row's
        positions; the result is (N, n_embd) likewise."""
        E = x.shape[-1]
        qkv = self._qkv(x, idx)  # (B, T, 3·n_embd), or (N, 3·n_embd) packed
        if packing is not None:
            qkv = packing.unpack(qkv)  # (B, T, 3·n_embd), zeros after each row's computed positions
        B, T, _ = qkv.shape
        q, k, v = (a.view(B, T, self.n_head, E // self.n_head).transpose(1, 2) for a in qkv.split(E, dim=-1))  # (B, n_head, T, d)
        q, k = self._position(q, k, torch.arange(T, device=x.device))  # (B, n_head, T, d)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, n_head, T, d) = softmax(q·kᵀ/√d + M)·v
        y = y.transpose(1, 2).reshape(B, T, E)  # (B, T, n_embd): the heads side by side
        if packing is not None:
            y = packing.pack(y)  # (N, n_embd)
        return self.drop(y @ self.W_proj + self.b_proj, packing)  # (B, T, n_embd) or (N, n_embd)

    def step(self, x: torch.Tensor, idx_t: torch.Tensor, cache: KV | None) -> tuple[torch.Tensor, KV]:
        """One new position per row: x (B, n_embd), the position's input, attends to the cached
        keys and values of the t positions before it and to its own.

        Args:
            x: (B, n_embd) the new position of each row.
            idx_t: int64 (B,) the input there (for the value embeddings).
            cache: (k, v), each (B, n_head, t, d), of the positions before (keys normalised and
                rotated as the options say); None before the first.

        Returns:
            (B, n_embd) the new position's output (row t of `forward`'s), and the cache with the
            new position's key and value appended: (k, v), each (B, n_head, t + 1, d).
        """
        B, E = x.shape
        qkv = self._qkv(x, idx_t)  # (B, 3·n_embd)
        q, k, v = (a.reshape(B, self.n_head, 1, E // self.n_head) for a in qkv.split(E, dim=-1))  # (B, n_head, 1, d)
        t = 0 if cache is None else cache[0].shape[2]  # the new position's index
        q, k = self._position(q, k, torch.tensor([t], device=x.device))  # (B, n_head, 1, d)
        if cache is not None:
            k = torch.cat((cache[0], k), dim=2)  # (B, n_head, t + 1, d)
            v = torch.cat((cache[1], v), dim=2)  # (B, n_head, t + 1, d)
        y = F.scaled_dot_product_attention(q, k, v)  # (B, n_head, 1, d): no mask, every cached position is earlier
        return self.drop(y.reshape(B, E) @ self.W_proj + self.b_proj), (k, v)  # (B, n_embd)


class FeedForward(nn.Module):
    """The position-wise MLP of a block: act(x·W_fc + b_fc)·W_proj + b_proj, act GELU (tanh
    approximation) or, with model.mlp_act = "relu2", ReLU² (So et al. 2021).

    Shapes: W_fc (n_embd, n_hidden); b_fc (n_hidden,); W_proj (n_hidden, n_embd); b_proj (n_embd,).
    """

    def __init__(self, cfg: ModelConfig, residual_gain: float, generator: torch.Generator | None):
        super().__init__()
        relu2 = cfg.mlp_act == "relu2"
        self.W_fc = _weight(cfg.n_embd, cfg.n_hidden, GAINS["relu" if relu2 else "gelu"], generator)  # (n_embd, n_hidden)
        self.b_fc = nn.Parameter(torch.zeros(cfg.n_hidden))  # (n_hidden,)
        self.act = ReLU2() if relu2 else nn.GELU(approximate="tanh")
        self.W_proj = _weight(cfg.n_hidden, cfg.n_embd, residual_gain, generator)  # (n_hidden, n_embd)
        self.b_proj = nn.Parameter(torch.zeros(cfg.n_embd))  # (n_embd,)
        self.drop = Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, packing: Packing | None = None) -> torch.Tensor:
        """x (B, T, n_embd) → (B, T, n_embd), or packed (N, n_embd) → (N, n_embd) (packing: for dropout)."""
        h = self.act(x @ self.W_fc + self.b_fc)  # (B, T, n_hidden)
        return self.drop(h @ self.W_proj + self.b_proj, packing)  # (B, T, n_embd)


class Block(nn.Module):
    """One pre-LayerNorm Transformer block: x + Attention(LN(x)), then + MLP(LN(x)). With
    model.embed_skip, x is first replaced by mix[0]·x + mix[1]·x₀ (x₀ the embeddings; mix (2,)
    starts at (1, 0)); with model.zero_init, both projections into the stream start at zero."""

    def __init__(self, cfg: ModelConfig, vocab_size: int, generator: torch.Generator | None):
        super().__init__()
        residual_gain = 0.0 if cfg.zero_init else 1.0 / math.sqrt(2 * cfg.n_layers)
        self.ln1 = nn.LayerNorm(cfg.n_embd, eps=NORM_EPS)
        self.attn = CausalSelfAttention(cfg, vocab_size, residual_gain, generator)
        self.ln2 = nn.LayerNorm(cfg.n_embd, eps=NORM_EPS)
        self.mlp = FeedForward(cfg, residual_gain, generator)
        self.mix = nn.Parameter(torch.tensor([1.0, 0.0])) if cfg.embed_skip else None  # (2,)

    def _skip(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """The block's input: x, or mix[0]·x + mix[1]·x₀ with model.embed_skip (any shape)."""
        return x if self.mix is None else self.mix[0] * x + self.mix[1] * x0

    def forward(self, x: torch.Tensor, x0: torch.Tensor, idx: torch.Tensor, packing: Packing | None = None) -> torch.Tensor:
        """x and the embeddings x0 (B, T, n_embd), the inputs idx (B, T) → (B, T, n_embd), or packed
        (N, n_embd), (N, n_embd), (N,) → (N, n_embd) (see `computed_positions`)."""
        x = self._skip(x, x0)  # (B, T, n_embd)
        x = x + self.attn(self.ln1(x), idx, packing)  # (B, T, n_embd): communicate between positions
        return x + self.mlp(self.ln2(x), packing)  # (B, T, n_embd): compute at each position

    def step(self, x: torch.Tensor, x0: torch.Tensor, idx_t: torch.Tensor, cache: KV | None) -> tuple[torch.Tensor, KV]:
        """One new position per row: x and the embeddings x0 (B, n_embd), the inputs idx_t (B,) →
        (B, n_embd), with the attention's key/value cache before and after (see CausalSelfAttention.step)."""
        x = self._skip(x, x0)  # (B, n_embd)
        a, cache = self.attn.step(self.ln1(x), idx_t, cache)  # (B, n_embd)
        x = x + a  # (B, n_embd)
        return x + self.mlp(self.ln2(x)), cache  # (B, n_embd)


class Transformer(nn.Module):
    """GPT-style decoder-only Transformer language model.

    Args:
        cfg: model options n_embd, n_hidden (each block's MLP width), n_layers (blocks), n_head,
            dropout, and the architecture options of the module docstring (pos, qk_norm, mlp_act,
            zero_init, softcap, embed_skip, value_embed).
        vocab_size: tokens, boundary included.
        block_size: the longest input it takes (the longest word + 1): rows of P.
        generator: seeded torch.Generator for the initialisation.

    Shapes: C (vocab_size, n_embd) character embeddings; P (block_size, n_embd) position
    embeddings (GPT-2's wte and wpe; none with rotary positions); blocks.i (see Block); ln_f
    LayerNorm(n_embd); W_out (n_embd, vocab_size); b_out (vocab_size,); with n_labels > 0,
    label_emb (n_labels, n_embd).

    Raises:
        MakemoreError: n_head does not divide n_embd, or an odd head size with rotary positions.
    """

    def __init__(self, cfg: ModelConfig, vocab_size: int, block_size: int, generator: torch.Generator | None = None,
                 n_labels: int = 0):
        super().__init__()
        self.vocab_size, self.block_size, self.n_labels, self.softcap = vocab_size, block_size, n_labels, cfg.softcap
        head_size(cfg)
        g = generator
        self.C = nn.Parameter(torch.randn(vocab_size, cfg.n_embd, generator=g))  # (vocab_size, n_embd)
        self.P = None if cfg.pos == "rotary" else nn.Parameter(torch.randn(block_size, cfg.n_embd, generator=g))  # (block_size, n_embd)
        self.drop = Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg, vocab_size, g) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.n_embd, eps=NORM_EPS)
        out_scale = 0.0 if cfg.zero_init else OUTPUT_SCALE
        self.W_out = nn.Parameter(torch.randn(cfg.n_embd, vocab_size, generator=g) * out_scale)  # (n_embd, vocab_size)
        self.b_out = nn.Parameter(torch.zeros(vocab_size))  # (vocab_size,)
        self.label_emb = label_table(n_labels, cfg.n_embd)  # (n_labels, n_embd), added at every position; None unlabelled

    def outer_matrices(self) -> tuple[str, ...]:
        """The 2-D parameters that are not hidden weight matrices: the embedding tables C, P (none
        with rotary positions) and each attention's VE (with value embeddings), and the output head
        W_out. Every other 2-D parameter is a hidden matrix (for an optimizer that treats those apart)."""
        tables = ("C",) if self.P is None else ("C", "P")
        values = tuple(f"blocks.{i}.attn.VE" for i, block in enumerate(self.blocks) if block.attn.VE is not None)
        return (*tables, *values, "W_out")

    def _embed(self, idx: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        """C[idx] + P[t] (or C[idx] alone with rotary positions): idx (...) at positions t → (..., n_embd)."""
        return self.C[idx] if self.P is None else self.C[idx] + self.P[t]

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        """The stream x (..., n_embd) → logits (..., vocab_size): LN(x)·W_out + b_out, soft-capped
        to c·tanh(logits / c) with model.softcap = c > 0."""
        logits = self.ln_f(x) @ self.W_out + self.b_out  # (..., vocab_size)
        return self.softcap * torch.tanh(logits / self.softcap) if self.softcap > 0 else logits

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                label: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits for the character after every prefix of each row, and the mean NLL if targets are given.

        Args:
            idx: int64 (B, T) inputs, T ≤ block_size: the boundary, then the word (then boundary padding).
            targets: int64 (B, T) the next character at every position, IGNORE at padding; or None.
            label: int64 (B,) label ids (a conditional model only), added to every position's input.

        Returns:
            logits (B, T, vocab_size); loss: mean NLL in nats per character over the non-padded
            targets (scalar), or None. Position t depends only on idx[:, :t+1] (causal).
            With targets only the positions up to each row's last target are computed
            (`computed_positions`): logits is then (N, vocab_size), those positions row by row.
        """
        B, T = idx.shape
        x = self._embed(idx, slice(0, T))  # (B, T, n_embd)
        lab = label_vectors(self.label_emb, label)  # (B, n_embd) or None
        if lab is not None:
            x = x + lab[:, None]  # (B, T, n_embd): the label at every position
        packing = None if targets is None else computed_positions(targets)
        if packing is not None:
            x, idx = packing.pack(x), packing.pack(idx)  # (N, n_embd), (N,): the N positions the loss needs
        x = x0 = self.drop(x, packing)  # (B, T, n_embd) or (N, n_embd)
        for block in self.blocks:
            x = block(x, x0, idx, packing)  # (B, T, n_embd) or (N, n_embd)
        logits = self._logits(x)  # (B, T, vocab_size) or (N, vocab_size)
        loss = None if targets is None else lm_loss(logits, packing.pack(targets))
        return logits, loss

    def step(self, idx_t: torch.Tensor, state: tuple[KV, ...] | None = None,
             label: torch.Tensor | None = None) -> tuple[torch.Tensor, tuple[KV, ...]]:
        """Read one more input per row and return the logits for the character after it, keeping
        the keys and values of every position read so far (a key/value cache), so that each step
        computes only the new position: reading a row's inputs one at a time from state None gives,
        at each position, `forward`'s logits there, up to float rounding (tests/test_cached_sampling.py).
        For inference: dropout is applied as in `forward`, so only in eval mode do the two agree.

        Args:
            idx_t: int64 (B,) each row's next input (the first is the boundary, 0).
            state: what the previous step returned, for the t inputs read so far; None before the first.
            label: int64 (B,) label ids (a conditional model only), added to the input as in `forward`.

        Returns:
            logits (B, vocab_size) for the character after inputs 0..t; the new state: per block,
            (k, v) each (B, n_head, t + 1, d).

        Raises:
            ValueError: a step beyond the block_size positions the model has (P's rows).
        """
        t = 0 if state is None else state[0][0].shape[2]  # inputs read before this one
        if t >= self.block_size:
            raise ValueError(f"step: position {t} is beyond the model's block_size {self.block_size}")
        x = self._embed(idx_t, t)  # (B, n_embd)
        lab = label_vectors(self.label_emb, label)  # (B, n_embd) or None
        if lab is not None:
            x = x + lab  # (B, n_embd): the label, as at every position of `forward`
        x = x0 = self.drop(x)  # (B, n_embd)
        caches = []
        for i, block in enumerate(self.blocks):
            x, cache = block.step(x, x0, idx_t, None if state is None else state[i])  # (B, n_embd)
            caches.append(cache)
        return self._logits(x), tuple(caches)  # (B, vocab_size)
