"""Knowledge editing: ROME / MEMIT / AlphaEdit rank-one MLP edits, the SADR attention regulariser, edit metrics.

>>> from obliviate.editing import EditRequest, EditConfig, edit
"""

from obliviate.editing.rank_one import (
    KeyStats,
    generic_corpus,
    key_second_moment,
    nullspace_projector,
    solve_update,
)
from obliviate.editing.rome import EditConfig, EditRequest, EditResult, edit
from obliviate.editing.sadr import SADRConfig

__all__ = ["EditConfig", "EditRequest", "EditResult", "KeyStats", "SADRConfig", "edit", "generic_corpus",
           "key_second_moment", "nullspace_projector", "solve_update"]
