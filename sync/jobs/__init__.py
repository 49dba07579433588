"""The job bodies: the sync cycle, the rewards job and the retrain job, each a function of ``Deps``."""
