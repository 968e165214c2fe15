"""The Transformer's architecture options (issue 25, item 2): rotary positions, QK-norm, ReLU² in
the MLP, zero-initialised projections, a logit soft-cap, embedding skips and value embeddings.

For each option alone and all together: the shapes, an initial loss near ln(vocab_size),
causality, the key/value-cache step equal to the full forward, and the option really changing
the computation (each its own way). All together: an interrupted and resumed run equals an
uninterrupted one. Off (the default), the model is today's: tests/test_compat.py and
tests/test_plain_transformer.py load and compare it unchanged.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from makemore import runs
from makemore import training as train_module
from makemore.config import ModelConfig, load_config
from makemore.errors import MakemoreError
from makemore.models import build_model
from makemore.models.base import hidden_layers
from makemore.models.transformer import ReLU2, rotate
from makemore.prepare import check
from makemore.training import TrainingInterrupted
from tests.test_resume import assert_same_state, cli, interrupt_at, small_chunks, tiny_config, write_words  # noqa: F401

V, BLOCK_SIZE = 11, 9

pytestmark = pytest.mark.usefixtures("no_loss_plot")

#: Each option on, as ModelConfig fields; "all": every one together.
OPTIONS = {
    "rotary": {"pos": "rotary"},
    "qk_norm": {"qk_norm": True},
    "relu2": {"mlp_act": "relu2"},
    "zero_init": {"zero_init": True},
    "softcap": {"softcap": 5.0},
    "embed_skip": {"embed_skip": True},
    "value_embed": {"value_embed": True},
}
OPTIONS["all"] = {k: v for opts in OPTIONS.values() for k, v in opts.items()}


def cfg_of(**options) -> ModelConfig:
    return dataclasses.replace(ModelConfig(), type="transformer", n_embd=8, n_hidden=16, n_layers=2, n_head=2, **options)


def model_of(options: dict, seed: int = 0, perturb: float = 0.0) -> torch.nn.Module:
    """A small transformer with `options`, in eval mode; its parameters moved by perturb·randn
    (so zero-initialised and mixing parameters are away from their starting values)."""
    g = torch.Generator().manual_seed(seed)
    model = build_model(cfg_of(**options), V, BLOCK_SIZE, g)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * perturb)
    return model.eval()


def inputs(seed: int = 1, B: int = 4) -> torch.Tensor:
    idx = torch.randint(1, V, (B, BLOCK_SIZE), generator=torch.Generator().manual_seed(seed))  # (B, T)
    idx[:, 0] = 0
    return idx


@pytest.mark.parametrize("name", OPTIONS)
def test_shapes_and_initial_loss_near_ln_vocab_size(name: str) -> None:
    model = model_of(OPTIONS[name])
    idx = inputs()
    logits, _ = model(idx)
    assert logits.shape == (4, BLOCK_SIZE, V)
    targets = torch.roll(idx, -1, dims=1)  # (B, T)
    _, loss = model.train()(idx, targets)
    assert abs(loss.item() - math.log(V)) < 0.05, loss.item()


@pytest.mark.parametrize("name", ["zero_init", "all"])
def test_zero_init_starts_at_exactly_ln_vocab_size(name: str) -> None:
    """W_out = 0 and b_out = 0: every logit is 0, a uniform guess: the loss is ln V to rounding."""
    model = model_of(OPTIONS[name])
    assert not model.W_out.any()
    assert all(not b.attn.W_proj.any() and not b.mlp.W_proj.any() for b in model.blocks)
    idx = inputs()
    _, loss = model.train()(idx, torch.roll(idx, -1, dims=1))
    assert loss.item() == pytest.approx(math.log(V), abs=1e-6)


@pytest.mark.parametrize("name", OPTIONS)
def test_causal_a_later_input_changes_no_earlier_logit(name: str) -> None:
    model = model_of(OPTIONS[name], perturb=0.5)
    idx = inputs()
    changed = idx.clone()
    changed[:, 5] = (idx[:, 5] % (V - 1)) + 1  # a different character at position 5
    with torch.no_grad():
        a, _ = model(idx)
        b, _ = model(changed)
    torch.testing.assert_close(a[:, :5], b[:, :5], rtol=0, atol=1e-6)
    assert (a[:, 5:] - b[:, 5:]).abs().max() > 1e-3  # the change does reach the later positions


@pytest.mark.parametrize("name", OPTIONS)
def test_the_cached_step_gives_the_full_forwards_logits(name: str) -> None:
    """Reading one input at a time through the key/value cache (rotated, normalised keys; value
    embeddings; the embeddings' skip) gives forward's logits at every position."""
    model = model_of(OPTIONS[name], perturb=0.5)
    idx = inputs()
    with torch.inference_mode():
        full, _ = model(idx)  # (B, T, V)
        state = None
        for t in range(BLOCK_SIZE):
            logits, state = model.step(idx[:, t], state)  # (B, V)
            torch.testing.assert_close(logits, full[:, t], rtol=1e-5, atol=1e-5)
    assert full.std() > 0.5


@pytest.mark.parametrize("name", OPTIONS)
def test_packed_training_positions_give_the_padded_minibatchs_loss(name: str) -> None:
    """With targets the model computes only the positions up to each row's end (computed_positions):
    the loss equals the one from the full logits of the whole padded minibatch."""
    model = model_of(OPTIONS[name], perturb=0.5)
    idx = inputs()
    targets = torch.roll(idx, -1, dims=1)  # (B, T)
    targets[0, 4:] = -1  # rows of different lengths: padding after each end
    targets[2, 7:] = -1
    with torch.no_grad():
        full, _ = model(idx)  # (B, T, V)
        _, loss = model(idx, targets)
        expected = torch.nn.functional.cross_entropy(full.reshape(-1, V), targets.reshape(-1), ignore_index=-1)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_rotary_scores_depend_only_on_the_difference_of_positions() -> None:
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 8, generator=g), torch.randn(2, 8, generator=g)  # one query, one key, d = 8

    def score(s: int, t: int) -> float:
        return float(rotate(q[:1], torch.tensor([s])) @ rotate(k[:1], torch.tensor([t])).T)

    assert score(3, 1) == pytest.approx(score(7, 5), abs=1e-5) == pytest.approx(score(2, 0), abs=1e-5)
    assert abs(score(3, 1) - score(3, 2)) > 1e-3  # another difference, another score
    assert rotate(q, torch.tensor([0, 0])).equal(q)  # position 0: no turn
    torch.testing.assert_close(rotate(q, torch.tensor([5, 9])).norm(dim=-1), q.norm(dim=-1))  # a rotation keeps lengths


def test_rotary_has_no_position_table_and_still_tells_positions_apart() -> None:
    """No P; the same character at two positions after the same prefix character gives different
    logits only through the rotation (with a learned P both would differ anyway)."""
    model = model_of(OPTIONS["rotary"], perturb=0.5)
    assert model.P is None and "P" not in model.state_dict()
    idx = torch.tensor([[0, 3, 3, 3, 3]])
    with torch.no_grad():
        logits, _ = model(idx)
    assert (logits[0, 1] - logits[0, 3]).abs().max() > 1e-3
    with pytest.raises(MakemoreError, match=r"model.pos = 'rotary' rotates pairs .* = 3: make it even"):
        check(load_config("configs/transformer.toml", ["model.pos=rotary", "model.n_embd=12", "model.n_head=4"]))


def same_weights(options: dict, seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module]:
    """A plain model (perturbed) and a model with `options` carrying the same weights (the option's
    own parameters left at their initial values)."""
    plain = model_of({}, seed, perturb=0.5)
    other = model_of(options, seed)
    missing, unexpected = other.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected
    return plain, other


def test_qk_norm_normalises_queries_and_keys() -> None:
    plain, normed = same_weights({"qk_norm": True})
    attn = normed.blocks[0].attn
    E, H = attn.W_proj.shape[0], attn.n_head
    x = torch.randn(2, 5, E) * torch.linspace(0.5, 7, E)  # (B, T, n_embd), heads of unequal scales
    q, k, v = attn._qkv(x, torch.zeros(2, 5, dtype=torch.long)).split(E, dim=-1)  # (B, T, n_embd) each
    for a in (q, k):  # every head of q and of k, at every position, has RMS 1
        torch.testing.assert_close(a.unflatten(-1, (H, E // H)).square().mean(-1), torch.ones(2, 5, H), rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(v, (x @ attn.W_qkv + attn.b_qkv)[..., 2 * E:])  # v untouched
    idx = inputs()
    with torch.no_grad():
        assert (plain(idx)[0] - normed(idx)[0]).abs().max() > 1e-3


def test_relu2_is_the_squared_relu_and_counts_as_a_relu_layer() -> None:
    model = model_of({"mlp_act": "relu2"})
    assert isinstance(model.blocks[0].mlp.act, ReLU2)
    x = torch.tensor([-2.0, -0.1, 0.0, 0.5, 3.0])
    assert ReLU2()(x).tolist() == [0.0, 0.0, 0.0, 0.25, 9.0]
    assert [kind for _, kind, _ in hidden_layers(model)] == ["relu", "relu"]


def test_softcap_bounds_the_logits_to_c_tanh_of_the_uncapped() -> None:
    plain, capped = same_weights({"softcap": 2.0})
    with torch.no_grad():
        for p in (plain.W_out, capped.W_out):
            p.mul_(100)  # logits far beyond the cap
        a, _ = plain(inputs())
        b, _ = capped(inputs())
    assert a.abs().max() > 10 and b.abs().max() <= 2.0
    torch.testing.assert_close(b, 2.0 * torch.tanh(a / 2.0))


@pytest.mark.parametrize("name, param", [("embed_skip", "mix"), ("value_embed", "attn.VE")])
def test_skips_and_value_embeddings_start_as_the_plain_model_and_learn(name: str, param: str) -> None:
    """At their initial values ((1, 0) mix, zero VE) the model computes the plain model's logits;
    a training step's gradient reaches them, and moved they change the logits."""
    plain, other = same_weights(OPTIONS[name])
    idx = inputs()
    with torch.no_grad():
        torch.testing.assert_close(other(idx)[0], plain(idx)[0])
    _, loss = other.train()(idx, torch.roll(idx, -1, dims=1))
    loss.backward()
    p = other.blocks[0].get_parameter(param)
    assert p.grad is not None and p.grad.abs().max() > 0
    with torch.no_grad():
        p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(3)))
        assert (other.eval()(idx)[0] - plain(idx)[0]).abs().max() > 1e-3


def test_the_options_are_config_keys_with_checked_values() -> None:
    cfg = load_config("configs/transformer.toml", ["model.pos=rotary", "model.qk_norm=true", "model.mlp_act=relu2",
                                                    "model.zero_init=true", "model.softcap=15", "model.embed_skip=true",
                                                    "model.value_embed=true"])
    assert (cfg.model.pos, cfg.model.softcap, cfg.model.value_embed) == ("rotary", 15.0, True)
    with pytest.raises(MakemoreError, match="model.pos must be one of 'learned', 'rotary', got 'alibi'"):
        load_config("configs/transformer.toml", ["model.pos=alibi"])
    with pytest.raises(MakemoreError, match="model.softcap must be a finite number >= 0"):
        load_config("configs/transformer.toml", ["model.softcap=-1"])
    assert ModelConfig().pos == "learned" and not ModelConfig().zero_init and ModelConfig().softcap == 0.0


def test_all_options_resumed_equal_an_uninterrupted_run(tmp_path) -> None:
    """Every option on, AdamW, dropout: a run stopped at step 11 and resumed ends in exactly the
    state of a run never stopped (the mixing weights and value embeddings in the checkpoint)."""
    sets = [f"model.{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in OPTIONS["all"].items()]
    extra = ["model.type=transformer", "train.backend=torch", "model.n_embd=8", "model.n_head=2", "model.n_layers=2",
             "train.optimizer=adamw", "train.lr=0.01", "model.dropout=0.1", "train.schedule=cosine", *sets]
    config = tiny_config(tmp_path, write_words(tmp_path), extra)
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    cli("train", "--config", config, "--run-dir", straight, "-q")
    with pytest.raises(TrainingInterrupted):
        train_module.train(load_config(config), stopped, listener=interrupt_at(10))
    cli("train", "--resume", stopped, "-q")
    a, b = runs.load_checkpoint(straight), runs.load_checkpoint(stopped)
    assert "blocks.0.mix" in a["model"] and "blocks.1.attn.VE" in a["model"] and "P" not in a["model"]
    assert_same_state(a, b)


@pytest.mark.parametrize("name", ["base", "rotary", "value_embed", "all"])
def test_outer_matrices_are_the_tables_and_the_head_and_every_other_matrix_is_hidden(name: str) -> None:
    """The names exist (no P with rotary positions; each block's VE with value embeddings), and the
    2-D parameters they leave out are exactly the blocks' projections."""
    model = model_of(OPTIONS.get(name, {}))
    params = dict(model.named_parameters())
    outer = model.outer_matrices()
    assert set(outer) <= set(params)
    hidden = sorted(n for n, p in params.items() if p.dim() == 2 and n not in outer)
    assert hidden == sorted(f"blocks.{i}.{m}" for i in range(2) for m in ("attn.W_qkv", "attn.W_proj", "mlp.W_fc", "mlp.W_proj"))
    assert ("P" in outer) == (name not in ("rotary", "all")) and ("blocks.1.attn.VE" in outer) == (name in ("value_embed", "all"))
