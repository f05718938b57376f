"""Non-DRF views: the endpoints Daraja calls."""
