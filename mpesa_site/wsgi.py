"""WSGI entry point."""

import os

from django.core.wsgi import get_wsgi_application

from payments.wsgi import ChunkedBodyMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mpesa_site.settings")

# Chunked bodies (no Content-Length) would reach Django empty: read them whole first.
application = ChunkedBodyMiddleware(get_wsgi_application())
