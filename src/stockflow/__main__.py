"""`python -m stockflow ...` is the `stockflow` command."""

from stockflow.adapters.signals import exit_if_stopped_while_starting

exit_if_stopped_while_starting()  # before the command's imports, which take a while

from stockflow.entrypoints.cli import main  # noqa: E402

raise SystemExit(main())
