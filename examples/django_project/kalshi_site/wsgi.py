"""WSGI entry point (``gunicorn kalshi_site.wsgi``). Importing it connects to nothing."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kalshi_site.settings")
application = get_wsgi_application()
