"""Write-side use cases: the only code that calls Daraja (through ``payments.gateway``)."""
