"""A Daraja-compatible simulator served by this project in MPESA_ENVIRONMENT=simulator.

It answers like Daraja (API.md is the reference) and really posts results to the callback URLs
it is given, so the whole payment flow runs on one machine with no credentials or network.
"""
