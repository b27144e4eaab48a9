"""Audit: find a logged decision (``index``), re-make it with what made it (``replay``), explain it
to the applicant (``notices``), and record who looked (``access``)."""
