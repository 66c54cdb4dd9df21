"""The domain: one package per bounded context. Knows nothing of GraphQL or HTTP."""
