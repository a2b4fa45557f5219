"""The one exception type for problems a user caused (bad flag, file, spec, prompt).

The CLI turns it into a single line on stderr and exit code 2; the server (a later issue)
turns it into a 4xx body. Anything else escaping is a bug in ponder, not the user's fault.
"""


class UserError(ValueError):
    """A problem with what the user gave us; the message names it and what would be valid."""
