"""The peer edgebrain replaces: a FastAPI + pandas service holding the same frames in memory and
answering the benchmark's questions over HTTP, as such services are usually written (sync
handlers, pandas, FastAPI's JSON rendering of `to_dict("records")`).

  python pandas_service.py PORT PARQUET_JSON     (binds 127.0.0.1 only)
"""

import json
import sys

import uvicorn
from fastapi import FastAPI, HTTPException

from queries import QUERIES, load_frames

port = int(sys.argv[1])
frames = load_frames(json.loads(sys.argv[2]), "pandas")
t, p, s = frames["transactions"], frames["products"], frames["stores"]
app = FastAPI()


@app.get("/health")
def health():
    return {"rows": len(t)}


@app.post("/queries/{name}")
def query(name: str):
    if name not in QUERIES:
        raise HTTPException(status_code=404, detail="no such query")
    answer = QUERIES[name][3](t, p, s)
    return {"rows": answer.to_dict(orient="records")}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
