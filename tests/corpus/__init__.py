"""The bad-input corpus: bad files and overrides through each app's job, each refused clearly and cleanly."""
