"""Option declarations: one typed, documented field per option, and what is derived from it.

The bottom of the config machinery (it imports nothing of the stages): :mod:`~cvactive.declare.check`
validates a mapping against a pydantic model and says what is wrong in one line,
:mod:`~cvactive.declare.ranges` holds the shared ranges and names, and
:mod:`~cvactive.declare.fields` derives a stage's config schema, checks, flags and reference
table from its options dataclass. :mod:`cvactive.schemas` lists the schemas of every config file.
"""

from cvactive.declare.fields import Declared, add_flags, flag_values, from_mapping, option, schema_of

__all__ = ["Declared", "add_flags", "flag_values", "from_mapping", "option", "schema_of"]
