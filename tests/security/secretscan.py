"""Looking for secrets in clear: in text, in every value of a Redis database (Celery messages
decoded: their bodies are base64 JSON), and in every row of every table of the database."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from typing import Any

import redis
from django.db import connection

_BASE64 = re.compile(r"^[A-Za-z0-9+/_-]{16,}={0,2}$")


def expand(value: Any, depth: int = 0) -> list[str]:
    """Every text form of `value`: itself, JSON inside it, base64 inside it (recursively)."""
    texts: list[str] = []
    if depth > 8:
        return texts
    if isinstance(value, bytes | bytearray | memoryview):
        value = bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, str):
        texts.append(value)
        stripped = value.strip()
        if stripped[:1] in ("{", "["):
            try:
                texts += expand(json.loads(stripped), depth + 1)
            except ValueError:
                pass
        if _BASE64.match(stripped):
            for decode in (base64.b64decode, base64.urlsafe_b64decode):
                try:
                    decoded = decode(stripped + "=" * (-len(stripped) % 4)).decode("utf-8")
                except (binascii.Error, ValueError, UnicodeDecodeError):
                    continue
                texts += expand(decoded, depth + 1)
                break
    elif isinstance(value, dict):
        for key, item in value.items():
            texts += expand(key, depth + 1) + expand(item, depth + 1)
    elif isinstance(value, list | tuple | set):
        for item in value:
            texts += expand(item, depth + 1)
    elif value is not None:
        texts.append(str(value))
    return texts


def leaks(texts: Iterable[str], secrets: dict[str, str], where: str) -> list[str]:
    found = []
    for text in texts:
        for name, secret in secrets.items():
            if secret and secret in text:
                found.append(f"{name} in {where}: ...{text[max(0, text.find(secret) - 60):][:160]!r}")
    return found


def redis_values(conn: redis.Redis) -> dict[str, list[Any]]:
    """Every key of the connection's database with its values, whatever the key's type."""
    values: dict[str, list[Any]] = {}
    for key in conn.scan_iter(count=1000):
        kind = conn.type(key).decode()
        name = key.decode(errors="replace")
        if kind == "string":
            values[name] = [conn.get(key)]
        elif kind == "list":
            values[name] = list(conn.lrange(key, 0, -1))
        elif kind == "hash":
            values[name] = [item for pair in conn.hgetall(key).items() for item in pair]
        elif kind == "set":
            values[name] = list(conn.smembers(key))
        elif kind == "zset":
            values[name] = [member for member, _ in conn.zrange(key, 0, -1, withscores=True)]
        else:
            values[name] = []
    return values


def redis_leaks(conn: redis.Redis, secrets: dict[str, str]) -> tuple[list[str], int]:
    """(leaks, how many keys were read)."""
    found: list[str] = []
    values = redis_values(conn)
    for key, items in values.items():
        found += leaks(expand(key), secrets, f"redis key {key}")
        for item in items:
            found += leaks(expand(item), secrets, f"redis {key}")
    return found, len(values)


def database_leaks(secrets: dict[str, str]) -> tuple[list[str], int]:
    """Every row of every table, read raw (no model code in between). (leaks, rows read)."""
    found: list[str] = []
    rows_read = 0
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                rows_read += 1
                found += leaks(expand(list(row)), secrets, f"table {table}")
    return found, rows_read
