"""`python -m makemore` runs the command-line tool."""

from makemore.cli import main

main()
