"""Outbound HTTP shared by every feature: the one SSRF-guarded client and the address guard."""
