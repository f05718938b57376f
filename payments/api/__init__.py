"""The REST API the mobile app calls, under /api/v1/payments/mpesa/."""
