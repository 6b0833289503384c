"""Job history in SQLite (stdlib ``sqlite3``): every single, batch or video job, kept across restarts.

The table is bounded: after each insert only the newest ``limit`` jobs stay. Thumbnails are small
PNGs stored in the row, so clearing the history leaves no files behind.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path


SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    kind TEXT NOT NULL,
    sources TEXT NOT NULL,
    image_size TEXT NOT NULL,
    options TEXT NOT NULL,
    model TEXT NOT NULL,
    model_version TEXT NOT NULL,
    duration_ms REAL NOT NULL,
    status TEXT NOT NULL,
    output_path TEXT,
    error TEXT,
    thumbnail BLOB
)
"""


@dataclass
class Job:
    kind: str  # "single" | "batch" | "video"
    sources: list[str]
    image_size: str  # "850×601"; a batch: "12" (images); a video: "1920×1080 · 250" (frames)
    options: dict
    model: str
    model_version: str
    duration_ms: float
    status: str  # "ok" | "failed" | "partial"
    output_path: str | None = None
    error: str | None = None
    thumbnail: bytes | None = None
    created_at: float = field(default_factory=time.time)
    id: int | None = None


class HistoryStore:
    def __init__(self, path: Path, limit: int = 500):
        self.path = Path(path)
        self.limit = limit
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as connection, connection:
            connection.execute(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=10)
        connection.row_factory = sqlite3.Row
        return connection

    def add(self, job: Job) -> int:
        with closing(self._connect()) as connection, connection:
            cursor = connection.execute(
                "INSERT INTO jobs (created_at, kind, sources, image_size, options, model, model_version, duration_ms,"
                " status, output_path, error, thumbnail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job.created_at, job.kind, json.dumps(job.sources, ensure_ascii=False), job.image_size,
                 json.dumps(job.options, ensure_ascii=False), job.model, job.model_version, job.duration_ms,
                 job.status, job.output_path, job.error, job.thumbnail),
            )
            connection.execute(
                "DELETE FROM jobs WHERE id NOT IN (SELECT id FROM jobs ORDER BY id DESC LIMIT ?)", (self.limit,)
            )
            return cursor.lastrowid

    def list(self, kind: str | None = None, status: str | None = None, text: str | None = None, limit: int = 200) -> list[Job]:
        """Newest first, optionally filtered by kind, status and a substring of the source names."""
        clauses, parameters = [], []
        if kind:
            clauses.append("kind = ?")
            parameters.append(kind)
        if status:
            clauses.append("status = ?")
            parameters.append(status)
        if text:
            clauses.append("sources LIKE ?")
            parameters.append(f"%{text}%")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with closing(self._connect()) as connection:
            rows = connection.execute(f"SELECT * FROM jobs {where} ORDER BY id DESC LIMIT ?", (*parameters, limit)).fetchall()
        return [self._job(row) for row in rows]

    def get(self, job_id: int) -> Job | None:
        with closing(self._connect()) as connection:
            row = connection.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return self._job(row) if row else None

    def recent_average_ms(self, model: str, kind: str = "single", jobs: int = 20) -> float | None:
        """The mean duration of the newest ``jobs`` successful jobs of ``kind`` served by ``model``."""
        with closing(self._connect()) as connection:
            row = connection.execute(
                "SELECT AVG(duration_ms) FROM (SELECT duration_ms FROM jobs WHERE model = ? AND kind = ? AND status = 'ok'"
                " ORDER BY id DESC LIMIT ?)", (model, kind, jobs)).fetchone()
        return row[0]

    def count(self) -> int:
        with closing(self._connect()) as connection:
            return connection.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]

    def clear(self) -> None:
        with closing(self._connect()) as connection, connection:
            connection.execute("DELETE FROM jobs")

    @staticmethod
    def _job(row: sqlite3.Row) -> Job:
        values = dict(row)
        values["sources"] = json.loads(values["sources"])
        values["options"] = json.loads(values["options"])
        return Job(**values)
