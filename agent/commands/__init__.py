"""The bodies of the `receptionist` commands, one module per area; agent/cli.py parses the arguments
and hands each command to its function here."""
