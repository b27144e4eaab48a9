"""Champion/challenger experiments: who decides for whom, what was recorded, and how the arms compare.

``model`` reads an experiment from the registry's ledger, ``assign`` puts an applicant in an arm
by a keyed hash, ``control`` starts and stops one (the API and the job alike), ``compare`` turns
the prediction log (and matured outcomes, read by ``rows``) into the report the job, the route and
the page share (``report``, its sentences from ``verdicts``).
"""
