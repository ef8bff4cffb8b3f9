"""URLs of the example project."""

from __future__ import annotations

from django.urls import path
from markets import views

urlpatterns = [
    path("markets", views.markets),
    path("health", views.health),
]
