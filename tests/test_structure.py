"""The structure of the redesign: no import circle anywhere, one registry, backends' allow-lists.

The layers themselves are checked by `lint-imports` (the contracts in pyproject.toml), which the
test command runs; the circle test here also sees a package importing its own children back.
"""

from __future__ import annotations

import dataclasses

import grimp
import pytest

from makemore.backends import BACKENDS, backend_class
from makemore.prepare import check
from makemore.backends.base import Support
from makemore.config import Config, ModelConfig, load_config
from makemore.errors import MakemoreError
from makemore.models import FAMILIES, Family, build_model, family, unused_options


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the strongly connected components with more than one module (the circles)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles


def test_no_import_circle_anywhere_in_makemore() -> None:
    graph = grimp.build_graph("makemore")
    modules = {m for m in graph.modules if m.startswith("makemore")}
    imports = {m: {i for i in graph.find_modules_directly_imported_by(m) if i.startswith("makemore")} for m in modules}
    assert strongly_connected(imports) == []


def test_the_circle_finder_finds_a_circle() -> None:
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_family_is_registered_once_with_options_that_exist() -> None:
    fields = {f.name for f in dataclasses.fields(ModelConfig)}
    for name, fam in FAMILIES.items():
        assert fam.name == name
        assert set(fam.options) <= fields - {"type"}, name
        model = build_model(dataclasses.replace(ModelConfig(), type=name), vocab_size=7, block_size=4)
        assert hasattr(model, "block_size") and hasattr(model, "vocab_size")
        if fam.embedding is not None:
            assert model.state_dict()[fam.embedding].shape[0] == 7


def test_an_option_another_family_reads_is_noted_not_refused() -> None:
    cfg = load_config("configs/names.toml", ["model.type=bigram"])
    assert family(cfg.model).counted
    assert unused_options(cfg.model) == []  # names.toml's n_embd/n_hidden are the defaults
    cfg = load_config("configs/best.toml", ["model.type=bigram"])
    assert "model.n_hidden" in unused_options(cfg.model) and "model.dropout" in unused_options(cfg.model)


@pytest.mark.parametrize("backend", ["numpy", "mlx"])
def test_the_hand_written_backends_refuse_what_they_do_not_implement(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config("configs/names.toml", [f"train.backend={backend}"])
    assert check(cfg).family.name == "mlp"
    # a new MLP option the backends never heard of: refused unless left at its default
    monkeypatch.setitem(FAMILIES, "mlp", dataclasses.replace(FAMILIES["mlp"], options=(*FAMILIES["mlp"].options, "smoothing")))
    assert check(cfg).family.name == "mlp"
    cfg.model.smoothing = 0.5
    with pytest.raises(MakemoreError) as e:
        check(cfg)
    message = str(e.value)
    assert f"train.backend = {backend!r} cannot train model.smoothing = 0.5" in message
    assert "train.backend = 'torch'" in message  # the backend that can
    assert "\n" not in message


def test_a_new_family_is_refused_by_the_hand_written_backends_and_trained_by_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(FAMILIES, "mlp2", dataclasses.replace(FAMILIES["mlp"], name="mlp2"))
    cfg = load_config("configs/names.toml", ["model.type=mlp2", "train.backend=numpy"])
    with pytest.raises(MakemoreError, match=r"cannot train model.type = 'mlp2': train it with train.backend = 'torch'"):
        check(cfg)
    cfg.train.backend = "torch"
    assert check(cfg).family.name == "mlp2"


def test_an_unlisted_choice_of_a_listed_option_is_refused() -> None:
    support = Support(models={"mlp": {"activation": ("tanh",)}}, optimizers=("sgd",))
    cfg = Config()
    assert support.refusal(cfg, FAMILIES["mlp"]) is None
    cfg.model.activation = "relu"
    assert support.refusal(cfg, FAMILIES["mlp"]) == "model.activation = 'relu'"
    cfg.model.activation, cfg.train.optimizer = "tanh", "adamw"
    assert support.refusal(cfg, FAMILIES["mlp"]) == "train.optimizer = 'adamw'"


def test_every_backend_declares_an_allow_list() -> None:
    for name in BACKENDS:
        support = backend_class(name).SUPPORTS
        assert isinstance(support, Support) and support.optimizers, name
    assert backend_class("torch").SUPPORTS.models is None  # the reference trains every family


def test_counted_families_are_fitted_whatever_the_backend() -> None:
    for backend in BACKENDS:
        cfg = load_config("configs/names.toml", ["model.type=bigram", f"train.backend={backend}"])
        fam: Family = check(cfg).family
        assert fam.counted
