"""The limit for the ingest scenarios: a bare Flask JSON endpoint, served the same way."""
from flask import Flask, jsonify, request

app = Flask("bare")


@app.post("/json")
def echo():
    body = request.get_json(silent=True) or {}
    return jsonify(id="00000000-0000-0000-0000-000000000000", received=len(body)), 201
