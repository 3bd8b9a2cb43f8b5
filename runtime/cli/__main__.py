"""``python -m morphware.runtime.cli`` runs the ``morphware`` command."""

from morphware.runtime.cli import main

main()
