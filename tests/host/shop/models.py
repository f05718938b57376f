from django.db import models


class Order(models.Model):
    total = models.PositiveIntegerField(help_text="Whole Kenyan shillings.")
    paid_at = models.DateTimeField(null=True, blank=True)
    mpesa_receipt = models.CharField(max_length=20, blank=True)

    def __str__(self):
        return f"Order {self.pk}"
