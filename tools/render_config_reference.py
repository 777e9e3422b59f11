"""Write docs/config-reference.md from the option declarations and schemas (``cvactive.schemas.reference_page``).

``python tools/render_config_reference.py`` rewrites the page; ``--check`` exits 1 when the page
differs from what the declarations say (tests/test_config.py checks the same).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cvactive.outputs import write_text_atomic
from cvactive.schemas import reference_page

PAGE = Path(__file__).resolve().parent.parent / "docs" / "config-reference.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether the page is up to date")
    args = parser.parse_args(argv)
    page = reference_page()
    if args.check:
        same = PAGE.is_file() and PAGE.read_text(encoding="utf-8") == page
        print(f"{PAGE.name}: {'up to date' if same else 'out of date: run python tools/render_config_reference.py'}")
        return 0 if same else 1
    write_text_atomic(PAGE, page, fsync=False)
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
