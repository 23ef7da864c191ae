"""Online serving on domain types; transports adapt to it."""
