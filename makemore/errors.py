"""The one exception type for a user's mistake.

Bad files, bad configs and missing runs raise `MakemoreError`; the command line turns it into
one line on stderr and exit code 2. Bugs raise anything else and keep their traceback.
"""


class MakemoreError(Exception):
    """A mistake the user can fix: the message says what is wrong and, where possible, how to fix it."""
