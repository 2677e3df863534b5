"""Points policy, receipts, the per-instance Merkle log, witnessing and tokens."""
