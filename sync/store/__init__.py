"""The state store: watermarks, lead states, decisions and assignments, policy states, runs, models.

``Store`` (in ``core``) is the one interface; ``engine`` opens SQLite or PostgreSQL and runs the
migrations, ``schema`` declares the tables, ``records`` the values read and written, and
``leads`` / ``history`` hold the queries behind each half of the interface.
"""

from sync.store.core import PolicyConflict, Store, StoreError, open_store
from sync.store.records import Assignment, Decision, LeadState, LeadStatus, ModelEntry, PolicyState, Run

__all__ = ["Assignment", "Decision", "LeadState", "LeadStatus", "ModelEntry", "PolicyConflict", "PolicyState", "Run",
           "Store", "StoreError", "open_store"]
