"""Write docs/cli.md, every command's ``--help``, from the parser itself: ``python docs/cli_reference.py``.

A test (tests/test_readme.py) regenerates the page and compares, so the page and the commands
cannot drift apart."""

from __future__ import annotations

import os
from pathlib import Path

DOCS = Path(__file__).resolve().parent


def render() -> str:
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal; fix it so the page is stable
    from lamae.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    parts = ["# Command reference", "",
             "Every `lamae` command's `--help`, generated from the parser by `python docs/cli_reference.py`.", ""]
    for name, sp in sub.choices.items():
        parts += [f"## lamae {name}", "", "```text", sp.format_help().rstrip(), "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    (DOCS / "cli.md").write_text(render())
    print(f"wrote {DOCS / 'cli.md'}")
