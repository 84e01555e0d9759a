"""`python -m stockflow ...` is the `stockflow` command."""

from stockflow.entrypoints.cli import main

raise SystemExit(main())
