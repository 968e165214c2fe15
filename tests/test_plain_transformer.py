"""The benchmark's plain Transformer reference (benchmarks/plain_transformer.py) trains, and its
model is makemore's Transformer: on copied weights both compute the same logits, so the benchmark
races two implementations of one model, not two models."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from benchmarks import plain_transformer as plain
from makemore.config import ModelConfig
from makemore.models import build_model


class StepClock:
    """A clock for the plain loop that advances 0.5 s at every optimizer step and at no other time:
    the training time it reports must then be 0.5 s per step taken, whatever the machine, and the
    evaluations, which take no steps, take no time."""

    SECONDS_PER_STEP = 0.5

    def __init__(self) -> None:
        self.steps = 0

    def perf_counter(self) -> float:
        return self.steps * self.SECONDS_PER_STEP

    def tick(self, *args) -> None:
        self.steps += 1


def test_the_plain_loop_trains_a_few_steps_and_reports_its_dev_loss(tiny_words_file: Path, monkeypatch) -> None:
    threads = torch.get_num_threads()
    clock = StepClock()
    monkeypatch.setattr(plain, "time", clock)  # the module's clock only
    hook = register_optimizer_step_post_hook(clock.tick)
    try:
        out = plain.train(steps=4, threads=1, path=str(tiny_words_file), eval_every=2, batch=8, quiet=True)
    finally:
        hook.remove()
        torch.set_num_threads(threads)
    assert clock.steps == 4
    assert out["steps"] == 4 and out["batch_size"] == 8 and out["threads"] == 1
    assert [step for step, _, _ in out["curve"]] == [2, 4] and out["dev_loss"] == out["curve"][-1][2]
    assert math.isfinite(out["dev_loss"]) and 2.0 < out["dev_loss"] < 6.0  # near ln(vocab_size) after 4 steps
    assert [seconds for _, seconds, _ in out["curve"]] == [1.0, 2.0]  # training time at each evaluation: 0.5 s a step
    assert out["train_s"] == 2.0 and out["eval_s"] == 0.0 and out["steps_per_s"] == 2.0


def test_its_data_is_makemore_py_s_layout() -> None:
    data = plain.PaddedWords(["ab", "c"], {"a": 1, "b": 2, "c": 3}, max_len=3)
    x, y = data[0]
    assert x.tolist() == [0, 1, 2, 0] and y.tolist() == [1, 2, 0, -1]


def test_on_copied_weights_it_computes_makemores_transformer() -> None:
    V, T = 27, 16
    cfg = dataclasses.replace(ModelConfig(), type="transformer", n_embd=plain.N_EMBD, n_hidden=4 * plain.N_EMBD,
                              n_head=plain.N_HEAD, n_layers=plain.N_LAYER)
    ours = build_model(cfg, V, T, torch.Generator().manual_seed(0)).eval()
    ref = plain.PlainTransformer(V, T).eval()
    with torch.no_grad():
        ours.b_out.zero_()  # the reference's output layer has no bias
        ref.wte.weight.copy_(ours.C)
        ref.wpe.weight.copy_(ours.P)
        for a, b in zip(ref.blocks, ours.blocks):
            for lin, (W, bias) in ((a.attn.qkv, (b.attn.W_qkv, b.attn.b_qkv)), (a.attn.proj, (b.attn.W_proj, b.attn.b_proj)),
                                   (a.mlp[0], (b.mlp.W_fc, b.mlp.b_fc)), (a.mlp[2], (b.mlp.W_proj, b.mlp.b_proj))):
                lin.weight.copy_(W.T)  # nn.Linear keeps (out, in); makemore the lecture's (in, out)
                lin.bias.copy_(bias)
            for ln, mine in ((a.ln1, b.ln1), (a.ln2, b.ln2)):
                ln.load_state_dict(mine.state_dict())
        ref.ln_f.load_state_dict(ours.ln_f.state_dict())
        ref.head.weight.copy_(ours.W_out.T)
        idx = torch.randint(0, V, (5, T), generator=torch.Generator().manual_seed(1))
        torch.testing.assert_close(ref(idx)[0], ours(idx)[0], rtol=1e-4, atol=1e-5)
