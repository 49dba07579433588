"""The job bodies: the sync cycle, the rewards job and the retrain job, each a function of ``Deps``.

``cycle``, ``rewards`` and ``retrain`` hold the jobs; ``report`` the report they share and the
opening and closing of a run (run history, API calls, job metrics). The cycle's parts:
``watermark`` (how far it may advance), ``owners`` (who needs an owner, the routing decision,
the re-check before writing) and ``lead_context`` (what the routing policy sees of a lead).
"""
