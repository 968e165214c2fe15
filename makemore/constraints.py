"""Constraints on whole words (`--prefix`, `--suffix`, `--contains`, `--match`, `--min-len`,
`--max-len`) compiled to one deterministic finite automaton over a run's vocabulary, and the masks
that let sampling and `--best` write only words it accepts (docs/names.md).

Each text constraint is a regular expression (a literal text escaped: `el.*`, `.*ella`,
`.*ell.*`; `--match` as given, over the whole word); the library interegular turns each into a
finite automaton and intersects them. Its states are then numbered over the vocabulary's
characters (the boundary token is not a letter of any word): `trans` (S, vocab_size) is the next
state after each character, column 0 (the end token) leading to a dead state.

The masks come from a backward reachability table: a word of t characters in state s can still
become an accepted word of min_len..max_len characters if s accepts and t ≥ min_len (end it now),
or if t < max_len and some character leads to a state that can from t + 1 (`Automaton.allowed`).
Masking every other character at each step makes every sample match, and sampling always ends
(at t = max_len only the end token is left). It samples a locally renormalised distribution,
not the model's distribution given the constraints (docs/names.md says what that does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from makemore.errors import MakemoreError

#: What `--match` accepts: a Python regular expression without anchors inside, look-behinds or
#: back-references (interegular builds a finite automaton; those have none).
REGEX_HELP = "a regular expression over the whole word (Python syntax; no back-references or look-behinds)"


@dataclass(frozen=True)
class Constraints:
    """What every word must be; `None` for a text constraint not given."""

    prefix: str = ""
    """The word starts with it."""
    suffix: str | None = None
    """The word ends with it."""
    contains: str | None = None
    """The word contains it somewhere."""
    match: str | None = None
    """A regular expression the whole word matches (REGEX_HELP)."""
    min_len: int = 1
    """Fewest characters, prefix included."""
    max_len: int = 64
    """Most characters, prefix included."""

    @property
    def masking(self) -> bool:
        """Whether a constraint that only masking honours (suffix, contains, match) is given."""
        return self.suffix is not None or self.contains is not None or self.match is not None

    def described(self) -> str:
        """The constraints as the options that gave them, for an error line."""
        parts = [f"--{name} {value!r}" for name, value in
                 (("prefix", self.prefix or None), ("suffix", self.suffix), ("contains", self.contains), ("match", self.match))
                 if value is not None]
        return " ".join(parts) or "no text constraint"


@dataclass(frozen=True)
class Automaton:
    """A compiled `Constraints` over a vocabulary: states 0..S−1, state S−1 dead."""

    alphabet: str
    """The vocabulary's characters, in id order from id 1 (id 0, the boundary, is the end token)."""
    trans: np.ndarray
    """int64 (S, vocab_size): the state after each token; the end token (column 0) leads to the dead state."""
    accepting: np.ndarray
    """bool (S,): a word that ends in this state matches every text constraint."""
    allowed: np.ndarray
    """bool (max_len + 1, S, vocab_size): allowed[t, s, c] when token c, after t characters that led
    to state s, can still end in an accepted word of min_len..max_len characters (c = 0: end it now)."""
    initial: int
    min_len: int
    max_len: int

    def walk(self, ids: list[int]) -> int:
        """The state after the token ids `ids` (characters, no end token) from the initial state."""
        state = self.initial
        for i in ids:
            state = int(self.trans[state, i])
        return state

    def accepts(self, word: str) -> bool:
        """Whether `word` meets every constraint, lengths included (for tests and checks)."""
        stoi = {c: i + 1 for i, c in enumerate(self.alphabet)}
        if not self.min_len <= len(word) <= self.max_len or any(c not in stoi for c in word):
            return False
        return bool(self.accepting[self.walk([stoi[c] for c in word])])


def compile_constraints(constraints: Constraints, alphabet: str) -> Automaton:
    """One automaton for every constraint, over `alphabet` (a vocabulary's characters in id order
    from id 1, e.g. "".join(vocab.itos[1:])), with its masks.

    Raises:
        MakemoreError: an empty --suffix, --contains or --match; a --prefix, --suffix or --contains
            character outside the alphabet; an invalid or unsupported --match; min_len > max_len;
            or constraints that no word of min_len..max_len characters over the alphabet meets.
    """
    if constraints.min_len > constraints.max_len:
        raise MakemoreError(f"--min-len {constraints.min_len} is above the longest length allowed, {constraints.max_len} (--max-len)")
    fsm = None
    for pattern in _patterns(constraints, alphabet):
        fsm = pattern if fsm is None else fsm & pattern
    trans, accepting = _table(fsm, alphabet)
    allowed = _reachable(trans, accepting, constraints.min_len, constraints.max_len)
    if not allowed[0, 0].any():
        foreign = sorted(c for c in _regex(constraints.match).alphabet if isinstance(c, str) and c not in alphabet) if constraints.match else []
        also = f" (--match names characters not in it: {''.join(foreign)!r})" if foreign else ""
        raise MakemoreError(f"no word of {constraints.min_len} to {constraints.max_len} characters over the run's vocabulary "
                            f"({alphabet!r}) matches {constraints.described()}{also}")
    return Automaton(alphabet, trans, accepting, allowed, 0, constraints.min_len, constraints.max_len)


def _patterns(constraints: Constraints, alphabet: str) -> list:
    """An interegular FSM for each constraint given (one that accepts any word when none is)."""
    from interegular import parse_pattern

    known = set(alphabet)
    fsms = []
    for name, text, template in (("prefix", constraints.prefix or None, "{}.*"), ("suffix", constraints.suffix, ".*{}"),
                                 ("contains", constraints.contains, ".*{}.*")):
        if text is None:
            continue
        if text == "":
            raise MakemoreError(f"--{name}: an empty text (give at least one character, or leave the option out)")
        unknown = next((c for c in text if c not in known), None)
        if unknown is not None:
            raise MakemoreError(f"--{name} {text!r}: character {unknown!r} is not in the run's vocabulary ({alphabet!r})")
        fsms.append(parse_pattern(template.format(re.escape(text))).to_fsm())
    if constraints.match is not None:
        fsms.append(_regex(constraints.match))
    return fsms or [parse_pattern(".*").to_fsm()]


def _regex(pattern: str):
    """The interegular FSM of a --match pattern (a leading ^ and a trailing $ allowed: the match is
    over the whole word anyway).

    Raises:
        MakemoreError: an empty pattern, one Python's re rejects, or one interegular cannot build.
    """
    from interegular import parse_pattern

    if pattern == "":
        raise MakemoreError("--match: an empty pattern (give a regular expression, e.g. --match 'el.*a')")
    try:
        re.compile(pattern)
    except re.error as e:
        raise MakemoreError(f"--match {pattern!r}: not a valid regular expression ({e})") from None
    body = pattern[1:] if pattern.startswith("^") else pattern
    if body.endswith("$") and not body.endswith("\\$"):
        body = body[:-1]
    try:
        return parse_pattern(body).to_fsm()
    except Exception as e:  # interegular's Unsupported, InvalidSyntax, or a plain Exception for what it cannot build
        raise MakemoreError(f"--match {pattern!r}: cannot be compiled to a finite automaton ({e or type(e).__name__}); "
                            f"--match takes {REGEX_HELP}") from None


def _table(fsm, alphabet: str) -> tuple[np.ndarray, np.ndarray]:
    """The FSM's states reachable over `alphabet`, numbered from its initial state (0) in the order
    found, then one dead state: (trans int64 (S, vocab_size), accepting bool (S,))."""
    index = {fsm.initial: 0}
    order, rows = [fsm.initial], []
    for state in order:  # grows while states are found
        row = [-1]  # the end token: to the dead state
        for ch in alphabet:
            key = fsm.alphabet[ch]  # the FSM's symbol class of ch (anything_else's when ch is not named), or None
            nxt = fsm.map.get(state, {}).get(key) if key is not None else None
            if nxt is not None and nxt not in index:
                index[nxt] = len(order)
                order.append(nxt)
            row.append(-1 if nxt is None else index[nxt])
        rows.append(row)
    dead = len(order)
    trans = np.array(rows + [[dead] * (len(alphabet) + 1)], dtype=np.int64)  # (S, vocab_size)
    trans[trans < 0] = dead
    accepting = np.array([s in fsm.finals for s in order] + [False], dtype=bool)  # (S,)
    return trans, accepting


def _reachable(trans: np.ndarray, accepting: np.ndarray, min_len: int, max_len: int) -> np.ndarray:
    """allowed bool (max_len + 1, S, vocab_size) (see Automaton.allowed), from t = max_len down to 0."""
    S, V = trans.shape
    allowed = np.zeros((max_len + 1, S, V), dtype=bool)
    live_next = np.zeros(S, dtype=bool)  # (S,) states that can still end well from t + 1 characters
    for t in range(max_len, -1, -1):
        allowed[t, :, 0] = accepting & (t >= min_len)  # (S,) end the word now
        if t < max_len:
            allowed[t, :, 1:] = live_next[trans[:, 1:]]  # (S, vocab_size − 1) a character that can still end well
        live_next = allowed[t].any(axis=1)  # (S,)
    return allowed


class Guide:
    """The mask of one batch of samples, all starting after the same prefix: `mask` before each
    draw, `advance` after it (used by makemore.sample's batch loop and makemore.best)."""

    def __init__(self, automaton: Automaton, b: int, prefix: list[int]):
        self.automaton = automaton
        self.state = np.full(b, automaton.walk(prefix), dtype=np.int64)  # (b,) each sample's state
        self.allowed = np.ones(0, dtype=bool)

    def mask(self, logits: np.ndarray, rows: np.ndarray, t: int) -> np.ndarray:
        """logits (a, vocab_size) of the samples `rows` (a,) after t characters, with every token that
        cannot end in an accepted word set to −inf."""
        self.allowed = self.automaton.allowed[t][self.state[rows]]  # (a, vocab_size)
        return np.where(self.allowed, logits, np.float32(-np.inf))  # (a, vocab_size)

    def advance(self, rows: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """Move the samples `rows` on by the drawn tokens `nxt` (a,) and return them. A masked token
        (inverse-CDF sampling's clamp at a total rounded up, about once in 2^24 draws) is replaced
        by the last allowed one, so a sample never leaves the automaton."""
        ok = np.take_along_axis(self.allowed, nxt[:, None], axis=1)[:, 0]  # (a,)
        if not bool(ok.all()):
            last = self.allowed.shape[1] - 1 - self.allowed[:, ::-1].argmax(axis=1)  # (a,) last allowed token
            nxt = np.where(ok, nxt, last)
        self.state[rows] = self.automaton.trans[self.state[rows], nxt]
        return nxt
