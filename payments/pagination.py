"""Pages of the ledger that never count the whole ledger: exact counts up to a limit, then the
database's estimate, with "is there a next page" still answered exactly."""

from __future__ import annotations

import json
import logging

from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db import DatabaseError, connections
from django.db.models import QuerySet
from django.utils.functional import cached_property

logger = logging.getLogger(__name__)

# Counting N rows costs time in N; up to this many it is a few milliseconds on PostgreSQL.
EXACT_COUNT_LIMIT = 10_000


def estimated_count(queryset: QuerySet) -> int | None:
    """The number of rows PostgreSQL's planner expects ``queryset`` to return (from its table
    statistics, kept by autovacuum), without reading them; None on other databases."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    sql, params = queryset.order_by().query.sql_with_params()
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
    except DatabaseError:
        logger.warning("count estimate failed", exc_info=True)
        return None
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


class EstimatedPage(Page):
    """A page of a list whose length is an estimate: whether more follow is known from one row
    read past the page, not from the count."""

    def __init__(self, object_list, number, paginator, *, more: bool) -> None:
        super().__init__(object_list, number, paginator)
        self.more = more

    def has_next(self) -> bool:
        return self.more

    def end_index(self) -> int:
        return (self.number - 1) * self.paginator.per_page + len(self.object_list)


class LedgerPaginator(Paginator):
    """Counts at most ``exact_limit`` rows (``SELECT COUNT(*) FROM (... LIMIT n)``): a list or
    a search of that size or less gets its exact count, a longer one PostgreSQL's estimate
    (``count_is_exact`` False; at least ``exact_limit + 1``, and on other databases exactly
    that). Pages of an estimated list are read with one row more, so that ``has_next`` is
    exact and the last rows stay reachable whatever the estimate said; a page past the rows
    but within the estimate is empty, not an error."""

    exact_limit = EXACT_COUNT_LIMIT
    estimated = False

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        seen = queryset.order_by()[: self.exact_limit + 1].count()
        if seen <= self.exact_limit:
            return seen
        estimate = estimated_count(queryset)
        self.estimated = estimate is not None
        return max(estimate or 0, self.exact_limit + 1)

    @property
    def count_is_exact(self) -> bool:
        return self.count <= self.exact_limit

    @property
    def count_text(self) -> str:
        """The count as a person reads it: "1,234", "about 312,000" or "more than 10,000"."""
        if self.count_is_exact:
            return f"{self.count:,}"
        if self.estimated:
            return f"about {self.count:,}"
        return f"more than {self.exact_limit:,}"

    def validate_number(self, number) -> int:
        if self.count_is_exact:
            return super().validate_number(number)
        # Any page from 1 on: past the estimate, there may still be rows.
        try:
            number = int(number)
        except (TypeError, ValueError):
            raise PageNotAnInteger("That page number is not an integer") from None
        if number < 1:
            raise EmptyPage("That page number is less than 1")
        return number

    def page(self, number) -> Page:
        number = self.validate_number(number)
        if self.count_is_exact:
            return super().page(number)
        bottom = (number - 1) * self.per_page
        rows = list(self.object_list[bottom : bottom + self.per_page + 1])
        if not rows and number > self.num_pages:
            raise EmptyPage("That page contains no results")
        # An empty page within the estimate (it was too high): the links drawn from it work.
        return EstimatedPage(rows[: self.per_page], number, self, more=len(rows) > self.per_page)
