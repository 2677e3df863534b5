"""The ActivityStreams vocabulary: pure parsing and building of ActivityPub documents.

Nothing here imports aiohttp or asyncpg or touches the network.
"""
