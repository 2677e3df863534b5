"""Forward-only numbered SQL migrations, applied by `fedserver migrate`."""
