"""Configuration commands, for channel managers: subscribe, unsubscribe, settings, set, mute, digest."""

from __future__ import annotations
