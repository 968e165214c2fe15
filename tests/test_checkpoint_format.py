"""Checkpoints in safetensors (issue 23, item 2): what a new checkpoint holds, that reading it runs no
pickle, that every malformed, truncated or tampered file is one error line, and that the
checkpoint.pt of an older run is still read and becomes a checkpoint.safetensors on resuming."""

from __future__ import annotations

import io
import json
import math
import pickle
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import safetensors
import safetensors.numpy
import torch
from typer.testing import CliRunner

from makemore import runs
from makemore.cli import app
from makemore.errors import MakemoreError
from tests.conftest import copy_run, tiny_overrides, write_tiny_words

FIXTURES = Path(__file__).parent / "fixtures" / "v0.1"


def cli(*args: str | Path):
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_one_line_error(result, *expected: str, alone: bool = True) -> str:
    """Exit 2, no traceback, one `error:` line on stderr holding every `expected` piece; with
    `alone`, nothing else on stderr (no training had started: no progress line either)."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and (not alone or len(result.stderr.strip().splitlines()) == 1), result.stderr
    for piece in expected:
        assert piece in errors[0], (piece, errors[0])
    return errors[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny torch run with AdamW and dropout (30 steps): its optimizer state has int keys and
    tuples, and its dropout generator a uint8 state."""
    base = tmp_path_factory.mktemp("trained")
    words = write_tiny_words(base)
    run = base / "run"
    result = cli("train", "--config", "configs/names.toml", *tiny_overrides(words, steps=30), "--set", "train.backend=torch",
                 "--set", "train.optimizer=adamw", "--set", "train.lr=0.01", "--set", "model.dropout=0.1", "--run-dir", run, "-q")
    assert result.exit_code == 0, result.output
    return run


def split_file(data: bytes) -> tuple[dict[str, Any], bytes]:
    """A safetensors file's header (parsed) and its tensor bytes."""
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + n]), data[8 + n:]


def join_file(header: dict[str, Any], body: bytes) -> bytes:
    text = json.dumps(header).encode("utf-8")
    return len(text).to_bytes(8, "little") + text + body


# ---------------------------------------------------------------------------------------------
# What a new checkpoint is

def test_a_new_run_writes_a_safetensors_checkpoint(trained: Path) -> None:
    assert not (trained / runs.LEGACY_CHECKPOINT).exists()
    data = (trained / runs.CHECKPOINT).read_bytes()
    header, body = split_file(data)  # 8-byte little-endian header length, then a JSON header
    metadata = header.pop("__metadata__")
    assert metadata["format"] == runs.FORMAT and len(metadata["sha256"]) == 64
    layout = json.loads(metadata["checkpoint"])
    assert layout["step"] == 30 and layout["config"]["model"]["dropout"] == 0.1 and layout["vocab"][0] == "."
    assert {"model.C", "model.W1", "model.b1", "model.W2", "model.b2", "backend_state.dropout_rng"} <= set(header)
    assert max(entry["data_offsets"][1] for entry in header.values()) == len(body)
    # any safetensors reader reads it: the tensors equal what makemore hands its readers
    ckpt = runs.load_checkpoint(trained)
    with safetensors.safe_open(str(trained / runs.CHECKPOINT), framework="numpy") as f:
        assert f.metadata() == metadata
        assert np.array_equal(f.get_tensor("model.W1"), ckpt["model"]["W1"].numpy())
        assert f.get_tensor("backend_state.dropout_rng").dtype == np.uint8


def refuse(what: str) -> Callable[..., Any]:
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"{what} called while reading a checkpoint")

    return refused


@pytest.fixture
def no_pickle(monkeypatch) -> None:
    """Every way to unpickle (pickle, torch.load, np.load) raises while the test runs."""
    for owner, name in [(pickle, "loads"), (pickle, "load"), (pickle, "Unpickler"), (torch, "load"),
                        (torch.serialization, "load"), (np, "load")]:
        monkeypatch.setattr(owner, name, refuse(f"{owner.__name__}.{name}"))


def test_reading_a_new_run_never_unpickles(trained: Path, tmp_path: Path, no_pickle: None) -> None:
    run = copy_run(trained, tmp_path)
    ckpt = runs.load_checkpoint(run)
    assert ckpt["step"] == 30 and isinstance(ckpt["model"]["W1"], torch.Tensor)
    result = cli("evaluate", run, "--json")
    assert result.exit_code == 0, (result.output, result.exception)
    result = cli("train", "--resume", run, "--set", "train.steps=32", "-q")
    assert result.exit_code == 0, (result.output, result.exception)
    assert runs.load_checkpoint(run)["step"] == 32


def test_the_no_pickle_guard_catches_the_old_reader(trained: Path, tmp_path: Path, no_pickle: None) -> None:
    """The guard above is live: reading a checkpoint.pt (torch.load) under it fails."""
    run = copy_run(trained, tmp_path)
    (run / runs.LEGACY_CHECKPOINT).write_bytes(legacy_bytes(runs.load_checkpoint(run)))
    (run / runs.CHECKPOINT).unlink()
    with pytest.raises(MakemoreError, match="torch.load called while reading"):
        runs.load_checkpoint(run)


def test_every_kind_of_value_comes_back_as_it_was(tmp_path: Path) -> None:
    """Tensors of each dtype and rank, tuples, int keys, ints past 64 bits, floats, None, bools,
    strings that look like the layout's tags: what load_checkpoint returns is what was saved."""
    state = {
        "optimizer": {"state": {0: {"step": torch.tensor(7.0), "exp_avg": torch.randn(3, 2, dtype=torch.float64)}},
                      "param_groups": [{"betas": (0.9, 0.95), "params": [0, 1], "foreach": None, "fused": True, "lr": 0.1 / 3}]},
        "rng": torch.arange(256, dtype=torch.uint8), "mask": np.array([True, False]), "empty": np.zeros((0, 4), np.float32),
        "pcg": {"state": 2**127 + 12345, "inc": -(2**70)}, "scalar": np.int64(5), "nan": math.nan, "nested": [[], {}, ()],
        "tag_like": {"__tensor__": "not a tensor"}, "names": {"__tuple__": [1, 2]}, "text": "josé ✓",
    }
    ckpt = runs.make_checkpoint(params={"W": np.arange(6, dtype=np.float32).reshape(2, 3)}, config={"model": {"type": "mlp"}},
                                itos=[".", "é"], step=3, backend="torch", backend_state=state, elapsed_s=1.25,
                                provenance={"data_sha256": "ab" * 32, "max_word_len": 4})
    runs.save_checkpoint(tmp_path, ckpt)
    back = runs.load_checkpoint(tmp_path)
    assert back.pop("format") == runs.FORMAT
    got = back["backend_state"]
    assert torch.equal(back["model"]["W"], torch.arange(6, dtype=torch.float32).reshape(2, 3))
    opt = got["optimizer"]
    assert list(opt["state"]) == [0] and opt["state"][0]["step"].shape == () and opt["state"][0]["step"].item() == 7.0
    assert torch.equal(opt["state"][0]["exp_avg"], state["optimizer"]["state"][0]["exp_avg"])
    assert opt["param_groups"] == state["optimizer"]["param_groups"] and isinstance(opt["param_groups"][0]["betas"], tuple)
    assert torch.equal(got["rng"], state["rng"]) and got["mask"].dtype == torch.bool and got["empty"].shape == (0, 4)
    assert got["pcg"] == {"state": 2**127 + 12345, "inc": -(2**70)} and got["scalar"] == 5 and math.isnan(got["nan"])
    assert got["nested"] == [[], {}, ()] and isinstance(got["nested"][2], tuple)
    assert got["tag_like"] == {"__tensor__": "not a tensor"} and got["names"] == {"__tuple__": [1, 2]} and got["text"] == "josé ✓"
    assert {k: back[k] for k in ("config", "vocab", "step", "backend", "elapsed_s", "data_sha256", "max_word_len")} == {
        "config": {"model": {"type": "mlp"}}, "vocab": [".", "é"], "step": 3, "backend": "torch", "elapsed_s": 1.25,
        "data_sha256": "ab" * 32, "max_word_len": 4}


# ---------------------------------------------------------------------------------------------
# Malformed, truncated and tampered files: one line, exit 2, the file left as it was

def flip_in_tensors(data: bytes) -> bytes:
    b = bytearray(data)
    b[-5] ^= 0x01  # one bit of the last tensor
    return bytes(b)


def with_header(change: Callable[[dict[str, Any]], None]) -> Callable[[bytes], bytes]:
    def damage(data: bytes) -> bytes:
        header, body = split_file(data)
        change(header)
        return join_file(header, body)

    return damage


def change_step(header: dict[str, Any]) -> None:
    layout = json.loads(header["__metadata__"]["checkpoint"])
    layout["step"] = 3
    header["__metadata__"]["checkpoint"] = json.dumps(layout)


def with_layout(change: Callable[[dict[str, Any]], None]) -> Callable[[bytes], bytes]:
    """A layout changed and its checksum recomputed, as a forger would: what the layout says is checked too."""
    def damage(data: bytes) -> bytes:
        header, _ = split_file(data)
        metadata = header["__metadata__"]
        layout = json.loads(metadata["checkpoint"])
        change(layout)
        arrays = safetensors.numpy.load(data)
        text = json.dumps(layout)
        return safetensors.numpy.save(arrays, metadata={**metadata, "checkpoint": text, "sha256": runs._digest(text, arrays)})

    return damage


def another_programs_file(_: bytes) -> bytes:
    return safetensors.numpy.save({"weight": np.zeros((2, 2), np.float32)}, metadata={"format": "pt"})


def a_torch_file(_: bytes) -> bytes:
    buf = io.BytesIO()
    torch.save({"state_dict": {"w": torch.zeros(2)}}, buf)
    return buf.getvalue()


DAMAGES: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "empty file": (lambda _: b"", "too short"),
    "header is not JSON": (lambda d: d[:8] + b"[" + d[9:], "header is not JSON"),
    "header length past the end of the file": (lambda d: len(d).to_bytes(8, "little") + d[8:], "runs past the end"),
    "header length 2**64 - 1": (lambda d: b"\xff" * 8 + d[8:], "runs past the end"),
    "truncated by one byte": (lambda d: d[:-1], "unreadable"),
    "truncated to its header": (lambda d: d[:8 + int.from_bytes(d[:8], "little")], "unreadable"),
    "a bit flipped in a tensor": (flip_in_tensors, "SHA-256"),
    "the step changed in the header": (with_header(change_step), "SHA-256"),
    "a tensor's dtype changed in the header": (with_header(lambda h: h["model.W1"].update(dtype="I32")), "SHA-256"),
    "the checksum removed": (with_header(lambda h: h["__metadata__"].pop("sha256")), "SHA-256"),
    "layout names a tensor the file lacks": (with_layout(lambda lay: lay["model"].update(W1={"__tensor__": "nope"})), "'nope'"),
    "layout tag without a list": (with_layout(lambda lay: lay.update(step={"__tuple__": 3})), "holds no list"),
    "layout not a dict": (with_layout(lambda lay: lay.clear() or lay.update({"__tuple__": []})), "not a makemore checkpoint"),
    "another program's safetensors file": (another_programs_file, "not a makemore checkpoint"),
    "a torch file": (a_torch_file, "unreadable"),
}

COMMANDS = {
    "evaluate": lambda run: ("evaluate", run),
    "resume": lambda run: ("train", "--resume", run, "--set", "train.steps=40", "-q"),
}


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("command", COMMANDS)
def test_a_damaged_checkpoint_is_one_error_line(trained: Path, tmp_path: Path, damage: str, command: str) -> None:
    run = copy_run(trained, tmp_path)
    path = run / runs.CHECKPOINT
    make, expected = DAMAGES[damage]
    damaged = make(path.read_bytes())
    path.write_bytes(damaged)
    assert_one_line_error(cli(*COMMANDS[command](run)), str(path), expected)
    assert path.read_bytes() == damaged  # a refused resume writes nothing over it


@pytest.mark.parametrize("command,expected", [("evaluate", "parameters do not match the model in its config"),
                                              ("resume", "does not fit this config")])
def test_tensors_of_the_wrong_shape_are_one_error_line(trained: Path, tmp_path: Path, command: str, expected: str) -> None:
    """A well-formed checkpoint (its checksum matches) whose W1 does not fit the model of its config."""
    run = copy_run(trained, tmp_path)
    ckpt = runs.load_checkpoint(run)
    ckpt["model"]["W1"] = torch.zeros(5, 7)
    runs.save_checkpoint(run, ckpt)
    assert_one_line_error(cli(*COMMANDS[command](run)), expected)


# ---------------------------------------------------------------------------------------------
# checkpoint.pt of older runs

def legacy_bytes(ckpt: dict[str, Any]) -> bytes:
    """A checkpoint as an older makemore wrote it: torch.save of the dict, format makemore-checkpoint-1."""
    buf = io.BytesIO()
    torch.save({**ckpt, "format": runs.LEGACY_FORMAT}, buf)
    return buf.getvalue()


def test_an_old_checkpoint_is_read_and_evaluates_as_the_new_one(trained: Path, tmp_path: Path) -> None:
    run = copy_run(trained, tmp_path)
    new = cli("evaluate", run, "--split", "all", "--json")
    assert new.exit_code == 0, new.output
    (run / runs.LEGACY_CHECKPOINT).write_bytes(legacy_bytes(runs.load_checkpoint(run)))
    (run / runs.CHECKPOINT).unlink()
    assert runs.has_checkpoint(run) and runs.checkpoint_file(run).name == runs.LEGACY_CHECKPOINT
    assert runs.load_checkpoint(run)["format"] == runs.LEGACY_FORMAT
    old = cli("evaluate", run, "--split", "all", "--json")
    assert old.exit_code == 0, old.output
    assert json.loads(old.stdout) == json.loads(new.stdout)


def test_a_damaged_old_checkpoint_is_still_refused(trained: Path, tmp_path: Path) -> None:
    run = copy_run(trained, tmp_path)
    data = bytearray(legacy_bytes(runs.load_checkpoint(run)))
    for i in range(len(data) // 2, len(data) // 2 + 16):
        data[i] ^= 0xFF
    (run / runs.LEGACY_CHECKPOINT).write_bytes(bytes(data))
    (run / runs.CHECKPOINT).unlink()
    assert_one_line_error(cli("evaluate", run), str(run / runs.LEGACY_CHECKPOINT), "unreadable")


@pytest.fixture
def old_mlp_run(tmp_path: Path, monkeypatch) -> Path:
    """A copy of makemore 0.1's mlp run (tests/fixtures/v0.1), the working directory its data.path is relative to."""
    work = tmp_path / "v0.1"
    work.mkdir()
    shutil.copy(FIXTURES / "words.txt", work / "words.txt")
    shutil.copytree(FIXTURES / "mlp", work / "mlp")
    monkeypatch.chdir(work)
    return work / "mlp"


def test_resuming_an_old_run_replaces_its_checkpoint_pt(old_mlp_run: Path) -> None:
    """The first checkpoint a resumed old run writes is checkpoint.safetensors; checkpoint.pt is then removed."""
    before = runs.load_checkpoint(old_mlp_run)
    assert before["format"] == runs.LEGACY_FORMAT and before["step"] == 40
    result = cli("train", "--resume", old_mlp_run, "--set", "train.steps=45", "-q")
    assert result.exit_code == 0, result.output
    assert not (old_mlp_run / runs.LEGACY_CHECKPOINT).exists()
    after = runs.load_checkpoint(old_mlp_run)
    assert after["format"] == runs.FORMAT and after["step"] == 45 and after["vocab"] == before["vocab"]
    assert after["data_sha256"] == before["data_sha256"]


def test_an_old_checkpoint_is_kept_when_the_new_one_cannot_be_written(old_mlp_run: Path, monkeypatch) -> None:
    legacy = old_mlp_run / runs.LEGACY_CHECKPOINT
    original = legacy.read_bytes()
    real_write = runs.atomic_write_bytes

    def disk_full(path: Path, write: Callable[[Any], None]) -> None:
        if path.name != runs.CHECKPOINT:
            return real_write(path, write)

        def partial(f: Any) -> None:
            f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00 the start")
            raise OSError(28, "No space left on device")

        return real_write(path, partial)

    monkeypatch.setattr(runs, "atomic_write_bytes", disk_full)
    result = cli("train", "--resume", old_mlp_run, "--set", "train.steps=45", "-q")
    assert_one_line_error(result, "cannot write the checkpoint", "No space left on device", alone=False)
    assert legacy.read_bytes() == original and not (old_mlp_run / runs.CHECKPOINT).exists()
    assert runs.load_checkpoint(old_mlp_run)["step"] == 40


def test_a_damaged_best_checkpoint_is_one_error_line_and_last_still_reads(trained: Path, tmp_path: Path) -> None:
    """evaluate reads best.safetensors by default: a bit flipped in it is one line naming it, and
    --checkpoint last still reads the intact last checkpoint."""
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    best = run / runs.BEST_CHECKPOINT
    data = bytearray(best.read_bytes())
    data[-3] ^= 0x01
    best.write_bytes(bytes(data))
    assert_one_line_error(cli("evaluate", run), str(best))
    assert cli("evaluate", run, "--checkpoint", "last").exit_code == 0
