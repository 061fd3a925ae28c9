"""Imports every service's tables so `shared.models.Base.metadata` knows them all (Alembic)."""

import shared.audit_log as audit_log_models
import shared.outbox as outbox_models
import shared.rate_limit as rate_limit_models
from services.earning import models as earning_models
from services.engagement import activity_models, referral_models, transfer_models
from services.identity import models as identity_models
from services.ledger import models as ledger_models
from services.members import models as members_models
from services.notifications import models as notifications_models
from services.notifications import webhook_models
from services.partners import models as partners_models
from services.settlement import models as settlement_models

__all__ = [
    "activity_models",
    "audit_log_models",
    "earning_models",
    "identity_models",
    "ledger_models",
    "members_models",
    "notifications_models",
    "outbox_models",
    "partners_models",
    "rate_limit_models",
    "referral_models",
    "settlement_models",
    "transfer_models",
    "webhook_models",
]
