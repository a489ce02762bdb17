"""Service and satisfaction: feedback surveys and support tickets.

Two tables (schemas in :mod:`crmkit.schema`, imported by ``crmkit import feedback|tickets``):

- ``feedback``: ``feedback_id`` (built from the row's content when the file has none,
  ``crmkit.store.content_key``), ``customer_id``, ``date``, ``score``, ``channel``, ``comment``, ``scale``
  (``csat`` = 1-5 or ``nps`` = 0-10; one scale per store, so unlike scores are never
  averaged together).
- ``tickets``: ``ticket_id`` (upserted: a newer export of a ticket replaces it),
  ``customer_id``, ``opened_at``, ``resolved_at`` (timestamps), ``status``,
  ``category``, ``owner`` (support agent), ``reopened`` (kept across imports).

The package, one module per concern:

- :mod:`~crmkit.service.settings`: score scales, SLA hours and their crmkit.yaml settings.
- :mod:`~crmkit.service.hooks`: the import hooks :func:`prepare_feedback` and
  :func:`prepare_tickets` (``TableSchema.prepare``), called by the store's importer.
- :mod:`~crmkit.service.frames`: the feedback and tickets frames as read by the two below.
- :mod:`~crmkit.service.features`: :func:`service_features` ``(customers, transactions,
  feedback, tickets, *, as_of)``, one row per customer with :data:`SERVICE_COLUMNS`, for rules.
- :mod:`~crmkit.service.metrics`: :func:`service_report` ``(customers, transactions,
  feedback, tickets, *, period, by, sla_hours)``, the long metric table of ``crmkit report
  service`` (same shape as ``report kpi``, built by :func:`crmkit.metrics.long_table`);
  :func:`service_wide` the unrounded wide form. The metrics' names, units and directions
  live in the one registry of every report, :data:`crmkit.metrics.METRICS`.

Every definition is in docs/service.md, written so a reader can recompute it.
"""

from crmkit.service.features import (
    SERVICE_COLUMNS,
    SERVICE_COUNTS,
    SERVICE_DTYPES,
    service_features,
)
from crmkit.service.frames import empty_feedback, empty_tickets, has_rows, positive, promoter_class
from crmkit.service.hooks import prepare_feedback, prepare_tickets
from crmkit.service.metrics import (
    OWNER_COLUMNS,
    owner_service_columns,
    service_report,
    service_wide,
)
from crmkit.service.settings import (
    DEFAULT_SLA_HOURS,
    REOPENED_STATUSES,
    SCALE_NAMES,
    SCALES,
    check_sla_hours,
    normalise_scale,
    scale_setting,
    sla_hours_setting,
)

__all__ = [
    "DEFAULT_SLA_HOURS",
    "OWNER_COLUMNS",
    "REOPENED_STATUSES",
    "SCALES",
    "SCALE_NAMES",
    "SERVICE_COLUMNS",
    "SERVICE_COUNTS",
    "SERVICE_DTYPES",
    "check_sla_hours",
    "empty_feedback",
    "empty_tickets",
    "has_rows",
    "normalise_scale",
    "owner_service_columns",
    "positive",
    "prepare_feedback",
    "prepare_tickets",
    "promoter_class",
    "scale_setting",
    "service_features",
    "service_report",
    "service_wide",
    "sla_hours_setting",
]
