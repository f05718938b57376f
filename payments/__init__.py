"""A reusable Django app for taking and sending money through Safaricom's M-Pesa Daraja API."""

__version__ = "0.1.0"
