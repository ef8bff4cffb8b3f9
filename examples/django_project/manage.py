#!/usr/bin/env python
"""Django's command-line utility for the kalshi_ws example project.

Run it offline, against the built-in simulator::

    cd examples/django_project
    KALSHI_SIMULATE=1 python manage.py runserver --noreload
    curl 'http://127.0.0.1:8000/markets?wait=2'

or under a pre-forking server, each worker with its own client::

    KALSHI_SIMULATE=1 gunicorn --preload -w 4 kalshi_site.wsgi
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kalshi_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
