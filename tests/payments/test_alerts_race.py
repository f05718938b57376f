"""Two mpesa_reconcile runs at once e-mail each problem once (PostgreSQL, real threads)."""

from __future__ import annotations

import pytest
from django.core import mail

from payments.models import AlertNotice
from payments.services.alerts import alerts_digest_send
from tests.concurrency import POSTGRESQL_ONLY, run_together

from .test_alerts import flagged, person

pytestmark = [pytest.mark.concurrency, *POSTGRESQL_ONLY]


def test_digests_run_at_once_send_each_problem_once(django_user_model):
    person(django_user_model, "amina", email="amina@example.co.ke")
    flagged()

    run_together(4, lambda _: alerts_digest_send())

    assert len(mail.outbox) == 1
    assert AlertNotice.objects.count() == 1
