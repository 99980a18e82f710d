"""The one way a `receptionist` command declines: a line the user sees, and exit status 2."""


class Refused(Exception):
    """A command that cannot run as asked; its message is the one line the user sees."""
