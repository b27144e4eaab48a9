"""The UI's pages, in the order of the sidebar: one list that the app, the README's screenshots and
their test all read, so a new page cannot go without its picture."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageSpec:
    """A page: its script under ``ui/views/``, its sidebar title and icon, and the heading it shows."""

    view: str
    title: str
    icon: str
    heading: str
    default: bool = False

    @property
    def name(self) -> str:
        """The script's name without ``.py``: the page's address (``/batch``) and its screenshot's name."""
        return self.view.removesuffix(".py")

    @property
    def path(self) -> str:
        """The page's address under the UI's root (the default page is the root itself)."""
        return "" if self.default else self.name


PAGES: tuple[PageSpec, ...] = (
    PageSpec("score.py", "Score an applicant", ":material/person_search:", "Score an applicant", default=True),
    PageSpec("batch.py", "Batch", ":material/table_view:", "Batch scoring"),
    PageSpec("monitoring.py", "Monitoring", ":material/monitoring:", "Monitoring"),
    PageSpec("performance.py", "Performance", ":material/trending_down:", "Performance"),
    PageSpec("models.py", "Models", ":material/inventory_2:", "Models"),
    PageSpec("experiments.py", "Experiments", ":material/science:", "Experiments"),
    PageSpec("decisions.py", "Decisions", ":material/gavel:", "Decisions"),
    PageSpec("review.py", "Review queue", ":material/assignment_ind:", "Review queue"),
)
