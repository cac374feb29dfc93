"""The web site and JSON API (aiohttp)."""
