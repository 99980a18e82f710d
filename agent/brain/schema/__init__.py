"""The brain file's shape: one pydantic model per section, every check that can be made without a clock.
`brain.Brain` is the whole file; each section's model lives in the module named after it (`hours`,
`business`, `booking`, `leads`, `escalation`, `notify`, `calendar`, `calls`, `privacy`, `recording`),
built from `fields`. Checks that span several items raise `fields.FieldProblems`.

`Brain` and the escalation `Trigger` are named from here too, by modules that predate the split.
"""

from agent.brain.schema.brain import Brain
from agent.brain.schema.escalation import Trigger

__all__ = ["Brain", "Trigger"]
