"""The FiftyOne App plugin ``@cvactive/review`` and the App server that loads it.

FiftyOne loads plugins from one folder, ``FIFTYONE_PLUGINS_DIR``, read by the App server
process that :func:`fiftyone.launch_app` starts (it inherits this process's environment).
:func:`use_review_plugin` points that variable at cvactive's packaged plugins unless the user
already set it, then the plugin is theirs to add (copy or link
``cvactive/resources/fiftyone-plugins/cvactive-review`` into their folder).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

#: The folder of cvactive's FiftyOne plugins (one: ``cvactive-review``).
PLUGINS_DIR = Path(__file__).resolve().parent.parent / "resources" / "fiftyone-plugins"
#: The plugin's name in its ``fiftyone.yml``.
REVIEW_PLUGIN = "@cvactive/review"
#: The start of FiftyOne's warning about App options it removed (``show_label`` and two others),
#: logged three times each time the App's state is read back (30 lines in a review session of issue #25).
_REMOVED_OPTION = "The `%s` App config option has been removed"


def use_review_plugin() -> bool:
    """Make the App server load ``@cvactive/review``; return whether it will.

    Sets ``FIFTYONE_PLUGINS_DIR`` to :data:`PLUGINS_DIR` when unset (or already ours). A user's
    own plugins folder is left alone, with a warning unless it holds the plugin.
    """
    current = os.environ.get("FIFTYONE_PLUGINS_DIR")
    if not current:
        os.environ["FIFTYONE_PLUGINS_DIR"] = str(PLUGINS_DIR)
        return True
    if os.path.realpath(current) == str(PLUGINS_DIR) or any(Path(current).glob("**/cvactive-review/fiftyone.yml")):
        return True
    log.warning(
        "FIFTYONE_PLUGINS_DIR=%s is set, so the App will not load cvactive's review buttons; link %s into it "
        "to have them",
        current,
        PLUGINS_DIR / "cvactive-review",
    )
    return False


class _RemovedOptionFilter(logging.Filter):
    """Drops exactly FiftyOne's "App config option has been removed" warnings."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.WARNING and str(record.msg).startswith(_REMOVED_OPTION))


def quiet_removed_app_options() -> None:
    """Stop FiftyOne repeating its ``show_label`` / ``show_confidence`` / ``show_index`` removal warning.

    FiftyOne 1.22 serializes its App config with those (removed) options and, each time it reads
    the App's state back, warns that they are set. Only that message of
    ``fiftyone.core.config`` is filtered; its other warnings pass.
    """
    logger = logging.getLogger("fiftyone.core.config")
    if not any(isinstance(f, _RemovedOptionFilter) for f in logger.filters):
        logger.addFilter(_RemovedOptionFilter())
