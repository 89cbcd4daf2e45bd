"""`python -m comments` runs the CLI, so tests and containers need no console-script shim."""

from comments.cli import main

main()
