"""The one progress protocol of every long job: `hook(step, done, total)`.

`step` says what is being done ("propagation", "reasoning pass 2 of 3", "features of X"),
`done` of `total` counts that step's own units (lines labelled, passes, dramas). A job made
of other jobs passes the hook down unchanged, so no job guesses what share of a whole its
part is; whoever shows progress (the CLI's bar, the review page) shows the current step.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int], None]
