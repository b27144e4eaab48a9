"""The credit-risk core: configuration, feature schema, model format, registry access."""
