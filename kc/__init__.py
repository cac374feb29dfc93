"""Kommuncentral: a city's contact centre on Asterisk."""
