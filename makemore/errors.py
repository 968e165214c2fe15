"""The one exception type for a user's mistake.

Bad files, bad configs and missing runs raise `MakemoreError`; the command line turns it into
one line on stderr and exit code 2. Bugs raise anything else and keep their traceback.
"""


class MakemoreError(Exception):
    """A mistake the user can fix: the message says what is wrong and, where possible, how to fix it."""


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type name if the message is empty), for one-line errors."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


class ReportedElsewhere(MakemoreError):
    """A mistake another process of the same torchrun job reports (rank 0): the command line
    exits with code 2 without printing it again."""
