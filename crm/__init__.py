"""Citizen records: profiles, identities across channels, the screen-pop."""

from crm.profiles import CitizenDirectory, CitizenView, mask
from crm.screen_pop import build_screen_pop

__all__ = ["CitizenDirectory", "CitizenView", "build_screen_pop", "mask"]
