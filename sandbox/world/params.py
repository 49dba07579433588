"""Numbers behind the simulated sales world, fitted once and shipped as code.

Delays and win rates come from ``benchmarks/fit_sandbox_world.py`` run on
``../shared/data/crm-sales-opportunities`` (6,711 closed opportunities; engage -> close days
and close values, as 5 % quantiles). The sandbox never reads that data at run time.
"""

from __future__ import annotations

QUANTILES = [i / 20 for i in range(21)]

# P(won | opportunity closed) in the data; the world shifts it per lead (budget cues).
OPP_WIN_RATE = 0.6315

# Opportunity engage -> close, days (bimodal in the data: quick decisions and ~2-3 month cycles).
WON_DAYS = [1, 2, 5, 7, 8, 9, 11, 13, 18, 42.65, 57, 65, 71, 77, 83, 88, 93, 99, 106, 116, 138]
LOST_DAYS = [1, 1, 2, 5, 6, 7, 8, 9, 10, 11, 14, 36, 56, 65, 72, 79, 85, 92, 100, 110, 138]
# Close values of won deals (USD).
WON_AMOUNT = [38, 52, 56, 60, 458.4, 518, 550.1, 583, 660.8, 1029, 1117, 1251.35, 3203, 3464, 3822,
              4429.5, 4757.8, 5023.8, 5284.3, 5698.6, 30288]

# The data's rep x sector spread of win rates is small once binomial noise is removed
# (sd 0.044, i.e. about 0.2 in logit units). Scenario "skilled" uses a larger, structured
# spread on the lead -> opportunity conversion so that routing has something to learn;
# scenario "flat" uses none.
SKILL_LOGIT_SD = 0.6
SPECIALIST_BONUS = 0.5  # each skilled rep also has one segment they are clearly best at

# How strongly what a lead says about itself (title, size, source, the message's cues) moves
# its conversion logit. Public lead data is that informative (x-education: ROC-AUC ~0.87 from
# the fields alone); at 1.0 a scorer trained on a CRM's first thousand leads could not tell
# good leads from bad (validation AUC ~0.6) and no opportunity threshold was reachable.
OBSERVABLE_SCALE = 1.8

# Lead -> opportunity conversion and lead handling delays (days), lognormal (median, sigma).
BASE_LOGIT = -2.4  # about 12 % of routed leads convert at average attributes (~23 % overall)
CONVERT_DELAY = (4.0, 0.7)
DISQUALIFY_DELAY = (12.0, 0.6)
CONTACT_DELAY = (0.6, 0.8)

ARRIVALS_PER_DAY = 60.0  # Poisson mean for new leads per simulated day (weekday); weekends x0.3
HISTORY_DAYS = 90
UNROUTED_RECENT_DAYS = 1.0  # preloaded leads younger than this stay in the queue
