"""The forms of the back office's money pages."""

from __future__ import annotations

from typing import Any

from django import forms

from payments.conf import payments_settings
from payments.daraja.errors import InvalidPhoneNumberError
from payments.daraja.phone import normalize_phone_number
from payments.enums import B2CCommand
from payments.exceptions import PaymentValidationError
from payments.services.statements import statement_size_check


class RefundForm(forms.Form):
    amount = forms.IntegerField(min_value=1, label="Amount to refund (KES)")
    remarks = forms.CharField(max_length=100, min_length=2, initial="Refund")

    def __init__(self, *args: Any, left: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.left = left

    def clean_amount(self) -> int:
        # Checked again, under a row lock, when the refund is made; this is for the clerk.
        amount = self.cleaned_data["amount"]
        if amount > self.left:
            raise forms.ValidationError(f"Only KES {self.left} is left to refund.")
        return amount


class PayoutForm(forms.Form):
    phone_number = forms.CharField(max_length=32, label="Phone number")
    amount = forms.IntegerField(label="Amount (KES)")
    command_id = forms.ChoiceField(choices=B2CCommand.choices, label="Command")
    remarks = forms.CharField(max_length=100, min_length=2)
    occasion = forms.CharField(max_length=100, required=False)

    def clean_phone_number(self) -> str:
        try:
            return normalize_phone_number(self.cleaned_data["phone_number"])
        except InvalidPhoneNumberError as exc:
            raise forms.ValidationError(exc.message[:1].upper() + exc.message[1:]) from None

    def clean_amount(self) -> int:
        amount = self.cleaned_data["amount"]
        low, high = payments_settings.B2C_MIN_AMOUNT, payments_settings.B2C_MAX_AMOUNT
        if not low <= amount <= high:
            raise forms.ValidationError(f"Payouts are {low} to {high} shillings.")
        return amount


class StatementUploadForm(forms.Form):
    file = forms.FileField(
        label="Statement file (CSV or XLSX, as the M-Pesa org portal exports it)"
    )

    def clean_file(self):
        # Checked before the file is read: a huge upload waits on disk, never in memory.
        upload = self.cleaned_data["file"]
        try:
            statement_size_check(upload.size)
        except PaymentValidationError as exc:
            raise forms.ValidationError(str(exc)) from None
        return upload


class StatementResolveForm(forms.Form):
    note = forms.CharField(
        max_length=200,
        min_length=2,
        label="What was found or done",
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
    )
