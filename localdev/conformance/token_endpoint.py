"""An OAuth token endpoint inside the proxy, so that tests can fail a token refresh.

Against the emulators the clients use anonymous credentials and never refresh a token. When
``GCS_IMPORT_EMULATOR_TOKEN_URI`` is set (the tests set it to the proxy's
``http://127.0.0.1:PORT/conformance/token``), ``worker.core.gcs`` gives them refreshable credentials
whose ``token_uri`` is this endpoint: the first call of each client refreshes here, and chaos mode
can cut that refresh, which google-auth raises as ``google.auth.exceptions.TransportError`` — the
failure a worker sees when the metadata server or oauth2.googleapis.com is briefly unreachable.
"""

from __future__ import annotations

import itertools

from localdev.conformance.exchange import Exchange, Reply, json_reply

_issued = itertools.count(1)


def token_reply(exchange: Exchange) -> Reply:
    """A fresh bearer token (an hour, as Google's token endpoint answers)."""
    return json_reply(200, {"access_token": f"conformance-{next(_issued)}", "expires_in": 3599, "token_type": "Bearer"})
