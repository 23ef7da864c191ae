"""Entities of the rides project: who and where a trip's features describe.

A trip request joins all three: the driver who was offered it, the customer who asked
for it and the zone it starts in. Zone ids restart at 1 in every city, so a zone is
identified by the pair (city, zone_id).
"""

from skewless import Entity

driver = Entity(
    "driver",
    join_keys=["driver_id"],
    description="A driver registered on the platform.",
    tags={"domain": "supply", "pii": "false"},
    owner="driver-ops@rides.example",
)

customer = Entity(
    "customer",
    join_keys=["customer_id"],
    description="A rider account that requests trips.",
    tags={"domain": "demand", "pii": "false"},
    owner="growth@rides.example",
)

pickup_zone = Entity(
    "pickup_zone",
    join_keys=["city", "zone_id"],
    description="A pickup zone of a city; zone ids are only unique within their city.",
    tags={"domain": "marketplace"},
    owner="marketplace@rides.example",
)
