"""`python -m kagglesalt`: the command line."""

from kagglesalt.cli import main

main()
