"""The node's HTTP API (aiohttp): the app, the ledger and contract routes, and its OpenAPI description."""
