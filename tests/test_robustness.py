"""Bad input gets one clear line on stderr and exit code 2; odd but valid files simply work.

Every case runs through the command line as a user would (typer's CliRunner on makemore.cli.app):
bad words files, bad configs, bad run directories and checkpoints, bad sampling options. A
crafted checkpoint whose pickle would run code is refused, and the code does not run.
"""

from __future__ import annotations

import io
import json
import pickle
import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from makemore import runs
from makemore.cli import app
from makemore.data import load_dataset
from tests.conftest import copy_run

WORDS = [
    "ava", "ben", "cara", "dan", "eli", "fay", "gus", "hana", "ian", "jo",
    "kai", "lea", "max", "nia", "otto", "pia", "quin", "rey", "sam", "tia",
    "uma", "vic", "wes", "xia", "yan", "zoe", "abel", "bea", "cole", "dina",
]


pytestmark = pytest.mark.usefixtures("no_loss_plot")


def write_config(directory: Path, data_path: Path | str, **train: object) -> Path:
    """A seconds-long config: a tiny MLP, a few steps, on the CPU."""
    settings = {"device": "cpu", "steps": 20, "batch_size": 16, "eval_interval": 10, "log_interval": 5, "schedule": "constant"}
    settings.update(train)
    lines = ["[data]", f"path = {json.dumps(str(data_path))}", "block_size = 3",
             "[model]", "n_embd = 4", "n_hidden = 16", "[train]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    path = directory / "tiny.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def cli(*args: str | Path):
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_user_error(result, *expected: str) -> str:
    """Exit 2, no traceback, and the error on one line of stderr, naming every `expected` piece."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    for piece in expected:
        assert piece in errors[0], (piece, errors[0])
    return errors[0]


# ---------------------------------------------------------------------------------------------
# 1. Bad words files: one line naming the file (and the line), exit 2, no run directory left.

BAD_FILES = [
    # (case, file content or a marker, pieces the error must contain)
    ("missing path", None, ["no such file"]),
    ("a directory", "DIR", ["is a directory"]),
    ("empty file", b"", ["empty"]),
    ("only blank lines", b"\n   \n\t\n\r\n", ["blank"]),
    ("not UTF-8 (Latin-1 e-acute)", b"anna\nbob\ncl\xe9o\ndan\n", ["line 3", "UTF-8"]),
    ("not UTF-8 on the first line", b"\xff\xfe\x00a\n", ["line 1", "UTF-8"]),
    ("too few words for 80/10/10", b"ann\nbob\ncid\ndan\neve\n", ["only 5 words", "at least 6"]),
    ("boundary character in a word", b"anna\nbob\nj.r.\ncid\n", ["line 3", "'j.r.'", "--set data.boundary="]),
]


@pytest.mark.parametrize("case,content,expected", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_words_file_is_one_clear_line(tmp_path, monkeypatch, case, content, expected):
    monkeypatch.chdir(tmp_path)  # the default run directory would be runs/ here
    words = tmp_path / "words.txt"
    if content == "DIR":
        words.mkdir()
    elif content is not None:
        words.write_bytes(content)
    config = write_config(tmp_path, words)
    line = assert_user_error(cli("train", "--config", config), str(words), *expected)
    assert not (tmp_path / "runs").exists(), f"{case}: a run directory was left behind"
    # the same with an explicit --run-dir
    assert_user_error(cli("train", "--config", config, "--run-dir", tmp_path / "run"), str(words))
    assert not (tmp_path / "run").exists()
    assert len(line) < 300


def test_boundary_suggestion_works(tmp_path):
    """The data.boundary the error offers trains on the same file."""
    words = tmp_path / "words.txt"
    words.write_text("\n".join(WORDS + ["j.r."]) + "\n", encoding="utf-8")
    config = write_config(tmp_path, words)
    line = assert_user_error(cli("train", "--config", config, "--run-dir", tmp_path / "a"), "data.boundary")
    suggestion = line.split("--set ")[1].split(";")[0].strip()  # e.g. data.boundary='|'
    result = cli("train", "--config", config, "--set", suggestion, "--run-dir", tmp_path / "b", "-q")
    assert result.exit_code == 0, result.output
    vocab = json.loads((tmp_path / "b" / runs.VOCAB).read_text(encoding="utf-8"))["itos"]
    assert vocab[0] != "." and "." in vocab


# ---------------------------------------------------------------------------------------------
# Files that must simply work.

GOOD_FILES = [
    # (case, bytes, characters that must be in the vocabulary, characters that must not)
    ("CRLF line endings", "\r\n".join(WORDS).encode() + b"\r\n", set("avbn"), {"\r", "\n"}),
    ("no final newline", "\n".join(WORDS).encode(), set("zoe"), {"\n"}),
    ("surrounding spaces and tabs", "\n".join(f"  {w}\t " for w in WORDS).encode(), set("ava"), {" ", "\t"}),
    ("spaces inside words", "\n".join(WORDS + ["mary ann", "jean luc"]).encode(), {" "}, set()),
    ("capitals", "\n".join(w.capitalize() for w in WORDS).encode() + b"\nMAX\n", set("ABZ"), set()),
    ("accents", "\n".join(WORDS + ["josé", "zoë", "françois", "åsa", "øyvind", "łukasz"]).encode(), set("éëçåøł"), set()),
    ("non-Latin scripts", "\n".join(["Ωμέγα", "Олег", "山田", "أحمد", "नमस्ते", "김민준", "Σοφία", "Иван"] * 3).encode(),
     set("Ω山أ김И"), set()),
    ("byte-order mark", b"\xef\xbb\xbf" + "\n".join(WORDS).encode(), set("a"), {"\ufeff"}),
    ("a very long line", "\n".join(WORDS + ["ab" * 2500]).encode(), set("ab"), set()),
]


@pytest.mark.parametrize("case,content,present,absent", GOOD_FILES, ids=[c[0] for c in GOOD_FILES])
def test_files_that_must_simply_work(tmp_path, case, content, present, absent):
    words = tmp_path / "words.txt"
    words.write_bytes(content)
    config = write_config(tmp_path, words, steps=5, eval_interval=5)
    run = tmp_path / "run"
    result = cli("train", "--config", config, "--run-dir", run, "-q")
    assert result.exit_code == 0, (case, result.output)
    vocab = set(json.loads((run / runs.VOCAB).read_text(encoding="utf-8"))["itos"])
    assert present <= vocab, (case, present - vocab)
    assert not (absent & vocab), (case, absent & vocab)
    sampled = cli("sample", run, "-n", "3", "--seed", "1", "--json", "--max-len", "20")
    assert sampled.exit_code == 0, sampled.output
    assert len(json.loads(sampled.stdout)) == 3


def test_a_300000_line_word_list(tmp_path):
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 10, size=300_000)  # (W,) 2..9 letters
    letters = rng.integers(ord("a"), ord("z") + 1, size=int(lengths.sum()), dtype=np.uint8).tobytes().decode()
    ends = np.cumsum(lengths)
    lines = [letters[e - n : e] for e, n in zip(ends.tolist(), lengths.tolist())]
    words = tmp_path / "words.txt"
    words.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = write_config(tmp_path, words, steps=2, eval_interval=2, log_interval=1)
    result = cli("train", "--config", config, "--run-dir", tmp_path / "run", "-q")
    assert result.exit_code == 0, result.output
    dataset = load_dataset(words, 3, 42)
    assert [len(dataset.order[s]) for s in ("train", "dev", "test")] == [240_000, 30_000, 30_000]


# ---------------------------------------------------------------------------------------------
# 2. Bad configs: a clear error before any work starts. The config's data.path does not exist,
# so an error about the config (not the data) shows the config was checked first.

BAD_SETTINGS = [
    ("unknown key", ["model.n_embed=4"], ["unknown key 'model.n_embed'", "did you mean 'model.n_embd'"]),
    ("unknown section", ["modle.n_embd=4"], ["unknown key 'modle.n_embd'", "did you mean 'model.n_embd'"]),
    ("no '='", ["train.lr"], ["expected section.key=value"]),
    ("int key given a word", ["train.steps=many"], ["train.steps must be an integer"]),
    ("int key given a float", ["train.batch_size=3.5"], ["train.batch_size must be an integer"]),
    ("int key given a bool", ["train.steps=true"], ["train.steps must be an integer"]),
    ("float key given a string", ['train.lr="fast"'], ["train.lr must be a number"]),
    ("list key given a number", ["train.lr_milestones=5"], ["train.lr_milestones must be a list of integers"]),
    ("n_embd = 0", ["model.n_embd=0"], ["model.n_embd", ">= 1", "got 0"]),
    ("n_hidden < 0", ["model.n_hidden=-5"], ["model.n_hidden", ">= 1"]),
    ("n_layers = 0", ["model.n_layers=0"], ["model.n_layers", ">= 1"]),
    ("block_size = 0", ["data.block_size=0"], ["data.block_size", ">= 1"]),
    ("batch_size = 0", ["train.batch_size=0"], ["train.batch_size", ">= 1"]),
    ("steps = 0", ["train.steps=0"], ["train.steps", ">= 1"]),
    ("eval_interval = 0", ["train.eval_interval=0"], ["train.eval_interval", ">= 1"]),
    ("lr = 0", ["train.lr=0"], ["train.lr", "> 0"]),
    ("lr < 0", ["train.lr=-0.1"], ["train.lr", "> 0"]),
    ("lr = nan", ["train.lr=nan"], ["train.lr", "finite"]),
    ("lr = inf", ["train.lr=inf"], ["train.lr", "finite"]),
    ("dropout = 1", ["model.dropout=1.0"], ["model.dropout", "< 1"]),
    ("min_lr > lr (cosine)", ["train.schedule=cosine", "train.min_lr=1.0"], ["train.min_lr", "must not exceed"]),
    ("negative milestone", ["train.lr_milestones=[-1]"], ["train.lr_milestones"]),
    ("boundary of two characters", ["data.boundary=ab"], ["data.boundary must be exactly one character"]),
    ("unknown backend", ["train.backend=jax"], ["train.backend must be one of", "'torch'", "'jax'"]),
    ("unknown model type", ["model.type=cnn"], ["model.type must be one of", "'mlp'", "'transformer'"]),
    ("unknown activation", ["model.activation=sigmoid"], ["model.activation must be one of"]),
    ("unknown optimizer", ["train.optimizer=adam"], ["train.optimizer must be one of", "'adamw'"]),
    ("unknown schedule", ["train.schedule=linear"], ["train.schedule must be one of"]),
    ("unknown device", ["train.device=tpu"], ["train.device must be", "'cuda:N'"]),
    ("malformed cuda index", ["train.device=cuda:x"], ["train.device must be"]),
    ("device index on cpu", ["train.device=cpu:0"], ["train.device must be"]),
    ("cuda device that does not exist", ["train.device=cuda:99"], ["train.device = 'cuda:99'"]),
    ("numpy backend on cuda", ["train.backend=numpy", "train.device=cuda"], ["CPU only", "train.device=cpu"]),
]
if not torch.cuda.is_available():
    BAD_SETTINGS.append(("cuda when none is available", ["train.device=cuda"], ["no CUDA device is available"]))
if not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
    BAD_SETTINGS.append(("mps when none is available", ["train.device=mps"], ["no Apple GPU (MPS)"]))


@pytest.mark.parametrize("case,settings,expected", BAD_SETTINGS, ids=[c[0] for c in BAD_SETTINGS])
def test_bad_setting_is_one_clear_line_before_any_work(tmp_path, monkeypatch, case, settings, expected):
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path, tmp_path / "no-such-words.txt")
    args = ["train", "--config", config]
    for setting in settings:
        args += ["--set", setting]
    line = assert_user_error(cli(*args), *expected)
    assert "no-such-words" not in line  # the config was checked before the data was touched
    assert not (tmp_path / "runs").exists()


BAD_CONFIG_FILES = [
    ("unknown section", "[modle]\nn_embd = 4\n", ["unknown section [modle]", "did you mean 'model'"]),
    ("unknown key", "[model]\nn_embed = 4\n", ["unknown key 'model.n_embed'", "did you mean 'model.n_embd'"]),
    ("section is not a table", "train = 5\n", ["[train] must be a table"]),
    ("wrong type", "[train]\nsteps = \"ten\"\n", ["train.steps must be an integer"]),
    ("out of range", "[data]\nblock_size = 0\n", ["data.block_size", ">= 1"]),
    ("invalid TOML", "[train\nsteps = 3\n", ["invalid TOML"]),
    ("not UTF-8", b"[train]\n# caf\xe9\n", ["not UTF-8"]),
]


@pytest.mark.parametrize("case,text,expected", BAD_CONFIG_FILES, ids=[c[0] for c in BAD_CONFIG_FILES])
def test_bad_config_file_is_one_clear_line(tmp_path, monkeypatch, case, text, expected):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "bad.toml"
    config.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert_user_error(cli("train", "--config", config), str(config), *expected)
    assert not (tmp_path / "runs").exists()


def test_missing_config_and_no_config(tmp_path):
    assert_user_error(cli("train", "--config", tmp_path / "nope.toml"), "nope.toml", "not found")
    assert_user_error(cli("train", "--config", tmp_path), "is not a file")
    assert_user_error(cli("train"), "no config", "--config")


# ---------------------------------------------------------------------------------------------
# 3. Bad runs and checkpoints.

@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One tiny trained run (20 steps), copied by the tests that damage it."""
    base = tmp_path_factory.mktemp("trained")
    words = base / "words.txt"
    words.write_text("\n".join(WORDS) + "\n", encoding="utf-8")
    run = base / "run"
    result = cli("train", "--config", write_config(base, words), "--run-dir", run, "-q")
    assert result.exit_code == 0, result.output
    return run


COMMANDS = {
    "evaluate": lambda run: ("evaluate", run),
    "sample": lambda run: ("sample", run, "-n", "2"),
    "resume": lambda run: ("train", "--resume", run, "--set", "train.steps=40", "-q"),
}


@pytest.mark.parametrize("command", COMMANDS)
def test_missing_run_directory(tmp_path, command):
    assert_user_error(cli(*COMMANDS[command](tmp_path / "no-such-run")), "no-such-run", "no such run directory")


@pytest.mark.parametrize("command", ["evaluate", "sample"])
def test_no_runs_yet(tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    assert_user_error(cli(command), "no runs under runs/", "makemore train")


@pytest.mark.parametrize("command", COMMANDS)
def test_run_directory_without_checkpoint(tmp_path, command):
    (tmp_path / "run").mkdir()
    assert_user_error(cli(*COMMANDS[command](tmp_path / "run")), f"no {runs.CHECKPOINT}")


def damage_truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def damage_last_byte(data: bytes) -> bytes:
    return data[:-1]


def damage_flip_middle(data: bytes) -> bytes:  # inside tensor bytes: caught by the SHA-256 check
    b = bytearray(data)
    for i in range(len(b) // 2, len(b) // 2 + 16):
        b[i] ^= 0xFF
    return bytes(b)


def damage_flip_start(data: bytes) -> bytes:  # inside the JSON header of the checkpoint's structure
    b = bytearray(data)
    for i in range(40, 120):
        b[i] ^= 0x55
    return bytes(b)


def not_makemore(_: bytes) -> bytes:
    buf = io.BytesIO()
    torch.save({"state_dict": {"w": torch.zeros(2)}}, buf)
    return buf.getvalue()


DAMAGES = {
    "empty file": lambda _: b"",
    "truncated to half": damage_truncated,
    "last byte missing": damage_last_byte,
    "bytes flipped in a tensor": damage_flip_middle,
    "bytes flipped in the structure": damage_flip_start,
    "random bytes": lambda _: random.Random(0).randbytes(4096),
    "a text file": lambda _: b"this is not a checkpoint\n",
    "another program's torch file": not_makemore,
}


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("command", COMMANDS)
def test_damaged_checkpoint_is_a_clear_error(trained, tmp_path, damage, command):
    run = copy_run(trained, tmp_path)
    path = run / runs.CHECKPOINT
    path.write_bytes(DAMAGES[damage](path.read_bytes()))
    line = assert_user_error(cli(*COMMANDS[command](run)), str(path))
    assert "unreadable" in line or "not a makemore checkpoint" in line


class RunsCode:
    """Pickles to a call of exec(code): loading it with plain pickle would run `code`."""

    def __init__(self, code: str):
        self.code = code

    def __reduce__(self):
        return (exec, (self.code,))


def malicious_checkpoint(trained: Path, marker: Path, raw: bool) -> bytes:
    """The trained run's checkpoint as an old checkpoint.pt with one more entry whose unpickling writes `marker`."""
    payload = RunsCode(f"open({str(marker)!r}, 'w').write('code ran')")
    if raw:  # a bare pickle, not torch's zip format
        return pickle.dumps({"format": runs.LEGACY_FORMAT, "extra": payload}, protocol=2)
    ckpt = {**runs.load_checkpoint(trained), "format": runs.LEGACY_FORMAT}
    ckpt["extra"] = payload
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    return buf.getvalue()


@pytest.mark.parametrize("raw", [False, True], ids=["torch zip", "bare pickle"])
@pytest.mark.parametrize("command", COMMANDS)
def test_checkpoint_that_would_run_code_is_refused_and_runs_nothing(trained, tmp_path, command, raw):
    """An old run's checkpoint.pt (read with torch.load(weights_only=True)) that asks to run code."""
    run = copy_run(trained, tmp_path)
    marker = tmp_path / "code-ran.txt"
    (run / runs.LEGACY_CHECKPOINT).write_bytes(malicious_checkpoint(trained, marker, raw))
    (run / runs.CHECKPOINT).unlink()
    assert_user_error(cli(*COMMANDS[command](run)), "refused to load", "exec", "nothing in this one was run")
    assert not marker.exists()
    # the payload is live: an unsafe load (which makemore never does) really runs it
    data = (run / runs.LEGACY_CHECKPOINT).read_bytes()
    pickle.loads(data) if raw else torch.load(io.BytesIO(data), weights_only=False)
    assert marker.read_text() == "code ran"


def test_resume_on_data_that_does_not_fit_the_vocabulary(trained, tmp_path):
    run = copy_run(trained, tmp_path)
    other = tmp_path / "accented.txt"
    other.write_text("\n".join(WORDS + ["josé", "zoë"]) + "\n", encoding="utf-8")
    before = (run / runs.CHECKPOINT).read_bytes()
    assert_user_error(cli("train", "--resume", run, "--set", f"data.path={json.dumps(str(other))}", "--set", "train.steps=40"),
                      str(other), "'éë'", "not in the run's vocabulary")
    assert (run / runs.CHECKPOINT).read_bytes() == before


@pytest.mark.parametrize("setting", ["model.n_hidden=32", "data.block_size=5", "model.n_layers=2", "model.norm=layernorm"])
def test_resume_with_a_model_that_does_not_fit_the_checkpoint(trained, tmp_path, setting):
    run = copy_run(trained, tmp_path)
    assert_user_error(cli("train", "--resume", run, "--set", setting, "--set", "train.steps=40", "-q"), "does not fit this config")


def test_resume_misuse(trained, tmp_path):
    run = copy_run(trained, tmp_path)
    assert_user_error(cli("train", "--resume", run, "--config", tmp_path / "x.toml"), "drop --config")
    assert_user_error(cli("train", "--resume", run, "-q"), "already finished at step 20", "--set train.steps=N")
    assert_user_error(cli("train", "--resume", run, "--set", "train.stepz=30"), "did you mean 'train.steps'")


def test_existing_run_directory_is_not_overwritten(trained, tmp_path):
    run = copy_run(trained, tmp_path)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    config = write_config(tmp_path, trained.parent / "words.txt")
    assert_user_error(cli("train", "--config", config, "--run-dir", run), str(run), "already exists", "--resume")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_evaluate_when_the_words_file_is_gone(trained, tmp_path):
    run = copy_run(trained, tmp_path)
    ckpt = runs.load_checkpoint(run)
    ckpt["config"]["data"]["path"] = str(tmp_path / "moved-away.txt")
    runs.save_checkpoint(run, {k: v for k, v in ckpt.items() if k != "format"})
    assert_user_error(cli("evaluate", run), "moved-away.txt", "no such file")


def test_error_after_the_run_directory_exists_removes_it(tmp_path, monkeypatch):
    """A failure between creating the run directory and its first checkpoint leaves nothing."""
    words = tmp_path / "words.txt"
    words.write_text("\n".join(WORDS) + "\n", encoding="utf-8")
    config = write_config(tmp_path, words)

    real_write = runs.atomic_write_bytes

    def disk_full(path, write):  # the checkpoint's write fills the disk part way through
        if path.name != runs.CHECKPOINT:
            return real_write(path, write)

        def partial(f):
            f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00 the start of a checkpoint")
            raise OSError(28, "No space left on device")

        return real_write(path, partial)

    monkeypatch.setattr(runs, "atomic_write_bytes", disk_full)
    result = cli("train", "--config", config, "--run-dir", tmp_path / "run", "-q")
    assert_user_error(result, runs.CHECKPOINT, "cannot write the checkpoint", "No space left on device")
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------------------
# 5. Divergence: a clear message, exit 2, the last good checkpoint kept and usable.

def test_divergence_keeps_the_last_good_checkpoint(tmp_path):
    """The learning rate is multiplied by 1e9 at step 12 (a "step" schedule with lr_factor 1e9):
    the run trains well for 12 steps, checkpointing at steps 5 and 10, then diverges. The kept
    checkpoint is step 10's, exactly the one a run of 10 steps ends with, and it is usable."""
    words = tmp_path / "words.txt"
    words.write_text("\n".join(WORDS) + "\n", encoding="utf-8")
    config = write_config(tmp_path, words, steps=200, eval_interval=5, log_interval=1, schedule="step", lr=0.1,
                          lr_milestones=[12], lr_factor=1e9)
    run = tmp_path / "run"
    error = assert_user_error(cli("train", "--config", config, "--run-dir", run, "--set", "model.activation=relu", "-q"),
                              "diverged", "lower train.lr", "lr-find", str(run))
    diverged_at = int(re.search(r"diverged at step (\d+)", error).group(1))
    assert diverged_at > 12
    ckpt = runs.load_checkpoint(run)
    assert ckpt["step"] == 10  # the last evaluation before the divergence, not step 0's
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())
    short = tmp_path / "short"  # the same config stopped at step 10 ends with exactly these parameters
    assert cli("train", "--config", config, "--run-dir", short, "--set", "model.activation=relu",
               "--set", "train.steps=10", "-q").exit_code == 0
    kept = runs.load_checkpoint(short)
    assert all(torch.equal(kept["model"][k], ckpt["model"][k]) for k in kept["model"])
    sampled = cli("sample", run, "-n", "2", "--seed", "0", "--max-len", "10", "--json")
    assert sampled.exit_code == 0, sampled.output
    # and training carries on from it at a sensible learning rate
    resumed = cli("train", "--resume", run, "--set", "train.lr_factor=0.1", "--set", "train.steps=20", "-q")
    assert resumed.exit_code == 0, resumed.output
    assert runs.load_checkpoint(run)["step"] == 20


# ---------------------------------------------------------------------------------------------
# 6. Sampling options; sampling always ends.

BAD_SAMPLING = [
    ("n = 0", ["-n", "0"], ["-n must be at least 1"]),
    ("n < 0", ["-n", "-3"], ["-n must be at least 1"]),
    ("temperature = 0", ["--temperature", "0"], ["--temperature must be a finite number > 0"]),
    ("temperature < 0", ["--temperature", "-0.5"], ["--temperature"]),
    ("temperature = nan", ["--temperature", "nan"], ["--temperature"]),
    ("temperature = inf", ["--temperature", "inf"], ["--temperature"]),
    ("top-k = 0", ["--top-k", "0"], ["--top-k must be between 1 and"]),
    ("top-k < 0", ["--top-k", "-2"], ["--top-k"]),
    ("top-k above vocab_size", ["--top-k", "1000"], ["--top-k must be between 1 and the vocabulary size"]),
    ("max-len = 0", ["--max-len", "0"], ["--max-len must be at least 1"]),
]


@pytest.mark.parametrize("case,options,expected", BAD_SAMPLING, ids=[c[0] for c in BAD_SAMPLING])
def test_bad_sampling_option_is_one_clear_line(trained, case, options, expected):
    assert_user_error(cli("sample", trained, *options), *expected)


def test_sampling_ends_even_when_the_model_never_ends_a_word(trained, tmp_path):
    """With the boundary's logit pushed to -1e4 no word ever ends: plain sampling cuts at its cap;
    --max-len redraws longer samples (docs/names.md), so it ends at the draw bound with exit 1."""
    run = copy_run(trained, tmp_path)
    ckpt = runs.load_checkpoint(run)
    ckpt["model"]["b2"][0] = -1e4
    runs.save_checkpoint(run, {k: v for k, v in ckpt.items() if k != "format"})
    bounded = cli("sample", run, "-n", "4", "--seed", "3", "--max-len", "7", "--json")
    assert bounded.exit_code == 1, bounded.output
    assert json.loads(bounded.stdout) == [] and "found only 0 of 4 samples" in bounded.stderr and "too long" in bounded.stderr
    default = cli("sample", run, "-n", "2", "--seed", "3", "--json")
    assert default.exit_code == 0, default.output
    assert [len(w) for w in json.loads(default.stdout)] == [2 * ckpt["max_word_len"]] * 2
