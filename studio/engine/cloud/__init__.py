"""Training on a rented GPU: API keys, the offers that fit a planned run, and their time and cost.

Pure Python, no Qt. Each provider is reached through its own official SDK (docs/cloud.md says which and
why), imported only when a cloud feature is used: Studio runs without them.
"""

from studio.engine.cloud.keys import load_api_key, save_api_key
from studio.engine.cloud.offers import Offer, OfferEstimate, OffersReport, budget_cap, check_budget, offers

__all__ = [
    "Offer", "OfferEstimate", "OffersReport", "budget_cap", "check_budget", "load_api_key", "offers", "save_api_key",
]
