"""Object types of the contract, built once from the domain's models, by topic.

Leaves are plain attributes (or cheap sync resolvers where a role check
applies); only relations are async, and they go through the request's
DataLoaders.
"""

from schema import enums as _enums  # noqa: F401 - registers the enums with Strawberry
from schema.types.account import Account, LicenseAgreement, LicenseSummary
from schema.types.audit import AuditEvent
from schema.types.billing import Billing, Charge, SeatChangePreview
from schema.types.pagination import PageInfo
from schema.types.tokens import ApiToken
from schema.types.users import Invitation, LicenseAssignment, User, UserConnection, UserFilter

__all__ = [
    "Account",
    "ApiToken",
    "AuditEvent",
    "Billing",
    "Charge",
    "Invitation",
    "LicenseAgreement",
    "LicenseAssignment",
    "LicenseSummary",
    "PageInfo",
    "SeatChangePreview",
    "User",
    "UserConnection",
    "UserFilter",
]
