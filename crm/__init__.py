"""Citizen records: profiles, identities across channels, merging, tickets (工单), import/export
and the screen-pop."""

from crm.merge import CitizenMerger, MergeError, MergeResult, check_pair
from crm.profiles import UNMASKED_ROLES, CitizenDirectory, CitizenView, mask
from crm.screen_pop import ScreenPopAudits, build_screen_pop
from crm.tickets import (
    ACTIVE,
    STATUS_LABELS,
    TicketDesk,
    TicketError,
    TicketPolicy,
    TicketView,
    add_message_ticket,
)
from crm.transfer import (
    CitizenImporter,
    CitizenImportReport,
    all_citizens,
    citizen_template,
    export_citizens,
    parse_citizen_table,
)
from crm.validation import ProfileError, check_profile, clean_profile, valid_id_number, valid_phone

__all__ = [
    "ACTIVE",
    "STATUS_LABELS",
    "UNMASKED_ROLES",
    "CitizenDirectory",
    "CitizenImportReport",
    "CitizenImporter",
    "CitizenMerger",
    "CitizenView",
    "MergeError",
    "MergeResult",
    "ProfileError",
    "ScreenPopAudits",
    "TicketDesk",
    "TicketError",
    "TicketPolicy",
    "TicketView",
    "add_message_ticket",
    "all_citizens",
    "build_screen_pop",
    "check_pair",
    "check_profile",
    "citizen_template",
    "clean_profile",
    "export_citizens",
    "mask",
    "parse_citizen_table",
    "valid_id_number",
    "valid_phone",
]
