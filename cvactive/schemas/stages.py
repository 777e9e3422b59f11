"""The select and synthesize configs' schemas, derived from their declarations.

:class:`cvactive.selection.options.SelectOptions` declares every key of ``configs/select.yaml``,
:class:`cvactive.synthesis.options.SynthesisOptions` every key of ``synthesize.yaml``, and a
recipe's ``bbox:`` and ``copy_paste:`` are :class:`~cvactive.synthesis.recipes.BboxOptions` and
:class:`~cvactive.synthesis.recipes.CopyPasteOptions`; :func:`cvactive.declare.schema_of` makes the
model each is checked against. A recipe file's own schema is
:class:`cvactive.synthesis.recipes.RecipeFile`, beside the reader.
"""

from __future__ import annotations

from cvactive.declare.fields import schema_of
from cvactive.selection.options import SelectOptions
from cvactive.synthesis.options import SynthesisOptions
from cvactive.synthesis.recipes import BboxOptions, CopyPasteOptions, RecipeFile

Select = schema_of(SelectOptions)
Synthesize = schema_of(SynthesisOptions)
Bbox = schema_of(BboxOptions)
CopyPaste = schema_of(CopyPasteOptions)
Recipe = RecipeFile
