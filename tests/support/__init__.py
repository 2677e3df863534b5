"""Helpers shared by the test suite: databases, running instances, the Fedify peer."""
