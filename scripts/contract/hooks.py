"""What the contract check sends besides the generated data.

Every request is made with real credentials: the basic-mode gateway ID for /send_simple
and the end-to-end one for everything else. A recipient ID that is well formed is replaced
with the identity the check set up, so that a send reaches the server's checks of its own
data rather than stopping at "unknown recipient" (400, as the contract wants for a
well-formed ID that does not exist). Values that break the document are left as they are.
"""

import os
import re

import schemathesis

BASIC = {"from": os.environ["CONTRACT_BASIC_ID"], "secret": os.environ["CONTRACT_BASIC_SECRET"]}
E2E = {"from": os.environ["CONTRACT_E2E_ID"], "secret": os.environ["CONTRACT_E2E_SECRET"]}
RECIPIENT = os.environ["CONTRACT_RECIPIENT"]
WELL_FORMED_ID = re.compile(r"^[0-9A-Z]{8}$")
# A multipart field name goes into a header line: names with control characters or
# characters outside ASCII make the body itself malformed, whatever the document says.
FIELD_NAME = re.compile(r"^[\x20-\x7e]*$")


def _recipient(value):
    if isinstance(value, str) and WELL_FORMED_ID.match(value):
        return RECIPIENT
    return value


@schemathesis.hook
def filter_body(ctx, body):
    if ctx.operation is not None and ctx.operation.path == "/upload_blob" and isinstance(body, dict):
        return all(isinstance(name, str) and FIELD_NAME.match(name) for name in body)
    return True


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    credentials = BASIC if case.operation.path == "/send_simple" else E2E
    for part in (case.query, case.body):
        if isinstance(part, dict) and "from" in part:
            part.update(credentials)
    if case.operation.path in ("/send_simple", "/send_e2e") and isinstance(case.body, dict):
        if "to" in case.body:
            case.body["to"] = _recipient(case.body["to"])
    if case.operation.path == "/send_e2e_bulk" and isinstance(case.body, list):
        for item in case.body:
            if isinstance(item, dict) and "to" in item:
                item["to"] = _recipient(item["to"])
