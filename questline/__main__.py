"""``python -m questline`` is the ``questline`` command, with no dependence on PATH."""

from questline.cli import main

main(prog_name="questline")
