"""Search: character n-grams of post text (Korean needs no word splitting), accounts, hashtags, remote lookups."""
