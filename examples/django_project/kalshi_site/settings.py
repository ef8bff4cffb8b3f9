"""Settings of the example project: no database, one app, the Kalshi client per process.

Nothing here connects to Kalshi: settings, like ``AppConfig.ready()`` and module
imports, run in a pre-forking server's master process before the fork.
"""

from __future__ import annotations

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
INSTALLED_APPS = ["markets"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "kalshi_site.urls"
WSGI_APPLICATION = "kalshi_site.wsgi.application"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
