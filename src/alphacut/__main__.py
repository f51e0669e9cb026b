"""`python -m alphacut` runs the command line."""

from .cli.main import main

main()
