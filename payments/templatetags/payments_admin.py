"""The admin index: what needs a person, today's and the week's payments, and a bar chart drawn
on the server."""

from __future__ import annotations

from django import template

from payments.admin.ledger_list import date_drilldown
from payments.selectors import payments_dashboard
from payments.services.alerts import alerts_open_counts

register = template.Library()

CHART_WIDTH, CHART_HEIGHT, BAR_AREA = 560, 170, 120
TOP, BAR_GAP = 16, 16


@register.inclusion_tag("admin/payments/alerts.html", name="payments_alerts")
def payments_alerts_tag() -> dict:
    return {"alerts": alerts_open_counts()}


@register.inclusion_tag("admin/payments/dashboard.html", name="payments_dashboard")
def payments_dashboard_tag() -> dict:
    data = payments_dashboard(days=7)
    days = data["days"]
    bar_width = (CHART_WIDTH - BAR_GAP * (len(days) + 1)) // len(days)
    peak = max((totals.amount for _, totals in days), default=0) or 1
    bars = []
    for index, (day, totals) in enumerate(days):
        height = round(BAR_AREA * totals.amount / peak)
        x = BAR_GAP + index * (bar_width + BAR_GAP)
        y = TOP + BAR_AREA - height
        bars.append(
            {
                "x": x,
                "y": y,
                "height": height,
                "amount": totals.amount,
                "label": day.strftime("%a %d"),
                "label_x": x + bar_width // 2,
                "value_y": max(y - 4, 10),
            }
        )
    return {
        "today": data["today"],
        "week": data["week"],
        "chart": {
            "width": CHART_WIDTH,
            "height": CHART_HEIGHT,
            "bar_width": bar_width,
            "label_y": TOP + BAR_AREA + 18,
            "bars": bars,
        },
    }


@register.inclusion_tag("admin/date_hierarchy.html", name="ledger_date_hierarchy")
def ledger_date_hierarchy_tag(cl) -> dict:
    """The ledger's date drilldown, drawn without reading the listed rows."""
    return date_drilldown(cl)
