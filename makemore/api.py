"""The Python API: train a run, load one, and ask it questions. The command line, the page and
notebooks all go through here.

    import makemore
    run = makemore.train("configs/names.toml", overrides={"train.steps": 20000})
    run = makemore.load()                      # the latest run under runs/, or load("runs/names-...")
    run.sample(20, prefix="el", seed=0)        # list of str
    run.score(["emma", "zyxq"])                # NLL per character (nats), perplexity, percentile
    run.evaluate(splits=("dev",))              # {"dev": 2.10...}
    run.model, run.vocab, run.config
    run.labels                                 # a run on a labelled words file: ("F", "M"); else None
    run.sample(5, label="F")                   # samples for one label
    run.classify(["emma"])                     # p(label | word): [{"F": 0.98, "M": 0.02}]
    run.classification("dev")                  # accuracy and confusion table of a split

Everything returns plain values and dataclasses; nothing is printed and nothing calls sys.exit.
Progress goes to an optional listener (makemore.training.Listener). A user's mistake raises
makemore.errors.MakemoreError with the command line's message.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from makemore import distributed, runs
from makemore.config import Config, apply_overrides, load_config, toml_value
from makemore.errors import MakemoreError
from makemore.prepare import Checked, check
from makemore.training import Listener, Summary, train_checked


@dataclass
class TrainingJob:
    """A training run ready to start: its checked config, where it goes, and what to tell the user."""

    checked: Checked
    run_dir: Path
    resume: bool = False
    checkpoint: dict[str, Any] | None = None
    """The resumed run's checkpoint, read once."""
    notes: list[str] = field(default_factory=list)
    """Warnings worth a line: a changed words file, [model] keys the family does not read."""


def _override_list(overrides: Mapping[str, Any] | Sequence[str] | None) -> list[str]:
    """`--set` strings from a mapping {"train.steps": 20000} or a list of "section.key=value"."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return [f"{key}={toml_value(value)}" for key, value in overrides.items()]
    return list(overrides)


def training_job(config: str | Path | None = None, overrides: Mapping[str, Any] | Sequence[str] | None = None, *,
                 run_dir: str | Path | None = None, resume: str | Path | None = None, processes: int = 1,
                 world: distributed.World | None = None) -> TrainingJob:
    """Read and check what a training run needs, before anything is written.

    Args:
        config: a TOML config (a new run). overrides: keys to change, as {"section.key": value} or
            ["section.key=value"]. run_dir: where a new run goes (default runs/<config name>-<time>).
        resume: continue this run directory (its own config, changed by `overrides`).
        processes: the processes the job will run in (`makemore train --nproc N`).

    Raises:
        MakemoreError: neither or both of config and resume, a bad config or run directory, a
            model, backend or device that cannot be used.
    """
    from makemore.models import unused_options

    world = world or distributed.launched()
    sets, notes = _override_list(overrides), []
    checkpoint = None
    if resume is not None:
        if config is not None or run_dir is not None:
            raise MakemoreError("--resume continues a run with its own config: drop --config and --run-dir (use --set to change a key)")
        target = runs.resolve_run(resume)
        checkpoint = runs.load_checkpoint(target)
        cfg = apply_overrides(runs.checkpoint_config(target, checkpoint), sets)
        if runs.data_changed(checkpoint, cfg.data.path):
            notes.append(f"warning: {cfg.data.path} is not the file this run was trained on: the resumed run will not match an uninterrupted one")
    else:
        if config is None:
            raise MakemoreError("no config: pass --config FILE (e.g. --config configs/names.toml), or --resume RUN_DIR")
        cfg = load_config(config, sets)
        target = Path(run_dir) if run_dir is not None else runs.new_run_dir(Path(config).stem)
    unused = unused_options(cfg.model)
    if unused:
        notes.append(f"note: model.type = {cfg.model.type!r} does not read {', '.join(unused)}: {'it is' if len(unused) == 1 else 'they are'} ignored")
    return TrainingJob(check(cfg, world, processes), target, resume is not None, checkpoint, notes)


def run_job(job: TrainingJob, listener: Listener | None = None, plot: bool | None = None) -> Summary:
    """Train a `training_job` (see makemore.training.train for what it writes and raises); plot:
    draw loss.png at the end (default: train.plot)."""
    return train_checked(job.checked, job.run_dir, resume=job.resume, listener=listener, checkpoint=job.checkpoint, plot=plot)


def train(config: str | Path | Config | None = None, overrides: Mapping[str, Any] | Sequence[str] | None = None, *,
          run_dir: str | Path | None = None, resume: str | Path | None = None, listener: Listener | None = None) -> Run:
    """Train a model and return its run, loaded (the best place to start in a notebook).

    Args:
        config: a TOML config path, or a Config. overrides: {"section.key": value} to change.
        run_dir: where the run goes (default runs/<config name>-<time>). resume: a run directory to
            continue instead (its own config; `overrides` may raise train.steps).
        listener: hears the run's progress (makemore.training.Listener); none by default.

    Raises:
        MakemoreError: a bad config, data, model, backend or run directory.
        makemore.training.TrainingDiverged, makemore.training.TrainingInterrupted: as makemore.training.train.
    """
    if isinstance(config, Config):
        cfg = apply_overrides(config, _override_list(overrides))
        job = TrainingJob(check(cfg), Path(run_dir) if run_dir is not None else runs.new_run_dir("run"))
    else:
        job = training_job(config, overrides, run_dir=run_dir, resume=resume)
    summary = run_job(job, listener)
    return load(summary.run_dir)


def load(run_dir: str | Path | None = None, root: str | Path = runs.DEFAULT_ROOT, checkpoint: str | None = None) -> Run:
    """A trained run, ready to sample, score and evaluate: `run_dir`, or the latest under `root`;
    an ensemble directory (`makemore.ensemble`) loads the same way.

    Args:
        checkpoint: "best" (the best-dev checkpoint), "last", or None: the best one when the run has one.

    Raises:
        MakemoreError: no such run, no checkpoint, an unreadable checkpoint; "best" for a run that has none.
    """
    if run_dir is not None and runs.is_ensemble(run_dir):
        from makemore.ensemble import load_ensemble

        return Run(load_ensemble(run_dir))
    return Run(runs.load_run(run_dir, root, checkpoint))


class Run:
    """A trained run: its model, vocabulary and config, and the questions one asks of it."""

    def __init__(self, loaded: runs.Run):
        self._run = loaded

    @property
    def path(self) -> Path:
        return self._run.path

    @property
    def model(self) -> Any:
        """The trained model (a torch nn.Module in evaluation mode, on the CPU)."""
        return self._run.model

    @property
    def vocab(self) -> Any:
        """The run's vocabulary (makemore.data.Vocab: itos, stoi, vocab_size; id 0 is the boundary)."""
        return self._run.vocab

    @property
    def config(self) -> Config:
        return self._run.config

    @property
    def summary(self) -> dict[str, Any] | None:
        """The run's summary.json: whole-split "train_loss" and "dev_loss" (nats/char), "steps",
        "train_time_s", "steps_per_s", the backend, the best dev step, and "fitted_steps" where a
        time budget fixed the steps; None for a run that has not finished (interrupted, or older
        than summaries)."""
        path = self.path / runs.SUMMARY
        return runs.read_summary(self.path) if path.is_file() else None

    @property
    def labels(self) -> tuple[str, ...] | None:
        """The label set of a run trained on a labelled words file (word<TAB>label), e.g. ("F", "M"); None otherwise."""
        return self._run.labels

    def label_frequencies(self) -> dict[str, float]:
        """p(label): each label's share of the train split's words, what sampling without a label
        draws from and the prior of `classify`.

        Raises:
            MakemoreError: a run trained without labels.
        """
        from makemore.evaluate import require_labels

        return dict(zip(require_labels(self._run), self._run.label_prior.tolist()))

    def classify(self, words: Sequence[str]) -> list[dict[str, float]]:
        """Which label fits each word: p(label | word) by Bayes' rule, p(word | label)·p(label)
        normalised over the labels (makemore.evaluate.classify_words), one {label: p} per word.

        Raises:
            MakemoreError: a run trained without labels; a word the model cannot score, named.
        """
        from makemore.evaluate import classify_words

        return classify_words(self._run, list(words))

    def classification(self, split: str = "dev") -> Any:
        """`classify` every word of a split and compare with its own label: accuracy, confusion table
        (rows: true label, columns: predicted), the majority label's share (makemore.evaluate.Classification).

        Raises:
            MakemoreError: a run trained without labels; an unknown split; the words file is gone or changed.
        """
        from makemore.evaluate import classify_split

        return classify_split(self._run, split)

    @property
    def step(self) -> int:
        """Optimizer steps the checkpoint was taken at."""
        return self._run.step

    @property
    def checkpoint(self) -> str:
        """Which of the run's checkpoints is loaded: "best" (the best-dev one) or "last"."""
        return self._run.which

    @property
    def loaded(self) -> runs.Run:
        """The run directory as makemore.runs reads it (checkpoint, dataset, views)."""
        return self._run

    def __repr__(self) -> str:
        return f"makemore.Run({str(self.path)!r}, model.type={self.config.model.type!r}, step={self.step})"

    def evaluate(self, splits: Sequence[str] = ("train", "dev")) -> dict[str, float]:
        """Mean NLL (nats per character) of whole splits: {"dev": 2.10...}.

        Raises:
            MakemoreError: an unknown split; the words file is gone or no longer fits the vocabulary.
        """
        return {name: nll for name, (nll, _) in self.evaluate_counted(splits).items()}

    def evaluate_counted(self, splits: Sequence[str] = ("train", "dev")) -> dict[str, tuple[float, int]]:
        """`evaluate`, with each split's number of targets: {split: (NLL nats/char, targets)}."""
        from makemore.evaluate import evaluate_splits

        for name in splits:
            if name not in ("train", "dev", "test"):
                raise MakemoreError(f"--split {name!r}: choose train, dev, test or all")
        return evaluate_splits(self._run, list(splits))

    def score(self, words: Sequence[str]) -> list[Any]:
        """How likely each word is: makemore.evaluate.WordScore (word, nll per character in nats,
        perplexity, percentile among the training words or None when they cannot be read).

        Raises:
            MakemoreError: a word the model cannot score (a character outside the vocabulary; for a
                sequence model, longer than it reads), named.
        """
        report = self.score_report(words)
        if report.errors:
            raise MakemoreError(report.errors[0])
        return report.scores

    def score_report(self, words: Sequence[str]) -> Any:
        """`score` for every word the model can score, and a line for each it cannot
        (makemore.evaluate.ScoreReport: scores, errors, reference_words, warnings)."""
        from makemore.evaluate import score_report

        return score_report(self._run, list(words))

    def sample(self, n: int = 20, *, seed: int | None = None, temperature: float = 1.0, top_k: int | None = None,
               prefix: str = "", new_only: bool = False, unique: bool = False, min_len: int | None = None,
               max_len: int | None = None, suffix: str | None = None, contains: str | None = None,
               match: str | None = None, top_p: float | None = None, label: str | None = None, best: bool = False) -> list[str]:
        """n new words (options as `samples`). With any of prefix, new_only, unique, min_len,
        max_len every word fits them (draws that don't are redrawn, up to
        makemore.sample.DRAWS_PER_SAMPLE per word); with suffix, contains or match (a regular
        expression over the whole word) each draw is masked to fit all of them (makemore.constraints).
        A labelled run samples for label= (else each word's label is drawn from the training
        frequencies: `samples` says which). best=True: the n most probable words meeting the
        constraints (`best`), most probable first, instead of random draws.

        Raises:
            MakemoreError: an option out of range; fewer than n words found within the draw bound;
                a label for an unlabelled run, or one the run does not have.
        """
        wanted = dict(prefix=prefix, new_only=new_only, min_len=min_len, max_len=max_len, suffix=suffix, contains=contains,
                      match=match, label=label)
        if best:  # the n most probable words instead of random draws (deterministic: no seed, temperature, top-k or top-p)
            found = self.best(n, **wanted)
        else:
            found = self.samples(n, seed=seed, temperature=temperature, top_k=top_k, unique=unique, top_p=top_p, **wanted)
        if found.shortfall:
            raise MakemoreError(found.shortfall)
        return list(found.words) if best else [word for word, _ in found.words]

    def samples(self, n: int = 20, *, seed: int | None = None, temperature: float = 1.0, top_k: int | None = None,
                prefix: str = "", new_only: bool = False, unique: bool = False, min_len: int | None = None,
                max_len: int | None = None, suffix: str | None = None, contains: str | None = None,
                match: str | None = None, top_p: float | None = None, label: str | None = None) -> Any:
        """`sample` with how the words were found (makemore.sample.Samples: words with a finished
        flag, seed, length cap, draw counts, why fewer than n were found, if so, and a labelled
        run's label of each word). top_p: nucleus sampling (makemore.sample.draw)."""
        from makemore.sample import sample_words

        return sample_words(self._run, n, secrets.randbits(31) if seed is None else seed, temperature=temperature, top_k=top_k,
                            prefix=prefix, new_only=new_only, unique=unique, min_len=min_len, max_len=max_len,
                            suffix=suffix, contains=contains, match=match, top_p=top_p, label=label)

    def best(self, n: int = 20, *, prefix: str = "", suffix: str | None = None, contains: str | None = None,
             match: str | None = None, min_len: int | None = None, max_len: int | None = None, new_only: bool = False,
             beam: int | None = None, label: str | None = None) -> Any:
        """The n most probable words meeting every constraint (options as `samples`), most probable
        first, by beam search (makemore.best.Best: words, total ln p of each, beam, whether the
        result is provably exact, and why fewer than n were found, if so). Deterministic.

        Raises:
            MakemoreError: an option out of range; constraints that cannot be compiled or met.
        """
        from makemore.best import BEAM, best_of_run

        return best_of_run(self._run, n, prefix=prefix, suffix=suffix, contains=contains, match=match, min_len=min_len,
                           max_len=max_len, new_only=new_only, beam=BEAM if beam is None else beam, label=label)

    def char_scores(self, word: str) -> list[tuple[str, float]]:
        """Each character's NLL (nats) under the model, then the end token's (the boundary
        character): makemore.evaluate.char_nll. Their mean is the word's `score`.

        Raises:
            MakemoreError: a word the model cannot score, named.
        """
        from makemore.evaluate import char_nll

        return char_nll(self._run, word)

    def sample_quality(self, n: int = 1000, seed: int = 0) -> Any:
        """How good n plain samples are, beyond the loss: makemore.quality.SampleQuality (share of
        new words, of duplicates, length and character distance to dev, the samples' mean NLL).

        Raises:
            MakemoreError: n < 1; the words file is gone or no longer fits the vocabulary.
        """
        from makemore.quality import sample_quality

        return sample_quality(self._run, n, seed)

    def word_nll(self, words: Sequence[str], labels: Sequence[str] | None = None) -> list[float | None]:
        """Each word's mean NLL per character (nats), None for a word the model cannot score. A
        labelled run scores each word given its label in `labels`, or without them the marginal
        over the labels (makemore.evaluate.word_nll).

        Raises:
            MakemoreError: labels for an unlabelled run, or one the run does not have.
        """
        from makemore.evaluate import require_labels, word_nll_or_none

        ids = None
        if labels is not None:
            known = require_labels(self._run)
            unknown = [lab for lab in labels if lab not in known]
            if unknown:
                raise MakemoreError(f"label {unknown[0]!r} is not a label of this run: its labels are {', '.join(known)}")
            ids = [known.index(lab) for lab in labels]
        prior = None if self.labels is None or ids is not None else self._run.label_prior
        return word_nll_or_none(self._run.inference, self.vocab, self._run.family.view, list(words), ids, prior)

    def training_words(self) -> set[str]:
        """The words of the run's train split (re-read from its words file).

        Raises:
            MakemoreError: the words file is gone, unreadable or no longer fits the vocabulary.
        """
        return set(self._run.dataset.split_words("train"))

    def plot_embedding(self, out: str | Path | None = None, dims: tuple[int, int] | None = None, pca: bool | None = None) -> Path:
        """Draw the character embedding table C (makemore.plots.plot_embedding) into `out`
        (default: the run's embedding.png); returns the PNG's path.

        Raises:
            MakemoreError: a family without an embedding table; bad dims.
        """
        from makemore.plots import plot_embedding

        table = self._run.family.embedding
        if table is None:
            raise MakemoreError(f"{self.path}: a model.type = {self.config.model.type!r} run has no embedding table C; plot-emb needs a model that learns one")
        C = self.model.state_dict()[table].detach().cpu().numpy()  # (vocab_size, n_embd)
        title = f"Character embeddings C of {self.path.name} (step {self.step:,})"
        return plot_embedding(C, self.vocab.itos, Path(out) if out is not None else runs.embedding_png(self.path), title, dims, pca)


def plot_loss(run_dirs: Sequence[str | Path], out: str | Path, labels: Sequence[str] | None = None) -> Path:
    """Train (smoothed) and dev loss against step of one or more runs, overlaid, into the PNG `out`.

    Raises:
        MakemoreError: a missing run directory; labels not one per run; no metrics to plot.
    """
    from makemore.plots import plot_loss as draw

    paths = [Path(p) for p in run_dirs]
    for path in paths:
        if not path.is_dir():
            raise MakemoreError(f"{path}: no such run directory")
    if labels and len(labels) != len(paths):
        raise MakemoreError(f"{len(labels)} --label for {len(paths)} runs: give one per run, or none")
    series = [(name, runs.read_metrics(path)) for name, path in zip(labels or [p.name for p in paths], paths)]
    if not any(records for _, records in series):
        raise MakemoreError(f"no metrics records in {', '.join(str(p) for p in paths)}: nothing to plot (is {runs.METRICS} there?)")
    return draw(series, Path(out))


def ensemble(members: Sequence[str | Path], out: str | Path, weights: str = "fitted") -> Run:
    """Make the ensemble directory `out` of the runs `members` (makemore.ensemble: a mixture of
    their next-character distributions, weights fitted on dev or equal) and return it as a Run.

    Raises:
        MakemoreError: `out` exists; a member that does not exist or has another vocabulary; an unknown weighting.
    """
    from makemore.ensemble import make_ensemble

    return Run(make_ensemble(list(members), out, weights))
