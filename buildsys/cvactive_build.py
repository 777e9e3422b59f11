"""cvactive's build backend: setuptools' own, with its working folders outside the source tree.

setuptools builds a wheel in ``build/`` and writes ``cvactive.egg-info/`` beside the sources, so
``pip wheel .`` or ``pip install .`` in a checkout leaves both behind (issue #25). Here every
build hook runs with ``build_base`` and ``egg_base`` pointed at a temporary folder (through
distutils' ``DIST_EXTRA_CONFIG``), removed when the hook returns; everything else is
``setuptools.build_meta`` unchanged.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403  (the hooks not wrapped below are setuptools' own)


def _outside_the_tree(hook: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(hook)
    def run(*args: Any, **kwargs: Any) -> Any:
        work = tempfile.mkdtemp(prefix="cvactive-build-")
        config = os.path.join(work, "setup.cfg")
        with open(config, "w", encoding="utf-8") as f:
            f.write(f"[build]\nbuild_base = {os.path.join(work, 'build')}\n[egg_info]\negg_base = {work}\n")
        before = os.environ.get("DIST_EXTRA_CONFIG")
        os.environ["DIST_EXTRA_CONFIG"] = config
        try:
            return hook(*args, **kwargs)
        finally:
            if before is None:
                os.environ.pop("DIST_EXTRA_CONFIG", None)
            else:
                os.environ["DIST_EXTRA_CONFIG"] = before
            shutil.rmtree(work, ignore_errors=True)

    return run


build_wheel = _outside_the_tree(_setuptools.build_wheel)
build_sdist = _outside_the_tree(_setuptools.build_sdist)
build_editable = _outside_the_tree(_setuptools.build_editable)
prepare_metadata_for_build_wheel = _outside_the_tree(_setuptools.prepare_metadata_for_build_wheel)
prepare_metadata_for_build_editable = _outside_the_tree(_setuptools.prepare_metadata_for_build_editable)
