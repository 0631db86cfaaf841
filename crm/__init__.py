"""Citizen records: profiles, identities across channels, the screen-pop."""

from crm.profiles import CitizenDirectory, CitizenView, mask
from crm.screen_pop import build_screen_pop
from crm.validation import ProfileError, clean_profile, valid_id_number, valid_phone

__all__ = [
    "CitizenDirectory",
    "CitizenView",
    "ProfileError",
    "build_screen_pop",
    "clean_profile",
    "mask",
    "valid_id_number",
    "valid_phone",
]
