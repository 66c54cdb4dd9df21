"""The GraphQL layer only: types, inputs, resolvers, loaders, errors. Thin: it calls the domain."""
