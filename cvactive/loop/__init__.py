"""The active-learning loop: a simulated labeling cycle and its learning-curve report."""

from cvactive.loop.config import LoopConfig
from cvactive.loop.report import write_report
from cvactive.loop.stats import summarise
from cvactive.loop.study import run_loop

__all__ = ["LoopConfig", "run_loop", "summarise", "write_report"]
