"""fedserver: a federated home for craft workshops and co-operatives."""
__version__ = "0.1.0"
