from django.dispatch import receiver
from django.utils import timezone

from payments.signals import payment_succeeded
from shop.models import Order


@receiver(payment_succeeded)
def mark_order_paid(sender, transaction, for_object=None, **kwargs):
    """The signal names what the payment was for: mark that order paid, once."""
    if isinstance(for_object, Order):
        Order.objects.filter(pk=for_object.pk, paid_at__isnull=True).update(
            paid_at=timezone.now(), mpesa_receipt=transaction.mpesa_receipt_number
        )
