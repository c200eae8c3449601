"""Issue 10's reliability targets, measured by running the bad-input, HTTP and team-server tests."""
