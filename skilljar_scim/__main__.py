"""Run the CLI as `python -m skilljar_scim`."""

from skilljar_scim.cli.main import run

run()
