"""Root of the test suite.

pytest's importlib import mode names gateway/tests/* modules ``gateway.tests.*`` and
would register the repository's ``gateway/`` folder as a namespace package hiding the
installed ``gateway`` app; importing the real package first keeps it in place.
"""

import gateway  # noqa: F401
