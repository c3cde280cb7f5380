"""Citizen-facing services that report usage events with pseudonymous users."""

from __future__ import annotations

from simulators.services.base import EventTuple, ServiceModel, SessionService, UseService
from simulators.services.public import SERVICES
from simulators.services.users import UserPool

__all__ = ["SERVICES", "EventTuple", "ServiceModel", "SessionService", "UseService", "UserPool"]
