"""The active-learning loop: a simulated labeling cycle and its learning-curve report."""

from cvactive.loop.report import summarise, write_report
from cvactive.loop.run import LoopConfig, run_loop

__all__ = ["LoopConfig", "run_loop", "summarise", "write_report"]
