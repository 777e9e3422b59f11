"""Video frame harvesting: stream-based selective sampling with budgets, dedup and resume.

* :mod:`~cvactive.harvest.rules`: composable rules (random, confidence band, uncertainty,
  target classes, detection count, no detections), each with its own limits;
* :mod:`~cvactive.harvest.budget`: caps per minute/hour/day/total and pacing;
* :mod:`~cvactive.harvest.dedup`: perceptual-hash or embedding near-duplicate suppression;
* :mod:`~cvactive.harvest.state`: the on-disk state that makes a harvest resumable;
* :mod:`~cvactive.harvest.feed`: frames decoded on demand, live streams reconnected;
* :mod:`~cvactive.harvest.options`: the options, declared once (:class:`HarvestOptions`), and the resume fingerprint;
* :mod:`~cvactive.harvest.harvester`: the decisions on one frame (rules, caps, dedup, pacing, keep);
* :mod:`~cvactive.harvest.runner`: the loop over the sources of one harvest;
* :mod:`~cvactive.harvest.feeds`: restarts of dead feeds, several feeds at once, a shared site budget;
* :mod:`~cvactive.harvest.api`: :func:`harvest` and :func:`harvest_feeds`, the entry points;
* :mod:`~cvactive.harvest.control`: the stop flag and the summary a run returns.
"""

from cvactive.harvest.api import harvest, harvest_feeds
from cvactive.harvest.budget import Ledger, Limits, Pacer, Pacing, SiteBudget
from cvactive.harvest.control import HarvestSummary
from cvactive.harvest.dedup import Dedup, Deduper, dhash, hamming, phash
from cvactive.harvest.feed import list_sources
from cvactive.harvest.feeds import Restart, SiteSummary
from cvactive.harvest.frames import Retry
from cvactive.harvest.options import HarvestOptions
from cvactive.harvest.rules import RULES, make_rule, make_rules, unit_draw

__all__ = [
    "RULES",
    "Dedup",
    "Deduper",
    "HarvestOptions",
    "HarvestSummary",
    "Ledger",
    "Limits",
    "Pacer",
    "Pacing",
    "Restart",
    "Retry",
    "SiteBudget",
    "SiteSummary",
    "dhash",
    "hamming",
    "harvest",
    "harvest_feeds",
    "list_sources",
    "make_rule",
    "make_rules",
    "phash",
    "unit_draw",
]
