"""The GPU-type read as a FastAPI app, for bench/gpu-types.sh: the very bytes llm-opsd answers
(body and headers taken from one of its answers), behind a bearer-token check like llm-opsd's
(the token's SHA-256 compared with the one expected; 401 with WWW-Authenticate otherwise).
Run by uvicorn with uvloop and httptools (as uvicorn[standard] does); see bench/README.md.

Environment: BENCH_BODY (file with the body), BENCH_HEADERS (file with "Name: value" lines),
BENCH_TOKEN (the bearer token accepted)."""

import hashlib
import hmac
import os

from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

with open(os.environ["BENCH_BODY"], "rb") as f:
    BODY = f.read()
HEADERS = {}
with open(os.environ["BENCH_HEADERS"], encoding="ascii") as f:
    for line in f:
        name, _, value = line.strip().partition(":")
        if name and name.lower() not in ("content-type", "content-length"):
            HEADERS[name] = value.strip()
with open(os.environ["BENCH_HEADERS"], encoding="ascii") as f:
    MEDIA_TYPE = next(
        (l.split(":", 1)[1].strip() for l in f if l.lower().startswith("content-type:")),
        "application/json",
    )
TOKEN_SHA256 = hashlib.sha256(os.environ["BENCH_TOKEN"].encode()).digest()

bearer = HTTPBearer(auto_error=False)


async def reader(cred: HTTPAuthorizationCredentials = Depends(bearer)) -> None:
    if cred is None or not hmac.compare_digest(
        hashlib.sha256(cred.credentials.encode()).digest(), TOKEN_SHA256
    ):
        raise HTTPException(401, "a valid bearer token is required",
                            headers={"WWW-Authenticate": "Bearer"})


app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/llm-ops/v1/gpu-types", dependencies=[Depends(reader)])
async def gpu_types(env: str = Query("dev")) -> Response:
    return Response(BODY, media_type=MEDIA_TYPE, headers=HEADERS)
