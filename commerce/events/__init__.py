"""Events for other systems (warehouse, ERP): written to an outbox in the caller's transaction, relayed later."""
