"""Gateway: operator login, identity tokens, the portal, platform health and the OpenAPI index."""
